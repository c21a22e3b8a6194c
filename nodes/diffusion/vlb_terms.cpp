// nodes/diffusion/vlb_terms.cpp — the terms of the variational bound on -log p(x0) (Ho et al. 2020,
// eq. 5; improved-diffusion's _vb_terms_bpd), in bits per dimension, per sample:
//
//   L_T     = KL(q(x_{T-1} | x0) || N(0, I))                         (the `prior` output; table t = T-1)
//   L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)),  t >= 1   (the `terms` output)
//   L_0     = -log p(x0 | x_0) with the discretised Gaussian decoder  (the `terms` output at t = 0)
//
// q(x_{t-1} | x_t, x0) = N(c1 x0 + c2 x_t, var_q) is the forward posterior, c1 = beta_t sqrt(abar_{t-1}) /
// (1 - abar_t), c2 = sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t), var_q = beta_t (1 - abar_{t-1}) / (1 -
// abar_t); the model's p(x_{t-1} | x_t) = N(c1 x0_hat + c2 x_t, var_p), x0_hat from the net's prediction,
// and var_p the sampler's variance choice (sampler.ddpm's `variance`): beta_t ("fixed large") or var_q
// ("fixed small"). The KL of two Gaussians is 0.5 (log var_p / var_q + var_q / var_p - 1 + (mu_q -
// mu_p)^2 / var_p), mu_q - mu_p = c1 (x0 - x0_hat). At t = 0, c1 = 1 and c2 = 0: the decoder is centred
// on x0_hat, with variance beta_0 (beta) or var_q at t = 1 (posterior; var_q is 0 at t = 0, so
// improved-diffusion takes its t = 1 value). The discretised decoder gives the 8-bit bin of x0 (width
// 2 / 255 in [-1, 1]) the normal mass over it, the edge bins their tails; the continuous one its
// density (for data that is not 8-bit, and for the closed-form checks).
//
// Everything is in double, from the float table's rows: 1 - abar from sqrt(1 - abar) squared, which
// keeps its relative precision near t = 0 where 1 - abar is tiny. Bits per dimension: nats summed over
// the sample's elements, divided by (elements x ln 2).
#include <algorithm>
#include <cmath>
#include <string>

#include "nodes/diffusion/prediction.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// P(Z > z), Z ~ N(0, 1), accurate in both tails.
double upper_tail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

// log of the N(mean, sd^2) mass of the bin of x (half-width h, bins covering [-1, 1]); the edge bins take
// the tails (improved-diffusion's discretized_gaussian_log_likelihood, with erfc in place of its tanh
// approximation of the normal cdf, and its floor of 1e-12 on the mass).
double discretized_log_likelihood(double x, double mean, double sd, double h) {
  const double lo = (x - h - mean) / sd, hi = (x + h - mean) / sd;
  double p;
  if (x - h <= -1.0 + 0.5 * h) p = upper_tail(-hi);                             // (-inf, x + h]
  else if (x + h >= 1.0 - 0.5 * h) p = upper_tail(lo);                          // [x - h, inf)
  else if (lo > 0) p = upper_tail(lo) - upper_tail(hi);                         // both in the upper tail
  else p = upper_tail(-hi) - upper_tail(-lo);                                   // cdf(hi) - cdf(lo)
  return std::log(std::max(p, 1e-12));
}

struct VlbTerms final : Node {
  static Schema schema() {
    return Schema("diffusion.vlb_terms",
                  "Terms of the variational bound on -log p(x0) in bits per dimension (Ho et al. 2020 eq. 5): "
                  "for t >= 1 the KL between the forward posterior q(x_{t-1} | x_t, x0) and the model's "
                  "p(x_{t-1} | x_t) (mean from the net's x0_hat, variance beta_t or the posterior's), at t = 0 "
                  "-log p(x0 | x_0) with the discretised Gaussian decoder over 8-bit pixels; and the prior term "
                  "KL(q(x_{T-1} | x0) || N(0, I)). Sum prior + all T terms (or T x a uniform t's term) for the bound")
        .input("x0", "the data [N, ...] in [-1, 1] (8-bit pixel values for the discretised decoder)")
        .input("xt", "x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, same shape as x0 (diffusion.add_noise)")
        .input("pred", "the net's prediction at (x_t, t), same shape as x0 (see `prediction`)")
        .input("t", "[N] integer timesteps in [0, T)")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("terms", "[N] L_{t-1} (t >= 1) or L_0 (t = 0) per sample, bits per dimension")
        .output("prior", "[N] L_T = KL(q(x_{T-1} | x0) || N(0, I)) per sample, bits per dimension")
        .attr_string("prediction", "eps", prediction_choices(), kPredictionDoc)
        .attr_string("variance", "beta", {"beta", "posterior"},
                     "the model's variance, as sampler.ddpm's: beta (beta_t, \"fixed large\"; beta_0 at t = 0) or "
                     "posterior (beta_t (1 - abar_{t-1}) / (1 - abar_t), \"fixed small\"; its t = 1 value at t = 0)")
        .attr_bool("clip_x0", false, "clamp x0_hat to [-1, 1] (improved-diffusion's calc_bpd_loop clips)")
        .attr_string("decoder", "discretized", {"discretized", "continuous"},
                     "L_0: discretized (the normal mass of x0's 8-bit bin) or continuous (the normal density)")
        .attr_int("bits", 8, 1, 16, "discretized: bits per pixel, bins of width 2 / (2^bits - 1) in [-1, 1]")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x0 = c.input("x0");
          if (x0.empty()) c.fail("x0", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
          for (const char* name : {"xt", "pred"})
            if (c.input(name) != x0)
              c.fail(name, std::string(name) + " shape " + graph::shape_str(c.input(name)) + " differs from x0 shape " +
                               graph::shape_str(x0));
          if (c.input("t") != graph::Shape{x0[0]})
            c.fail("t", "expected timesteps of shape [" + std::to_string(x0[0]) + "], got " +
                            graph::shape_str(c.input("t")));
          schedule_steps(c);
          c.set_output("terms", {x0[0]});
          c.set_output("prior", {x0[0]});
        });
  }

  void plan(Context& ctx) override {
    prediction_ = parse_prediction(ctx.attr_string("prediction"));
    posterior_ = ctx.attr_string("variance") == "posterior";
    clip_ = ctx.attr_bool("clip_x0");
    discretized_ = ctx.attr_string("decoder") == "discretized";
    half_bin_ = 1.0 / (std::ldexp(1.0, int(ctx.attr_int("bits"))) - 1.0);
  }

  void forward(Context& ctx) override {
    const Tensor x0 = plain(ctx.input("x0")), xt = plain(ctx.input("xt")), pred = plain(ctx.input("pred"));
    const Tensor& t = ctx.input("t");
    const ScheduleTable s(ctx.input("schedule"));
    const int64_t T = s.steps(), n = x0.dim(0), inner = x0.numel() / n;
    Tensor& terms = ctx.output("terms");
    Tensor& prior = ctx.output("prior");
    const double to_bits = 1.0 / (double(inner) * std::log(2.0));
    // 1 - abar_k, from the better-conditioned row.
    auto one_minus_abar = [&](int64_t k) {
      const double b = s.at(kSqrtOneMinusAlphaBar, k);
      return b * b;
    };
    const double aT = s.at(kSqrtAlphaBar, T - 1), vT = one_minus_abar(T - 1);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = timestep_at(ctx, t, i, T);
      const double a = s.at(kSqrtAlphaBar, k), b = s.at(kSqrtOneMinusAlphaBar, k);
      if (prediction_ == Prediction::Eps && a == 0.0)
        ctx.fail("prediction", "an eps prediction says nothing about x0 at pure noise (alpha_bar = 0 at t = " +
                                   std::to_string(k) + "): use prediction v or x0");
      const Linear2 x0c = x0_from(prediction_, a, b);
      // The model's mean coefficient on x0_hat (c1) and the two variances.
      const double beta = s.at(kBeta, k);
      double c1 = 1.0, var_q = 0.0, var_p;
      if (k >= 1) {
        const double ombar = one_minus_abar(k), ombar_prev = one_minus_abar(k - 1);
        c1 = beta * double(s.at(kSqrtAlphaBar, k - 1)) / ombar;
        var_q = beta * ombar_prev / ombar;
        var_p = posterior_ ? var_q : beta;
      } else {
        var_p = posterior_ && T > 1 ? double(s.at(kBeta, 1)) * one_minus_abar(0) / one_minus_abar(1) : beta;
      }
      const double sd_p = std::sqrt(var_p), log_ratio = std::log(var_p) - std::log(std::max(var_q, 1e-300));
      const float* x0i = x0.data() + i * inner;
      const float* xti = xt.data() + i * inner;
      const float* pi = pred.data() + i * inner;
      double nats = 0.0, prior_nats = 0.0;
      for (int64_t j = 0; j < inner; ++j) {
        double x0h = x0c.kx * double(xti[j]) + x0c.kp * double(pi[j]);
        if (clip_) x0h = std::clamp(x0h, -1.0, 1.0);
        const double x = x0i[j], d = x - x0h;
        if (k >= 1) {
          nats += 0.5 * (log_ratio + var_q / var_p - 1.0 + c1 * c1 * d * d / var_p);
        } else if (discretized_) {
          nats -= discretized_log_likelihood(x, x0h, sd_p, half_bin_);
        } else {
          nats += 0.5 * (std::log(2.0 * M_PI * var_p) + d * d / var_p);
        }
        const double m = aT * x;
        prior_nats += 0.5 * (-1.0 - std::log(vT) + vT + m * m);
      }
      terms[i] = float(nats * to_bits);
      prior[i] = float(prior_nats * to_bits);
    }
  }

 private:
  static Tensor plain(const Tensor& x) { return x.blocked() ? x.to_plain() : x; }

  Prediction prediction_ = Prediction::Eps;
  bool posterior_ = false, clip_ = false, discretized_ = true;
  double half_bin_ = 1.0 / 255.0;
};

NOISEFLOW_REGISTER_NODE(VlbTerms);

}  // namespace
}  // namespace noiseflow::nodes
