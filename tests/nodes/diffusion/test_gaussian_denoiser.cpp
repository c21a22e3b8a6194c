// tests/nodes/diffusion/test_gaussian_denoiser.cpp — diffusion.gaussian_denoiser: the least-squares-optimal
// eps, x0 and v predictions for N(mu, s^2) data, their agreement with each other, and its shape errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("gaussian_denoiser is the least-squares-optimal predictor of eps, x0 and v for N(mu, s^2) data") {
  const LinearSchedule S;
  const double mu = 0.5, s = 0.3;
  const std::vector<float> tv{0, 30, 200, 999};
  const int64_t N = int64_t(tv.size()), m = 100000;
  const Tensor x0 = normal({N, m}, 1, float(mu), float(s)), eps = normal({N, m}, 2);
  Tensor x({N, m}), v({N, m});
  noise_with_v(S, tv, x0, eps, x, v);
  std::vector<Tensor> preds;
  for (auto [prediction, target] :
       std::vector<std::pair<const char*, const Tensor*>>{{"eps", &eps}, {"x0", &x0}, {"v", &v}}) {
    CAPTURE(std::string(prediction));
    NodeHarness h("diffusion.gaussian_denoiser", {{"mu", mu}, {"sigma", s}, {"prediction", prediction}},
                  {{"x", x}, {"t", timesteps(tv)}, {"schedule", schedule_table()}});
    h.forward(0);
    const Tensor& pred = h.output("pred");
    REQUIRE(pred.shape() == x.shape());
    preds.push_back(pred.clone());
    // Orthogonality: the residual r = target - pred has mean 0 and no covariance with x_t
    // (5 standard errors: sd(r)/sqrt(m), sd(r) sd(x)/sqrt(m)); and its variance is the minimum MSE.
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = int64_t(tv[size_t(i)]);
      CAPTURE(t);
      double rm = 0, xm = 0;
      for (int64_t k = 0; k < m; ++k) rm += (*target)[i * m + k] - pred[i * m + k], xm += x[i * m + k];
      rm /= double(m);
      xm /= double(m);
      double rr = 0, xx = 0, rx = 0;
      for (int64_t k = 0; k < m; ++k) {
        const double r = double((*target)[i * m + k]) - pred[i * m + k] - rm, d = x[i * m + k] - xm;
        rr += r * r, xx += d * d, rx += r * d;
      }
      rr /= double(m - 1), xx /= double(m - 1), rx /= double(m - 1);
      INFO("residual mean ", rm, ", var ", rr, ", cov with x_t ", rx);
      CHECK(std::fabs(rm) < 5 * std::sqrt(rr / double(m)) + 1e-6);
      CHECK(std::fabs(rx) < 5 * std::sqrt(rr * xx / double(m)) + 1e-6);
    }
  }
  // The three predictions are one: x0 = (x - b eps) / a, v = a eps - b x0 (checked where a is not tiny).
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    for (int64_t k = 0; k < m; k += 997) {
      const int64_t j = i * m + k;
      const double e = preds[0][j], x0h = preds[1][j], vh = preds[2][j];
      CHECK(x0h == doctest::Approx((x[j] - S.b(t) * e) / S.a(t)).epsilon(1e-3).scale(1));
      CHECK(vh == doctest::Approx(S.a(t) * e - S.b(t) * x0h).epsilon(1e-4).scale(1));
    }
  }
}

TEST_CASE("gaussian_denoiser: shape errors name the attribute or input") {
  const Tensor tab = schedule_table(), x({4, 3}), t({4}), bad_t({3});
  CHECK(shape_error_field("diffusion.gaussian_denoiser", {{"sigma", 0.0}}, {{"x", x}, {"t", t}, {"schedule", tab}}) == "sigma");
  CHECK(shape_error_field("diffusion.gaussian_denoiser", {}, {{"x", x}, {"t", bad_t}, {"schedule", tab}}) == "t");
}
