// nodes/core/tick.cpp — the tick index as a tensor: value = offset + scale * tick,
// or countdown - 1 - tick, repeated `batch` times (sampling: countdown = T gives t = T-1-tick).
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Tick final : Node {
  static Schema schema() {
    return Schema("tick", "the tick index as a [batch] tensor: offset + scale * tick")
        .attr_int("batch", 1, 1, {}, "how many copies (e.g. one t per sample)")
        .attr_int("offset", 0, {}, {}, "value at tick 0")
        .attr_int("scale", 1, {}, {}, "change per tick")
        .attr_int("countdown", 0, 0, {}, "if > 0: count down instead, value = countdown - 1 - tick (sampling: T)")
        .output("t", "[batch] tick values")
        .shape([](graph::ShapeContext& c) { c.set_output("t", {c.attr_int("batch")}); });
  }

  void forward(Context& ctx) override {
    const int64_t down = ctx.attr_int("countdown");
    float v = float(down > 0 ? down - 1 - ctx.tick() : ctx.attr_int("offset") + ctx.attr_int("scale") * ctx.tick());
    ctx.output("t").fill(v);
  }
};

NOISEFLOW_REGISTER_NODE(Tick);

}  // namespace
}  // namespace noiseflow::nodes
