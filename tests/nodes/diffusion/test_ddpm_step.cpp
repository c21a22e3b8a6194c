// tests/nodes/diffusion/test_ddpm_step.cpp — diffusion.ddpm_step against the textbook formulas: no noise at
// t = 0, the eps-prediction mean and the noise sigma_t z for both variances, and clip_x0.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("ddpm_step: no noise at t = 0 (per sample), noise differs between ticks at t > 0") {
  const LinearSchedule S;
  const std::vector<float> tv{0, 0, 500, 0, 999, 1};
  const int64_t N = int64_t(tv.size()), inner = 16;
  const Tensor x = normal({N, 1, 4, 4}, 1), eps = normal({N, 1, 4, 4}, 2);
  NodeHarness h("diffusion.ddpm_step", {}, {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"schedule", schedule_table()}});
  h.forward(3);
  const Tensor y3 = h.output().clone();
  h.forward(11);
  const Tensor y11 = h.output().clone();
  for (int64_t i = 0; i < N; ++i) {
    CAPTURE(i);
    const int64_t t = int64_t(tv[size_t(i)]);
    std::vector<double> a(y3.data() + i * inner, y3.data() + (i + 1) * inner);
    std::vector<double> b(y11.data() + i * inner, y11.data() + (i + 1) * inner);
    if (t == 0) {
      CHECK(a == b);
      // The posterior mean at t = 0: sqrt(abar_{-1} = 1) beta_0 / (1 - abar_0) x0_hat + 0 x_t = x0_hat.
      std::vector<double> want(static_cast<size_t>(inner));
      for (int64_t k = 0; k < inner; ++k) {
        const double xk = x[i * inner + k], ek = eps[i * inner + k];
        const double x0 = (xk - S.b(0) * ek) / S.a(0);
        want[size_t(k)] = std::sqrt(S.abar_prev(0)) * S.beta[0] / (1 - S.abar[0]) * x0 +
                          std::sqrt(S.alpha[0]) * (1 - S.abar_prev(0)) / (1 - S.abar[0]) * xk;
      }
      check_close(a, want, 1e-5, 1e-5);
    } else {
      for (int64_t k = 0; k < inner; ++k) CHECK(a[size_t(k)] != b[size_t(k)]);
    }
  }
}

TEST_CASE("ddpm_step, eps prediction: x_prev = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z") {
  const LinearSchedule S;
  // Small t, where beta and the posterior variance differ most, and large t.
  const std::vector<float> tv{1, 2, 10, 100, 500, 999};
  const int64_t N = int64_t(tv.size()), m = 32768;
  const Tensor x = normal({N, m}, 1), eps = normal({N, m}, 2);
  for (const char* variance : {"beta", "posterior"}) {
    CAPTURE(std::string(variance));
    auto [y, noise] = run_with_zero("diffusion.ddpm_step", {{"variance", variance}},
                                    {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"schedule", schedule_table()}}, 4);
    // The mean, z-free.
    std::vector<double> want(size_t(N * m));
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = int64_t(tv[size_t(i)]);
      for (int64_t k = 0; k < m; ++k) {
        const int64_t j = i * m + k;
        want[size_t(j)] = 1 / std::sqrt(S.alpha[size_t(t)]) * (x[j] - S.beta[size_t(t)] / S.b(t) * eps[j]);
      }
    }
    check_close(minus(y, noise), want, 2e-5, 2e-5);
    // The noise: sigma_t z with z ~ N(0, 1): per sample, m draws; 5 standard errors.
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = int64_t(tv[size_t(i)]);
      const double var = std::string(variance) == "beta"
                             ? S.beta[size_t(t)]
                             : S.beta[size_t(t)] * (1 - S.abar_prev(t)) / (1 - S.abar[size_t(t)]);
      auto [mean, v] = standardised(noise, i * m, m, std::sqrt(var));
      CAPTURE(t);
      INFO("z mean ", mean, ", z variance ", v);
      CHECK(std::fabs(mean) < 5 / std::sqrt(double(m)));
      CHECK(std::fabs(v - 1) < 5 * std::sqrt(2.0 / double(m - 1)));
    }
  }
}

TEST_CASE("ddpm_step with clip_x0 clamps x0_hat to [-1, 1] before the posterior mean") {
  const LinearSchedule S;
  const std::vector<float> tv{0, 3, 300};
  const int64_t N = 3, inner = 6;
  const std::vector<float> p{3.f, -2.f, 0.5f, 1.f, -1.f, 1.5f};
  std::vector<float> pv, xv;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t k = 0; k < inner; ++k) pv.push_back(p[size_t(k)]), xv.push_back(0.1f * float(k) - 0.2f);
  const Tensor pred({N, inner}, pv), x({N, inner}, xv);
  auto [y, noise] = run_with_zero("diffusion.ddpm_step", {{"prediction", "x0"}, {"clip_x0", true}},
                                  {{"x", x}, {"pred", pred}, {"t", timesteps(tv)}, {"schedule", schedule_table()}}, 1);
  std::vector<double> want;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    const double c1 = std::sqrt(S.abar_prev(t)) * S.beta[size_t(t)] / (1 - S.abar[size_t(t)]);
    const double c2 = std::sqrt(S.alpha[size_t(t)]) * (1 - S.abar_prev(t)) / (1 - S.abar[size_t(t)]);
    for (int64_t k = 0; k < inner; ++k)
      want.push_back(c1 * std::clamp(double(p[size_t(k)]), -1.0, 1.0) + c2 * xv[size_t(i * inner + k)]);
  }
  check_close(minus(y, noise), want, 1e-5, 1e-5);
  // At t = 0 there is no noise: the output is clamp(pred) itself.
  for (int64_t k = 0; k < inner; ++k) CHECK(y[k] == doctest::Approx(std::clamp(p[size_t(k)], -1.f, 1.f)).epsilon(1e-5));
}
