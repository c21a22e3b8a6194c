// A node type in its own shared library, loaded at run time with
// `noiseflow run --plugin libnoiseflow_test_plugin.so ...` (tests/tools/test_plugin.cpp). It carries its
// own ONNX mapping (a Neg node), which `noiseflow --plugin ... export onnx` uses.
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace {

using namespace noiseflow::runtime;

struct Negate final : Node {
  static Schema schema() {
    return Schema("plugin.negate", "y = -x (a node from a plugin library)")
        .input("x", "any tensor")
        .output("y", "same shape")
        .shape([](noiseflow::graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }
  static void onnx(onnx::OpContext& c) { c.add("Neg", {c.input("x")}, {c.output()}); }
  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = -x[i];
  }
};

NOISEFLOW_REGISTER_NODE(Negate);

}  // namespace
