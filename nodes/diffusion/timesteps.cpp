// nodes/diffusion/timesteps.cpp — one diffusion timestep per sample.
//
// Training draws t ~ U{0, ..., T-1} per sample and per tick:
// t[i] = below(T, key, tick, i), a pure function of (seed, node id, tick, i).
// With `values`, t is that fixed list tiled to the batch instead.
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct Timesteps final : Node {
  static Schema schema() {
    return Schema("diffusion.timesteps",
                  "Timesteps t [N] for a batch: uniform integers in [0, T) drawn per sample and per tick, "
                  "or the fixed list `values` tiled to N")
        .input("like", "any tensor [N, ...]; only its first dimension (the batch N) is used")
        .input("schedule", "[8, T] schedule table from diffusion.schedule (gives T)")
        .output("t", "[N] float32 holding integers in [0, T)")
        .attr_ints("values", std::vector<int64_t>{},
                   "fixed timesteps tiled to N (each in [0, T)); empty: draw uniformly every tick")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T = schedule_steps(c);
          const std::vector<int64_t> values = c.attr_ints("values");
          for (size_t i = 0; i < values.size(); ++i)
            if (values[i] < 0 || values[i] >= T)
              c.fail("values", "values[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                                   " is outside [0, T) with T = " + std::to_string(T) + " (schedule shape [8, " +
                                   std::to_string(T) + "])");
          c.set_output("t", {like[0]});
        });
  }

  void plan(Context& ctx) override {
    values_ = ctx.attr_ints("values");
    key_ = ctx.random_key();
  }

  void forward(Context& ctx) override {
    Tensor& t = ctx.output("t");
    const int64_t n = t.numel();
    if (!values_.empty()) {
      const int64_t m = int64_t(values_.size());
      for (int64_t i = 0; i < n; ++i) t[i] = float(values_[size_t(i % m)]);
      return;
    }
    const uint64_t T = uint64_t(ctx.input("schedule").dim(1));
    const uint64_t stream = uint64_t(ctx.tick());
    for (int64_t i = 0; i < n; ++i) t[i] = float(random::below(T, key_, stream, uint64_t(i)));
  }

 private:
  std::vector<int64_t> values_;
  uint64_t key_ = 0;
};

NOISEFLOW_REGISTER_NODE(Timesteps);

}  // namespace
}  // namespace noiseflow::nodes
