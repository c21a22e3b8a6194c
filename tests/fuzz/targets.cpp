// tests/fuzz/targets.cpp — the fuzz entry points of targets.hpp.
//
// Each target writes its input to files in a fresh folder under a per-process scratch folder
// (/dev/shm when writable) and runs the loader exactly as a pipeline would: the pipeline loader with
// the node registry, read_safetensors and load_checkpoint on a planned executor, and the data nodes
// made and planned by NodeHarness (the executor's own instance code), then run for a tick or two.
// Expected errors are caught here and held to their contract; anything else escapes.
#include "tests/fuzz/targets.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include "graph/pipeline.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/harness.hpp"
#include "runtime/node.hpp"
#include "tools/studio/comfy_prompt.hpp"

namespace noiseflow::fuzz {
namespace {

namespace fs = std::filesystem;
using runtime::Json;

// ---- scratch files ----------------------------------------------------------------------------------

/// Reports a broken contract (an error message that does not say which file, ...) and aborts, so that
/// libFuzzer keeps the input and the replay fails.
[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "noiseflow fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string& scratch_path() {
  static std::string path;
  return path;
}

void remove_scratch() {
  std::error_code ec;
  if (!scratch_path().empty()) fs::remove_all(scratch_path(), ec);
}

/// This process's scratch folder, made on first use and removed at exit.
const fs::path& scratch() {
  static const fs::path dir = [] {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
                              ? fs::path("/dev/shm")
                              : fs::temp_directory_path();
    fs::path d = base / ("noiseflow-fuzz-" + std::to_string(::getpid()));
    fs::remove_all(d, ec);  // left over from an earlier process with the same pid
    fs::create_directories(d);
    scratch_path() = d.string();
    std::atexit(remove_scratch);
    return d;
  }();
  return dir;
}

/// An empty folder `name` in the scratch folder.
fs::path fresh_folder(const std::string& name) {
  const fs::path d = scratch() / name;
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) finding("cannot write the scratch file " + path.string());
}

/// The input cut at kNextFile into at most `max` files (the last keeps any further separators).
std::vector<std::string_view> split_files(const uint8_t* data, size_t size, size_t max) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> files;
  while (files.size() + 1 < max) {
    const size_t at = rest.find(kNextFile);
    if (at == std::string_view::npos) break;
    files.push_back(rest.substr(0, at));
    rest.remove_prefix(at + kNextFile.size());
  }
  files.push_back(rest);
  return files;
}

/// With NOISEFLOW_FUZZ_VERBOSE set, prints what became of an input (to check that seeds get deep).
void note(const char* target, const std::string& what) {
  static const bool verbose = std::getenv("NOISEFLOW_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "%s: %s\n", target, what.c_str());
}

/// A loader's error must say which file (or folder) it is about.
void expect_mentions(const std::string& message, const std::string& path, const char* target) {
  if (message.find(path) == std::string::npos)
    finding(std::string(target) + ": the error does not name " + path + ": " + message);
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// ---- pipeline ---------------------------------------------------------------------------------------

graph::LoadOptions registry_options() {
  graph::LoadOptions o;
  o.schemas = &runtime::Registry::global();
  return o;
}

/// Every diagnostic of a GraphError carries a file, a code and a message.
void check_diagnostics(const graph::GraphError& e, const char* what) {
  if (e.diagnostics.empty()) finding(std::string(what) + ": a GraphError without diagnostics: " + e.what());
  for (auto& d : e.diagnostics)
    if (d.file.empty() || d.code.empty() || d.message.empty())
      finding(std::string(what) + ": a diagnostic without file, code or message: " + d.str());
}

// ---- safetensors ------------------------------------------------------------------------------------

/// The executor of tests/fuzz/checkpoint.json (linear layer, Adam, EMA), planned once.
runtime::Executor& checkpoint_executor() {
  static const graph::Graph g = graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/tests/fuzz/checkpoint.json", registry_options());
  static runtime::Executor ex(g, runtime::ExecutorOptions{.threads = 1});
  return ex;
}

// ---- data nodes -------------------------------------------------------------------------------------

/// Plans a data node on `attrs` and runs `ticks` forward ticks; a NodeError must name `path`
/// (or, for data.idx, one of two paths).
void run_data_node(const char* target, const std::string& op, const Json& attrs, int64_t ticks,
                   const std::string& path, const std::string& other_path = {}) {
  try {
    runtime::NodeHarness h(op, attrs, {}, /*seed=*/1, ticks);
    for (int64_t k = 0; k < ticks; ++k) h.forward(k);
    note(target, "ok");
  } catch (const runtime::NodeError& e) {
    const std::string msg = e.what();
    note(target, e.field + ": " + msg);
    if (!other_path.empty() && msg.find(other_path) != std::string::npos) return;
    expect_mentions(msg, path, target);
  }
}

}  // namespace

int fuzz_pipeline(const uint8_t* data, size_t size) {
  static const std::string path = NOISEFLOW_SOURCE_DIR "/pipelines/fuzz_input.json";
  static const graph::LoadOptions options = registry_options();
  const std::string text(reinterpret_cast<const char*>(data), size);
  graph::Graph g;
  try {
    g = graph::load_pipeline_text(text, path, options);
  } catch (const graph::GraphError& e) {
    check_diagnostics(e, "pipeline");
    note("pipeline", e.what());
    return 0;
  }
  // What `noiseflow check` prints: every edge and its shape, the parameter count; and the dot text and hash.
  std::string out;
  for (int i : g.order) {
    const graph::GraphNode& n = g.nodes[size_t(i)];
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (n.inputs[k])
        out += g.ref_name(*n.inputs[k]) + " -> " + n.id + "." + n.schema->inputs()[k].name + " " +
               graph::shape_str(g.shape(*n.inputs[k])) + "\n";
  }
  out += std::to_string(g.param_count()) + g.dot() + g.hash();
  // The resolved pipeline is itself loadable (graph/pipeline.cpp).
  try {
    graph::load_pipeline_text(g.resolved.dump(), path, options);
  } catch (const graph::GraphError& e) {
    finding("pipeline: the resolved pipeline does not load: " + std::string(e.what()));
  }
  note("pipeline", "ok: " + std::to_string(g.nodes.size()) + " nodes");
  (void)out;
  return 0;
}

int fuzz_comfy_prompt(const uint8_t* data, size_t size) {
  static const std::string path = NOISEFLOW_SOURCE_DIR "/pipelines/prompt.json";
  static const graph::LoadOptions options = registry_options();
  const Json body = Json::parse(std::string(reinterpret_cast<const char*>(data), size), nullptr, false);
  if (body.is_discarded()) return note("comfy_prompt", "not JSON"), 0;
  // A POST /prompt body ({"prompt": ...}) or the prompt alone.
  const Json prompt = body.is_object() && body.contains("prompt") ? body["prompt"] : body;
  const studio::ApiPrompt t = studio::translate_api_prompt(prompt, *options.schemas);
  auto check_node_errors = [&](const Json& ne, const char* stage) {
    if (!ne.is_object()) finding(std::string("comfy_prompt: ") + stage + ": node_errors is no object");
    for (auto& [id, entry] : ne.items()) {
      if (!prompt.is_object() || !prompt.contains(id))
        finding(std::string("comfy_prompt: ") + stage + ": node_errors names " + id + ", which the prompt does not have");
      if (!entry.contains("errors") || !entry["errors"].is_array() || entry["errors"].empty() ||
          !entry.contains("dependent_outputs") || !entry.contains("class_type"))
        finding(std::string("comfy_prompt: ") + stage + ": a node_errors entry out of ComfyUI's shape: " + entry.dump());
      for (auto& e : entry["errors"])
        if (!e.contains("type") || !e["type"].is_string() || e["type"].get<std::string>().empty() || !e.contains("message") ||
            !e["message"].is_string() || e["message"].get<std::string>().empty() || !e.contains("details") ||
            !e.contains("extra_info"))
          finding(std::string("comfy_prompt: ") + stage + ": an error out of ComfyUI's shape: " + e.dump());
    }
  };
  if (!t.error.is_null() || !t.node_errors.empty()) {
    if (t.error.is_null() || !t.doc.is_null()) finding("comfy_prompt: errors without a top-level error, or with a document");
    if (prompt.is_object() && !prompt.empty() && t.node_errors.empty())
      finding("comfy_prompt: a prompt with nodes refused without node_errors");
    check_node_errors(t.node_errors, "translation");
    return note("comfy_prompt", "refused: " + t.error.dump()), 0;
  }
  if (!t.doc.is_object() || !t.doc.contains("nodes")) finding("comfy_prompt: no document from an accepted prompt");
  try {
    graph::load_pipeline_text(t.doc.dump(), path, options);
  } catch (const graph::GraphError& e) {
    check_diagnostics(e, "comfy_prompt");
    check_node_errors(studio::node_errors(e.diagnostics, t.doc), "check");
    return note("comfy_prompt", e.what()), 0;
  }
  note("comfy_prompt", "ok: " + std::to_string(t.doc["nodes"].size()) + " nodes");
  return 0;
}

int fuzz_safetensors(const uint8_t* data, size_t size) {
  runtime::Executor& ex = checkpoint_executor();
  const std::string path = (fresh_folder("safetensors") / "fuzz.safetensors").string();
  write_file(path, {reinterpret_cast<const char*>(data), size});
  auto expect_path_first = [&](const runtime::CheckpointError& e) {
    if (std::string(e.what()).rfind(path + ": ", 0) != 0)
      finding("safetensors: the error does not start with the file's path: " + std::string(e.what()));
  };
  try {
    runtime::read_safetensors(path);
  } catch (const runtime::CheckpointError& e) {
    expect_path_first(e);
    note("safetensors", e.what());
    return 0;
  }
  // A file that reads: into the pipeline as a resume, as raw weights without the "fc." prefix, as EMA weights.
  const auto load = [&](runtime::LoadMode mode, const std::string& prefix) {
    try {
      runtime::load_checkpoint(ex, path, {.mode = mode, .prefix = prefix});
      note("safetensors", "loaded");
    } catch (const runtime::CheckpointError& e) {
      expect_path_first(e);
      note("safetensors", e.what());
    }
  };
  load(runtime::LoadMode::Resume, "");
  load(runtime::LoadMode::Weights, "fc.");
  load(runtime::LoadMode::Ema, "");
  return 0;
}

int fuzz_idx(const uint8_t* data, size_t size) {
  const auto files = split_files(data, size, 2);
  const fs::path dir = fresh_folder("idx");
  const std::string images = (dir / "images.idx").string(), labels = files.size() > 1 ? (dir / "labels.idx").string() : "";
  write_file(images, files[0]);
  if (!labels.empty()) write_file(labels, files[1]);
  // The node's image size follows the header when it declares small images (so the fuzzer gets past the
  // size check to the conversion), else 28x28 grey.
  int64_t h = 28, w = 28, c = 1;
  const auto* b = reinterpret_cast<const uint8_t*>(files[0].data());
  const size_t n = files[0].size();
  if (n >= 16 && (b[3] == 3 || b[3] == 4)) {
    const int64_t fh = be32(b + 8), fw = be32(b + 12), fc = b[3] == 4 && n >= 20 ? be32(b + 16) : 1;
    if (fh >= 1 && fh <= 64 && fw >= 1 && fw <= 64 && fc >= 1 && fc <= 4) h = fh, w = fw, c = fc;
  }
  const Json attrs{{"images", images}, {"labels", labels}, {"height", h}, {"width", w}, {"channels", c}, {"batch", 3}};
  run_data_node("idx", "data.idx", attrs, 2, images, labels);
  return 0;
}

int fuzz_png_folder(const uint8_t* data, size_t size) {
  const auto files = split_files(data, size, 4);
  const fs::path dir = fresh_folder("png");
  for (size_t k = 0; k < files.size(); ++k) write_file(dir / ("image" + std::to_string(k) + ".png"), files[k]);
  // Grey at the first image's own size when its IHDR declares a small one (so the fuzzer gets past the
  // size check), else 8x8; then RGB, resized to 5x7. (Read here from the bytes: stb_image's own info
  // call would run every decoder it has on data the loader refuses as not a PNG.)
  int64_t w = 8, h = 8;
  const auto* b = reinterpret_cast<const uint8_t*>(files[0].data());
  if (files[0].size() >= 24 && files[0].substr(12, 4) == "IHDR") {
    const int64_t iw = be32(b + 16), ih = be32(b + 20);
    if (iw >= 1 && iw <= 64 && ih >= 1 && ih <= 64) w = iw, h = ih;
  }
  const std::string folder = dir.string();
  run_data_node("png_folder", "data.images", Json{{"dir", folder}, {"channels", 1}, {"height", h}, {"width", w}, {"batch", 2}},
                1, folder);
  run_data_node("png_folder", "data.images",
                Json{{"dir", folder}, {"channels", 3}, {"height", 5}, {"width", 7}, {"resize", true}, {"batch", 2}}, 1,
                folder);
  return 0;
}

int fuzz_mnist_json(const uint8_t* data, size_t size) {
  const auto files = split_files(data, size, 3);
  const fs::path dir = fresh_folder("mnist");
  std::vector<int64_t> digits;
  for (size_t k = 0; k < files.size(); ++k) {
    write_file(dir / (std::to_string(k) + ".json"), files[k]);
    digits.push_back(int64_t(k));
  }
  const std::string folder = dir.string();
  run_data_node("mnist_json", "data.mnist", Json{{"dir", folder}, {"digits", digits}, {"batch", 4}}, 1, folder);
  return 0;
}

const std::vector<TargetInfo>& targets() {
  static const std::vector<TargetInfo> all{{"pipeline", fuzz_pipeline},
                                           {"safetensors", fuzz_safetensors},
                                           {"idx", fuzz_idx},
                                           {"png_folder", fuzz_png_folder},
                                           {"mnist_json", fuzz_mnist_json},
                                           {"comfy_prompt", fuzz_comfy_prompt}};
  return all;
}

}  // namespace noiseflow::fuzz
