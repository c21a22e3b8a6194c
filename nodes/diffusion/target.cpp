// nodes/diffusion/target.cpp — the training target for a prediction objective:
//
//   eps: the noise;  x0: the clean sample;  v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0
//
// (v-prediction of Salimans & Ho 2022). The samplers' `prediction` attribute
// must match the objective the net was trained with.
#include <string>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct Target final : Node {
  static Schema schema() {
    return Schema("diffusion.target", "training target of an objective: eps (the noise), x0, or v = sqrt(abar) eps - sqrt(1-abar) x0")
        .input("x0", "clean samples [N, ...]")
        .input("noise", "the noise added to them, same shape")
        .input("t", "[N] timesteps")
        .input("schedule", "[8, T] schedule table")
        .output("target", "what the net should predict, same shape as x0")
        .attr_string("objective", "eps", {"eps", "x0", "v"}, "prediction objective")
        .recipe("objective", "objective")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x0 = c.input("x0");
          if (x0.empty()) c.fail("x0", "expected a tensor [N, ...]");
          if (c.input("noise") != x0)
            c.fail("noise", "noise shape " + graph::shape_str(c.input("noise")) + " differs from x0 shape " + graph::shape_str(x0));
          if (c.input("t") != graph::Shape{x0[0]})
            c.fail("t", "expected [" + std::to_string(x0[0]) + "] timesteps, got " + graph::shape_str(c.input("t")));
          schedule_steps(c);
          c.set_output("target", x0);
        });
  }

  void plan(Context& ctx) override {
    const std::string o = ctx.attr_string("objective");
    objective_ = o == "eps" ? 0 : o == "x0" ? 1 : 2;
  }

  void forward(Context& ctx) override {
    const Tensor& x0 = ctx.input("x0");
    const Tensor& noise = ctx.input("noise");
    Tensor& y = ctx.output("target");
    if (objective_ == 0) return y.copy_from(noise);
    if (objective_ == 1) return y.copy_from(x0);
    ScheduleTable sched(ctx.input("schedule"));
    const int64_t n = x0.dim(0), inner = x0.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = timestep_at(ctx, ctx.input("t"), i, sched.steps());
      const float a = sched.at(kSqrtAlphaBar, s), b = sched.at(kSqrtOneMinusAlphaBar, s);
      const float* x = x0.data() + i * inner;
      const float* e = noise.data() + i * inner;
      float* out = y.data() + i * inner;
      for (int64_t k = 0; k < inner; ++k) out[k] = a * e[k] - b * x[k];
    }
  }

 private:
  int objective_ = 0;
};

NOISEFLOW_REGISTER_NODE(Target);

}  // namespace
}  // namespace noiseflow::nodes
