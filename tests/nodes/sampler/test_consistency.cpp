// tests/nodes/sampler/test_consistency.cpp — sampler.consistency on Gaussian data N(mu, s^2), driven with the
// exact consistency function in place of a net: the probability-flow ODE's map from x_t to x0, which for
// Gaussian data is f(x_t) = mu + s (x_t - a mu) / sqrt(a^2 s^2 + b^2). From x_T ~ N(0, 1) each step's output
// is Gaussian with moments computed here in double (the re-noising x_q = a_q x0 + b_q z keeps them Gaussian),
// and the sampler's output must match them; with more steps they approach N(mu, s^2) itself.
#include <doctest/doctest.h>

#include <cmath>

#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

namespace {

struct Moments {
  double mean = 0, var = 0;
};

Moments moments_of(const runtime::Tensor& x) {
  double m = 0, v = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m += x[i];
  m /= double(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) v += (x[i] - m) * (x[i] - m);
  return {m, v / double(x.numel() - 1)};
}

// The sampler over K trailing steps with the exact consistency function; returns its output and the
// closed-form moments of that output.
std::pair<Moments, Moments> run(int64_t K, double mu, double s, int64_t M) {
  Chain c;
  const runtime::Tensor sched = schedule_for(c);
  const runtime::Tensor points = timesteps_points(sched, "consistency", K, "trailing");
  const int64_t n = points.dim(1);
  runtime::Tensor x({M});
  runtime::random::fill_normal(x.data(), M, 0xc0de, 0, 0.f, 1.f, 0);
  runtime::NodeHarness step("sampler.consistency", {{"prediction", "x0"}, {"clip_x0", false}},
                            step_inputs(x, x, points, 0), 7, K);
  Moments want{0.0, 1.0};  // x_T ~ N(0, 1)
  for (int64_t k = 0; k < K; ++k) {
    const double a = points[n + k], b = points[2 * n + k], D = a * a * s * s + b * b;
    runtime::Tensor pred({M});
    for (int64_t i = 0; i < M; ++i) pred[i] = float(mu + s * (x[i] - a * mu) / std::sqrt(D));
    // x0 = mu + s (x - a mu) / sqrt(D): moments of the affine map of x.
    Moments x0{mu + s * (want.mean - a * mu) / std::sqrt(D), s * s * want.var / D};
    for (auto& [name, t] : step_inputs(x, pred, points, k)) step.set_input(name, t);
    step.forward(k);
    x = step.output("x_next").clone();
    const double aq = points[n + k + 1], bq = points[2 * n + k + 1];
    want = {aq * x0.mean, aq * aq * x0.var + bq * bq};  // re-noised (the last step: b = 0, a = 1)
  }
  return {moments_of(x), want};
}

}  // namespace

TEST_CASE("sampler.consistency: 1, 2 and 4 steps give the closed-form moments of the exact consistency map") {
  const double mu = 0.5, s = 0.5;
  const int64_t M = 200000;
  for (int64_t K : {1, 2, 4}) {
    CAPTURE(K);
    const auto [got, want] = run(K, mu, s, M);
    INFO("mean ", got.mean, " want ", want.mean, "; var ", got.var, " want ", want.var);
    CHECK(std::abs(got.mean - want.mean) < 5 * std::sqrt(want.var / double(M)));
    CHECK(std::abs(got.var - want.var) < 5 * want.var * std::sqrt(2.0 / double(M - 1)));
    // Near the data distribution: from x_T ~ N(0, 1) at sqrt(abar_T) = 0.006 already within 1%.
    CHECK(std::abs(want.mean - mu) < 0.01);
    CHECK(std::abs(want.var - s * s) < 0.01 * s * s);
  }
}

TEST_CASE("sampler.consistency: the last step returns x0_hat, an earlier one re-noises it to the next level") {
  Chain c;
  const runtime::Tensor sched = schedule_for(c);
  const runtime::Tensor points = timesteps_points(sched, "consistency", 2, "trailing");
  const int64_t n = points.dim(1);
  const runtime::Tensor x({4}, {0.1f, -0.2f, 0.3f, 0.9f}), pred({4}, {0.5f, -0.5f, 0.25f, 2.0f});
  runtime::NodeHarness step("sampler.consistency", {{"prediction", "x0"}, {"clip_x0", true}}, step_inputs(x, pred, points, 1), 3, 2);
  step.forward(1);  // the last step: x0_hat, clipped
  CHECK(step.output("x_next")[0] == 0.5f);
  CHECK(step.output("x_next")[3] == 1.0f);
  for (auto& [name, t] : step_inputs(x, pred, points, 0)) step.set_input(name, t);
  step.forward(0);  // to grid point 1: a_1 x0_hat + b_1 z, z the tick's noise
  const double a1 = points[n + 1], b1 = points[2 * n + 1];
  CHECK(b1 > 0.1);
  double z_mean = 0;
  for (int64_t i = 0; i < 4; ++i) z_mean += (step.output("x_next")[i] - a1 * std::clamp(double(pred[i]), -1.0, 1.0)) / b1;
  CHECK(std::abs(z_mean / 4) < 3.0);  // finite, noise-sized
  CHECK(step.output("x_next")[0] != float(a1 * 0.5));  // noise was added
}
