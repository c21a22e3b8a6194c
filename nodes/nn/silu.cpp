// nodes/nn/silu.cpp — y = x * sigmoid(x), oneDNN eltwise swish forward and backward, on x's physical
// layout (plain or nChw16c; y and the gradients share it).
#include "nodes/nn/eltwise.hpp"
#include "nodes/nn/onnx_ops.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Silu final : Node {
  static Schema schema() {
    return Schema("nn.silu", "SiLU (swish): y = x * sigmoid(x), elementwise")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .differentiable({"x"})
        .backward_reads({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  // x * Sigmoid(x).
  static void onnx(onnx::OpContext& c) { onnx_ops::silu(c, c.input("x"), c.output(), "silu"); }

  void plan(Context& ctx) override { body_.plan(ctx, dnnl::algorithm::eltwise_swish, 1.f); }
  void forward(Context& ctx) override { body_.forward(ctx); }
  void backward(Context& ctx) override { body_.backward(ctx); }

 private:
  nn::Eltwise body_;
};

NOISEFLOW_REGISTER_NODE(Silu);

}  // namespace
}  // namespace noiseflow::nodes
