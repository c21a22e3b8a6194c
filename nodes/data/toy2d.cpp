// nodes/data/toy2d.cpp — a 2-D toy data set: a mixture of `modes` Gaussians
// with centres evenly spaced on a circle. Small enough to train a diffusion
// model in seconds, with a known answer (where the modes are).
#include <cmath>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Toy2d final : Node {
  static Schema schema() {
    return Schema("data.toy2d", "2-D points from a mixture of Gaussians centred evenly on a circle, fresh every tick")
        .attr_int("batch", 256, 1, {}, "points per tick (the global batch under data parallelism)")
        .batch_attr("batch")
        .attr_int("modes", 8, 1, 1024, "number of mixture components")
        .attr_float("radius", 0.8, 0.0, {}, "radius of the circle of centres")
        .attr_float("std", 0.05, 0.0, {}, "standard deviation of each component")
        .output("points", "[batch, 2]")
        .output("labels", "[batch] the component of each point")
        .shape([](graph::ShapeContext& c) {
          c.set_output("points", {c.attr_int("batch"), 2});
          c.set_output("labels", {c.attr_int("batch")});
        });
  }

  void forward(Context& ctx) override {
    Tensor& p = ctx.output("points");
    Tensor& l = ctx.output("labels");
    const int64_t n = p.dim(0), modes = ctx.attr_int("modes");
    const double r = ctx.attr_float("radius");
    const float sd = float(ctx.attr_float("std"));
    // Noise for both coordinates, then the component of each point.
    // Draws keyed by the global sample index (a data-parallel rank holds samples [first, first + n)).
    const int64_t first = ctx.sample_offset(n);
    random::fill_normal(p.data(), p.numel(), ctx.random_key(), uint64_t(ctx.tick()), 0.f, sd, 2 * first);
    const uint64_t key = random::mix(ctx.random_key(), 0x6d6f646573ull);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t m = random::below(uint64_t(modes), key, uint64_t(ctx.tick()), uint64_t(first + i));
      const double a = 2.0 * M_PI * double(m) / double(modes);
      p[2 * i] += float(r * std::cos(a));
      p[2 * i + 1] += float(r * std::sin(a));
      l[i] = float(m);
    }
  }
};

NOISEFLOW_REGISTER_NODE(Toy2d);

}  // namespace
}  // namespace noiseflow::nodes
