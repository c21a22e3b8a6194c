// tests/nodes/diffusion/test_sampler_errors.cpp — the sampler nodes together (ddpm_step, ddim_step,
// gaussian_denoiser, ddim_timesteps): shape errors name the input or attribute, and bad timesteps at
// run time name t or t_prev.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("sampler nodes: shape errors name the input or attribute, bad timesteps name t / t_prev") {
  const Tensor tab = schedule_table(), x({4, 3}), t({4}), bad_t({3}), bad_pred({4, 2});
  CHECK(shape_error_field("diffusion.ddpm_step", {}, {{"x", x}, {"pred", bad_pred}, {"t", t}, {"schedule", tab}}) == "pred");
  CHECK(shape_error_field("diffusion.ddpm_step", {}, {{"x", x}, {"pred", x}, {"t", bad_t}, {"schedule", tab}}) == "t");
  CHECK(shape_error_field("diffusion.ddpm_step", {}, {{"x", x}, {"pred", x}, {"t", t}, {"schedule", t}}) == "schedule");
  CHECK(shape_error_field("diffusion.ddim_step", {}, {{"x", x}, {"pred", x}, {"t", t}, {"t_prev", bad_t}, {"schedule", tab}}) ==
        "t_prev");
  CHECK(shape_error_field("diffusion.gaussian_denoiser", {{"sigma", 0.0}}, {{"x", x}, {"t", t}, {"schedule", tab}}) == "sigma");
  CHECK(shape_error_field("diffusion.gaussian_denoiser", {}, {{"x", x}, {"t", bad_t}, {"schedule", tab}}) == "t");
  CHECK(shape_error_field("diffusion.ddim_timesteps", {{"steps", 1001}}, {{"like", x}, {"schedule", tab}}) == "steps");
  CHECK(shape_error_field("diffusion.ddim_timesteps", {{"steps", 1000}}, {{"like", x}, {"schedule", tab}}) == "(no error)");

  auto run_field = [&](const Tensor& tt, const Tensor& tp) -> std::string {
    NodeHarness h("diffusion.ddim_step", {}, {{"x", x}, {"pred", x}, {"t", tt}, {"t_prev", tp}, {"schedule", tab}});
    try {
      h.forward();
    } catch (const NodeError& e) {
      return e.field;
    }
    return "(no error)";
  };
  const Tensor t10({4}, {10, 10, 10, 10});
  CHECK(run_field(t10, Tensor({4}, {9, 0, -1, 5})) == "(no error)");
  CHECK(run_field(t10, Tensor({4}, {9, 10, -1, 5})) == "t_prev");   // not below t
  CHECK(run_field(t10, Tensor({4}, {9, 0, -2, 5})) == "t_prev");    // below -1
  CHECK(run_field(t10, Tensor({4}, {9, 0.5f, -1, 5})) == "t_prev"); // not an integer
  CHECK(run_field(Tensor({4}, {10, 10, 1000, 10}), Tensor({4}, {9, 0, -1, 5})) == "t");
}
