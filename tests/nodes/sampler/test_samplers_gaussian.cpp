// tests/nodes/sampler/test_samplers_gaussian.cpp — every sampler against the closed forms of Gaussian
// data (sampler_chain.hpp): the deterministic ones against the exact probability-flow ODE solution
// from the same x_T, with the error falling at the solver's order when the steps double; the
// stochastic ones' output moments against the exact reverse SDE's; and all of them on a
// zero-terminal-SNR schedule with v prediction, where x_T is exactly the marginal at pure noise.
//
// Then the samplers end to end in pipelines/examples/gaussian_ddpm.json and gaussian_ddim.json: with
// the exact denoiser of N(mu, s^2) they must produce samples with the mean and variance that the
// sampler's own (exact, closed-form) output distribution predicts, and that distribution must be
// close to N(mu, s^2) as far as the sampler's discretisation allows. Why a closed form exists: for
// Gaussian data the optimal prediction is affine in x_t, so every step is x <- A x + B + sigma z and
// the output of the whole chain, started from x_T ~ N(0, 1), is exactly Gaussian with a mean and a
// variance computed below in double from the textbook formulas (independently of the node code). All
// elements are i.i.d. (every node acts elementwise with independent noise), so with M draws the
// sample mean has standard error sqrt(var / M) and the sample variance about var sqrt(2 / (M - 1)).
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
#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

namespace {

// x_T on a grid of values: the samplers act elementwise, so each element is one starting point.
runtime::Tensor grid_x(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = -3.f + 6.f * float(i) / float(n - 1);
  return runtime::Tensor({n, 1, 1, 1}, v);
}

// Largest |sampler - exact ODE| over the x_T grid.
double ode_error(const Chain& c) {
  const runtime::Tensor x_T = grid_x(33);
  const ChainResult r = run_chain(c, x_T);
  const int64_t K = r.points.dim(1) - 1, n = K + 1;
  const double a0 = r.points[1 * n + 0], b0 = r.points[2 * n + 0];
  const double aL = r.points[1 * n + K - 1], bL = r.points[2 * n + K - 1];
  double err = 0;
  for (int64_t i = 0; i < x_T.numel(); ++i)
    err = std::max(err, std::fabs(r.x[i] - exact_ode(x_T[i], c.mu, c.s, a0, b0, aL, bL)));
  return err;
}

struct Moments {
  double mean, var;
};

Moments moments(const runtime::Tensor& x) {
  double sum = 0, ss = 0;
  for (int64_t i = 0; i < x.numel(); ++i) sum += x[i];
  const double mean = sum / double(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i) ss += (x[i] - mean) * (x[i] - mean);
  return {mean, ss / double(x.numel() - 1)};
}

// ---- the example pipelines (gaussian_ddpm.json, gaussian_ddim.json)

constexpr int kT = 1000;

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

// The DDIM timesteps, ascending: leading i floor(T / K) or trailing round(T - i T / K) - 1.
std::vector<int> ddim_seq(int K, bool trailing) {
  std::vector<int> seq(size_t(K), 0);
  for (int i = 0; i < K; ++i)
    seq[size_t(i)] = trailing ? int(std::nearbyint(kT - i * (double(kT) / K))) - 1 : i * (kT / K);
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
  runtime::ExecutorOptions eo;
  eo.threads = 1;
  runtime::Executor ex(g, eo);
  ex.run();
  return ex.output("x").clone();
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

struct DataCase {
  double mu, s;
};
constexpr DataCase kCases[] = {{0.5, 0.3}, {-1.0, 2.0}};
constexpr int64_t kN = 1024;  // samples of [1, 4, 4]: M = 16384 i.i.d. draws

constexpr int64_t kM = 65536;  // i.i.d. draws per stochastic run

// Output moments of a chain started from x_T ~ N(0, 1) against `exact` within 5 standard errors
// plus `bias` (relative to s and s^2: the sampler's discretisation error when `exact` is the
// continuous limit, 0 when it is the sampler's own discrete chain).
Moments check_moments(const Chain& c, SdeMoments exact, double bias, const std::string& what) {
  const runtime::Tensor x_T = normal({kM, 1, 1, 1}, 99);
  const Moments got = moments(run_chain(c, x_T).x);
  const double se_mean = std::sqrt(exact.var / kM), se_var = exact.var * std::sqrt(2.0 / (kM - 1));
  MESSAGE(c.sampler << " " << c.steps << " " << c.spacing << " " << c.prediction << std::string(c.zero_snr ? " zero-snr" : "")
                    << ": mean " << got.mean << " var " << got.var << "; " << what << " mean " << exact.mean
                    << " var " << exact.var);
  CHECK(std::fabs(got.mean - exact.mean) < 5 * se_mean + bias * c.s);
  CHECK(std::fabs(got.var - exact.var) < 5 * se_var + bias * c.s * c.s);
  return got;
}

}  // namespace

TEST_CASE("deterministic samplers: the error against the exact ODE solution falls at the solver's order") {
  struct Order {
    const char* sampler;
    double order;
  };
  // Per step (Heun's K steps take 2K - 1 evaluations), on the Karras grid; UniPC's corrector gives
  // it more than its nominal 2 there. At 8 steps the multistep solvers are not yet in their
  // asymptotic range, so the rates are taken from 16 steps on.
  for (const Order o : {Order{"euler", 1}, Order{"ddim", 1}, Order{"heun", 2}, Order{"dpmpp_2m", 2},
                        Order{"unipc", 2}}) {
    for (const char* prediction : {"eps", "x0", "v"}) {
      CAPTURE(std::string(o.sampler));
      CAPTURE(std::string(prediction));
      Chain c;
      c.sampler = o.sampler;
      c.prediction = prediction;
      std::vector<double> err;
      for (int64_t K : {16, 32, 64}) {
        c.steps = K;
        err.push_back(ode_error(c));
      }
      const double rate1 = std::log2(err[0] / err[1]), rate2 = std::log2(err[1] / err[2]);
      MESSAGE(std::string(o.sampler) << " " << std::string(prediction) << ": error at 16/32/64 steps " << err[0] << " " << err[1]
                                     << " " << err[2] << ", observed order " << rate1 << ", " << rate2);
      CHECK(rate1 > o.order - 0.3);
      CHECK(rate2 > o.order - 0.3);
    }
  }
}

TEST_CASE("deterministic samplers on every spacing: close to the exact ODE solution, closer with more steps") {
  for (const char* sampler : {"euler", "heun", "dpmpp_2m", "unipc"}) {
    for (const char* spacing : {"leading", "trailing", "linspace", "karras", "exponential"}) {
      CAPTURE(std::string(sampler));
      CAPTURE(std::string(spacing));
      Chain c;
      c.sampler = sampler;
      c.spacing = spacing;
      c.steps = 50;
      const double err50 = ode_error(c);
      c.steps = 200;
      const double err200 = ode_error(c);
      MESSAGE(std::string(sampler) << " " << std::string(spacing) << ": max error at 50 steps " << err50 << ", at 200 " << err200);
      // x_T spans [-3, 3]; the multistep solvers pay for the uniform-t grids' long last step.
      CHECK(err50 < 0.1);
      CHECK(err200 < err50 / (std::string(sampler) == "euler" ? 3.0 : 6.0));
    }
  }
}

TEST_CASE("stochastic samplers: output moments equal their discrete chain's and approach the reverse SDE's") {
  struct Case {
    const char* sampler;
    int64_t steps;
    const char* spacing;
    runtime::Json attrs;
    double eta;
    bool posterior;
    double bias;  // stated distance of the discrete chain from the continuous limit
  };
  const std::vector<Case> cases = {
      {"ddpm", 1000, "leading", {{"variance", "beta"}}, 1, false, 0.01},
      {"ddpm", 1000, "leading", {{"variance", "posterior"}}, 1, true, 0.01},
      {"ddpm", 100, "linspace", {{"variance", "posterior"}}, 1, true, 0.15},
      {"ddpm", 100, "linspace", {{"variance", "beta"}}, 1, false, 0.05},
      {"euler_a", 100, "karras", runtime::Json::object(), 1, false, 0.15},
      {"euler_a", 400, "karras", runtime::Json::object(), 1, false, 0.04},
      {"ddim", 100, "trailing", {{"eta", 0.5}}, 0.5, false, 0.15},
      {"dpmpp_2m_sde", 50, "karras", runtime::Json::object(), 1, false, 0.05},
      {"dpmpp_2m_sde", 50, "karras", {{"eta", 0.5}}, 0.5, false, 0.05},
  };
  for (const Case& k : cases) {
    for (const char* prediction : {"eps", "v"}) {
      CAPTURE(std::string(k.sampler));
      CAPTURE(k.steps);
      CAPTURE(std::string(prediction));
      Chain c;
      c.sampler = k.sampler;
      c.steps = k.steps;
      c.spacing = k.spacing;
      c.attrs = k.attrs;
      c.prediction = prediction;
      const runtime::Tensor points = run_chain(c, grid_x(2)).points;
      const int64_t n = points.dim(1);
      check_moments(c, chain_moments(k.sampler, points, c.mu, c.s, k.eta, k.posterior), 0.0, "its chain");
      check_moments(c, exact_sde(c.mu, c.s, points[n], points[2 * n]), k.bias, "reverse SDE");
    }
  }
}

TEST_CASE("every sampler on a zero-terminal-SNR schedule with v prediction samples N(mu, s^2)") {
  // abar_{T-1} = 0: x_T ~ N(0, 1) is exactly the marginal at the first (trailing) grid point, so the
  // ODE and the SDE both give N(mu, s^2) in the limit; 50 first-order steps lose some variance.
  struct Case {
    const char* sampler;
    double bias;
  };
  for (const Case k : {Case{"ddpm", 0.03}, Case{"ddim", 0.12}, Case{"euler", 0.12}, Case{"euler_a", 0.2},
                       Case{"heun", 0.03}, Case{"dpmpp_2m", 0.03}, Case{"dpmpp_2m_sde", 0.06}, Case{"unipc", 0.03}}) {
    CAPTURE(std::string(k.sampler));
    Chain c;
    c.sampler = k.sampler;
    c.steps = 50;
    c.spacing = "trailing";
    c.prediction = "v";
    c.zero_snr = true;
    c.mu = -0.3;
    c.s = 0.7;
    const ChainResult probe = run_chain(c, grid_x(2));
    REQUIRE(probe.points[probe.points.dim(1)] == 0.f);  // a = 0 at the first grid point
    check_moments(c, {c.mu, c.s * c.s}, k.bias, "data");
  }
}

TEST_CASE("zero-terminal-SNR: an eps prediction at pure noise is an error that says to use v") {
  Chain c;
  c.sampler = "dpmpp_2m";
  c.steps = 10;
  c.spacing = "trailing";
  c.zero_snr = true;
  c.prediction = "eps";
  std::string msg;
  try {
    run_chain(c, grid_x(4));
  } catch (const std::exception& e) {
    msg = e.what();
  }
  CHECK(msg.find("prediction") != std::string::npos);
  CHECK(msg.find("v") != std::string::npos);
}

TEST_CASE("sampler reference: the DDIM chain with K = T, eta = 1 is the DDPM chain with the posterior variance") {
  // Checks the test's own closed forms against each other (Song et al.: eta = 1, all steps = DDPM).
  for (const DataCase& c : kCases) {
    const Moments a = ddim_chain(c.mu, c.s, 1.0, kT), b = ddpm_chain(c.mu, c.s, true);
    CHECK(a.mean == doctest::Approx(b.mean).epsilon(1e-9));
    CHECK(a.var == doctest::Approx(b.var).epsilon(1e-9));
  }
  // And the 1000-step DDPM chain is within 1% of the data variance (it is not exact: sigma^2 = beta
  // ignores Var(x0 | x_t)), 50-step DDIM further off (printed by the sampling tests).
  for (const DataCase& c : kCases) {
    CHECK(std::fabs(ddpm_chain(c.mu, c.s, false).var / (c.s * c.s) - 1) < 0.01);
    CHECK(std::fabs(ddpm_chain(c.mu, c.s, false).mean - c.mu) < 0.001);
  }
}

TEST_CASE("gaussian_ddpm.json: 1000-step DDPM with the optimal denoiser samples N(mu, s^2)") {
  for (const DataCase& c : kCases) {
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

TEST_CASE("gaussian_ddim.json: 50-step DDIM (eta 0 and 1, leading and trailing) samples its exact distribution") {
  for (const DataCase& c : kCases) {
    for (double eta : {0.0, 1.0}) {
      for (const char* spacing : {"leading", "trailing"}) {
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
