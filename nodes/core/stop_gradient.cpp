// nodes/core/stop_gradient.cpp — y = x in the forward pass, and no gradient back to x.
//
// The planner treats the node as a gradient barrier (Schema::stops_gradient): x is not differentiable by
// design, so a graph that reaches the loss both through this node and around it (a consistency target, a
// frozen teacher) trains only what the loss reaches around it.
#include <cstring>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct StopGradient final : Node {
  static Schema schema() {
    return Schema("tensor.stop_gradient",
                  "y = x, and no gradient flows back to x (a training target computed by a net, a frozen teacher)")
        .input("x", "any shape")
        .output("y", "x's value")
        .stops_gradient()
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    if (y.data() != x.data()) std::memcpy(y.data(), x.data(), sizeof(float) * size_t(x.numel()));
  }
};

NOISEFLOW_REGISTER_NODE(StopGradient);

}  // namespace
}  // namespace noiseflow::nodes
