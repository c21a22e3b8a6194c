// nodes/nn/flatten.cpp — [N, d1, d2, ...] to [N, d1*d2*...] (torch.flatten(x, 1)), e.g. between the
// convolutions and the linear layers of a classifier. A copy in row-major order; the gradient is the copy
// back.
#include <cstring>

#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using runtime::onnx::Attribute;

struct Flatten final : Node {
  static Schema schema() {
    return Schema("nn.flatten", "Flattens every dimension after the first: [N, ...] -> [N, prod(...)]")
        .input("x", "[N, d1, d2, ...]")
        .output("y", "[N, d1 * d2 * ...]")
        .differentiable({"x"})
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input("x");
          if (x.size() < 2) c.fail("x", "expected [N, ...] with at least two dimensions, got " + graph::shape_str(x));
          c.set_output("y", {x[0], graph::numel(x) / x[0]});
        });
  }

  static void onnx(onnx::OpContext& c) {
    c.add("Flatten", {c.input("x")}, {c.output()}, {Attribute::of_int("axis", 1)});
  }

  void forward(Context& ctx) override { ctx.output("y").copy_from(ctx.input("x")); }

  void backward(Context& ctx) override {
    if (ctx.wants_grad("x")) ctx.grad_input("x").copy_from(ctx.grad_output("y"));
  }
};

NOISEFLOW_REGISTER_NODE(Flatten);

}  // namespace
}  // namespace noiseflow::nodes
