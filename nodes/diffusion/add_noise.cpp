// nodes/diffusion/add_noise.cpp — the forward process q(x_t | x_0).
//
//   x_t[n] = sqrt(abar_{t[n]}) * x0[n] + sqrt(1 - abar_{t[n]}) * noise[n]
//
// per sample n, with the coefficients read from the schedule table (at a fractional t, the level between
// the table's two neighbours with log sigma interpolated linearly: level_at). Linear in
// x0 and noise, so the vector-Jacobian products are the same per-sample scales.
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct AddNoise final : Node {
  static Schema schema() {
    return Schema("diffusion.add_noise",
                  "Forward diffusion: x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise, per sample")
        .input("x0", "clean samples [N, ...]")
        .input("noise", "noise, same shape as x0 (usually random.normal)")
        .input("t", "[N] timesteps in [0, T-1]; a fractional one noises to the level between its neighbours (log sigma interpolated)")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("xt", "noised samples, same shape as x0")
        .differentiable({"x0", "noise"})
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x0 = c.input("x0");
          if (x0.empty()) c.fail("x0", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
          const graph::Shape& noise = c.input("noise");
          if (noise != x0)
            c.fail("noise", "noise shape " + graph::shape_str(noise) + " differs from x0 shape " +
                                graph::shape_str(x0));
          const graph::Shape& t = c.input("t");
          if (t != graph::Shape{x0[0]})
            c.fail("t", "expected timesteps of shape [" + std::to_string(x0[0]) + "] (one per sample of x0 " +
                            graph::shape_str(x0) + "), got " + graph::shape_str(t));
          schedule_steps(c);
          c.set_output("xt", x0);
        });
  }

  void plan(Context& ctx) override {
    // Sized once here so that no tick allocates.
    ca_.resize(size_t(ctx.input("t").numel()));
    cb_.resize(size_t(ctx.input("t").numel()));
  }

  void forward(Context& ctx) override {
    const Tensor& x0 = ctx.input("x0");
    const Tensor& noise = ctx.input("noise");
    Tensor& xt = ctx.output("xt");
    load_coefficients(ctx);
    const int64_t n = x0.dim(0), inner = x0.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      const float a = ca_[size_t(i)], b = cb_[size_t(i)];
      const float* x = x0.data() + i * inner;
      const float* e = noise.data() + i * inner;
      float* y = xt.data() + i * inner;
      for (int64_t k = 0; k < inner; ++k) y[k] = a * x[k] + b * e[k];
    }
  }

  void backward(Context& ctx) override {
    const Tensor& gy = ctx.grad_output("xt");
    load_coefficients(ctx);
    const int64_t n = gy.dim(0), inner = gy.numel() / n;
    auto scaled = [&](const std::vector<float>& coef, Tensor& gx) {
      for (int64_t i = 0; i < n; ++i) {
        const float c = coef[size_t(i)];
        const float* g = gy.data() + i * inner;
        float* o = gx.data() + i * inner;
        for (int64_t k = 0; k < inner; ++k) o[k] = c * g[k];
      }
    };
    if (ctx.wants_grad("x0")) scaled(ca_, ctx.grad_input("x0"));
    if (ctx.wants_grad("noise")) scaled(cb_, ctx.grad_input("noise"));
  }

 private:
  // Per-sample sqrt(abar_t) and sqrt(1 - abar_t); fails on a bad timestep.
  void load_coefficients(Context& ctx) {
    const Tensor& t = ctx.input("t");
    ScheduleTable sched(ctx.input("schedule"));
    const int64_t n = t.numel();
    ca_.resize(size_t(n));
    cb_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      const NoiseLevel l = level_at(sched, continuous_timestep_at(ctx, t, i, sched.steps()));
      ca_[size_t(i)] = float(l.a);
      cb_[size_t(i)] = float(l.b);
    }
  }

  std::vector<float> ca_, cb_;
};

NOISEFLOW_REGISTER_NODE(AddNoise);

}  // namespace
}  // namespace noiseflow::nodes
