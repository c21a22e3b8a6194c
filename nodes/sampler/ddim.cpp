// nodes/sampler/ddim.cpp — DDIM step (Song et al. 2021, eq. 12) from one grid point to the next:
//   a_q x0_hat + sqrt(b_q^2 - up^2) eps_hat + up z, up = eta b_q sqrt(1 - (sigma_q / sigma_p)^2); eta 0 is deterministic.
// The step is ancestral_step (sampler.hpp): DDIM, Euler and Euler ancestral are one formula in the
// VP form, with eta 0, 0 and 1.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct Ddim final : StepNode {
  static Schema schema() {
    return step_schema("ddim", "DDIM step (Song et al. 2021, eq. 12) from one grid point to the next: a_q x0_hat + sqrt(b_q^2 - up^2) eps_hat + up z, up = eta b_q sqrt(1 - (sigma_q / sigma_p)^2); eta 0 is deterministic")
        .attr_float("eta", 0.0, 0.0, 1.0, "stochasticity: 0 deterministic, 1 the full ancestral noise")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("ddim")); });
  }

 protected:
  void plan_sampler(Context& ctx) override {
    info_ = &sampler_info("ddim");
    eta_ = ctx.attr_float("eta");
    noise_ = eta_ > 0.0;
  }

  void step(Context&, StepIo& io) override {
    ancestral_step(denoiser(io, io.eval.step), io.point(io.eval.step), io.point(io.eval.step + 1), eta_, io);
  }

 private:
  double eta_ = 0.0;
};

NOISEFLOW_REGISTER_NODE(Ddim);

}  // namespace
}  // namespace noiseflow::nodes
