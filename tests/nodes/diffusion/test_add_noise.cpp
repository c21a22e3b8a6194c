// tests/nodes/diffusion/test_add_noise.cpp — diffusion.add_noise: closed form, statistics of q(x_t | x_0)
// with noise from random.normal, run-time timestep checks, gradients by central differences, and its
// gradient case.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

constexpr UniformTensors uniform{0xadd};  // this suite's inputs, under its own key

// The finite-difference gradient case (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
// diffusion.add_noise needs integer timesteps and a valid table, but the generic
// checker fills every input with one uniform range. With lo = hi = 1 every input
// is exactly 1: t = 1 is valid for the [8, 2] "table" of ones (T = 2), whose
// coefficients are then 1. This only proves the op is wired into the generic
// check; the per-sample coefficients are checked against central differences
// and the closed form by the tests below.
noiseflow::testing::GradCase add_noise_case() {
  noiseflow::testing::GradCase c;
  c.name = "diffusion.add_noise (inputs all 1, T = 2)";
  c.op = "diffusion.add_noise";
  c.attrs = nlohmann::json::object();
  c.inputs = {{"x0", {3, 2, 2}}, {"noise", {3, 2, 2}}, {"t", {3}}, {"schedule", {8, 2}}};
  c.lo = c.hi = 1.f;
  return c;
}
const bool add_noise_registered = noiseflow::testing::register_grad_case(add_noise_case());

}  // namespace

TEST_CASE("diffusion.add_noise matches sqrt(abar_t) x0 + sqrt(1 - abar_t) noise per sample") {
  const Tensor table = schedule_table();
  const LinearSchedule S;
  Tensor x0 = uniform({3, 2, 5}, 1), noise = uniform({3, 2, 5}, 2);
  Tensor t({3}, {0.f, 417.f, 999.f});
  NodeHarness h("diffusion.add_noise", {}, {{"x0", x0}, {"noise", noise}, {"t", t}, {"schedule", table}});
  h.forward();
  const Tensor& xt = h.output("xt");
  REQUIRE(xt.shape() == Shape{3, 2, 5});
  for (int n = 0; n < 3; ++n) {
    const double ab = S.abar[size_t(t[n])];
    for (int k = 0; k < 10; ++k) {
      const int i = n * 10 + k;
      CHECK(xt[i] == doctest::Approx(std::sqrt(ab) * x0[i] + std::sqrt(1 - ab) * noise[i]).epsilon(1e-5));
    }
  }
}

TEST_CASE("diffusion.add_noise statistics: mean sqrt(abar_t) x0, variance 1 - abar_t") {
  // x0: a fixed 8x8 pattern in [-1, 1], tiled to a batch of 4096 with tensor.repeat.
  Tensor pattern({1, 1, 8, 8});
  for (int i = 0; i < 64; ++i) pattern[i] = float(std::sin(0.7 * i) * 0.9);
  const int64_t batch = 4096, ticks = 4;
  NodeHarness tile("tensor.repeat", {{"times", batch}}, {{"x", pattern}});
  tile.forward();
  const Tensor x0 = tile.output("y").clone();
  REQUIRE(x0.shape() == Shape{batch, 1, 8, 8});

  const Tensor table = schedule_table();
  const LinearSchedule S;
  NodeHarness eps("random.normal", {}, {{"like", x0}}, /*seed=*/7);
  for (int64_t t_fixed : {0, 10, 250, 999}) {
    CAPTURE(t_fixed);
    NodeHarness steps("diffusion.timesteps", {{"values", Json::array({t_fixed})}}, {{"like", x0}, {"schedule", table}});
    steps.forward();
    NodeHarness add("diffusion.add_noise", {},
                    {{"x0", x0}, {"noise", x0}, {"t", steps.output("t")}, {"schedule", table}});
    // Per-pixel sums over batch x ticks draws; a different tick (fresh noise) each time.
    std::vector<double> sum(64, 0.0), sum2(64, 0.0);
    for (int64_t tick = 0; tick < ticks; ++tick) {
      eps.forward(100 * t_fixed + tick);
      add.set_input("noise", eps.output("y"));
      add.forward(tick);
      const Tensor& xt = add.output("xt");
      for (int64_t n = 0; n < batch; ++n)
        for (int p = 0; p < 64; ++p) {
          const double v = xt[n * 64 + p];
          sum[p] += v;
          sum2[p] += v * v;
        }
    }
    const double n = double(batch * ticks);  // 16384 draws per pixel
    const double ab = S.abar[size_t(t_fixed)], var = 1.0 - ab;
    // Standard error of the mean: sqrt(var / n). Of the sample variance of a
    // normal: var * sqrt(2 / (n - 1)). Both checked at 5 sigma (a false failure
    // has probability ~6e-7 per check, < 2e-4 over the 512 checks here).
    const double se_mean = std::sqrt(var / n), se_var = var * std::sqrt(2.0 / (n - 1));
    int bad_mean = 0, bad_var = 0;
    for (int p = 0; p < 64; ++p) {
      const double mean = sum[p] / n;
      const double s2 = (sum2[p] - n * mean * mean) / (n - 1);
      if (std::fabs(mean - std::sqrt(ab) * pattern[p]) > 5 * se_mean) ++bad_mean;
      if (std::fabs(s2 - var) > 5 * se_var) ++bad_var;
      if (p == 0) {
        INFO("pixel 0: mean ", mean, " expected ", std::sqrt(ab) * pattern[p], " (se ", se_mean, "); variance ", s2,
             " expected ", var, " (se ", se_var, ")");
        CHECK(std::fabs(mean - std::sqrt(ab) * pattern[p]) <= 5 * se_mean);
      }
    }
    CHECK(bad_mean == 0);
    CHECK(bad_var == 0);
  }
}

TEST_CASE("diffusion.add_noise fails at run time on a timestep outside 0..T-1") {
  const Tensor table = schedule_table(100);
  Tensor x0 = uniform({2, 3}, 3);
  NodeHarness h("diffusion.add_noise", {}, {{"x0", x0}, {"noise", x0}, {"t", Tensor({2}, {0.f, 99.f})}, {"schedule", table}});
  CHECK_NOTHROW(h.forward());
  for (float bad : {99.5f, -1.f, -0.25f, NAN}) {
    CAPTURE(bad);
    h.set_input("t", Tensor({2}, {5.f, bad}));
    try {
      h.forward();
      FAIL("expected a NodeError");
    } catch (const NodeError& e) {
      CHECK(std::string(e.field) == "t");
      CHECK(std::string(e.what()).find("[0, 99]") != std::string::npos);
    }
  }
}

TEST_CASE("diffusion.add_noise at a fractional timestep: log sigma interpolated between the table's levels") {
  const Tensor table = schedule_table(100);
  const noiseflow::nodes::diffusion::ScheduleTable s(table);
  const Tensor x0({2, 1}, {1.f, 1.f}), noise({2, 1}, {0.f, 1.f});
  NodeHarness h("diffusion.add_noise", {}, {{"x0", x0}, {"noise", noise}, {"t", Tensor({2}, {40.25f, 40.25f})}, {"schedule", table}});
  h.forward();
  // sigma = b / a at t = 40.25 is exp(0.75 log sigma_40 + 0.25 log sigma_41); a = 1 / sqrt(1 + sigma^2).
  auto sigma = [&](int64_t t) { return double(s.at(noiseflow::nodes::diffusion::kSqrtOneMinusAlphaBar, t)) /
                                       double(s.at(noiseflow::nodes::diffusion::kSqrtAlphaBar, t)); };
  const double sg = std::exp(0.75 * std::log(sigma(40)) + 0.25 * std::log(sigma(41)));
  const double a = 1.0 / std::sqrt(1.0 + sg * sg), b = sg * a;
  CHECK(h.output("xt")[0] == doctest::Approx(a).epsilon(1e-5));          // a x0
  CHECK(h.output("xt")[1] == doctest::Approx(a + b).epsilon(1e-5));      // a x0 + b noise
  CHECK(h.output("xt")[0] < s.at(noiseflow::nodes::diffusion::kSqrtAlphaBar, 40));
  CHECK(h.output("xt")[0] > s.at(noiseflow::nodes::diffusion::kSqrtAlphaBar, 41));
}

TEST_CASE("diffusion.add_noise shape errors name the input") {
  const Tensor table = schedule_table(10);
  Tensor x0({4, 3}), bad_noise({4, 2}), t({4}), bad_t({3}), bad_table({7, 10});
  auto field_of = [](const NamedTensors& in) { return shape_error_field("diffusion.add_noise", {}, in); };
  CHECK(field_of({{"x0", x0}, {"noise", bad_noise}, {"t", t}, {"schedule", table}}) == "noise");
  CHECK(field_of({{"x0", x0}, {"noise", x0}, {"t", bad_t}, {"schedule", table}}) == "t");
  CHECK(field_of({{"x0", x0}, {"noise", x0}, {"t", t}, {"schedule", bad_table}}) == "schedule");
  CHECK(field_of({{"x0", x0}, {"noise", x0}, {"t", t}}) == "schedule");
}

TEST_CASE("diffusion.add_noise gradients: central differences, per-sample scales, overwrite") {
  const Tensor table = schedule_table();
  const LinearSchedule S;
  Tensor x0 = uniform({3, 2, 2}, 4), noise = uniform({3, 2, 2}, 5), r = uniform({3, 2, 2}, 6);
  Tensor t({3}, {0.f, 400.f, 999.f});
  NodeHarness h("diffusion.add_noise", {}, {{"x0", x0}, {"noise", noise}, {"t", t}, {"schedule", table}});
  // Linear in both inputs: central differences are exact up to float rounding of L.
  CHECK(fd_error(h, "x0", "xt", r) < 1e-3);
  CHECK(fd_error(h, "noise", "xt", r) < 1e-3);

  // The closed form: dL/dx0 = sqrt(abar_t) r, dL/dnoise = sqrt(1 - abar_t) r, per sample.
  h.backward({{"xt", r}});
  for (int n = 0; n < 3; ++n) {
    const double ab = S.abar[size_t(t[n])];
    for (int k = 0; k < 4; ++k) {
      CHECK(h.grad_input("x0")[n * 4 + k] == doctest::Approx(std::sqrt(ab) * r[n * 4 + k]).epsilon(1e-5));
      CHECK(h.grad_input("noise")[n * 4 + k] == doctest::Approx(std::sqrt(1 - ab) * r[n * 4 + k]).epsilon(1e-5));
    }
  }
  // backward() overwrites the input gradients rather than accumulating.
  const auto g = h.grad_input("x0").to_vector();
  h.grad_input("x0").fill(123.f);
  h.grad_input("noise").fill(123.f);
  h.node().backward(h.ctx());
  CHECK(h.grad_input("x0").to_vector() == g);
  CHECK(h.grad_input("noise")[0] != 123.f);
}
