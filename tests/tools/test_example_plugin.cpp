// tests/tools/test_example_plugin.cpp — the example plugin of tools/examples/plugin/ loaded by the CLI:
// example.schedule_sigmoid trains the toy model and feeds a DDIM sampler, its alpha_bar is the closed form
// of Jabri et al. 2022 recomputed here in double, and bad attributes are errors naming them.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/checkpoint.hpp"
#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

#ifdef NOISEFLOW_EXAMPLE_PLUGIN

namespace {

using noiseflow::test::TempDir;

using noiseflow::test::Result;

// Runs `noiseflow --plugin EXAMPLE ARGS` from the repository root; stdout and stderr apart.
Result run_with_plugin(const std::string& args, const TempDir&) {
  return noiseflow::test::run_shell("'" NOISEFLOW_BINARY_DIR "/tools/noiseflow' --plugin '" NOISEFLOW_EXAMPLE_PLUGIN "' " +
                                    args);
}

// g(u) of the sigmoid schedule: alpha_bar at u = (t + 1) / T before any clipping.
double sigmoid_gamma(double u, double start, double end, double tau) {
  const auto s = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  return (s(end / tau) - s((u * (end - start) + start) / tau)) / (s(end / tau) - s(start / tau));
}

// The losses of a run folder's log.csv (tick,loss,...).
std::vector<double> logged_losses(const std::string& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::vector<double> losses;
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string tick, loss;
    std::getline(row, tick, ',');
    std::getline(row, loss, ',');
    losses.push_back(std::stod(loss));
  }
  return losses;
}

}  // namespace

TEST_CASE("example plugin: toy training and DDIM sampling on example.schedule_sigmoid, alpha_bar in closed form") {
  TempDir dir;
  const int64_t T = 100, ticks = 20, n = 64;
  const double start = -3, end = 3, tau = 0.9, max_beta = 0.999;  // train_sigmoid.json's, tau set below

  // (a) Training runs, every logged loss finite.
  auto train = run_with_plugin("run tools/examples/plugin/train_sigmoid.json -q --set steps=" + std::to_string(ticks) +
                                   " --set tau=0.9 --set checkpoint=" + dir.file("ckpt.safetensors") +
                                   " --set alpha_bar=" + dir.file("abar.safetensors") +
                                   " --run-folder " + dir.file("train"),
                               dir);
  INFO("stderr: ", train.err);
  REQUIRE(train.status == 0);
  const auto losses = logged_losses(dir.file("train/log.csv"));
  CHECK(losses.size() == size_t(ticks));
  for (double l : losses) CHECK(std::isfinite(l));

  // (b) alpha_bar_t = g((t + 1) / T) wherever beta is not clipped, which is every step but the last (g(1) = 0:
  // beta_{T-1} = max_beta).
  const auto file = noiseflow::runtime::read_safetensors(dir.file("abar.safetensors"));
  const auto& abar = file.tensors.at("alpha_bar");
  REQUIRE(abar.shape() == noiseflow::graph::Shape{T});
  for (int64_t t = 0; t < T; ++t) {
    CAPTURE(t);
    double want = sigmoid_gamma(double(t + 1) / double(T), start, end, tau);
    if (t + 1 < T) {
      // The closed form holds only while 1 - g(u_{t+1}) / g(u_t) is below max_beta.
      REQUIRE(1.0 - want / sigmoid_gamma(double(t) / double(T), start, end, tau) < max_beta);
    } else {
      CHECK(want == 0.0);
      want = sigmoid_gamma(double(T - 1) / double(T), start, end, tau) * (1.0 - max_beta);
    }
    CHECK(std::fabs(double(abar[t]) - want) <= 2e-6 * want + 1e-12);
  }
  CHECK(abar[0] < 1.f);
  CHECK(abar[T - 1] > 0.f);

  // DDIM sampling (20 trailing steps) of the trained model on the same schedule: finite samples [n, 2].
  auto sample = run_with_plugin("run tools/examples/plugin/sample_sigmoid.json -q --set n=" + std::to_string(n) +
                                    " --set tau=0.9 --set checkpoint=" + dir.file("ckpt.safetensors") +
                                    " --set samples=" + dir.file("samples.safetensors") +
                                    " --run-folder " + dir.file("sample"),
                                dir);
  INFO("stderr: ", sample.err);
  REQUIRE(sample.status == 0);
  const auto samples = noiseflow::runtime::read_safetensors(dir.file("samples.safetensors")).tensors.at("samples");
  REQUIRE(samples.shape() == noiseflow::graph::Shape{n, 2});
  for (int64_t i = 0; i < samples.numel(); ++i) CHECK(std::isfinite(samples[i]));

  // The schedule's attributes are part of the checkpoint's recipe: sampling on another tau is refused.
  auto other = run_with_plugin("run tools/examples/plugin/sample_sigmoid.json -q --set n=4 --set tau=1.0"
                               " --set checkpoint=" + dir.file("ckpt.safetensors") +
                                   " --set samples=" + dir.file("other.safetensors") + " --run-folder " + dir.file("other"),
                               dir);
  CHECK(other.status == 1);
  CHECK(other.err.find("trained with sigmoid_tau 0.9, but node \"sched\" attr \"tau\" is 1.0") != std::string::npos);
}

TEST_CASE("example plugin: bad attributes of example.schedule_sigmoid are errors naming them") {
  TempDir dir;
  const std::string path = dir.write("bad.json", R"({ "noiseflow": 1,
    "nodes": {
      "reversed":  { "op": "example.schedule_sigmoid", "attrs": { "start": 3, "end": -3 } },
      "cold":      { "op": "example.schedule_sigmoid", "attrs": { "tau": 0 } },
      "flat":      { "op": "example.schedule_sigmoid", "attrs": { "start": 19, "end": 20, "tau": 0.1 } },
      "saturated": { "op": "example.schedule_sigmoid", "attrs": { "T": 10, "start": -20, "end": 20, "tau": 0.01 } },
      "clip":      { "op": "example.schedule_sigmoid", "attrs": { "max_beta": 1 } }
    } })");
  auto r = run_with_plugin("check '" + path + "'", dir);
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  // The shape rule's checks, one line per node (in the loader's order), all of them.
  for (const std::string line : {
           "node \"clip\", attr \"max_beta\": max_beta must be in (0, 1), got 1",
           "node \"cold\", attr \"tau\": tau must be > 0, got 0",
           "node \"flat\", attr \"tau\": the sigmoid is flat between start / tau = 190 and end / tau = 200 (bring "
           "start and end closer to 0)",
           "node \"reversed\", attr \"end\": end must be greater than start, got start = 3, end = -3",
           "node \"saturated\", attr \"tau\": the sigmoid saturates: beta_0 = 0 with start / tau = -2000 and end / "
           "tau = 2000 (raise tau or bring start and end closer to 0)"}) {
    CAPTURE(line);
    CHECK(r.err.find(path + ": " + line + "\n") != std::string::npos);
  }
  CHECK(r.err.find("\nnoiseflow: 5 errors\n") != std::string::npos);
  // The schema's ranges (checked before any shape rule runs).
  const std::string range = dir.write("range.json", R"({ "noiseflow": 1,
    "nodes": { "short": { "op": "example.schedule_sigmoid", "attrs": { "T": 0, "start": -21 } } } })");
  auto rr = run_with_plugin("check '" + range + "'", dir);
  CHECK(rr.status == 1);
  CHECK(rr.err == range + ": node \"short\", attr \"T\": value 0 is below the minimum 1\n" + range +
                      ": node \"short\", attr \"start\": value -21 is below the minimum -20\nnoiseflow: 2 errors\n");

  // The node reference with the plugin loaded documents it and names the library.
  auto md = run_with_plugin("nodes --markdown", dir);
  CHECK(md.status == 0);
  CHECK(md.out.find("### `example.schedule_sigmoid`\n\nSigmoid noise schedule (Jabri et al. 2022)") != std::string::npos);
  CHECK(md.out.find("from the plugin `" NOISEFLOW_EXAMPLE_PLUGIN "`") != std::string::npos);
  CHECK(md.out.find("| `tau` | float | `1.0` | 0 to 100 |") != std::string::npos);
}

#endif  // NOISEFLOW_EXAMPLE_PLUGIN
