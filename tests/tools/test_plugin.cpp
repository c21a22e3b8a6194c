// Node types from a plugin library: `noiseflow --plugin LIB run ...`.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <sys/wait.h>

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
