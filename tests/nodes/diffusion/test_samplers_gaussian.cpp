// tests/nodes/diffusion/test_samplers_gaussian.cpp — samplers end to end on Gaussian data: pipelines/examples/gaussian_ddpm.json
// and gaussian_ddim.json, with the exact denoiser of N(mu, s^2), must produce
// samples with the mean and variance that the sampler's own (exact,
// closed-form) output distribution predicts, and that distribution must be
// close to N(mu, s^2) as far as the sampler's discretisation allows.
//
// Why a closed form exists: for Gaussian data the optimal prediction is affine
// in x_t, so every step is x <- A x + B + sigma z and the output of the whole
// chain, started from x_T ~ N(0, 1), is exactly Gaussian with a mean and a
// variance computed below in double from the textbook formulas (independently
// of the node code). All elements are i.i.d. (every node acts elementwise with
// independent noise), so with M draws the sample mean has standard error
// sqrt(var / M) and the sample variance about var sqrt(2 / (M - 1)).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using noiseflow::test::LinearSchedule;

namespace {

constexpr int kT = 1000;

struct Moments {
  double mean = 0, var = 0;
};

// E[x0 | x_t] = k x_t + o for data N(mu, s^2).
void x0_affine(const LinearSchedule& S, int t, double mu, double s, double& k, double& o) {
  const double a = std::sqrt(S.abar[t]), D = S.abar[t] * s * s + 1.0 - S.abar[t];
  k = a * s * s / D;
  o = mu - a * s * s / D * a * mu;
}

// Output distribution of the 1000-step DDPM chain from x_T ~ N(0, 1).
Moments ddpm_chain(double mu, double s, bool posterior) {
  const LinearSchedule S;
  Moments m{0.0, 1.0};
  for (int t = kT - 1; t >= 0; --t) {
    const double ap = t > 0 ? S.abar[t - 1] : 1.0;
    const double c1 = std::sqrt(ap) * S.beta[t] / (1 - S.abar[t]);
    const double c2 = std::sqrt(S.alpha[t]) * (1 - ap) / (1 - S.abar[t]);
    double k, o;
    x0_affine(S, t, mu, s, k, o);
    const double A = c1 * k + c2, B = c1 * o;
    const double var = t == 0 ? 0.0 : posterior ? S.beta[t] * (1 - ap) / (1 - S.abar[t]) : S.beta[t];
    m = {A * m.mean + B, A * A * m.var + var};
  }
  return m;
}

// The DDIM timesteps, ascending.
std::vector<int> ddim_seq(int K, bool trailing) {
  std::vector<int> seq(size_t(K), 0);
  for (int i = 0; i < K; ++i)
    seq[size_t(i)] = trailing ? int(std::nearbyint(kT - i * (double(kT) / K))) - 1 : i * kT / K;
  std::sort(seq.begin(), seq.end());
  return seq;
}

// Output distribution of the K-step DDIM chain (Song et al. eq. 12) from x_T ~ N(0, 1).
Moments ddim_chain(double mu, double s, double eta, int K, bool trailing = false) {
  const LinearSchedule S;
  const std::vector<int> seq = ddim_seq(K, trailing);
  Moments m{0.0, 1.0};
  for (int j = K - 1; j >= 0; --j) {
    const int t = seq[j], tp = j > 0 ? seq[j - 1] : -1;
    const double at = S.abar[t], ap = tp >= 0 ? S.abar[tp] : 1.0;
    const double var = eta * eta * (1 - ap) / (1 - at) * (1 - at / ap);
    const double c = std::sqrt(std::max(0.0, 1 - ap - var));
    double k, o;
    x0_affine(S, t, mu, s, k, o);
    const double a = std::sqrt(at), b = std::sqrt(1 - at);
    // x0_hat = k x + o, eps_hat = (x - a x0_hat) / b.
    const double A = std::sqrt(ap) * k + c * (1 - a * k) / b;
    const double B = std::sqrt(ap) * o - c * a * o / b;
    m = {A * m.mean + B, A * A * m.var + var};
  }
  return m;
}

std::string example(const std::string& name) {
  return std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/" + name;
}

// Runs a pipeline file with params overridden; returns the final state "x".
runtime::Tensor run(const std::string& file, std::map<std::string, graph::Json> overrides,
                    std::optional<uint64_t> seed = {}) {
  graph::LoadOptions lo = noiseflow::test::load_options(std::move(overrides));
  lo.seed = seed;
  graph::Graph g = graph::load_pipeline(file, lo);
  runtime::Executor ex(g, {.threads = 1});
  ex.run();
  return ex.output("x").clone();
}

Moments moments(const runtime::Tensor& x) {
  const int64_t M = x.numel();
  double sum = 0;
  for (int64_t i = 0; i < M; ++i) sum += x[i];
  const double mean = sum / double(M);
  double ss = 0;
  for (int64_t i = 0; i < M; ++i) ss += (x[i] - mean) * (x[i] - mean);
  return {mean, ss / double(M - 1)};
}

// The sample moments agree with the chain's exact ones within 5 standard
// errors, and with the data's N(mu, s^2) within 5 standard errors plus the
// chain's own bias |exact - target| (the discretisation error, printed).
void check_samples(const runtime::Tensor& x, Moments exact, double mu, double s, const std::string& what) {
  const double M = double(x.numel());
  const Moments got = moments(x);
  const double se_mean = std::sqrt(exact.var / M), se_var = exact.var * std::sqrt(2.0 / (M - 1));
  MESSAGE(what << ": M = " << M << "  mean " << got.mean << " (exact " << exact.mean << ", data " << mu
               << ", 5 se " << 5 * se_mean << ")  var " << got.var << " (exact " << exact.var << ", data " << s * s
               << ", 5 se " << 5 * se_var << ")");
  CHECK(std::fabs(got.mean - exact.mean) < 5 * se_mean);
  CHECK(std::fabs(got.var - exact.var) < 5 * se_var);
  CHECK(std::fabs(got.mean - mu) < 5 * s / std::sqrt(M) + std::fabs(exact.mean - mu));
  CHECK(std::fabs(got.var - s * s) < 5 * s * s * std::sqrt(2.0 / (M - 1)) + std::fabs(exact.var - s * s));
}

struct Case {
  double mu, s;
};
constexpr Case kCases[] = {{0.5, 0.3}, {-1.0, 2.0}};
constexpr int64_t kN = 1024;  // samples of [1, 4, 4]: M = 16384 i.i.d. draws

}  // namespace

TEST_CASE("sampler reference: the DDIM chain with K = T, eta = 1 is the DDPM chain with the posterior variance") {
  // Checks the test's own closed forms against each other (Song et al.: eta = 1, all steps = DDPM).
  for (const Case& c : kCases) {
    const Moments a = ddim_chain(c.mu, c.s, 1.0, kT), b = ddpm_chain(c.mu, c.s, true);
    CHECK(a.mean == doctest::Approx(b.mean).epsilon(1e-9));
    CHECK(a.var == doctest::Approx(b.var).epsilon(1e-9));
  }
  // And the 1000-step DDPM chain is within 1% of the data variance (it is not exact: sigma^2 = beta
  // ignores Var(x0 | x_t)), 50-step DDIM further off (printed by the sampling tests).
  for (const Case& c : kCases) {
    CHECK(std::fabs(ddpm_chain(c.mu, c.s, false).var / (c.s * c.s) - 1) < 0.01);
    CHECK(std::fabs(ddpm_chain(c.mu, c.s, false).mean - c.mu) < 0.001);
  }
}

TEST_CASE("gaussian_ddpm.json: 1000-step DDPM with the optimal denoiser samples N(mu, s^2)") {
  for (const Case& c : kCases) {
    for (const char* variance : {"beta", "posterior"}) {
      CAPTURE(c.mu);
      CAPTURE(c.s);
      CAPTURE(std::string(variance));
      runtime::Tensor x = run(example("gaussian_ddpm.json"),
                              {{"n", kN}, {"mu", c.mu}, {"sigma", c.s}, {"variance", variance}});
      REQUIRE(x.shape() == graph::Shape{kN, 1, 4, 4});
      check_samples(x, ddpm_chain(c.mu, c.s, std::string(variance) == "posterior"), c.mu, c.s,
                    std::string("DDPM ") + variance + " mu " + std::to_string(c.mu) + " s " + std::to_string(c.s));
    }
  }
}

TEST_CASE("gaussian_ddim.json: 50-step DDIM (eta 0 and 1, uniform and trailing) samples its exact distribution") {
  for (const Case& c : kCases) {
    for (double eta : {0.0, 1.0}) {
      for (const char* spacing : {"uniform", "trailing"}) {
        CAPTURE(c.mu);
        CAPTURE(c.s);
        CAPTURE(eta);
        CAPTURE(std::string(spacing));
        runtime::Tensor x = run(example("gaussian_ddim.json"),
                                {{"n", kN}, {"mu", c.mu}, {"sigma", c.s}, {"eta", eta}, {"spacing", spacing}});
        REQUIRE(x.shape() == graph::Shape{kN, 1, 4, 4});
        const Moments exact = ddim_chain(c.mu, c.s, eta, 50, std::string(spacing) == "trailing");
        check_samples(x, exact, c.mu, c.s,
                      std::string("DDIM-50 ") + spacing + " eta " + std::to_string(eta) + " mu " +
                          std::to_string(c.mu) + " s " + std::to_string(c.s));
        // The stated discretisation bias of 50 DDIM steps: the mean within 2% of s, the variance
        // at most 30% low (Var(x0 | x_t) is ignored on long steps; it vanishes as K -> T).
        CHECK(std::fabs(exact.mean - c.mu) < 0.02 * c.s);
        CHECK(exact.var < c.s * c.s);
        CHECK(exact.var > 0.70 * c.s * c.s);
      }
    }
  }
}

TEST_CASE("gaussian sampler pipelines: the same seed gives identical bytes, another seed differs") {
  for (const char* file : {"gaussian_ddpm.json", "gaussian_ddim.json"}) {
    CAPTURE(std::string(file));
    std::map<std::string, graph::Json> o{{"n", 8}, {"mu", 0.5}, {"sigma", 0.3}};
    if (std::string(file) == "gaussian_ddim.json") o["eta"] = 1.0;
    const runtime::Tensor a = run(example(file), o, 7), b = run(example(file), o, 7), c = run(example(file), o, 8);
    REQUIRE(a.numel() == 8 * 16);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * size_t(a.numel())) == 0);
    CHECK(std::memcmp(a.data(), c.data(), sizeof(float) * size_t(a.numel())) != 0);
  }
}
