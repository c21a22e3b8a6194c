// tests/nodes/diffusion/test_vlb_terms.cpp — diffusion.vlb_terms, diffusion.vlb_timesteps and eval.nll:
// each term against its closed form (the KL of two Gaussians, the normal mass of an 8-bit bin by numeric
// integration of the pdf), and the whole bound on data whose exact log-likelihood is known.
//
// The whole-bound check: for data x0 ~ N(0, 1) every marginal q(x_t) is N(0, 1), so the true reverse
// step q(x_{t-1} | x_t) is N(sqrt(alpha_t) x_t, beta_t): exactly the model with the exact denoiser
// (diffusion.gaussian_denoiser, mu = 0, sigma = 1) and variance beta, whose prior N(0, I) is q(x_T) too.
// The model's joint is then q's, the bound is tight, and its expectation over x_{1..T} ~ q(. | x0) is
// -log2 N(x0; 0, 1) per dimension with the continuous decoder. Every term is quadratic in the noise eps
// of x_t = a x0 + b eps (x0_hat is affine in x_t), so the two draws eps = +1 and eps = -1 give each
// term's expectation exactly (E eps = 0, E eps^2 = 1): no Monte Carlo error, only float rounding.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

constexpr double kLn2 = 0.69314718055994530942;

double normal_pdf(double x, double m, double s) {
  const double z = (x - m) / s;
  return std::exp(-0.5 * z * z) / (s * std::sqrt(2 * M_PI));
}

// The N(m, s^2) mass of [lo, hi] by composite Simpson with n (even) intervals.
double simpson_mass(double lo, double hi, double m, double s, int n = 2000) {
  const double h = (hi - lo) / n;
  double sum = normal_pdf(lo, m, s) + normal_pdf(hi, m, s);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4 : 2) * normal_pdf(lo + i * h, m, s);
  return sum * h / 3;
}

// The inputs of vlb_terms for N samples of D elements at timesteps tv, with x_t = a x0 + b eps.
struct Batch {
  Tensor x0, xt, eps, t;
};

Batch batch(const LinearSchedule& S, const std::vector<float>& tv, const std::vector<double>& x0v,
            const std::vector<double>& epsv) {
  const int64_t N = int64_t(tv.size()), D = int64_t(x0v.size()) / N;
  Batch b{Tensor({N, D}), Tensor({N, D}), Tensor({N, D}), timesteps(tv)};
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < D; ++j) {
      const int64_t k = i * D + j, t = int64_t(tv[size_t(i)]);
      b.x0[k] = float(x0v[size_t(k)]);
      b.eps[k] = float(epsv[size_t(k)]);
      b.xt[k] = float(S.a(t) * x0v[size_t(k)] + S.b(t) * epsv[size_t(k)]);
    }
  return b;
}

}  // namespace

TEST_CASE("vlb_terms: L_{t-1} is the KL between the forward posterior and the model step, L_T the prior KL") {
  const LinearSchedule S;
  const Tensor table = schedule_table();
  const std::vector<float> tv{1, 2, 10, 300, 999};
  const int64_t N = int64_t(tv.size()), D = 7;
  std::vector<double> x0v, epsv;
  const Tensor r = normal({N * D * 3}, 11);
  for (int64_t k = 0; k < N * D; ++k) {
    x0v.push_back(std::tanh(r[k]));
    epsv.push_back(r[N * D + k]);
  }
  Batch b = batch(S, tv, x0v, epsv);
  // Any prediction: the true eps plus an error, so the means differ.
  Tensor pred({N, D});
  for (int64_t k = 0; k < N * D; ++k) pred[k] = b.eps[k] + 0.3f * r[2 * N * D + k];
  for (const char* variance : {"beta", "posterior"}) {
    CAPTURE(std::string(variance));
    NodeHarness h("diffusion.vlb_terms", {{"variance", variance}},
                  {{"x0", b.x0}, {"xt", b.xt}, {"pred", pred}, {"t", b.t}, {"schedule", table}});
    h.forward(0);
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = int64_t(tv[size_t(i)]);
      CAPTURE(t);
      const double beta = S.beta[size_t(t)], ab = S.abar[size_t(t)], abp = S.abar_prev(t);
      const double var_q = beta * (1 - abp) / (1 - ab);
      const double var_p = std::string(variance) == "beta" ? beta : var_q;
      double kl = 0, prior = 0;
      for (int64_t j = 0; j < D; ++j) {
        const int64_t k = i * D + j;
        const double x0 = b.x0[k], xt = b.xt[k];
        const double x0h = (xt - std::sqrt(1 - ab) * pred[k]) / std::sqrt(ab);
        const double mu_q = std::sqrt(abp) * beta / (1 - ab) * x0 + std::sqrt(1 - beta) * (1 - abp) / (1 - ab) * xt;
        const double mu_p = std::sqrt(abp) * beta / (1 - ab) * x0h + std::sqrt(1 - beta) * (1 - abp) / (1 - ab) * xt;
        kl += 0.5 * (std::log(var_p / var_q) + var_q / var_p - 1 + (mu_q - mu_p) * (mu_q - mu_p) / var_p);
        const double aT = std::sqrt(S.abar.back()), vT = 1 - S.abar.back();
        prior += 0.5 * (-1 - std::log(vT) + vT + aT * aT * x0 * x0);
      }
      CHECK(h.output("terms")[i] == doctest::Approx(kl / (D * kLn2)).epsilon(2e-4));
      CHECK(h.output("prior")[i] == doctest::Approx(prior / (D * kLn2)).epsilon(1e-5));
    }
  }
}

TEST_CASE("vlb_terms: L_0 is the normal mass of the 8-bit bin, the edge bins their tails (numeric integration)") {
  const Tensor table = schedule_table();
  const LinearSchedule S;
  const double h = 1.0 / 255;
  // Pixels at bin centres (v / 255 * 2 - 1), including both edges; pred = x0 prediction x0_hat.
  const std::vector<int> pixels{0, 1, 77, 128, 254, 255};
  const std::vector<double> offsets{0.0, 0.004, -0.02, 0.05, 0.3};
  for (const char* variance : {"beta", "posterior"}) {
    CAPTURE(std::string(variance));
    const double var = std::string(variance) == "beta" ? S.beta[0] : S.beta[1] * (1 - S.abar[0]) / (1 - S.abar[1]);
    const double sd = std::sqrt(var);
    for (double off : offsets) {
      CAPTURE(off);
      const int64_t D = int64_t(pixels.size());
      Tensor x0({1, D}), pred({1, D}), xt({1, D});
      for (int64_t j = 0; j < D; ++j) {
        x0[j] = float(pixels[size_t(j)] / 255.0 * 2 - 1);
        pred[j] = x0[j] + float(off);
        xt[j] = 0.f;
      }
      NodeHarness n("diffusion.vlb_terms", {{"variance", variance}, {"prediction", "x0"}},
                    {{"x0", x0}, {"xt", xt}, {"pred", pred}, {"t", timesteps({0})}, {"schedule", table}});
      n.forward(0);
      double nats = 0;
      for (int64_t j = 0; j < D; ++j) {
        const double x = x0[j], m = pred[j];
        const double lo = pixels[size_t(j)] == 0 ? m - 40 * sd : x - h, hi = pixels[size_t(j)] == 255 ? m + 40 * sd : x + h;
        // The bin can lie far in a tail: integrate only where the pdf lives (the rest is below 1e-300).
        const double a = std::max(lo, m - 40 * sd), c = std::min(hi, m + 40 * sd);
        const double p = c > a ? simpson_mass(a, c, m, sd, 20000) : 0.0;
        nats -= std::log(std::max(p, 1e-12));
      }
      CHECK(n.output("terms")[0] == doctest::Approx(nats / (D * kLn2)).epsilon(1e-5));
    }
  }
}

TEST_CASE("vlb_terms: the bound of N(0, 1) data with the exact denoiser and variance beta is -log2 of its density") {
  const LinearSchedule S;
  const Tensor table = schedule_table();
  const int64_t T = 1000;
  const std::vector<double> values{-2.5, -1.0, -0.3, 0.0, 0.4, 1.7};
  const int64_t D = int64_t(values.size());
  // Every t twice, with eps = +1 and eps = -1 in every element.
  std::vector<float> tv;
  std::vector<double> x0v, epsv;
  for (int64_t t = 0; t < T; ++t)
    for (double e : {1.0, -1.0}) {
      tv.push_back(float(t));
      for (double v : values) x0v.push_back(v), epsv.push_back(e);
    }
  const Batch b = batch(S, tv, x0v, epsv);
  for (const char* prediction : {"eps", "x0", "v"}) {
    CAPTURE(std::string(prediction));
    NodeHarness den("diffusion.gaussian_denoiser", {{"mu", 0.0}, {"sigma", 1.0}, {"prediction", prediction}},
                    {{"x", b.xt}, {"t", b.t}, {"schedule", table}});
    den.forward(0);
    // Per element: bits of each term, so that each x0 value is checked on its own (D = 1 per call).
    for (int64_t j = 0; j < D; ++j) {
      CAPTURE(values[size_t(j)]);
      Tensor x0({2 * T, 1}), xt({2 * T, 1}), pred({2 * T, 1});
      for (int64_t i = 0; i < 2 * T; ++i) {
        x0[i] = b.x0[i * D + j];
        xt[i] = b.xt[i * D + j];
        pred[i] = den.output("pred")[i * D + j];
      }
      NodeHarness h("diffusion.vlb_terms", {{"prediction", prediction}, {"variance", "beta"}, {"decoder", "continuous"}},
                    {{"x0", x0}, {"xt", xt}, {"pred", pred}, {"t", b.t}, {"schedule", table}});
      h.forward(0);
      double bound = h.output("prior")[0];
      for (int64_t i = 0; i < 2 * T; ++i) bound += 0.5 * h.output("terms")[i];
      const double x = values[size_t(j)];
      const double exact = (0.5 * std::log(2 * M_PI) + 0.5 * x * x) / kLn2;
      // Float32 inputs: x0_hat carries ~1e-7 / a relative error, largest where a = sqrt(abar) is small, but
      // there c1 (x0 - x0_hat) is scaled by c1 ~ beta sqrt(abar_{t-1}) / (1 - abar) ~ a; the 2000 terms
      // then add up rounding of ~1e-7 each (measured: |bound - exact| < 2e-5 bits). 1e-4 bits is 0.003 %.
      INFO("bound ", bound, " exact ", exact);
      CHECK(std::fabs(bound - exact) < 1e-4);
    }
  }
}

TEST_CASE("vlb_terms: a point mass with its exact x0 and posterior variance has no KL terms and the bound L_T + L_0") {
  const Tensor table = schedule_table();
  const LinearSchedule S;
  const float c = float(100 / 255.0 * 2 - 1);
  const std::vector<float> tv{0, 1, 5, 500, 999};
  const int64_t N = int64_t(tv.size());
  Tensor x0({N, 1}), xt({N, 1}), pred({N, 1});
  x0.fill(c);
  pred.fill(c);
  for (int64_t i = 0; i < N; ++i) xt[i] = float(S.a(int64_t(tv[size_t(i)])) * c + 0.7 * S.b(int64_t(tv[size_t(i)])));
  NodeHarness h("diffusion.vlb_terms", {{"prediction", "x0"}, {"variance", "posterior"}},
                {{"x0", x0}, {"xt", xt}, {"pred", pred}, {"t", timesteps(tv)}, {"schedule", table}});
  h.forward(0);
  for (int64_t i = 1; i < N; ++i) CHECK(std::fabs(h.output("terms")[i]) < 1e-6);
  // L_0: the N(c, var_1) mass of c's bin, 2 Phi(h / sd) - 1.
  const double sd = std::sqrt(S.beta[1] * (1 - S.abar[0]) / (1 - S.abar[1]));
  const double p = std::erf(1.0 / 255 / sd / std::sqrt(2.0));
  CHECK(h.output("terms")[0] == doctest::Approx(-std::log(p) / kLn2).epsilon(1e-5));
}

TEST_CASE("vlb_timesteps and eval.nll: mode all sums the T terms, mode sampled averages T x the term") {
  const Tensor table = schedule_table(10);
  const int64_t N = 3, T = 10;
  Tensor like({N, 2});
  NodeHarness ts("diffusion.vlb_timesteps", {{"mode", "all"}}, {{"like", like}, {"schedule", table}}, 1, T);
  Tensor terms({N}), prior({N});
  prior[0] = 1.f, prior[1] = 2.f, prior[2] = 3.f;
  NodeHarness nll("eval.nll", {{"mode", "all"}},
                  {{"terms", terms}, {"prior", prior}, {"t", Tensor({N})}, {"schedule", table}}, 1, T);
  for (int64_t k = 0; k < T; ++k) {
    ts.forward(k);
    CHECK(ts.output("t")[0] == float(T - 1 - k));
    // term of sample i at t: (i + 1) (t + 1) / 100
    for (int64_t i = 0; i < N; ++i) terms[i] = float((i + 1) * (ts.output("t")[0] + 1) / 100.0);
    nll.set_input("terms", terms);
    nll.set_input("t", ts.output("t"));
    nll.forward(k);
  }
  // bound_i = prior_i + (i + 1) 55 / 100: 1.55, 3.1, 4.65.
  CHECK(nll.output("bpd")[0] == doctest::Approx((1.55 + 3.1 + 4.65) / 3).epsilon(1e-6));

  // Sampled: uniform t, covering 0..T-1; the estimate of a constant term c is prior + T c exactly.
  const int64_t K = 400;
  NodeHarness st("diffusion.vlb_timesteps", {{"mode", "sampled"}, {"draws", K}}, {{"like", like}, {"schedule", table}}, 3, K);
  NodeHarness sn("eval.nll", {{"mode", "sampled"}},
                 {{"terms", terms}, {"prior", prior}, {"t", Tensor({N})}, {"schedule", table}}, 1, K);
  std::vector<int> seen(size_t(T), 0);
  terms.fill(0.01f);
  for (int64_t k = 0; k < K; ++k) {
    st.forward(k);
    for (int64_t i = 0; i < N; ++i) seen[size_t(st.output("t")[i])]++;
    sn.set_input("terms", terms);
    sn.set_input("t", st.output("t"));
    sn.forward(k);
  }
  for (int c : seen) CHECK(c > 0);
  CHECK(sn.output("bpd")[0] == doctest::Approx(2.0 + 0.1).epsilon(1e-6));
}
