// tests/nodes/diffusion/test_loss_weights.cpp — diffusion.loss_weights: each weighting against the SNR
// computed here in double from the betas, and the property that defines it: for any prediction, the
// weighted error of every objective is the same multiple of the x0 error.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

std::vector<float> weights_of(const std::string& weighting, const std::string& objective, const Tensor& table,
                              const std::vector<float>& t, double gamma = 5.0) {
  NodeHarness h("diffusion.loss_weights", {{"weighting", weighting}, {"objective", objective}, {"gamma", gamma}},
                {{"t", timesteps(t)}, {"schedule", table}});
  h.forward(0);
  return h.output("weights").to_vector();
}

}  // namespace

TEST_CASE("diffusion.loss_weights: none, snr and min_snr for eps, x0 and v against the SNR from the betas") {
  const int64_t T = 1000;
  const auto abar = cumprod_alpha(linear_betas(T));
  const std::vector<float> t = {0, 10, 100, 250, 500, 999};
  const Tensor table = schedule_table(T);
  const double gamma = 5.0;
  int crossed = 0;  // timesteps on each side of SNR = gamma, so both branches of min() are exercised
  for (const std::string objective : {"eps", "x0", "v"}) {
    const auto none = weights_of("none", objective, table, t);
    const auto snr = weights_of("snr", objective, table, t);
    const auto min_snr = weights_of("min_snr", objective, table, t, gamma);
    for (size_t i = 0; i < t.size(); ++i) {
      CAPTURE(objective);
      CAPTURE(t[i]);
      const double a = abar[size_t(t[i])], s = a / (1.0 - a);
      const double c = objective == "eps" ? s : objective == "x0" ? 1.0 : s + 1.0;  // objective error / x0 error
      CHECK(none[i] == 1.f);
      CHECK(snr[i] == doctest::Approx(s / c).epsilon(1e-4));
      CHECK(min_snr[i] == doctest::Approx(std::min(s, gamma) / c).epsilon(1e-4));
      if (objective == "eps") crossed += s > gamma ? 1 : 2;
    }
  }
  CHECK(crossed > int(t.size()));  // some t with SNR above gamma ...
  CHECK(crossed < 2 * int(t.size()));  // ... and some below
  // Min-SNR for eps: gamma / SNR at small t (capped), 1 at large t.
  const auto w = weights_of("min_snr", "eps", table, {0, 999});
  CHECK(w[0] < 1e-3f);
  CHECK(w[1] == 1.f);
}

TEST_CASE("diffusion.loss_weights: every objective's weighted error equals min(SNR, gamma) |x0 - x0_hat|^2") {
  const int64_t T = 1000, N = 6, D = 50;
  const Tensor table = schedule_table(T);
  const std::vector<float> t = {3, 40, 120, 300, 600, 950};
  const auto abar = cumprod_alpha(linear_betas(T));
  const Tensor x0 = random_tensor({N, D}, 1), eps = normal({N, D}, 2), x0_hat = random_tensor({N, D}, 3);
  for (const std::string weighting : {"snr", "min_snr"}) {
    const auto we = weights_of(weighting, "eps", table, t), wx = weights_of(weighting, "x0", table, t),
               wv = weights_of(weighting, "v", table, t);
    for (int64_t n = 0; n < N; ++n) {
      CAPTURE(weighting);
      CAPTURE(t[size_t(n)]);
      const double a = std::sqrt(abar[size_t(t[size_t(n)])]), b = std::sqrt(1.0 - abar[size_t(t[size_t(n)])]);
      double ex = 0, ee = 0, ev = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double x = x0[n * D + i], e = eps[n * D + i], xh = x0_hat[n * D + i];
        const double xt = a * x + b * e;
        const double eh = (xt - a * xh) / b;  // the same prediction, as eps and as v
        const double v = a * e - b * x, vh = a * eh - b * xh;
        ex += (x - xh) * (x - xh);
        ee += (e - eh) * (e - eh);
        ev += (v - vh) * (v - vh);
      }
      const double s = (a / b) * (a / b), w = weighting == "snr" ? s : std::min(s, 5.0);
      CHECK(wx[size_t(n)] * ex == doctest::Approx(w * ex).epsilon(1e-4));
      CHECK(we[size_t(n)] * ee == doctest::Approx(w * ex).epsilon(1e-3));
      CHECK(wv[size_t(n)] * ev == doctest::Approx(w * ex).epsilon(1e-3));
    }
  }
}

TEST_CASE("diffusion.loss_weights: finite at zero terminal SNR, and bad input names the field") {
  NodeHarness sched("diffusion.schedule", {{"T", 10}, {"zero_terminal_snr", true}}, {});
  sched.forward(0);
  const Tensor table = sched.output("table");
  for (const std::string objective : {"eps", "x0", "v"}) {
    CAPTURE(objective);
    const auto w = weights_of("min_snr", objective, table, {9});
    CHECK(std::isfinite(w[0]));
    CHECK(w[0] == (objective == "eps" ? 1.f : 0.f));  // eps: the limit of min(s, gamma) / s; x0 and v: 0
  }
  CHECK(shape_error_field("diffusion.loss_weights", {{"gamma", 0.0}}, {{"t", Tensor({4})}, {"schedule", schedule_table(10)}}) ==
        "gamma");
  CHECK(shape_error_field("diffusion.loss_weights", {}, {{"t", Tensor({4, 2})}, {"schedule", schedule_table(10)}}) == "t");
  NodeHarness h("diffusion.loss_weights", {}, {{"t", timesteps({2.5f})}, {"schedule", schedule_table(10)}});
  CHECK_THROWS_WITH_AS(h.forward(0), doctest::Contains("is not an integer"), std::exception);
}
