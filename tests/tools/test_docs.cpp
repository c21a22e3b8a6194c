// tests/tools/test_docs.cpp — generated documentation kept in step with the code.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

namespace {

// Line `n` (1-based) of `text`, without its end of line; empty past the end.
std::string line_at(const std::string& text, size_t n) {
  std::istringstream in(text);
  std::string line;
  for (size_t i = 0; i < n; ++i)
    if (!std::getline(in, line)) return "";
  return line;
}

}  // namespace

TEST_CASE("docs/nodes.md is what noiseflow nodes --markdown prints") {
  std::string generated;
  FILE* p = popen("OMP_WAIT_POLICY=passive '" NOISEFLOW_BINARY_DIR "/tools/noiseflow' nodes --markdown", "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) generated.append(buf, n);
  const int st = pclose(p);
  REQUIRE((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  const std::string committed = noiseflow::test::read_bytes(NOISEFLOW_SOURCE_DIR "/docs/nodes.md");
  if (generated == committed) return;
  // Where they part, to say what changed.
  size_t first = 0, line = 1;
  while (first < generated.size() && first < committed.size() && generated[first] == committed[first])
    if (generated[first++] == '\n') ++line;
  FAIL("docs/nodes.md is stale (a schema changed): regenerate it from the repository root with\n"
       "  build/tools/noiseflow nodes --markdown > docs/nodes.md\n"
       "first difference at line ", line, ":\n  docs/nodes.md: ", line_at(committed, line),
       "\n  generated:     ", line_at(generated, line));
}

// docs/authoring.md: every ```json block follows a line `<!-- file: pipelines/authoring/NAME.json -->`. The
// blocks are written into a copy of the repository's pipelines/ folder at those paths (so their includes
// of ../nets/... resolve as in a reader's checkout) and each must pass `noiseflow check`.
TEST_CASE("docs/authoring.md: every JSON file of the tutorial passes noiseflow check") {
  namespace fs = std::filesystem;
  const std::string doc = noiseflow::test::read_bytes(NOISEFLOW_SOURCE_DIR "/docs/authoring.md");
  const std::string marker = "<!-- file: ", fence = "```json\n";
  struct Block {
    std::string path, text;
    size_t line;
  };
  std::vector<Block> blocks;
  size_t json_fences = 0;
  for (size_t at = doc.find(fence); at != std::string::npos; at = doc.find(fence, at + 1)) ++json_fences;
  for (size_t at = doc.find(marker); at != std::string::npos; at = doc.find(marker, at + 1)) {
    const size_t end = doc.find(" -->\n", at);
    REQUIRE(end != std::string::npos);
    const std::string path = doc.substr(at + marker.size(), end - at - marker.size());
    const size_t open = end + 5;
    REQUIRE_MESSAGE(doc.compare(open, fence.size(), fence) == 0, "no ```json block right after the marker of ", path);
    const size_t body = open + fence.size(), close = doc.find("\n```", body);
    REQUIRE(close != std::string::npos);
    const size_t line = size_t(std::count(doc.begin(), doc.begin() + long(at), '\n')) + 1;
    blocks.push_back({path, doc.substr(body, close - body + 1), line});
  }
  CHECK(blocks.size() >= 4);
  CHECK_MESSAGE(blocks.size() == json_fences, "every ```json block needs a <!-- file: PATH --> line before it");

  noiseflow::test::TempDir dir;
  fs::copy(NOISEFLOW_SOURCE_DIR "/pipelines", dir.path / "pipelines", fs::copy_options::recursive);
  for (const Block& b : blocks) {
    CAPTURE(b.path);
    REQUIRE(b.path.rfind("pipelines/", 0) == 0);
    fs::create_directories((dir.path / b.path).parent_path());
    noiseflow::test::write_bytes((dir.path / b.path).string(), b.text);
  }
  for (const Block& b : blocks) {
    const auto r = noiseflow::test::run_cli("check " + (dir.path / b.path).string());
    INFO("docs/authoring.md line ", b.line, ": ", b.path, "\n", r.err);
    CHECK(r.status == 0);
  }
}
