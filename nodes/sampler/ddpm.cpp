// nodes/sampler/ddpm.cpp — ancestral DDPM sampling (Ho et al. 2020) on any grid of the schedule:
// all T timesteps, or a respaced subsequence (Nichol & Dhariwal 2021, section 4: the betas of the
// subsequence are 1 - abar_q / abar_p). From grid point p to the next one q:
//
//   beta' = 1 - abar_p / abar_q = (a_q^2 - a_p^2) / a_q^2 = (b_p^2 - b_q^2) / a_q^2
//   x_q   = a_q beta' / b_p^2 x0_hat + (a_p / a_q) b_q^2 / b_p^2 x_p + sigma z
//   sigma^2 = beta' b_q^2 / b_p^2 (posterior, "fixed small") or beta' (beta, "fixed large")
//
// (the posterior mean of q(x_q | x_p, x0_hat)); the last step, to the data, returns x0_hat without
// noise. With all T steps beta' is the schedule's beta_t: Ho et al.'s step, t -> t - 1.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct Ddpm final : StepNode {
  static Schema schema() {
    return step_schema("ddpm",
                       "Ancestral DDPM step (Ho et al. 2020) from one grid point to the next: the posterior mean of "
                       "q(x_q | x_p, x0_hat) plus noise of the posterior variance (fixed small) or the respaced "
                       "beta (fixed large); any grid of the schedule, all T steps or a respaced subsequence")
        .attr_string("variance", "beta", {"beta", "posterior"},
                     "beta: sigma^2 = beta' (\"fixed large\"); posterior: beta' (1 - abar_q) / (1 - abar_p) "
                     "(\"fixed small\")")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("ddpm")); });
  }

 protected:
  void plan_sampler(Context& ctx) override {
    info_ = &sampler_info("ddpm");
    noise_ = true;
    posterior_ = ctx.attr_string("variance") == "posterior";
  }

  void step(Context&, StepIo& io) override {
    const Point p = io.point(io.eval.step), q = io.point(io.eval.step + 1);
    const Denoised den = denoiser(io, io.eval.step);
    double cx0 = 1.0, cx = 0.0, sigma = 0.0;
    if (!q.data()) {
      const double bp2 = p.b * p.b, bq2 = q.b * q.b;
      // abar_q - abar_p from the better-conditioned side: a where it is small (high noise), b where
      // b is (near the data); the two are equal in exact arithmetic.
      const double aq2 = q.a * q.a, diff = aq2 < 0.5 ? aq2 - p.a * p.a : bp2 - bq2;
      const double beta = diff / aq2;
      cx0 = q.a * beta / bp2;
      cx = p.a / q.a * bq2 / bp2;
      sigma = std::sqrt(std::max(posterior_ ? beta * bq2 / bp2 : beta, 0.0));
    }
    const float C0 = float(cx0), CX = float(cx), S = float(sigma);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      io.x_next[k] = C0 * x0 + CX * io.x[k] + (S == 0.f ? 0.f : S * io.z[k]);
    }
  }

 private:
  bool posterior_ = false;
};

NOISEFLOW_REGISTER_NODE(Ddpm);

}  // namespace
}  // namespace noiseflow::nodes
