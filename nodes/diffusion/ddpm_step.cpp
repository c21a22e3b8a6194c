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

struct DdpmStep final : Node {
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
    prediction_ = parse_prediction(ctx.attr_string("prediction"));
    clip_ = ctx.attr_bool("clip_x0");
    posterior_ = ctx.attr_string("variance") == "posterior";
    key_ = ctx.random_key();
    const int64_t n = ctx.input("t").numel();
    ca_.resize(size_t(n));
    cb_.resize(size_t(n));
    sigma_.resize(size_t(n));
    clipped_.resize(size_t(n));
    z_.resize(size_t(ctx.input("x").numel()));
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    const Tensor& pred = ctx.input("pred");
    Tensor& y = ctx.output("x_prev");
    const int64_t n = x.dim(0), inner = x.numel() / n;
    const bool noisy = load_coefficients(ctx);
    // One draw for the whole batch, element index = flat index: independent of threads.
    if (noisy) random::fill_normal(z_.data(), x.numel(), key_, uint64_t(ctx.tick()));
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = x.data() + i * inner;
      const float* pi = pred.data() + i * inner;
      const float* zi = z_.data() + i * inner;
      float* yi = y.data() + i * inner;
      const float s = sigma_[size_t(i)];
      if (!clip_) {
        // mu is linear in (x_t, pred): y = A x_t + B pred + sigma z.
        const float A = ca_[size_t(i)], B = cb_[size_t(i)];
        if (s == 0.f)
          for (int64_t k = 0; k < inner; ++k) yi[k] = A * xi[k] + B * pi[k];
        else
          for (int64_t k = 0; k < inner; ++k) yi[k] = A * xi[k] + B * pi[k] + s * zi[k];
      } else {
        const Clipped& c = clipped_[size_t(i)];
        for (int64_t k = 0; k < inner; ++k) {
          const float x0 = std::clamp(c.x0x * xi[k] + c.x0p * pi[k], -1.f, 1.f);
          yi[k] = c.mu_x0 * x0 + c.mu_xt * xi[k] + (s == 0.f ? 0.f : s * zi[k]);
        }
      }
    }
  }

 private:
  // Coefficients of the clipped path: x0_hat = clamp(x0x x_t + x0p pred), mu = mu_x0 x0_hat + mu_xt x_t.
  struct Clipped {
    float x0x, x0p, mu_x0, mu_xt;
  };

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
      ca_[size_t(i)] = float(mu_x0 * x0.kx + mu_xt);
      cb_[size_t(i)] = float(mu_x0 * x0.kp);
      clipped_[size_t(i)] = {float(x0.kx), float(x0.kp), float(mu_x0), float(mu_xt)};
      double var = s == 0 ? 0.0 : posterior_ ? double(sched.at(kPosteriorVariance, s)) : beta;
      sigma_[size_t(i)] = float(std::sqrt(var));
      noisy = noisy || var > 0.0;
    }
    return noisy;
  }

  Prediction prediction_ = Prediction::Eps;
  bool clip_ = false, posterior_ = false;
  uint64_t key_ = 0;
  std::vector<float> ca_, cb_, sigma_, z_;
  std::vector<Clipped> clipped_;
};

NOISEFLOW_REGISTER_NODE(DdpmStep);

}  // namespace
}  // namespace noiseflow::nodes
