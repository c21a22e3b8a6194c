// tests/nodes/sampler/test_samplers_gaussian.cpp — every sampler against the closed forms of Gaussian
// data (sampler_chain.hpp): the deterministic ones against the exact probability-flow ODE solution
// from the same x_T, with the error falling at the solver's order when the steps double; the
// stochastic ones' output moments against the exact reverse SDE's; and all of them on a
// zero-terminal-SNR schedule with v prediction, where x_T is exactly the marginal at pure noise.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

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
