#include "runtime/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/atomic_write.hpp"
#include "runtime/exec/executor.hpp"

namespace noiseflow::runtime {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw CheckpointError(path + ": " + msg); }

std::string q(const std::string& s) { return "\"" + s + "\""; }

/// JSON nested deeper than this is refused: nlohmann's copies, comparisons and dump() recurse, and a header
/// with 300,000 nested brackets overflowed the stack (segfault). A header needs three levels.
constexpr int kMaxJsonDepth = 64;

/// nlohmann's parse without exceptions (discarded if not JSON), nullopt if it nests deeper than
/// kMaxJsonDepth; `on_key(depth, key)` sees every object key.
std::optional<Json> parse_json(const std::string& text,
                               const std::function<void(int, const std::string&)>& on_key = {}) {
  struct TooDeep {};
  try {
    return Json::parse(
        text,
        [&](int depth, Json::parse_event_t event, Json& parsed) {
          if (depth > kMaxJsonDepth) throw TooDeep{};
          if (on_key && event == Json::parse_event_t::key) on_key(depth, parsed.get<std::string>());
          return true;
        },
        false);
  } catch (const TooDeep&) {
    return std::nullopt;
  }
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

const std::set<std::string> kKnownDtypes = {"BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
                                            "F64", "I64", "U64", "F8_E4M3", "F8_E5M2"};

size_t dtype_size(const std::string& d) {
  if (d == "F32") return 4;
  if (d == "F64") return 8;
  if (d == "F16" || d == "BF16") return 2;
  return 0;
}

}  // namespace

void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // Header: names in the given order, offsets back to back.
  Json header = Json::object();
  std::set<std::string> seen;
  size_t offset = 0;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__" || !seen.insert(name).second) fail(path, "duplicate or reserved tensor name " + q(name));
    size_t bytes = size_t(t.numel()) * 4;
    header[name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  Json meta = Json::object();
  for (auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h += ' ';  // align the data to 8 bytes, as the format recommends
  uint64_t n = h.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));

  std::vector<std::string_view> parts{{reinterpret_cast<const char*>(len), 8}, h};
  for (auto& [name, t] : tensors) parts.emplace_back(reinterpret_cast<const char*>(t.data()), size_t(t.numel()) * 4);
  write_file_atomically(path, parts, [&](const std::string& msg) { fail(path, msg); });
}

SafeTensors read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, fs::exists(path) ? "cannot read the file" : "no such file");
  in.seekg(0, std::ios::end);
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  if (size < 8) fail(path, "truncated: " + std::to_string(size) + " bytes, too short for the 8-byte header length");
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > size - 8)
    fail(path, "header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
                   " bytes): truncated or not a safetensors file");
  // The cap of the safetensors format's own reader (100 MB): a larger header is damage, not a checkpoint.
  constexpr uint64_t kMaxHeader = 100'000'000;
  if (n > kMaxHeader)
    fail(path, "header length " + std::to_string(n) + " exceeds the format's limit of " + std::to_string(kMaxHeader) +
                   " bytes: damaged or not a safetensors file");
  std::string h(n, '\0');
  in.read(h.data(), std::streamsize(n));
  // A tensor named twice would otherwise be read as its last entry: the parser callback sees every key.
  std::set<std::string> keys;
  std::string twice;
  std::optional<Json> parsed = parse_json(h, [&](int depth, const std::string& key) {
    if (depth == 1 && !keys.insert(key).second && twice.empty()) twice = key;
  });
  if (!parsed)
    fail(path, "the header nests deeper than " + std::to_string(kMaxJsonDepth) +
                   " levels of [ and {: damaged or not a safetensors file");
  const Json header = std::move(*parsed);
  if (header.is_discarded() || !header.is_object()) fail(path, "the header is not a JSON object: not a safetensors file");
  if (!twice.empty()) fail(path, "the header names " + q(twice) + " twice: a damaged or hand-edited file");
  const uint64_t data_size = size - 8 - n;

  SafeTensors out;
  struct Span {
    uint64_t b, e;
    std::string name;
  };
  std::vector<Span> spans;
  std::vector<std::pair<std::string, Json>> entries;
  for (auto& [name, e] : header.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) fail(path, "__metadata__ is not an object");
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) fail(path, "__metadata__ value " + q(k) + " is not a string");
        out.metadata[k] = v;
      }
      continue;
    }
    std::string where = "tensor " + q(name) + ": ";
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(path, where + "needs dtype, shape and data_offsets");
    if (!e["dtype"].is_string()) fail(path, where + "dtype is not a string");
    std::string dtype = e["dtype"];
    if (!kKnownDtypes.count(dtype)) fail(path, where + "unknown dtype " + q(dtype));
    if (!dtype_size(dtype)) fail(path, where + "unsupported dtype " + q(dtype) + " (F32, F16, BF16 and F64 are read)");
    if (!e["shape"].is_array()) fail(path, where + "shape is not a list");
    Shape shape;
    uint64_t count = 1;
    for (auto& d : e["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail(path, where + "bad dimension " + d.dump() + " in the shape");
      if (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(INT64_MAX))
        fail(path, where + "dimension " + d.dump() + " in the shape is beyond int64");
      shape.push_back(d.get<int64_t>());
      if (shape.back() > 0 && count > (uint64_t(1) << 40) / uint64_t(shape.back())) fail(path, where + "shape too large");
      count *= uint64_t(shape.back());
    }
    auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, where + "data_offsets must be [begin, end]");
    uint64_t b = off[0], en = off[1];
    if (b > en) fail(path, where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] run backwards");
    if (en > data_size)
      fail(path, where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(en) + "] out of range: the data is " +
                     std::to_string(data_size) + " bytes (truncated file?)");
    if (en - b != count * dtype_size(dtype))
      fail(path, where + "data_offsets cover " + std::to_string(en - b) + " bytes but shape " + graph::shape_str(shape) +
                     " of " + dtype + " needs " + std::to_string(count * dtype_size(dtype)));
    spans.push_back({b, en, name});
    entries.push_back({name, e});
  }
  // Each non-empty span against the one reaching furthest before it (not only its neighbour: an empty
  // tensor sorted between two overlapping ones would hide them from each other).
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& c) { return a.b < c.b; });
  const Span* furthest = nullptr;
  for (const Span& s : spans) {
    if (s.e == s.b) continue;
    if (furthest && s.b < furthest->e) fail(path, "tensors " + q(furthest->name) + " and " + q(s.name) + " overlap in the data");
    if (!furthest || s.e > furthest->e) furthest = &s;
  }

  std::vector<char> buf;
  for (auto& [name, e] : entries) {
    Shape shape = e["shape"].get<Shape>();
    std::string dtype = e["dtype"];
    uint64_t b = e["data_offsets"][0], en = e["data_offsets"][1];
    buf.resize(en - b);
    in.seekg(std::streamoff(8 + n + b));
    in.read(buf.data(), std::streamsize(en - b));
    if (!in) fail(path, "tensor " + q(name) + ": read failed (truncated file?)");
    Tensor t(shape);
    int64_t cnt = t.numel();
    if (dtype == "F32") {
      std::memcpy(t.data(), buf.data(), size_t(cnt) * 4);
    } else if (dtype == "F64") {
      for (int64_t i = 0; i < cnt; ++i) {
        double d;
        std::memcpy(&d, buf.data() + 8 * i, 8);
        t[i] = float(d);
      }
    } else {
      for (int64_t i = 0; i < cnt; ++i) {
        uint16_t u;
        std::memcpy(&u, buf.data() + 2 * i, 2);
        if (dtype == "BF16") {
          uint32_t bits = uint32_t(u) << 16;
          std::memcpy(&t[i], &bits, 4);
        } else {
          t[i] = half_to_float(u);
        }
      }
    }
    out.tensors.emplace(name, std::move(t));
  }
  return out;
}

NamedTensorList checkpoint_tensors(Executor& ex) {
  NamedTensorList v;
  for (auto& p : ex.params()) v.push_back({p.name, p.value});
  for (size_t i = 0; i < ex.graph().nodes.size(); ++i)
    for (auto& nt : ex.node(int(i)).state_tensors(ex.context(int(i)))) v.push_back(nt);
  return v;
}

void save_checkpoint(Executor& ex, const std::string& path, int64_t step) {
  std::map<std::string, std::string> meta{{"format", "noiseflow-checkpoint-1"},
                                          {"step", std::to_string(step)},
                                          {"pipeline_hash", ex.graph().hash()},
                                          {"pipeline", ex.graph().name},
                                          {"seed", std::to_string(ex.graph().seed)},
                                          {"recipe", recipe_of(ex.graph()).dump()}};
  write_safetensors(path, checkpoint_tensors(ex), meta);
}

int64_t load_checkpoint(Executor& ex, const std::string& path, LoadMode mode, const std::string& prefix,
                        const std::string& scope, const std::string& file_scope, const std::string& ema_prefix,
                        bool allow_nonfinite) {
  SafeTensors st = read_safetensors(path);
  auto find = [&](const std::string& name) -> const Tensor* {
    auto it = st.tensors.find(name);
    if (it == st.tensors.end() && !prefix.empty() && name.rfind(prefix, 0) == 0)
      it = st.tensors.find(name.substr(prefix.size()));
    return it == st.tensors.end() ? nullptr : &it->second;
  };
  std::vector<std::pair<std::string, Tensor>> targets;
  if (mode == LoadMode::Resume) {
    targets = checkpoint_tensors(ex);
  } else {
    for (auto& p : ex.params())
      if (p.name.rfind(scope, 0) == 0) targets.push_back({p.name, p.value});
  }
  // Check everything before writing anything, so a mismatch leaves the run untouched.
  std::vector<std::pair<const Tensor*, Tensor>> copies;
  for (auto& [name, t] : targets) {
    const std::string in_file = scope.empty() ? name : file_scope + name.substr(scope.size());
    std::string want = mode == LoadMode::Ema ? ema_prefix + "." + in_file : in_file;
    const Tensor* src = find(want);
    if (!src) {
      std::string hint = mode == LoadMode::Ema && find(name) ? " (the file has raw weights but no EMA copies: load raw weights)" : "";
      fail(path, "has no tensor " + q(want) + " needed by the pipeline" + hint);
    }
    if (src->shape() != t.shape())
      fail(path, "tensor " + q(want) + " has shape " + graph::shape_str(src->shape()) + " but the pipeline needs " +
                     graph::shape_str(t.shape()));
    int64_t bad = 0;
    for (int64_t i = 0; i < src->numel(); ++i) bad += !std::isfinite((*src)[i]);
    if (bad && !allow_nonfinite)
      fail(path, "tensor " + q(want) + " holds " + std::to_string(bad) + " NaN or infinite value" +
                     (bad == 1 ? "" : "s") + " (of " + std::to_string(src->numel()) +
                     "): the run that wrote it diverged; load an earlier checkpoint (or allow_nonfinite to inspect it)");
    copies.push_back({src, t});
  }
  // The net fits; a model loaded for sampling or evaluation must also be used the way it was trained. (A scoped load is a
  // part of the pipeline, e.g. the classifier of a metric: the rest of the pipeline is not its recipe.)
  auto recipe = st.metadata.find("recipe");
  if (mode != LoadMode::Resume && scope.empty() && recipe != st.metadata.end()) {
    const Json recorded = parse_json(recipe->second).value_or(Json(Json::value_t::discarded));
    if (!recorded.is_object()) fail(path, "__metadata__ recipe is not a JSON object (of at most " +
                                          std::to_string(kMaxJsonDepth) + " levels)");
    const std::vector<std::string> problems = recipe_mismatches(ex.graph(), recorded);
    if (!problems.empty()) {
      std::string m = "the model was trained differently from how this pipeline uses it: ";
      for (size_t i = 0; i < problems.size(); ++i) m += (i ? "; " : "") + problems[i];
      fail(path, m);
    }
  }
  for (auto& [src, dst] : copies) dst.copy_from(*src);
  int64_t step = 0;
  auto it = st.metadata.find("step");
  if (it != st.metadata.end()) {
    try {
      step = std::stoll(it->second);
    } catch (...) {
      fail(path, "__metadata__ step " + q(it->second) + " is not a number");
    }
  }
  if (mode == LoadMode::Resume) {
    auto h = st.metadata.find("pipeline_hash");
    if (h != st.metadata.end() && h->second != ex.graph().hash())
      fail(path, "was written by a different pipeline (hash " + h->second + ", this one " + ex.graph().hash() +
                     "): resume needs the same nodes and attributes");
  }
  return step;
}

Json recipe_of(const graph::Graph& g) {
  Json r = Json::object();
  std::set<std::string> ambiguous;
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (const auto& ra : gn.schema->recipe_attrs()) {
      if (!ra.defines || !gn.attrs.contains(ra.attr)) continue;
      const Json& v = gn.attrs[ra.attr];
      if (!r.contains(ra.key)) r[ra.key] = v;
      else if (r[ra.key] != v) ambiguous.insert(ra.key);
    }
  }
  for (const auto& k : ambiguous) r.erase(k);
  return r;
}

namespace {

// The top-level param an attribute was given by ("$name" or "${name}" in the pipeline file), if any.
std::optional<std::string> param_of(const graph::Graph& g, const graph::GraphNode& gn, const std::string& attr) {
  if (gn.file != g.file) return std::nullopt;
  std::ifstream f(g.file);
  const Json raw = Json::parse(f, nullptr, false);
  if (!raw.is_object() || !raw.contains("nodes") || !raw["nodes"].is_object()) return std::nullopt;
  const Json& nodes = raw["nodes"];
  if (!nodes.contains(gn.id) || !nodes[gn.id].is_object() || !nodes[gn.id].contains("attrs")) return std::nullopt;
  const Json& attrs = nodes[gn.id]["attrs"];
  if (!attrs.is_object() || !attrs.contains(attr) || !attrs[attr].is_string()) return std::nullopt;
  std::string v = attrs[attr];
  if (v.size() > 3 && v.rfind("${", 0) == 0 && v.back() == '}') v = v.substr(2, v.size() - 3);
  else if (v.size() > 1 && v[0] == '$') v = v.substr(1);
  else return std::nullopt;
  if (!g.params.is_object() || !g.params.contains(v)) return std::nullopt;
  return v;
}

}  // namespace

std::vector<std::string> recipe_mismatches(const graph::Graph& g, const Json& recorded) {
  std::vector<std::string> out;
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (const auto& ra : gn.schema->recipe_attrs()) {
      if (!recorded.contains(ra.key) || !gn.attrs.contains(ra.attr)) continue;
      const Json& want = recorded[ra.key];
      const Json& have = gn.attrs[ra.attr];
      // Numbers compare as numbers (T may be 1000 or 1000.0 in a file).
      if (want == have || (want.is_number() && have.is_number() && want.get<double>() == have.get<double>())) continue;
      std::string m = "trained with " + ra.key + " " + want.dump() + ", but node " + q(gn.id) + " attr " + q(ra.attr) +
                      " is " + have.dump();
      const std::string value = want.is_string() ? want.get<std::string>() : want.dump();
      if (auto p = param_of(g, gn, ra.attr)) m += " (run with --set " + *p + "=" + value + ")";
      else m += " (set it to " + want.dump() + " in " + gn.file + ")";
      out.push_back(m);
    }
  }
  return out;
}

}  // namespace noiseflow::runtime
