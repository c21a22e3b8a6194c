// Training and sampling end to end on the 2-D toy mixture (8 Gaussians on a
// circle) with the MLP denoiser: the loss falls, and DDPM samples from the
// trained model land near the modes, every mode receiving samples.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <vector>

#include "noiseflow/noiseflow.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;

TEST_CASE("toy 2-D diffusion: training lowers the loss and samples cover every mode") {
  const noiseflow::test::TempDir dir;
  const std::string ckpt = dir / "checkpoint.safetensors";
  const int64_t steps = 4000;

  noiseflow::Options train;
  train.params = {{"steps", steps}, {"checkpoint", ckpt}};
  noiseflow::Pipeline p(std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/toy2d_train.json", train);
  std::vector<double> losses;
  p.run([&](const noiseflow::TickInfo&) {
    double l = 0;
    REQUIRE(p.executor().state().latest("loss", l));
    losses.push_back(l);
  });
  REQUIRE(losses.size() == size_t(steps));
  auto mean = [&](size_t from, size_t to) {
    return std::accumulate(losses.begin() + long(from), losses.begin() + long(to), 0.0) / double(to - from);
  };
  const double first = mean(0, 100), last = mean(steps - 200, steps);
  MESSAGE("toy2d loss: first 100 ticks " << first << ", last 200 ticks " << last);
  CHECK(last < 0.6 * first);
  REQUIRE(fs::exists(ckpt));

  noiseflow::Options sample;
  sample.params = {{"checkpoint", ckpt}, {"n", 2048}};
  noiseflow::Pipeline s(std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/toy2d_sample.json", sample);
  s.run();
  noiseflow::Tensor x = s.output("x");
  REQUIRE(x.shape() == noiseflow::graph::Shape{2048, 2});
  // Modes of data.toy2d's defaults: 8 centres on a circle of radius 0.8, std 0.05.
  const int modes = 8;
  const double radius = 0.8;
  std::vector<int> per_mode(modes, 0);
  int near = 0;
  for (int64_t i = 0; i < 2048; ++i) {
    double best = 1e9;
    int arg = 0;
    for (int m = 0; m < modes; ++m) {
      double a = 2 * M_PI * m / modes;
      double d = std::hypot(x[2 * i] - radius * std::cos(a), x[2 * i + 1] - radius * std::sin(a));
      if (d < best) best = d, arg = m;
    }
    if (best < 0.2) ++near, ++per_mode[arg];  // 4 standard deviations of a component
  }
  MESSAGE("samples within 0.2 of a mode: " << near << " of 2048");
  CHECK(near > 0.8 * 2048);
  for (int m = 0; m < modes; ++m) {
    INFO("mode " << m << " got " << per_mode[m] << " samples");
    CHECK(per_mode[m] > 2048 / modes / 3);  // each mode at least a third of its fair share
  }
}
