// nodes/sampler/euler_a.cpp — Euler ancestral step (k-diffusion's sample_euler_ancestral):
//   Euler to sigma_down, then noise sigma_up, sigma_up = eta sigma_q sqrt(1 - sigma_q^2 / sigma_p^2), sigma_down = sqrt(sigma_q^2 - sigma_up^2).
// The step is ancestral_step (sampler.hpp): DDIM, Euler and Euler ancestral are one formula in the
// VP form, with eta 0, 0 and 1.
#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct EulerA final : StepNode {
  static Schema schema() {
    return step_schema("euler_a", "Euler ancestral step (k-diffusion's sample_euler_ancestral): Euler to sigma_down, then noise sigma_up, sigma_up = eta sigma_q sqrt(1 - sigma_q^2 / sigma_p^2), sigma_down = sqrt(sigma_q^2 - sigma_up^2)")
        .attr_float("eta", 1.0, 0.0, 1.0, "stochasticity: 0 deterministic, 1 the full ancestral noise")
        .shape([](graph::ShapeContext& c) { check_step(c, sampler_info("euler_a")); });
  }

 protected:
  void plan_sampler(Context& ctx) override {
    info_ = &sampler_info("euler_a");
    eta_ = ctx.attr_float("eta");
    noise_ = eta_ > 0.0;
  }

  void step(Context&, StepIo& io) override {
    ancestral_step(denoiser(io, io.eval.step), io.point(io.eval.step), io.point(io.eval.step + 1), eta_, io);
  }

 private:
  double eta_ = 1.0;
};

NOISEFLOW_REGISTER_NODE(EulerA);

}  // namespace
}  // namespace noiseflow::nodes
