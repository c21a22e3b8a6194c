// nodes/sampler/consistency.cpp — multistep consistency sampling (Song et al. 2023, Algorithm 1): at each grid
// point the net's x0_hat is the consistency function's value f(x, t); the next point is that estimate noised
// afresh to the next level, x_q = a_q x0_hat + b_q z, and the last step returns x0_hat. One step from pure
// noise is the one-evaluation sampler; K steps re-noise to K - 1 intermediate levels. Only a distilled model
// (pipelines/distill.json) maps every x_t to its x0: its checkpoint records "model": "consistency", which this
// node expects (an ordinary diffusion model is refused, as the other samplers refuse a distilled one).
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct Consistency final : StepNode {
  static Schema schema() {
    return step_schema("consistency", "Multistep consistency sampling (Song et al. 2023): x_q = sqrt(abar_q) x0_hat + sqrt(1 - abar_q) z with fresh noise z, x0_hat after the last step; for a distilled model (pipelines/distill.json)")
        .attr_string("model", "consistency", {"consistency"}, "the kind of model this samples: a consistency model (checked against the checkpoint's recipe)")
        .recipe("model", "model", false)
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("consistency")); });
  }

 protected:
  void plan_sampler(Context&) override {
    info_ = &sampler_info("consistency");
    noise_ = true;
  }

  void step(Context&, StepIo& io) override {
    const Denoised den = denoiser(io, io.eval.step);
    const Point q = io.point(io.eval.step + 1);
    const float A = float(q.a), B = float(q.b);
    for (int64_t k = 0; k < io.numel; ++k) {
      float x0, eps;
      den(io.x[k], io.pred[k], x0, eps);
      io.x_next[k] = A * x0 + (B == 0.f ? 0.f : B * io.z[k]);
    }
  }
};

NOISEFLOW_REGISTER_NODE(Consistency);

}  // namespace
}  // namespace noiseflow::nodes
