// tests/nodes/sampler/sampler_chain.hpp — a sampler driven tick by tick through NodeHarness, with the
// exact denoiser of N(mu, s^2) data in place of a net, from a starting x the test chooses; and the
// closed forms of what the probability-flow ODE and the reverse SDE give for such data. Also one step
// of a step node on inputs the test chooses: a grid of given timesteps, the step's inputs at a tick.
//
// For data x0 ~ N(mu, s^2) the ODE in sigma space (x~ = x / a) keeps (x~ - mu) / sqrt(s^2 + sigma^2)
// constant, so from grid point 0 (a_0, sigma_0) to the last grid point L the exact solution is
//   x~_L = mu + sqrt(s^2 + sigma_L^2) / sqrt(s^2 + sigma_0^2) (x_T / a_0 - mu)
// and every sampler ends with x0_hat at L: E[x0 | x~_L] = mu + s^2 / (s^2 + sigma_L^2) (x~_L - mu). The
// exact reverse SDE instead samples p(x0 | x_T) = N(mu + a_0 s^2 (x_T - a_0 mu) / D, s^2 b_0^2 / D),
// D = a_0^2 s^2 + b_0^2, which for x_T ~ N(0, 1) has the moments of exact_sde().
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

namespace noiseflow::test {

/// The [3, K+1] grid (sampler.timesteps.points) through exactly the timesteps `ts` of a schedule table,
/// largest first: t, a = sqrt(abar_t), b = sqrt(1 - abar_t) from the table's rows as sampler.timesteps
/// reads them, then the data point (t = -1, a = 1, b = 0). {t, t_prev} is one step from t to t_prev,
/// {t} one step from t to the data.
inline runtime::Tensor points_of(const runtime::Tensor& table, const std::vector<int64_t>& ts) {
  using namespace nodes::diffusion;
  const ScheduleTable s(table);
  const int64_t n = int64_t(ts.size()) + 1;
  runtime::Tensor p({3, n});
  for (int64_t k = 0; k < n; ++k) {
    const bool data = k + 1 == n;
    p.data()[k] = data ? -1.f : float(ts[size_t(k)]);
    p.data()[n + k] = data ? 1.f : s.at(kSqrtAlphaBar, ts[size_t(k)]);
    p.data()[2 * n + k] = data ? 0.f : s.at(kSqrtOneMinusAlphaBar, ts[size_t(k)]);
  }
  return p;
}

/// The grid of sampler.timesteps (its `points`) for a batch-free `like` [1, 1].
inline runtime::Tensor timesteps_points(const runtime::Tensor& table, const std::string& sampler, int64_t steps,
                                        const std::string& spacing = "leading") {
  runtime::NodeHarness h("sampler.timesteps", {{"sampler", sampler}, {"steps", steps}, {"spacing", spacing}},
                         {{"like", runtime::Tensor({1, 1})}, {"schedule", table}});
  h.forward(0);
  return h.output("points").clone();
}

/// Samples [i0, i0 + n) of a plain [N, ...] tensor, copied into a tensor [n, ...].
inline runtime::Tensor rows(const runtime::Tensor& x, int64_t i0, int64_t n = 1) {
  runtime::Shape s = x.shape();
  const int64_t inner = x.numel() / s[0];
  s[0] = n;
  runtime::Tensor r(s);
  std::copy_n(x.data() + i0 * inner, n * inner, r.data());
  return r;
}

/// The inputs of a one-evaluation step node (sampler.ddpm, sampler.ddim, ...) at tick `tick` of the grid
/// `points`, which steps from grid point `tick` to the next: x and pred [N, ...], t = the grid's t at the
/// tick for every sample, the grid, and a zero history of `history` slots.
inline runtime::NamedTensors step_inputs(const runtime::Tensor& x, const runtime::Tensor& pred,
                                         const runtime::Tensor& points, int64_t tick, int64_t history = 1) {
  const int64_t N = x.dim(0);
  runtime::Tensor t({N});
  t.fill(points[tick]);
  runtime::Shape h{history};
  for (int64_t d : x.shape()) h.push_back(d);
  runtime::Tensor hist(h);
  hist.zero();
  return {{"x", x}, {"pred", pred}, {"t", t}, {"points", points}, {"history", hist}};
}

struct Chain {
  std::string sampler = "euler";
  int64_t steps = 20;
  std::string spacing = "karras";
  std::string prediction = "eps";
  double mu = 0.5, s = 0.5;
  std::string kind = "linear";
  bool zero_snr = false;
  runtime::Json attrs = runtime::Json::object();  ///< the step node's own (eta, variance)
  uint64_t seed = 1;
};

/// The grid the sampler used (rows t, a, b) and its output from x_T.
struct ChainResult {
  runtime::Tensor x, points;
};

inline runtime::Tensor schedule_for(const Chain& c) {
  runtime::NodeHarness h("diffusion.schedule", {{"kind", c.kind}, {"T", 1000}, {"zero_terminal_snr", c.zero_snr}}, {});
  h.forward();
  return h.output("table").clone();
}

inline ChainResult run_chain(const Chain& c, const runtime::Tensor& x_T) {
  const runtime::Tensor sched = schedule_for(c);
  runtime::NodeHarness ts("sampler.timesteps", {{"sampler", c.sampler}, {"steps", c.steps}, {"spacing", c.spacing}},
                          {{"like", x_T}, {"schedule", sched}}, c.seed);
  const int64_t ticks = c.sampler == "heun" ? 2 * c.steps - 1 : c.steps;
  ts.forward(0);
  runtime::Tensor x = x_T.clone(), t = ts.output("t").clone(), hist = ts.output("history").clone();
  runtime::NodeHarness den("diffusion.gaussian_denoiser", {{"mu", c.mu}, {"sigma", c.s}, {"prediction", c.prediction}},
                           {{"x", x}, {"t", t}, {"schedule", sched}}, c.seed, ticks);
  runtime::Json attrs = c.attrs;
  attrs["prediction"] = c.prediction;
  runtime::NodeHarness step("sampler." + c.sampler, attrs,
                            {{"x", x}, {"pred", x}, {"t", t}, {"points", ts.output("points")}, {"history", hist}},
                            c.seed, ticks);
  for (int64_t k = 0; k < ticks; ++k) {
    ts.forward(k);
    den.set_input("x", x);
    den.set_input("t", ts.output("t"));
    den.forward(k);
    step.set_input("x", x);
    step.set_input("pred", den.output("pred"));
    step.set_input("t", ts.output("t"));
    step.set_input("points", ts.output("points"));
    step.set_input("history", hist);
    step.forward(k);
    x = step.output("x_next").clone();
    hist = step.output("history").clone();
  }
  return {x, ts.output("points").clone()};
}

/// The exact ODE solution over the grid followed by the final x0_hat, from x_T, for grid point 0
/// (a0, b0) and the last grid point (aL, bL).
inline double exact_ode(double x_T, double mu, double s, double a0, double b0, double aL, double bL) {
  // (x_T / a0 - mu) / sqrt(s^2 + sigma_0^2), written to stay finite at pure noise (a0 = 0).
  const double c = (x_T - a0 * mu) / std::sqrt(a0 * a0 * s * s + b0 * b0);
  const double sigL = bL / aL;
  const double xL = mu + std::sqrt(s * s + sigL * sigL) * c;
  return mu + s * s / (s * s + sigL * sigL) * (xL - mu);
}

struct SdeMoments {
  double mean, var;
};

/// Moments of p(x0 | x_T) mixed over x_T ~ N(0, 1), x_T at the level (a0, b0).
inline SdeMoments exact_sde(double mu, double s, double a0, double b0) {
  const double D = a0 * a0 * s * s + b0 * b0, k = a0 * s * s / D;
  return {mu - k * a0 * mu, s * s * b0 * b0 / D + k * k};
}

}  // namespace noiseflow::test

namespace noiseflow::test {

/// The exact output moments of a stochastic sampler's own discrete chain for Gaussian data, from
/// x_T ~ N(0, 1), computed in double from the textbook (sigma-space) formulas of each sampler,
/// independently of the nodes' VP-form code. The chain is linear-Gaussian in (x, the previous x0_hat):
/// a mean vector and a 2 x 2 covariance go through every step.
struct LinearGaussian {
  double m[2] = {0.0, 0.0};
  double C[2][2] = {{1.0, 0.0}, {0.0, 0.0}};
  /// (x, prev) <- M (x, prev) + c, plus noise of variance q on x.
  void apply(const double M[2][2], const double c[2], double q) {
    double nm[2], nC[2][2];
    for (int i = 0; i < 2; ++i) nm[i] = M[i][0] * m[0] + M[i][1] * m[1] + c[i];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        double v = 0;
        for (int k = 0; k < 2; ++k)
          for (int l = 0; l < 2; ++l) v += M[i][k] * C[k][l] * M[j][l];
        nC[i][j] = v;
      }
    nC[0][0] += q;
    for (int i = 0; i < 2; ++i) {
      m[i] = nm[i];
      for (int j = 0; j < 2; ++j) C[i][j] = nC[i][j];
    }
  }
};

/// E[x0 | x~] = mu + s^2 / (s^2 + sigma^2) (x~ - mu) as k x~ + o.
inline void x0_of_scaled(double mu, double s, double sigma, double& k, double& o) {
  k = s * s / (s * s + sigma * sigma);
  o = mu * (1.0 - k);
}

/// Moments of the chain of `sampler` (ddpm with `posterior` variance, euler_a / ddim with `eta`,
/// dpmpp_2m_sde with `eta`) over the grid `points` [3, K+1].
inline SdeMoments chain_moments(const std::string& sampler, const runtime::Tensor& points, double mu, double s,
                                double eta, bool posterior) {
  const int64_t n = points.dim(1), K = n - 1;
  auto A = [&](int64_t k) { return double(points[n + k]); };
  auto B = [&](int64_t k) { return double(points[2 * n + k]); };
  LinearGaussian g;  // in VP x; x~ = x / a
  for (int64_t i = 0; i < K; ++i) {
    const double a = A(i), b = B(i), a2 = A(i + 1), b2 = B(i + 1), sig = b / a, sig2 = b2 / a2;
    double k, o;
    x0_of_scaled(mu, s, sig, k, o);
    const double kx = k / a;  // x0_hat = kx x + o
    double M[2][2] = {{0, 0}, {kx, 0}}, c[2] = {0, o}, q = 0;
    if (b2 == 0) {  // to the data: x0_hat
      M[0][0] = kx;
      c[0] = o;
    } else if (sampler == "ddpm") {
      // Ho et al. with the subsequence's betas: beta' = 1 - abar_i / abar_{i+1}.
      const double abar = a * a, abar2 = a2 * a2, beta = 1 - abar / abar2;
      const double c0 = std::sqrt(abar2) * beta / (1 - abar), cx = std::sqrt(1 - beta) * (1 - abar2) / (1 - abar);
      M[0][0] = c0 * kx + cx;
      c[0] = c0 * o;
      q = posterior ? beta * (1 - abar2) / (1 - abar) : beta;
    } else if (sampler == "euler_a" || sampler == "ddim") {
      // k-diffusion: sigma_up, sigma_down; x~' = x~ + (sigma_down - sigma) d, d = (x~ - D) / sigma; + sigma_up z.
      const double up = std::min(sig2, eta * std::sqrt(sig2 * sig2 * (sig * sig - sig2 * sig2) / (sig * sig)));
      const double down = std::sqrt(sig2 * sig2 - up * up);
      // x~' = x~ (1 + (down - sig) / sig) - (down - sig) / sig D = (down / sig) x~ + (1 - down / sig) D
      M[0][0] = a2 * ((down / sig) / a + (1 - down / sig) * kx);
      c[0] = a2 * (1 - down / sig) * o;
      q = a2 * a2 * up * up;
    } else if (sampler == "dpmpp_2m_sde") {
      // k-diffusion's sample_dpmpp_2m_sde (midpoint), t = -log sigma, h = t_next - t.
      const double h = std::log(sig) - std::log(sig2), eh = eta * h;
      const double cxs = sig2 / sig * std::exp(-eh), cd = -std::expm1(-h - eh);
      double cold = 0, cnew = cd;
      if (i > 0) {
        const double h_last = -std::log(sig) + std::log(B(i - 1) / A(i - 1)), r = h_last / h;
        cnew += 0.5 * cd / r;
        cold = -0.5 * cd / r;
      }
      // x~' = cxs x~ + cnew D + cold D_prev + sig2 sqrt(1 - e^(-2 eh)) z; x' = a2 x~'.
      M[0][0] = a2 * (cxs / a + cnew * kx);
      M[0][1] = a2 * cold;
      c[0] = a2 * cnew * o;
      q = a2 * a2 * sig2 * sig2 * -std::expm1(-2 * eh);
    }
    g.apply(M, c, q);
  }
  return {g.m[0], g.C[0][0]};
}

}  // namespace noiseflow::test
