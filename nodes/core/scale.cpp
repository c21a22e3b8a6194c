// nodes/core/scale.cpp — the affine map y = a * x + b, elementwise.
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Scale final : Node {
  static Schema schema() {
    return Schema("tensor.scale", "Affine map y = a * x + b, elementwise (e.g. [0, 1] -> [-1, 1] with a = 2, b = -1)")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .attr_float("a", 1.0, {}, {}, "multiplier")
        .attr_float("b", 0.0, {}, {}, "offset")
        .differentiable({"x"})
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  void plan(Context& ctx) override {
    a_ = float(ctx.attr_float("a"));
    b_ = float(ctx.attr_float("b"));
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    const float* xp = x.data();
    float* yp = y.data();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) yp[i] = a_ * xp[i] + b_;
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    const Tensor& gy = ctx.grad_output("y");
    Tensor& gx = ctx.grad_input("x");
    const float* g = gy.data();
    float* o = gx.data();
    for (int64_t i = 0, n = gy.numel(); i < n; ++i) o[i] = a_ * g[i];
  }

 private:
  float a_ = 1.f, b_ = 0.f;
};

NOISEFLOW_REGISTER_NODE(Scale);

}  // namespace
}  // namespace noiseflow::nodes
