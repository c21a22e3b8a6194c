// tests/nodes/diffusion/test_denoised.cpp — diffusion.denoised: x0_hat for eps, x0 and v predictions against
// the closed forms at integer and fractional timesteps (exact for a prediction made from a known x0),
// gradients by central differences, and its gradient case.
#include <doctest/doctest.h>

#include <cmath>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
namespace d = noiseflow::nodes::diffusion;

namespace {

constexpr UniformTensors uniform{0xde0};

// The generic checker fills every input from one range; with lo = hi = 1 the [8, 2] table of ones is valid
// (a = b = 1 at t = 1). The coefficients themselves are checked below.
noiseflow::testing::GradCase denoised_case() {
  noiseflow::testing::GradCase c;
  c.name = "diffusion.denoised (inputs all 1, T = 2)";
  c.op = "diffusion.denoised";
  c.attrs = nlohmann::json::object();
  c.inputs = {{"pred", {3, 2, 2}}, {"xt", {3, 2, 2}}, {"t", {3}}, {"schedule", {8, 2}}};
  c.lo = c.hi = 1.f;
  return c;
}
const bool denoised_registered = noiseflow::testing::register_grad_case(denoised_case());

}  // namespace

TEST_CASE("diffusion.denoised recovers x0 from an exact eps, x0 or v prediction, at integer and fractional t") {
  const Tensor table = schedule_table(1000);
  const d::ScheduleTable s(table);
  const Tensor x0 = uniform({3, 5}, 1), eps = uniform({3, 5}, 2);
  const Tensor t({3}, {0.f, 417.f, 612.75f});
  Tensor xt({3, 5});
  double a[3], b[3];
  for (int64_t i = 0; i < 3; ++i) {
    const d::NoiseLevel l = d::level_at(s, t[i]);
    a[i] = l.a, b[i] = l.b;
    for (int64_t k = 0; k < 5; ++k) xt[i * 5 + k] = float(a[i] * x0[i * 5 + k] + b[i] * eps[i * 5 + k]);
  }
  for (const char* p : {"eps", "x0", "v"}) {
    CAPTURE(p);
    Tensor pred({3, 5});
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) {
        const int64_t e = i * 5 + k;
        pred[e] = std::string(p) == "eps" ? eps[e] : std::string(p) == "x0" ? x0[e] : float(a[i] * eps[e] - b[i] * x0[e]);
      }
    NodeHarness h("diffusion.denoised", {{"prediction", p}}, {{"pred", pred}, {"xt", xt}, {"t", t}, {"schedule", table}});
    h.forward();
    for (int64_t e = 0; e < 15; ++e) CHECK(h.output("x0")[e] == doctest::Approx(x0[e]).epsilon(2e-3).scale(1.0));
    const Tensor r = uniform({3, 5}, 3);
    CHECK(fd_error(h, "pred", "x0", r, 1e-3) < 1e-2);
    CHECK(fd_error(h, "xt", "x0", r, 1e-3) < 1e-2);
  }
}

TEST_CASE("diffusion.denoised: a timestep outside [0, T-1] is an error naming t") {
  const Tensor table = schedule_table(10);
  const Tensor x = uniform({1, 2}, 1);
  NodeHarness h("diffusion.denoised", {}, {{"pred", x}, {"xt", x}, {"t", Tensor({1}, {9.5f})}, {"schedule", table}});
  try {
    h.forward();
    FAIL("expected an error");
  } catch (const NodeError& e) {
    CHECK(std::string(e.field) == "t");
  }
}
