// nodes/sampler/dpmpp_2m_sde.cpp — DPM-Solver++(2M) SDE (k-diffusion's sample_dpmpp_2m_sde, midpoint
// form), the multistep second-order solver of the reverse SDE in the data prediction. With
// lambda = log(a / b), h = lambda_q - lambda_p, e = e^-h = (a_p b_q) / (b_p a_q) and eta in [0, 1]:
//
//   x_q = (b_q / b_p) e^eta x_p + a_q (1 - e^(1+eta)) x0_hat_p
//         + a_q (1 - e^(1+eta)) / (2r) (x0_hat_p - x0_hat_prev)      (not at the first step; r = h_prev / h)
//         + b_q sqrt(1 - e^(2 eta)) z
//
// and x0_hat at the last step (to the data). eta = 0 is DPM-Solver++(2M); eta = 1 the SDE. The
// history holds the previous x0_hat; the noise is fresh per tick (k-diffusion draws it from a
// Brownian tree: the same distribution).
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct DpmPP2MSde final : StepNode {
  static Schema schema() {
    return step_schema("dpmpp_2m_sde",
                       "DPM-Solver++(2M) SDE step (k-diffusion's sample_dpmpp_2m_sde, midpoint): the reverse SDE "
                       "in the data prediction, multistep 2nd order, noise b_q sqrt(1 - e^(-2 eta h)) z")
        .attr_float("eta", 1.0, 0.0, 1.0, "stochasticity: 1 the SDE, 0 the ODE solver DPM-Solver++(2M)")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("dpmpp_2m_sde")); });
  }

 protected:
  void plan_sampler(Context& ctx) override {
    info_ = &sampler_info("dpmpp_2m_sde");
    eta_ = ctx.attr_float("eta");
    noise_ = eta_ > 0.0;
  }

  void step(Context&, StepIo& io) override {
    const int64_t i = io.eval.step;
    const Point p = io.point(i), q = io.point(i + 1);
    const Denoised den = denoiser(io, i);
    float* prev = io.hist_next(0);
    double cx = 0.0, cd = 1.0, cdiff = 0.0, cz = 0.0;
    if (!q.data()) {
      const double e = p.a * q.b / (p.b * q.a);
      cx = q.b / p.b * std::pow(e, eta_);
      cd = q.a * (1.0 - std::pow(e, 1.0 + eta_));
      cz = q.b * std::sqrt(std::max(1.0 - std::pow(e, 2.0 * eta_), 0.0));
      if (i > 0) {
        const double h = q.lambda() - p.lambda(), h_prev = p.lambda() - io.point(i - 1).lambda();
        if (std::isfinite(h_prev)) cdiff = cd / (2.0 * h_prev / h);
      }
    }
    const float CX = float(cx), CN = float(cd + cdiff), CP = float(-cdiff), CZ = float(cz);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      io.x_next[k] = CX * io.x[k] + CN * x0 + CP * prev[k] + (CZ == 0.f ? 0.f : CZ * io.z[k]);
      prev[k] = x0;
    }
  }

 private:
  double eta_ = 1.0;
};

NOISEFLOW_REGISTER_NODE(DpmPP2MSde);

}  // namespace
}  // namespace noiseflow::nodes
