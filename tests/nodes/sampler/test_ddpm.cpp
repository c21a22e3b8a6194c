// tests/nodes/sampler/test_ddpm.cpp — sampler.ddpm over all T timesteps against Ho et al.'s textbook
// formulas: x0_hat without noise at the last step (t = 0), fresh noise at every tick before it, the
// eps-prediction mean and the noise sigma_t z for both variances, clip_x0, and the whole step (with the
// node's own noise recomputed) against the posterior mean read from the schedule table.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/random.hpp"
#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

// All T = 1000 timesteps (sampler.timesteps, leading): tick 999 - t steps from t to t - 1, or to the
// data from t = 0.
Tensor all_steps() { return timesteps_points(schedule_table(), "ddpm", 1000); }
int64_t tick_of(int64_t t) { return 999 - t; }

}  // namespace

TEST_CASE("sampler.ddpm: no noise at the last step (t = 0), fresh noise at every tick before it") {
  const LinearSchedule S;
  const Tensor points = all_steps();
  const std::vector<float> tv{0, 0, 500, 0, 999, 1};
  const int64_t N = int64_t(tv.size()), inner = 16;
  const Tensor x = normal({N, 1, 4, 4}, 1), eps = normal({N, 1, 4, 4}, 2);
  for (int64_t i = 0; i < N; ++i) {
    CAPTURE(i);
    const int64_t t = int64_t(tv[size_t(i)]);
    auto [y, noise] = run_with_zero("sampler.ddpm", {}, step_inputs(rows(x, i), rows(eps, i), points, tick_of(t)),
                                    tick_of(t));
    if (t == 0) {
      // Noise-free: the output does not depend on the tick's draw.
      for (int64_t k = 0; k < inner; ++k) CHECK(noise[k] == 0.f);
      // The posterior mean at t = 0: sqrt(abar_{-1} = 1) beta_0 / (1 - abar_0) x0_hat + 0 x_t = x0_hat.
      std::vector<double> want(static_cast<size_t>(inner));
      for (int64_t k = 0; k < inner; ++k) {
        const double xk = x[i * inner + k], ek = eps[i * inner + k];
        const double x0 = (xk - S.b(0) * ek) / S.a(0);
        want[size_t(k)] = std::sqrt(S.abar_prev(0)) * S.beta[0] / (1 - S.abar[0]) * x0 +
                          std::sqrt(S.alpha[0]) * (1 - S.abar_prev(0)) / (1 - S.abar[0]) * xk;
      }
      check_close(as_double(y), want, 1e-5, 1e-5);
    } else {
      // The noise z = y(0, 0) / sigma_t of this tick differs from the next tick's (at t - 1; t + 1 for
      // t = 1, whose next step is noise-free): a fresh draw every tick.
      const int64_t u = t > 1 ? t - 1 : t + 1;
      auto [y2, noise2] = run_with_zero("sampler.ddpm", {}, step_inputs(rows(x, i), rows(eps, i), points, tick_of(u)),
                                        tick_of(u));
      for (int64_t k = 0; k < inner; ++k)
        CHECK(std::fabs(noise[k] / std::sqrt(S.beta[size_t(t)]) - noise2[k] / std::sqrt(S.beta[size_t(u)])) > 1e-4);
    }
  }
}

TEST_CASE("sampler.ddpm, eps prediction: x_prev = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z") {
  const LinearSchedule S;
  const Tensor points = all_steps();
  // Small t, where beta and the posterior variance differ most, and large t.
  const std::vector<float> tv{1, 2, 10, 100, 500, 999};
  const int64_t N = int64_t(tv.size()), m = 32768;
  const Tensor x = normal({N, m}, 1), eps = normal({N, m}, 2);
  for (const char* variance : {"beta", "posterior"}) {
    CAPTURE(std::string(variance));
    std::vector<double> mean_part, want(size_t(N * m));
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = int64_t(tv[size_t(i)]);
      auto [y, noise] = run_with_zero("sampler.ddpm", {{"variance", variance}},
                                      step_inputs(rows(x, i), rows(eps, i), points, tick_of(t)), tick_of(t));
      // The mean, z-free.
      const std::vector<double> d = minus(y, noise);
      mean_part.insert(mean_part.end(), d.begin(), d.end());
      for (int64_t k = 0; k < m; ++k) {
        const int64_t j = i * m + k;
        want[size_t(j)] = 1 / std::sqrt(S.alpha[size_t(t)]) * (x[j] - S.beta[size_t(t)] / S.b(t) * eps[j]);
      }
      // The noise: sigma_t z with z ~ N(0, 1): per sample, m draws; 5 standard errors.
      const double var = std::string(variance) == "beta"
                             ? S.beta[size_t(t)]
                             : S.beta[size_t(t)] * (1 - S.abar_prev(t)) / (1 - S.abar[size_t(t)]);
      auto [zmean, v] = standardised(noise, 0, m, std::sqrt(var));
      CAPTURE(t);
      INFO("z mean ", zmean, ", z variance ", v);
      CHECK(std::fabs(zmean) < 5 / std::sqrt(double(m)));
      CHECK(std::fabs(v - 1) < 5 * std::sqrt(2.0 / double(m - 1)));
    }
    check_close(mean_part, want, 2e-5, 2e-5);
  }
}

TEST_CASE("sampler.ddpm with clip_x0 clamps x0_hat to [-1, 1] before the posterior mean") {
  const LinearSchedule S;
  const Tensor points = all_steps();
  const std::vector<float> tv{0, 3, 300};
  const int64_t N = 3, inner = 6;
  const std::vector<float> p{3.f, -2.f, 0.5f, 1.f, -1.f, 1.5f};
  std::vector<float> pv, xv;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < inner; ++k) pv.push_back(p[size_t(k)]), xv.push_back(0.1f * float(k) - 0.2f);
  const Tensor pred({N, inner}, pv), x({N, inner}, xv);
  std::vector<double> got, want;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    auto [y, noise] = run_with_zero("sampler.ddpm", {{"prediction", "x0"}, {"clip_x0", true}},
                                    step_inputs(rows(x, i), rows(pred, i), points, tick_of(t)), tick_of(t));
    const std::vector<double> d = minus(y, noise);
    got.insert(got.end(), d.begin(), d.end());
    const double c1 = std::sqrt(S.abar_prev(t)) * S.beta[size_t(t)] / (1 - S.abar[size_t(t)]);
    const double c2 = std::sqrt(S.alpha[size_t(t)]) * (1 - S.abar_prev(t)) / (1 - S.abar[size_t(t)]);
    for (int64_t k = 0; k < inner; ++k)
      want.push_back(c1 * std::clamp(double(p[size_t(k)]), -1.0, 1.0) + c2 * xv[size_t(i * inner + k)]);
    // At t = 0 there is no noise: the output is clamp(pred) itself.
    if (t == 0)
      for (int64_t k = 0; k < inner; ++k)
        CHECK(y[k] == doctest::Approx(std::clamp(p[size_t(k)], -1.f, 1.f)).epsilon(1e-5));
  }
  check_close(got, want, 1e-5, 1e-5);
}

TEST_CASE("sampler.ddpm over all T steps is Ho et al.'s step read from the table (same noise, both variances, "
          "clipped or not)") {
  // The reference: the posterior mean with the schedule table's beta_t, alpha_t, abar_{t-1} and
  // sqrt(1 - abar) (1 - abar taken as its square), sigma_t^2 = beta_t or the table's posterior
  // variance, none at t = 0; z recomputed as the node draws it (key = seed x node id, stream = tick).
  using namespace noiseflow::nodes::diffusion;
  const Tensor table = schedule_table();
  const ScheduleTable sched(table);
  const Tensor points = all_steps();
  const uint64_t seed = 5;
  for (const char* variance : {"beta", "posterior"}) {
    for (bool clip : {false, true}) {
      for (int64_t tick : {0, 1, 500, 998, 999}) {
        CAPTURE(std::string(variance));
        CAPTURE(clip);
        CAPTURE(tick);
        const Tensor x = random_tensor({4, 1, 2, 2}, 1, -2.f, 2.f), pred = random_tensor({4, 1, 2, 2}, 2);
        NodeHarness now("sampler.ddpm", {{"variance", variance}, {"clip_x0", clip}},
                        step_inputs(x, pred, points, tick), seed, 1000);
        now.forward(tick);
        const int64_t s = 999 - tick;
        const double a = sched.at(kSqrtAlphaBar, s), b = sched.at(kSqrtOneMinusAlphaBar, s);
        const double b_prev = s > 0 ? double(sched.at(kSqrtOneMinusAlphaBar, s - 1)) : 0.0;
        const double mu_x0 = std::sqrt(double(sched.at(kAlphaBarPrev, s))) * sched.at(kBeta, s) / (b * b);
        const double mu_xt = std::sqrt(double(sched.at(kAlpha, s))) * b_prev * b_prev / (b * b);
        const double var = s == 0 ? 0.0 : std::string(variance) == "posterior" ? sched.at(kPosteriorVariance, s)
                                                                               : sched.at(kBeta, s);
        std::vector<float> z(size_t(x.numel()));
        noiseflow::runtime::random::fill_normal(
            z.data(), x.numel(), noiseflow::runtime::random::mix(seed, noiseflow::runtime::random::hash("node")),
            uint64_t(tick));
        Tensor want(x.shape());
        for (int64_t k = 0; k < x.numel(); ++k) {
          double x0 = (x[k] - b * pred[k]) / a;
          if (clip) x0 = std::clamp(x0, -1.0, 1.0);
          want.data()[k] = float(mu_x0 * x0 + mu_xt * x[k] + std::sqrt(var) * z[size_t(k)]);
        }
        CHECK(max_rel_diff(now.output("x_next"), want) < 2e-5);
      }
    }
  }
}
