// nodes/sampler/dpmpp_2m.cpp — DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2; k-diffusion's
// sample_dpmpp_2m), the multistep second-order solver of the probability-flow ODE in the data
// prediction. With lambda = log(a / b) and h = lambda_q - lambda_p:
//
//   D   = x0_hat_p                                      at the first step and the last (to the data)
//   D   = (1 + 1 / (2r)) x0_hat_p - 1 / (2r) x0_hat_prev, r = h_prev / h   otherwise
//   x_q = (b_q / b_p) x_p + a_q (1 - e^-h) D,  e^-h = (a_p b_q) / (b_p a_q)
//
// The history holds the previous x0_hat. At pure noise (a_p = 0) e^-h = 0 and the first-order step is
// the exact limit.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct DpmPP2M final : StepNode {
  static Schema schema() {
    return step_schema("dpmpp_2m",
                       "DPM-Solver++(2M) step (Lu et al. 2022): multistep 2nd order in the data prediction, "
                       "x_q = (b_q / b_p) x_p + a_q (1 - e^-h) D with D extrapolated from this and the previous "
                       "x0_hat; first order at the first and the last step")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("dpmpp_2m")); });
  }

 protected:
  void plan_sampler(Context&) override { info_ = &sampler_info("dpmpp_2m"); }

  void step(Context&, StepIo& io) override {
    const int64_t i = io.eval.step;
    const Point p = io.point(i), q = io.point(i + 1);
    const Denoised den = denoiser(io, i);
    float* prev = io.hist_next(0);
    double cx = 0.0, cd = 1.0, w_now = 1.0, w_prev = 0.0;
    if (!q.data()) {
      const double e = p.a * q.b / (p.b * q.a);
      cx = q.b / p.b;
      cd = q.a * (1.0 - e);
      if (i > 0) {
        const double h = q.lambda() - p.lambda(), h_prev = p.lambda() - io.point(i - 1).lambda();
        if (std::isfinite(h_prev)) {
          const double r = h_prev / h;
          w_now = 1.0 + 1.0 / (2.0 * r);
          w_prev = -1.0 / (2.0 * r);
        }
      }
    }
    const float CX = float(cx), CN = float(cd * w_now), CP = float(cd * w_prev);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      io.x_next[k] = CX * io.x[k] + CN * x0 + CP * prev[k];
      prev[k] = x0;
    }
  }
};

NOISEFLOW_REGISTER_NODE(DpmPP2M);

}  // namespace
}  // namespace noiseflow::nodes
