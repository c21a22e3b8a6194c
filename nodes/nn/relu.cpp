// nodes/nn/relu.cpp — y = max(x, 0), oneDNN eltwise relu forward and backward, on x's physical layout
// (plain or nChw16c; y and the gradients share it).
#include "nodes/nn/eltwise.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Relu final : Node {
  static Schema schema() {
    return Schema("nn.relu", "ReLU: y = max(x, 0), elementwise (the gradient at 0 is 0)")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .differentiable({"x"})
        .backward_reads({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  static void onnx(onnx::OpContext& c) { c.add("Relu", {c.input("x")}, {c.output()}); }

  void plan(Context& ctx) override { body_.plan(ctx, dnnl::algorithm::eltwise_relu, 0.f); }
  void forward(Context& ctx) override { body_.forward(ctx); }
  void backward(Context& ctx) override { body_.backward(ctx); }

 private:
  nn::Eltwise body_;
};

NOISEFLOW_REGISTER_NODE(Relu);

}  // namespace
}  // namespace noiseflow::nodes
