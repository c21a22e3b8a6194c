// nodes/core/state.cpp — a value carried from one tick to the next: `init`
// at the first tick, the previous tick's `next` afterwards. Its `next` input
// is the only edge allowed to close a loop in a pipeline.
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct State final : Node {
  static Schema schema() {
    return Schema("state", "carries a value across ticks: init at the first tick, then the previous tick's next")
        .input("init", "the value at the first tick")
        .input("next", "the value for the following tick (may come from downstream: closes a loop)")
        .output("value", "the current value")
        .back_edge("next")
        .stateful()
        .shape([](graph::ShapeContext& c) { c.set_output("value", c.input("init")); });
  }

  void forward(Context& ctx) override {
    if (!started_) {
      ctx.output("value").copy_from(ctx.input("init"));
      started_ = true;
    }
  }

  void end_tick(Context& ctx) override { ctx.output("value").copy_from(ctx.input("next")); }

 private:
  bool started_ = false;
};

NOISEFLOW_REGISTER_NODE(State);

}  // namespace
}  // namespace noiseflow::nodes
