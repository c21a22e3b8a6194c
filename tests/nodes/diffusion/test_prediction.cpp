// tests/nodes/diffusion/test_prediction.cpp — the eps / x0 / v parametrisations of nodes/diffusion/prediction.hpp,
// with and without clipping, through the two sampler steps sampler.ddpm and sampler.ddim.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/nodes/sampler/sampler_chain.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("sampler.ddpm and sampler.ddim: x0 and v predictions give the same step as the matching eps") {
  const LinearSchedule S;
  const Tensor table = schedule_table();
  const Tensor all_steps = timesteps_points(table, "ddpm", 1000);
  // Sample i at timestep tv[i]: sampler.ddpm steps to tv[i] - 1 (tick 999 - t of all T steps),
  // sampler.ddim to tpv[i] (-1: the data).
  const std::vector<float> tv{0, 1, 20, 250, 600, 999};
  const std::vector<float> tpv{-1, 0, 0, 230, 580, 979};
  const int64_t N = int64_t(tv.size()), inner = 64;
  // Data-like x0 (some beyond [-1, 1] so that clipping acts), x_t = a x0 + b eps.
  const Tensor x0 = normal({N, inner}, 1, 0.f, 0.8f), eps = normal({N, inner}, 2);
  Tensor x({N, inner}), v({N, inner});
  noise_with_v(S, tv, x0, eps, x, v);
  for (bool clip : {false, true}) {
    for (const char* op : {"sampler.ddpm", "sampler.ddim"}) {
      CAPTURE(clip);
      CAPTURE(std::string(op));
      const bool ddim = std::string(op) == "sampler.ddim";
      auto step = [&](const char* prediction, const Tensor& pred) {
        Json attrs{{"prediction", prediction}, {"clip_x0", clip}};
        std::vector<double> y;
        for (int64_t i = 0; i < N; ++i) {
          const int64_t t = int64_t(tv[size_t(i)]), tp = int64_t(tpv[size_t(i)]);
          Tensor points = all_steps;
          int64_t tick = 999 - t;
          if (ddim) {
            attrs["eta"] = 0.5;
            points = points_of(table, tp >= 0 ? std::vector<int64_t>{t, tp} : std::vector<int64_t>{t});
            tick = 0;
          }
          NodeHarness h(op, attrs, step_inputs(rows(x, i), rows(pred, i), points, tick), 9);
          h.forward(tick);
          const std::vector<double> yi = as_double(h.output());
          y.insert(y.end(), yi.begin(), yi.end());
        }
        return y;
      };
      const std::vector<double> by_eps = step("eps", eps);
      check_close(step("x0", x0), by_eps, 1e-4, 1e-4);
      check_close(step("v", v), by_eps, 1e-4, 1e-4);
    }
  }
}
