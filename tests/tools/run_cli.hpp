// tests/tools/run_cli.hpp — running the built `noiseflow` command from a test, as a user would.
#pragma once

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <chrono>
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
  double seconds = 0;  ///< wall time of the command
};

/// Runs a shell command line from the repository root, OpenMP threads passive; stdout and stderr apart.
inline Result run_shell(const std::string& line) {
  TempDir dir;
  const std::string err_file = (dir.path / "stderr").string();
  const std::string cmd = "cd '" NOISEFLOW_SOURCE_DIR "' && OMP_WAIT_POLICY=passive " + line + " 2>'" + err_file + "'";
  Result r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = read_bytes(err_file);
  return r;
}

/// Runs the built `noiseflow ARGS` from the repository root.
inline Result run_cli(const std::string& args) {
  const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
  // tests/CMakeLists.txt does not make test_tools depend on the CLI: build it too.
  REQUIRE_MESSAGE(std::filesystem::exists(exe), "build the noiseflow target first: ", exe);
  return run_shell("'" + exe + "' " + args);
}

}  // namespace noiseflow::test
