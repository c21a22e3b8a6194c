// runtime/safetensors.cpp — reading and writing safetensors files (runtime/safetensors.hpp).
#include "runtime/safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>
#include <vector>

#include "runtime/atomic_write.hpp"

namespace noiseflow::runtime {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw CheckpointError(path + ": " + msg); }

std::string q(const std::string& s) { return "\"" + s + "\""; }

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

std::optional<Json> parse_bounded_json(const std::string& text,
                                       const std::function<void(int, const std::string&)>& on_key) {
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
  std::optional<Json> parsed = parse_bounded_json(h, [&](int depth, const std::string& key) {
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

}  // namespace noiseflow::runtime
