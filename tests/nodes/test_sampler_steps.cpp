// The sampler nodes one at a time (NodeHarness): diffusion.ddpm_step against
// the textbook formulas, no noise at t = 0, eps/x0/v equivalence, clipping;
// diffusion.ddim_step against Song et al. eq. 12; diffusion.ddim_timesteps
// sequences; diffusion.gaussian_denoiser optimality; shape and value errors.
//
// The noise z is unknown to the test but a pure function of (seed, node id,
// tick, element), so the same node at the same tick with x = pred = 0 outputs
// exactly sigma z: y(x, pred) - y(0, 0) is the noise-free mean, and y(0, 0) / sigma
// must look like N(0, 1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::LinearSchedule;
using noiseflow::test::schedule_table;
using noiseflow::test::shape_error_field;

namespace {

Tensor normal(Shape shape, uint64_t key, float mean = 0.f, float std = 1.f) {
  Tensor x(std::move(shape));
  random::fill_normal(x.data(), x.numel(), key, 0, mean, std);
  return x;
}

Tensor timesteps(const std::vector<float>& t) { return Tensor({int64_t(t.size())}, t); }

// |got - want| <= atol + rtol |want|, elementwise; reports the worst element.
void check_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
    if (i == 0 || excess > worst) worst = excess, at = i;
  }
  INFO("worst element ", at, ": got ", got[at], ", want ", want[at]);
  CHECK(worst <= 0.0);
}

std::vector<double> as_double(const Tensor& t) { return {t.data(), t.data() + t.numel()}; }

std::vector<double> minus(const Tensor& a, const Tensor& b) {
  std::vector<double> d(size_t(a.numel()));
  for (int64_t i = 0; i < a.numel(); ++i) d[size_t(i)] = double(a[i]) - double(b[i]);
  return d;
}

// Runs `op` at `tick` on (x, pred) and on (0, 0): returns {y, y(0, 0)}.
std::pair<Tensor, Tensor> run_with_zero(const std::string& op, const Json& attrs, NamedTensors in, int64_t tick) {
  NodeHarness h(op, attrs, in, /*seed=*/5);
  h.forward(tick);
  Tensor y = h.output().clone();
  for (auto& [name, t] : in)
    if (name == "x" || name == "pred") h.input(name).zero();
  h.forward(tick);
  return {y, h.output().clone()};
}

// Mean and unbiased variance of y[i0, i0 + m) / s.
std::pair<double, double> standardised(const Tensor& y, int64_t i0, int64_t m, double s) {
  double sum = 0, ss = 0;
  for (int64_t k = 0; k < m; ++k) sum += y[i0 + k] / s;
  const double mean = sum / double(m);
  for (int64_t k = 0; k < m; ++k) ss += (y[i0 + k] / s - mean) * (y[i0 + k] / s - mean);
  return {mean, ss / double(m - 1)};
}

}  // namespace

TEST_CASE("ddpm_step: no noise at t = 0 (per sample); noise differs between ticks at t > 0") {
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

TEST_CASE("ddpm_step and ddim_step: x0 and v predictions give the same step as the matching eps") {
  const LinearSchedule S;
  const std::vector<float> tv{0, 1, 20, 250, 600, 999};
  const std::vector<float> tpv{-1, 0, 0, 230, 580, 979};
  const int64_t N = int64_t(tv.size()), inner = 64;
  // Data-like x0 (some beyond [-1, 1] so that clipping acts), x_t = a x0 + b eps.
  const Tensor x0 = normal({N, inner}, 1, 0.f, 0.8f), eps = normal({N, inner}, 2);
  Tensor x({N, inner}), v({N, inner});
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    for (int64_t k = 0; k < inner; ++k) {
      const int64_t j = i * inner + k;
      x[j] = float(S.a(t) * x0[j] + S.b(t) * eps[j]);
      v[j] = float(S.a(t) * eps[j] - S.b(t) * x0[j]);
    }
  }
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

TEST_CASE("ddim_step follows Song et al. eq. 12; eta = 0 is deterministic; t_prev = -1 returns x0_hat") {
  const LinearSchedule S;
  const std::vector<float> tv{999, 500, 40, 19, 5};
  const std::vector<float> tpv{979, 480, 20, -1, -1};
  const int64_t N = int64_t(tv.size()), m = 32768;
  const Tensor x = normal({N, m}, 1), eps = normal({N, m}, 2, 0.f, 0.5f);
  for (double eta : {0.0, 0.7, 1.0}) {
    for (bool clip : {false, true}) {
      CAPTURE(eta);
      CAPTURE(clip);
      auto [y, noise] = run_with_zero(
          "diffusion.ddim_step", {{"eta", eta}, {"clip_x0", clip}},
          {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"t_prev", timesteps(tpv)}, {"schedule", schedule_table()}}, 6);
      std::vector<double> want(size_t(N * m));
      for (int64_t i = 0; i < N; ++i) {
        const int64_t t = int64_t(tv[size_t(i)]), tp = int64_t(tpv[size_t(i)]);
        const double at = S.abar[size_t(t)], ap = tp >= 0 ? S.abar[size_t(tp)] : 1.0;
        const double sigma = eta * std::sqrt((1 - ap) / (1 - at)) * std::sqrt(1 - at / ap);
        for (int64_t k = 0; k < m; ++k) {
          const int64_t j = i * m + k;
          double x0 = (x[j] - std::sqrt(1 - at) * eps[j]) / std::sqrt(at), e = eps[j];
          if (clip) {
            x0 = std::clamp(x0, -1.0, 1.0);
            e = (x[j] - std::sqrt(at) * x0) / std::sqrt(1 - at);
          }
          want[size_t(j)] = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sigma * sigma) * e;
        }
        // The noise part: sigma z, z ~ N(0, 1) (5 standard errors); none for eta = 0 or t_prev = -1.
        CAPTURE(t);
        if (sigma == 0.0) {
          bool all_zero = true;
          for (int64_t k = 0; k < m; ++k) all_zero = all_zero && noise[i * m + k] == 0.f;
          CHECK(all_zero);
        } else {
          auto [mean, v] = standardised(noise, i * m, m, sigma);
          INFO("z mean ", mean, ", z variance ", v);
          CHECK(std::fabs(mean) < 5 / std::sqrt(double(m)));
          CHECK(std::fabs(v - 1) < 5 * std::sqrt(2.0 / double(m - 1)));
        }
      }
      check_close(minus(y, noise), want, 5e-5, 5e-5);
    }
  }
  // eta = 0 and any tick: the same output; t_prev = -1 and any eta: x0_hat, the same at every tick.
  for (double eta : {0.0, 1.0}) {
    NodeHarness h("diffusion.ddim_step", {{"eta", eta}},
                  {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"t_prev", timesteps(tpv)}, {"schedule", schedule_table()}});
    h.forward(0);
    const std::vector<float> a = h.output().to_vector();
    h.forward(1);
    const std::vector<float> b = h.output().to_vector();
    for (int64_t i = 0; i < N; ++i) {
      const bool same = std::equal(a.begin() + i * m, a.begin() + (i + 1) * m, b.begin() + i * m);
      CHECK(same == (eta == 0.0 || tpv[size_t(i)] == -1.f));
    }
  }
}

TEST_CASE("ddim_step with eta = 1 and t_prev = t - 1 is ddpm_step with the posterior variance") {
  const std::vector<float> tv{1, 2, 50, 400, 999};
  std::vector<float> tpv;
  for (float t : tv) tpv.push_back(t - 1);
  const int64_t N = int64_t(tv.size()), inner = 256;
  const Tensor x = normal({N, inner}, 1), eps = normal({N, inner}, 2);
  // Both harness nodes are called "node" with seed 5: the same z at the same tick.
  NodeHarness ddim("diffusion.ddim_step", {{"eta", 1.0}},
                   {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"t_prev", timesteps(tpv)}, {"schedule", schedule_table()}},
                   5);
  NodeHarness ddpm("diffusion.ddpm_step", {{"variance", "posterior"}},
                   {{"x", x}, {"pred", eps}, {"t", timesteps(tv)}, {"schedule", schedule_table()}}, 5);
  ddim.forward(7);
  ddpm.forward(7);
  check_close(as_double(ddim.output()), as_double(ddpm.output()), 1e-5, 1e-5);
}

TEST_CASE("ddim_timesteps: uniform and trailing sequences, one per tick, largest first") {
  auto sequence = [](int64_t T, int64_t K, const char* spacing) {
    NodeHarness h("diffusion.ddim_timesteps", {{"steps", K}, {"spacing", spacing}},
                  {{"like", Tensor({3, 2})}, {"schedule", schedule_table(T)}}, 1, K);
    std::vector<std::pair<float, float>> out;
    for (int64_t k = 0; k < K; ++k) {
      h.forward(k);
      const Tensor& t = h.output("t");
      const Tensor& tp = h.output("t_prev");
      REQUIRE(t.shape() == Shape{3});
      REQUIRE(tp.shape() == Shape{3});
      CHECK(t[0] == t[2]);
      CHECK(tp[0] == tp[2]);
      out.push_back({t[0], tp[0]});
    }
    // Past the last step: an error naming `steps`.
    try {
      h.forward(K);
      FAIL("expected a NodeError");
    } catch (const NodeError& e) {
      CHECK(e.field == "steps");
    }
    return out;
  };
  auto check_seq = [](const std::vector<std::pair<float, float>>& got, const std::vector<int64_t>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      CAPTURE(k);
      CHECK(got[k].first == float(want[k]));
      CHECK(got[k].second == (k + 1 < want.size() ? float(want[k + 1]) : -1.f));
    }
  };
  SUBCASE("K = 50, T = 1000: uniform 980, 960, ..., 0; trailing 999, 979, ..., 19") {
    std::vector<int64_t> uniform, trailing;
    for (int64_t k = 0; k < 50; ++k) uniform.push_back(980 - 20 * k), trailing.push_back(999 - 20 * k);
    check_seq(sequence(1000, 50, "uniform"), uniform);
    check_seq(sequence(1000, 50, "trailing"), trailing);
  }
  SUBCASE("the formulas: uniform floor(i T / K), trailing round(T - i T / K) - 1 (half to even, like numpy)") {
    for (auto [T, K] : std::vector<std::pair<int64_t, int64_t>>{{1000, 3}, {1000, 7}, {10, 10}, {1000, 1}, {37, 5}}) {
      CAPTURE(T);
      CAPTURE(K);
      std::vector<int64_t> uniform, trailing;
      for (int64_t i = K - 1; i >= 0; --i) uniform.push_back(i * T / K);
      for (int64_t i = 0; i < K; ++i)
        trailing.push_back(int64_t(std::nearbyint(double(T) - double(i) * double(T) / double(K))) - 1);
      check_seq(sequence(T, K, "uniform"), uniform);
      check_seq(sequence(T, K, "trailing"), trailing);
    }
    // numpy: np.round(np.arange(1000, 0, -62.5)) - 1, with ties 937.5 -> 938, 812.5 -> 812, 687.5 -> 688, ...
    check_seq(sequence(1000, 16, "trailing"),
              {999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61});
    check_seq(sequence(1000, 3, "uniform"), {666, 333, 0});
    check_seq(sequence(1000, 3, "trailing"), {999, 666, 332});
  }
}

TEST_CASE("gaussian_denoiser is the least-squares-optimal predictor of eps, x0 and v for N(mu, s^2) data") {
  const LinearSchedule S;
  const double mu = 0.5, s = 0.3;
  const std::vector<float> tv{0, 30, 200, 999};
  const int64_t N = int64_t(tv.size()), m = 100000;
  const Tensor x0 = normal({N, m}, 1, float(mu), float(s)), eps = normal({N, m}, 2);
  Tensor x({N, m}), v({N, m});
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t j = i * m + k;
      x[j] = float(S.a(t) * x0[j] + S.b(t) * eps[j]);
      v[j] = float(S.a(t) * eps[j] - S.b(t) * x0[j]);
    }
  }
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

TEST_CASE("sampler nodes: shape errors name the input or attribute; bad timesteps name t / t_prev") {
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
