// Node types from a plugin library: `noiseflow --plugin LIB run ...`.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <sys/wait.h>

#include "noiseflow/noiseflow.hpp"
#include "runtime/checkpoint.hpp"
#include "tests/runtime/export/proto_reader.hpp"
#include "tests/test_util.hpp"

namespace {
std::pair<int, std::string> sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}
}  // namespace

TEST_CASE("a plugin library adds node types to the CLI") {
  noiseflow::test::TempDir dir;
  const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
  const std::string pipeline = dir.write("p.json", R"({
    "noiseflow": 1,
    "nodes": {
      "c":   { "op": "tensor.constant", "attrs": { "values": [1, -2, 3] } },
      "neg": { "op": "plugin.negate", "inputs": { "x": "c" } }
    }
  })");
  auto listed = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN " nodes");
  CHECK(listed.first == 0);
  CHECK(listed.second.find("plugin.negate — y = -x (a node from a plugin library)") != std::string::npos);
  auto ok = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN " check " + pipeline);
  CHECK(ok.first == 0);
  CHECK(ok.second.find("c.y -> neg.x  [3]") != std::string::npos);
  // Without the plugin the op is unknown.
  auto missing = sh(exe + " check " + pipeline);
  CHECK(missing.first == 1);
  CHECK(missing.second.find("node \"neg\", op: unknown node type \"plugin.negate\"") != std::string::npos);
  // A library that cannot be loaded is a clear error.
  auto bad = sh(exe + " --plugin " + dir.file("nope.so") + " nodes");
  CHECK(bad.first == 1);
  CHECK(bad.second.find(dir.file("nope.so") + ": cannot load plugin:") != std::string::npos);
}

TEST_CASE("a plugin's node type exports to ONNX with its own static onnx()") {
  noiseflow::test::TempDir dir;
  const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
  const std::string net = dir.write("neg_net.json", R"({
    "noiseflow": 1,
    "inputs": { "x": { "shape": [2, 3] } },
    "outputs": { "out": "neg" },
    "nodes": { "neg": { "op": "plugin.negate", "inputs": { "x": "x" } } }
  })");
  // The net has no parameters: any checkpoint will do.
  noiseflow::runtime::Tensor unused({1});
  unused.fill(0.f);
  noiseflow::runtime::write_safetensors(dir.file("ck.safetensors"), {{"unused", unused}}, {});
  const std::string args = " export onnx " + dir.file("ck.safetensors") + " -o " + dir.file("neg.onnx") + " --net " +
                           net + " --weights raw";
  auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN + args);
  CHECK(r.first == 0);
  CHECK(r.second.find("wrote onnx: " + dir.file("neg.onnx") + " (opset 17, 1 nodes") != std::string::npos);
  const std::string bytes = noiseflow::test::read_bytes(dir.file("neg.onnx"));
  const noiseflow::test::ProtoMessage graph = noiseflow::test::ProtoMessage(bytes).message(7);
  const auto nodes = graph.messages(1);
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].str(4) == "Neg");  // op_type
  CHECK(nodes[0].str(3) == "neg");  // name
  CHECK(nodes[0].strings(1) == std::vector<std::string>{"x"});
  CHECK(nodes[0].strings(2) == std::vector<std::string>{"eps"});
  // Without the plugin the op is unknown.
  auto missing = sh(exe + args);
  CHECK(missing.first == 1);
  CHECK(missing.second.find("unknown node type \"plugin.negate\"") != std::string::npos);
}

// The plugin contract (docs/NOTES.md, "Plugins and embedding"): a library must register at least one
// node type, none known already; each way to break it is an error naming the file.
TEST_CASE("plugins that break the contract: errors naming the file, the op and both libraries") {
  const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
  noiseflow::test::TempDir dir;

  SUBCASE("a missing file") {
    auto r = sh(exe + " --plugin " + dir.file("libmissing.so") + " nodes");
    CHECK(r.first == 1);
    CHECK(r.second == std::string("\n") + dir.file("libmissing.so") + ": cannot load plugin: no such file\n");
  }
  SUBCASE("a file that is not a shared library") {
    const std::string text = dir.write("libtext.so", "not a library\n");
    auto r = sh(exe + " --plugin " + text + " nodes");
    CHECK(r.first == 1);
    CHECK(r.second.find(text + ": cannot load plugin: " + text) != std::string::npos);  // dlopen's reason
  }
  SUBCASE("a library without node types") {
    auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN_EMPTY " nodes");
    CHECK(r.first == 1);
    CHECK(r.second == "\n" NOISEFLOW_TEST_PLUGIN_EMPTY ": cannot load plugin: it registers no node types (a plugin "
                      "registers each of its node types with NOISEFLOW_REGISTER_NODE, which runs when the library is "
                      "loaded)\n");
  }
  SUBCASE("a node type registered by two libraries") {
    auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN " --plugin " NOISEFLOW_TEST_PLUGIN_COPY " nodes");
    CHECK(r.first == 1);
    CHECK(r.second == "\n" NOISEFLOW_TEST_PLUGIN_COPY ": cannot load plugin: node type \"plugin.negate\" is "
                      "registered twice: by " NOISEFLOW_TEST_PLUGIN " and by " NOISEFLOW_TEST_PLUGIN_COPY "\n");
  }
  SUBCASE("a node type named like a built-in one") {
    auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN_CLASH " nodes");
    CHECK(r.first == 1);
    CHECK(r.second == "\n" NOISEFLOW_TEST_PLUGIN_CLASH ": cannot load plugin: node type \"tensor.constant\" is "
                      "registered twice: by the program itself (built in) and by " NOISEFLOW_TEST_PLUGIN_CLASH "\n");
  }
  SUBCASE("a schema that throws while the library loads") {
    auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN_THROWING " nodes");
    CHECK(r.first == 1);
    CHECK(r.second == "\n" NOISEFLOW_TEST_PLUGIN_THROWING ": cannot load plugin: a node type's registration "
                      "failed: plugin.throwing: this schema cannot be built\n");
  }
  SUBCASE("the same file twice loads it once") {
    auto r = sh(exe + " --plugin " NOISEFLOW_TEST_PLUGIN " --plugin " NOISEFLOW_TEST_PLUGIN " nodes");
    CHECK(r.first == 0);
    CHECK(r.second.find("plugin.negate — ") != std::string::npos);
  }
}

TEST_CASE("load_plugin: a library that fails leaves the registry as it was, with a stable code") {
  auto& reg = noiseflow::runtime::Registry::global();
  const size_t before = reg.size();
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second attempt repeats the first outcome
    CAPTURE(attempt);
    try {
      noiseflow::load_plugin(NOISEFLOW_TEST_PLUGIN_CLASH);
      FAIL("no error");
    } catch (const noiseflow::RunError& e) {
      CHECK(e.code() == "plugin_duplicate_node");
      CHECK(e.phase == "load");
      CHECK(e.diagnostic.file == NOISEFLOW_TEST_PLUGIN_CLASH);
    }
    // plugin.clash_extra registered before the clash and was removed with it; the built-in stays.
    CHECK(reg.find("plugin.clash_extra") == nullptr);
    CHECK(reg.size() == before);
    REQUIRE(reg.find("tensor.constant") != nullptr);
    CHECK(reg.origin("tensor.constant").empty());
  }
  for (const char* lib : {NOISEFLOW_TEST_PLUGIN_EMPTY, NOISEFLOW_TEST_PLUGIN_THROWING}) {
    CAPTURE(lib);
    try {
      noiseflow::load_plugin(lib);
      FAIL("no error");
    } catch (const noiseflow::RunError& e) {
      CHECK(e.code() == (lib == std::string(NOISEFLOW_TEST_PLUGIN_EMPTY) ? "plugin_no_nodes"
                                                                          : "plugin_registration_failed"));
    }
    CHECK(reg.size() == before);
  }
}
