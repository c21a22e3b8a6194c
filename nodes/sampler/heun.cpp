// nodes/sampler/heun.cpp — Heun's second-order step of the probability-flow ODE (Karras et al. 2022,
// Algorithm 1 without churn; k-diffusion's sample_heun). In sigma space (x~ = x / a, d = eps_hat):
//
//   first evaluation, at p:   x~' = x~ + (sigma_q - sigma_p) d_p              (an Euler step)
//   second evaluation, at q:  x~_q = x~ + (sigma_q - sigma_p) (d_p + d_q) / 2
//
// two ticks per step; the last step, to the data, is the Euler step alone (x0_hat), so K steps take
// 2K - 1 evaluations. The history holds x0_hat_p and eps_hat_p between the two ticks; written with
// x~ = x0_hat + sigma eps_hat, x_q = a_q x0_hat_p + b_q (e_p + e_q) / 2 + a_q sigma_p (e_p - e_q) / 2.
// sigma_p uses a floored at kAFloor (pure noise has sigma = inf).
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct Heun final : StepNode {
  static Schema schema() {
    return step_schema("heun",
                       "Heun's 2nd-order step of the probability-flow ODE (Karras et al. 2022): an Euler step to the "
                       "next grid point, the net evaluated there, then the trapezoid of the two slopes; two ticks per "
                       "step, the last step (to the data) Euler only: 2K - 1 evaluations")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("heun")); });
  }

 protected:
  void plan_sampler(Context&) override { info_ = &sampler_info("heun"); }

  void step(Context&, StepIo& io) override {
    const int64_t i = io.eval.step;
    const Point p = io.point(i), q = io.point(i + 1);
    float* x0_p = io.hist_next(0);
    float* eps_p = io.hist_next(1);
    if (!io.eval.second) {
      const Denoised den = denoiser(io, i);
      const float A = float(q.a), B = float(q.b);
      for (int64_t k = 0; k < io.numel; ++k) {
        float x0, eps;
        den(io.x[k], io.pred[k], x0, eps);
        x0_p[k] = x0;
        eps_p[k] = eps;
        io.x_next[k] = A * x0 + B * eps;
      }
      return;
    }
    // Second evaluation: the prediction is for the Euler point at q.
    const Denoised den = denoiser(io, i + 1);
    const double sigma_p = p.b / std::max(p.a, kAFloor);
    const float A = float(q.a), B = float(q.b / 2), C = float(q.a * sigma_p / 2);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      io.x_next[k] = A * x0_p[k] + B * (eps_p[k] + eps) + C * (eps_p[k] - eps);
    }
  }
};

NOISEFLOW_REGISTER_NODE(Heun);

}  // namespace
}  // namespace noiseflow::nodes
