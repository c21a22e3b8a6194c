// tests/tools/run_cli.hpp — running the built `noiseflow` command from a test, as a user would.
#pragma once

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/test_util.hpp"

namespace noiseflow::test {

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs `noiseflow ARGS` from the repository root; stdout and stderr apart.
inline Result run_cli(const std::string& args) {
  const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
  // tests/CMakeLists.txt does not make test_tools depend on the CLI: build it too.
  REQUIRE_MESSAGE(std::filesystem::exists(exe), "build the noiseflow target first: ", exe);
  TempDir dir;
  const std::string err_file = (dir.path / "stderr").string();
  const std::string cmd = "cd '" NOISEFLOW_SOURCE_DIR "' && OMP_WAIT_POLICY=passive '" + exe + "' " + args + " 2>'" +
                          err_file + "'";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  return r;
}

}  // namespace noiseflow::test
