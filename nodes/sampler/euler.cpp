// nodes/sampler/euler.cpp — Euler step of the probability-flow ODE in sigma space (Karras et al. 2022, k-diffusion's sample_euler):
//   x / a + (sigma_q - sigma_p) eps_hat in sigma space, which is a_q x0_hat + b_q eps_hat; deterministic, first order.
// The step is ancestral_step (sampler.hpp): DDIM, Euler and Euler ancestral are one formula in the
// VP form, with eta 0, 0 and 1.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct Euler final : StepNode {
  static Schema schema() {
    return step_schema("euler", "Euler step of the probability-flow ODE in sigma space (Karras et al. 2022, k-diffusion's sample_euler): x / a + (sigma_q - sigma_p) eps_hat in sigma space, which is a_q x0_hat + b_q eps_hat; deterministic, first order")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("euler")); });
  }

 protected:
  void plan_sampler(Context& ctx) override {
    info_ = &sampler_info("euler");
    (void)ctx;
  }

  void step(Context&, StepIo& io) override {
    ancestral_step(denoiser(io, io.eval.step), io.point(io.eval.step), io.point(io.eval.step + 1), eta_, io);
  }

 private:
  double eta_ = 0.0;
};

NOISEFLOW_REGISTER_NODE(Euler);

}  // namespace
}  // namespace noiseflow::nodes
