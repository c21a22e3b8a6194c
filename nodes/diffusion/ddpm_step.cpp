// nodes/diffusion/ddpm_step.cpp — one ancestral DDPM sampling step (Ho et al. 2020).
//
//   x_t, pred ──> x0_hat (eps | x0 | v, optionally clipped to [-1, 1])
//             ──> mu = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat
//                    + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
//             ──> x_{t-1} = mu + sigma_t z,  z ~ N(0, I) fresh per tick, no noise where t = 0
//
// sigma_t^2 = beta_t ("beta") or the posterior variance
// beta_t (1 - abar_{t-1}) / (1 - abar_t) ("posterior"). For eps prediction
// without clipping mu equals 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps).
// 1 - abar is taken as sqrt(1 - abar)^2 from the table: abar_t itself is a
// float near 1 for small t, where 1 - abar in float would lose digits.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/diffusion/prediction.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// Per-sample coefficients of one tick.
struct DdpmCoef {
  float A, B;          // unclipped (mu is linear in (x_t, pred)): y = A x_t + B pred + sigma z
  float x0x, x0p;      // clipped: x0_hat = clamp(x0x x_t + x0p pred), mu = mu_x0 x0_hat + mu_xt x_t
  float mu_x0, mu_xt;
  float sigma;
};

struct DdpmStep final : SamplerStep<DdpmCoef> {
  static Schema schema() {
    return Schema("diffusion.ddpm_step",
                  "One DDPM sampling step x_t -> x_{t-1}: the posterior mean of q(x_{t-1} | x_t, x0_hat) with x0_hat "
                  "from the network's prediction (optionally clipped to [-1, 1]), plus sigma_t z with fresh noise "
                  "every tick; no noise for samples at t = 0. Not differentiable")
        .input("x", "x_t [N, ...]")
        .input("pred", "the network's prediction for x_t, same shape as x (see `prediction`)")
        .input("t", "[N] current timestep per sample, integers in [0, T)")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("x_prev", "x_{t-1}, same shape as x")
        .attr_string("prediction", "eps", prediction_choices(), kPredictionDoc)
        .recipe("prediction", "objective", false)
        .attr_bool("clip_x0", false, "clamp x0_hat to [-1, 1] before taking the posterior mean")
        .attr_string("variance", "beta", {"beta", "posterior"},
                     "sigma_t^2: beta_t (Ho et al.'s sigma^2 = beta) or the posterior variance "
                     "beta_t (1 - abar_{t-1}) / (1 - abar_t)")
        .shape([](graph::ShapeContext& c) {
          check_step_shapes(c, {"t"});
          c.set_output("x_prev", c.input("x"));
        });
  }

  void plan(Context& ctx) override {
    plan_step(ctx);
    posterior_ = ctx.attr_string("variance") == "posterior";
  }

  void forward(Context& ctx) override {
    forward_step(ctx, load_coefficients(ctx),
                 [](const DdpmCoef& c, float x0, float xt) { return c.mu_x0 * x0 + c.mu_xt * xt; });
  }

 private:
  // Per-sample coefficients for this tick; true when any sample gets noise.
  bool load_coefficients(Context& ctx) {
    const Tensor& t = ctx.input("t");
    ScheduleTable sched(ctx.input("schedule"));
    const int64_t n = t.numel(), T = sched.steps();
    bool noisy = false;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = timestep_at(ctx, t, i, T);
      const double a = sched.at(kSqrtAlphaBar, s), b = sched.at(kSqrtOneMinusAlphaBar, s);
      const double one_minus_abar = b * b;
      const double abar_prev = sched.at(kAlphaBarPrev, s);
      const double b_prev = s > 0 ? double(sched.at(kSqrtOneMinusAlphaBar, s - 1)) : 0.0;
      const double one_minus_abar_prev = b_prev * b_prev;
      const double beta = sched.at(kBeta, s), alpha = sched.at(kAlpha, s);
      // Posterior mean coefficients of x0 and x_t.
      const double mu_x0 = std::sqrt(abar_prev) * beta / one_minus_abar;
      const double mu_xt = std::sqrt(alpha) * one_minus_abar_prev / one_minus_abar;
      const Linear2 x0 = x0_from(prediction_, a, b);
      double var = s == 0 ? 0.0 : posterior_ ? double(sched.at(kPosteriorVariance, s)) : beta;
      coef_[size_t(i)] = {float(mu_x0 * x0.kx + mu_xt), float(mu_x0 * x0.kp), float(x0.kx), float(x0.kp),
                          float(mu_x0), float(mu_xt), float(std::sqrt(var))};
      noisy = noisy || var > 0.0;
    }
    return noisy;
  }

  bool posterior_ = false;
};

NOISEFLOW_REGISTER_NODE(DdpmStep);

}  // namespace
}  // namespace noiseflow::nodes
