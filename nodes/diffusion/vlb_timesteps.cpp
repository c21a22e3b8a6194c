// nodes/diffusion/vlb_timesteps.cpp — the timesteps at which the variational bound is evaluated, one
// batch per tick: every t from T-1 down to 0 (T ticks, the whole sum), or t drawn uniformly per sample
// and per tick (an unbiased estimate of the sum: T x the term at a uniform t, improved-diffusion's
// importance-free estimator). Declares the pipeline's tick count (run.ticks "auto").
#include <string>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct VlbTimesteps final : Node {
  static Schema schema() {
    return Schema("diffusion.vlb_timesteps",
                  "Timesteps [N] for evaluating the variational bound: mode all gives every sample t = T-1-tick "
                  "(T ticks, every term once), mode sampled a uniform t in [0, T) per sample and tick (`draws` "
                  "ticks, T x the term is an unbiased estimate of the sum); declares the tick count")
        .input("like", "any tensor [N, ...]: the batch N")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("t", "[N] this tick's timesteps (float integers)")
        .attr_string("mode", "all", {"all", "sampled"}, "all: the T terms in turn; sampled: uniform draws")
        .attr_int("draws", 16, 1, 1000000, "sampled: ticks, i.e. draws of t per sample")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T = diffusion::schedule_steps(c);
          if (c.attr_string("mode") == "all")
            c.require_ticks(T, "mode", "mode all evaluates each of the T = " + std::to_string(T) + " terms once");
          else
            c.require_ticks(c.attr_int("draws"), "draws", "mode sampled draws t once per tick");
          c.set_output("t", {like[0]});
        });
  }

  void plan(Context& ctx) override {
    all_ = ctx.attr_string("mode") == "all";
    key_ = ctx.random_key();
  }

  void forward(Context& ctx) override {
    Tensor& t = ctx.output("t");
    const int64_t T = ctx.input("schedule").dim(1), n = t.numel();
    if (all_) {
      if (ctx.tick() >= T) ctx.fail("mode", "tick " + std::to_string(ctx.tick()) + " is past the T = " +
                                                std::to_string(T) + " terms; run with run.ticks \"auto\"");
      t.fill(float(T - 1 - ctx.tick()));
      return;
    }
    const int64_t first = ctx.sample_offset(n);
    for (int64_t i = 0; i < n; ++i)
      t[i] = float(random::below(uint64_t(T), key_, uint64_t(ctx.tick()), uint64_t(first + i)));
  }

 private:
  bool all_ = true;
  uint64_t key_ = 0;
};

NOISEFLOW_REGISTER_NODE(VlbTimesteps);

}  // namespace
}  // namespace noiseflow::nodes
