// nodes/diffusion/ddim_step.cpp — one DDIM sampling step x_t -> x_{t_prev}
// (Song et al. 2021, eq. 12):
//
//   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat + sigma z
//   sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
//
// with (x0_hat, eps_hat) from the prediction (prediction.hpp), abar_prev = 1
// where t_prev = -1 (the last step returns x0_hat, without noise). eta = 0 is
// the deterministic DDIM sampler; eta = 1 with consecutive timesteps is DDPM
// with the posterior variance. z ~ N(0, I) is drawn fresh every tick.
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
struct DdimCoef {
  float A, B;                             // unclipped: y = A x_t + B pred + sigma z
  float x0x, x0p, a, inv_b;               // clipped: x0_hat = clamp(x0x x_t + x0p pred), eps_hat = (x_t - a x0_hat) / b
  float sqrt_abar_prev, dir, sigma;       // y = sqrt_abar_prev x0_hat + dir eps_hat + sigma z
};

struct DdimStep final : SamplerStep<DdimCoef> {
  static Schema schema() {
    return Schema("diffusion.ddim_step",
                  "One DDIM sampling step x_t -> x_{t_prev} (Song et al. 2021, eq. 12): sqrt(abar_prev) x0_hat + "
                  "sqrt(1 - abar_prev - sigma^2) eps_hat + sigma z, sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) "
                  "sqrt(1 - abar_t / abar_prev); t_prev = -1 means abar_prev = 1 (returns x0_hat). Not differentiable")
        .input("x", "x_t [N, ...]")
        .input("pred", "the network's prediction for x_t, same shape as x (see `prediction`)")
        .input("t", "[N] current timestep per sample, integers in [0, T) (diffusion.ddim_timesteps.t)")
        .input("t_prev", "[N] the timestep to step to, integers in [-1, t) (diffusion.ddim_timesteps.t_prev)")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("x_prev", "x_{t_prev}, same shape as x")
        .attr_float("eta", 0.0, 0.0, 1.0, "stochasticity: 0 deterministic DDIM, 1 DDPM-like ancestral sampling")
        .attr_string("prediction", "eps", prediction_choices(), kPredictionDoc)
        .recipe("prediction", "objective", false)
        .attr_bool("clip_x0", false, "clamp x0_hat to [-1, 1] and re-derive eps_hat from the clamped x0_hat")
        .shape([](graph::ShapeContext& c) {
          check_step_shapes(c, {"t", "t_prev"});
          c.set_output("x_prev", c.input("x"));
        });
  }

  void plan(Context& ctx) override {
    plan_step(ctx);
    eta_ = ctx.attr_float("eta");
  }

  void forward(Context& ctx) override {
    forward_step(ctx, load_coefficients(ctx), [](const DdimCoef& c, float x0, float xt) {
      const float eps = (xt - c.a * x0) * c.inv_b;
      return c.sqrt_abar_prev * x0 + c.dir * eps;
    });
  }

 private:
  // Per-sample coefficients for this tick; true when any sample gets noise.
  bool load_coefficients(Context& ctx) {
    const Tensor& t = ctx.input("t");
    const Tensor& t_prev = ctx.input("t_prev");
    ScheduleTable sched(ctx.input("schedule"));
    const int64_t n = t.numel(), T = sched.steps();
    bool noisy = false;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = timestep_at(ctx, t, i, T);
      const float pv = t_prev[i];
      if (!(pv >= -1.f) || pv >= float(s) || pv != std::floor(pv))
        ctx.fail("t_prev", "t_prev[" + std::to_string(i) + "] = " + std::to_string(pv) +
                               " is not an integer in [-1, t) with t = " + std::to_string(s));
      const int64_t sp = int64_t(pv);
      const double a = sched.at(kSqrtAlphaBar, s), b = sched.at(kSqrtOneMinusAlphaBar, s);
      const double abar = sched.at(kAlphaBar, s);
      // abar_prev and 1 - abar_prev (as sqrt(1 - abar)^2: no cancellation near abar = 1).
      const double abar_prev = sp >= 0 ? double(sched.at(kAlphaBar, sp)) : 1.0;
      const double sqrt_abar_prev = sp >= 0 ? double(sched.at(kSqrtAlphaBar, sp)) : 1.0;
      const double b_prev = sp >= 0 ? double(sched.at(kSqrtOneMinusAlphaBar, sp)) : 0.0;
      const double one_minus_abar_prev = b_prev * b_prev;
      const double var = eta_ * eta_ * one_minus_abar_prev / (b * b) * (1.0 - abar / abar_prev);
      const double sigma = std::sqrt(std::max(var, 0.0));
      // For eta <= 1 the radicand is (1 - abar_prev) abar_t (1/abar_prev - 1) / (1 - abar_t) >= 0; clamp rounding.
      const double dir = std::sqrt(std::max(one_minus_abar_prev - sigma * sigma, 0.0));
      const Linear2 x0 = x0_from(prediction_, a, b), eps = eps_from(prediction_, a, b);
      DdimCoef& c = coef_[size_t(i)];
      c.A = float(sqrt_abar_prev * x0.kx + dir * eps.kx);
      c.B = float(sqrt_abar_prev * x0.kp + dir * eps.kp);
      c.x0x = float(x0.kx);
      c.x0p = float(x0.kp);
      c.a = float(a);
      c.inv_b = float(1.0 / b);
      c.sqrt_abar_prev = float(sqrt_abar_prev);
      c.dir = float(dir);
      c.sigma = float(sigma);
      noisy = noisy || sigma > 0.0;
    }
    return noisy;
  }

  double eta_ = 0.0;
};

NOISEFLOW_REGISTER_NODE(DdimStep);

}  // namespace
}  // namespace noiseflow::nodes
