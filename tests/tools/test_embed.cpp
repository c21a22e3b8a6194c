// tests/tools/test_embed.cpp — the embedding example of tools/examples/embed/: a toy checkpoint trained
// with the CLI, then sampled by the example program through <noiseflow/noiseflow.hpp>.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <regex>
#include <string>

#include "tests/test_util.hpp"

#ifdef NOISEFLOW_EMBED_EXAMPLE

namespace {

using noiseflow::test::TempDir;

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs a command line from the repository root; stdout and stderr apart.
Result run(const std::string& cmd, const TempDir& dir) {
  const std::string err_file = dir.file("stderr");
  Result r;
  FILE* p = popen(("cd '" NOISEFLOW_SOURCE_DIR "' && OMP_WAIT_POLICY=passive " + cmd + " 2>'" + err_file + "'").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.err = noiseflow::test::read_bytes(err_file);
  return r;
}

// The number after `key: ` on a line of its own.
double value_of(const std::string& out, const std::string& key) {
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_search(out, m, std::regex("(^|\n)" + key + ": ([^\n]*)\n")), "no line ", key, ": in ", out);
  return std::stod(m[2].str());
}

}  // namespace

TEST_CASE("embedding example: samples a toy checkpoint with n and the seed set through the API") {
  TempDir dir;
  const std::string ckpt = dir.file("toy.safetensors");
  auto train = run("'" NOISEFLOW_BINARY_DIR "/tools/noiseflow' run pipelines/examples/toy2d_train.json -q --set steps=50"
                   " --set checkpoint=" + ckpt + " --run-folder " + dir.file("run"),
                   dir);
  INFO("stderr: ", train.err);
  REQUIRE(train.status == 0);

  const std::string embed = "'" NOISEFLOW_EMBED_EXAMPLE "' " + ckpt;
  auto r = run(embed + " --n 37 --seed 3", dir);
  INFO("stdout: ", r.out, "\nstderr: ", r.err);
  REQUIRE(r.status == 0);
  // A progress line per tick (toy2d_sample.json runs T = 100 ticks), in order.
  size_t at = 0;
  for (int tick = 1; tick <= 100; ++tick) {
    CAPTURE(tick);
    at = r.out.find("tick " + std::to_string(tick) + "/100 (", at);
    REQUIRE(at != std::string::npos);
  }
  CHECK(r.out.find("samples: 37 of shape [37, 2]\n") != std::string::npos);
  const double mean = value_of(r.out, "mean"), std_dev = value_of(r.out, "std");
  CHECK(std::isfinite(mean));
  CHECK(std::isfinite(std_dev));
  CHECK(std_dev > 0.0);

  // The seed reaches the run: the same seed gives the same samples, another seed others.
  auto again = run(embed + " --n 37 --seed 3", dir);
  REQUIRE(again.status == 0);
  CHECK(value_of(again.out, "mean") == mean);
  auto other = run(embed + " --n 37 --seed 4", dir);
  REQUIRE(other.status == 0);
  CHECK(value_of(other.out, "mean") != mean);

  // Errors come back as the API's exceptions: a missing checkpoint names the file and how to make one.
  auto missing = run(embed.substr(0, embed.size() - ckpt.size()) + dir.file("none.safetensors"), dir);
  CHECK(missing.status == 1);
  CHECK(missing.err.find("no checkpoint at " + dir.file("none.safetensors")) != std::string::npos);
  auto usage = run("'" NOISEFLOW_EMBED_EXAMPLE "' --n 3", dir);
  CHECK(usage.status == 2);
  CHECK(usage.err.find("usage: ") != std::string::npos);
}

#endif  // NOISEFLOW_EMBED_EXAMPLE
