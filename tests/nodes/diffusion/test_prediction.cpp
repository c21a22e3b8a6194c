// tests/nodes/diffusion/test_prediction.cpp — the eps / x0 / v parametrisations of nodes/diffusion/prediction.hpp,
// with and without clipping, through both sampler steps that use them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("ddpm_step and ddim_step: x0 and v predictions give the same step as the matching eps") {
  const LinearSchedule S;
  const std::vector<float> tv{0, 1, 20, 250, 600, 999};
  const std::vector<float> tpv{-1, 0, 0, 230, 580, 979};
  const int64_t N = int64_t(tv.size()), inner = 64;
  // Data-like x0 (some beyond [-1, 1] so that clipping acts), x_t = a x0 + b eps.
  const Tensor x0 = normal({N, inner}, 1, 0.f, 0.8f), eps = normal({N, inner}, 2);
  Tensor x({N, inner}), v({N, inner});
  noise_with_v(S, tv, x0, eps, x, v);
  for (bool clip : {false, true}) {
    for (const char* op : {"diffusion.ddpm_step", "diffusion.ddim_step"}) {
      CAPTURE(clip);
      CAPTURE(std::string(op));
      const bool ddim = std::string(op) == "diffusion.ddim_step";
      auto step = [&](const char* prediction, const Tensor& pred) {
        Json attrs{{"prediction", prediction}, {"clip_x0", clip}};
        NamedTensors in{{"x", x}, {"pred", pred}, {"t", timesteps(tv)}, {"schedule", schedule_table()}};
        if (ddim) {
          attrs["eta"] = 0.5;
          in.push_back({"t_prev", timesteps(tpv)});
        }
        NodeHarness h(op, attrs, in, 9);
        h.forward(2);
        return h.output().clone();
      };
      const Tensor by_eps = step("eps", eps);
      check_close(as_double(step("x0", x0)), as_double(by_eps), 1e-4, 1e-4);
      check_close(as_double(step("v", v)), as_double(by_eps), 1e-4, 1e-4);
    }
  }
}
