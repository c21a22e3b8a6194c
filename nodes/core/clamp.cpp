// nodes/core/clamp.cpp — y = min(max(x, min), max), elementwise; the gradient passes where min < x < max
// and is zero elsewhere. Exports to ONNX as Clip.
#include <algorithm>

#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Clamp final : Node {
  static Schema schema() {
    return Schema("tensor.clamp",
                  "Clamps to [min, max]: y = min(max(x, min), max), elementwise (the gradient passes where "
                  "min < x < max, zero elsewhere)")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .attr_float("min", -1.0, {}, {}, "lower bound")
        .attr_float("max", 1.0, {}, {}, "upper bound (>= min)")
        .differentiable({"x"})
        .backward_reads({"x"})
        .shape([](graph::ShapeContext& c) {
          if (c.attr_float("max") < c.attr_float("min"))
            c.fail("max", "must be >= min, got max " + c.attr("max").dump() + " < min " + c.attr("min").dump());
          c.set_output("y", c.input("x"));
        });
  }

  // Clip with the bounds as scalar inputs (opset 11 and later).
  static void onnx(onnx::OpContext& c) {
    c.add("Clip",
          {c.input("x"), c.floats({float(c.attr_float("min"))}, {}), c.floats({float(c.attr_float("max"))}, {})},
          {c.output()});
  }

  void plan(Context& ctx) override {
    lo_ = float(ctx.attr_float("min"));
    hi_ = float(ctx.attr_float("max"));
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    const float* xp = x.data();
    float* yp = y.data();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) yp[i] = std::min(std::max(xp[i], lo_), hi_);
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    const Tensor& x = ctx.input("x");
    const Tensor& gy = ctx.grad_output("y");
    Tensor& gx = ctx.grad_input("x");
    const float* xp = x.data();
    const float* g = gy.data();
    float* o = gx.data();
    for (int64_t i = 0, n = gy.numel(); i < n; ++i) o[i] = lo_ < xp[i] && xp[i] < hi_ ? g[i] : 0.f;
  }

 private:
  float lo_ = -1.f, hi_ = 1.f;
};

NOISEFLOW_REGISTER_NODE(Clamp);

}  // namespace
}  // namespace noiseflow::nodes
