// tests/tools/test_docs.cpp — generated documentation kept in step with the code.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "tests/test_util.hpp"

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
