// nodes/dist/gather.cpp — every rank's slice of a batch, concatenated on rank 0 (data-parallel sampling).
//
//   rank 0: x = samples [0, n/N)   ─┐
//   rank 1: x = samples [n/N, 2n/N) ├─> rank 0: y = samples [0, n), as one process computes them
//   ...                             ─┘   (its sinks write them; the other ranks skip sinks)
//
// One process: y is x. The node is declared stateful: it runs every tick on every rank, so that all ranks
// meet it at the same ticks (a rank other than 0 skips the sinks it feeds, and what only feeds them).
#include <algorithm>
#include <string>

#include "runtime/distributed.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Gather final : Node {
  static Schema schema() {
    return Schema("dist.gather",
                  "Data parallelism: rank 0 receives every rank's slice of a batch (dimension 0), concatenated in "
                  "rank order, so the sinks it feeds see the whole batch as one process computes it; in one "
                  "process y is x. Runs every tick on every rank")
        .input("x", "[count / ranks, ...] this rank's slice of the batch")
        .output("y", "[count, ...] on rank 0 the whole batch (on other ranks only their own slice is written)")
        .attr_int("count", std::nullopt, 1, {},
                  "the global batch: the `n` of the sampling run (dimension 0 of x times the rank count)")
        .stateful()
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x = c.input("x");
          if (x.empty()) c.fail("x", "needs a batch dimension, got a scalar shape []");
          const int64_t count = c.attr_int("count");
          // The rank count is the executor's: plan() checks count == x[0] x ranks.
          if (count % x[0] != 0)
            c.fail("count", "the global batch " + std::to_string(count) + " is not a multiple of x's " +
                                std::to_string(x[0]) + " samples per rank (x is " + graph::shape_str(x) + ")");
          graph::Shape y = x;
          y[0] = count;
          c.set_output("y", y);
        });
  }

  void plan(Context& ctx) override {
    const int64_t local = ctx.input("x").dim(0), count = ctx.attr_int("count");
    if (local * ctx.ranks() != count)
      ctx.fail("count",
               "the global batch " + std::to_string(count) + " is not the " + std::to_string(ctx.ranks()) +
                   (ctx.ranks() == 1 ? " rank" : " ranks") + " x " + std::to_string(local) +
                   " samples of x: give count the batch the sampling run draws (its `n`)");
    comm_ = ctx.ranks() > 1 && ctx.executor() ? ctx.executor()->communicator() : nullptr;
    if (ctx.ranks() > 1 && !comm_) ctx.fail("x", "runs on several ranks without the executor's communicator");
    channel_ = random::hash(ctx.id());
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    if (comm_) comm_->gather(x.data(), x.numel(), y.data(), channel_);
    else std::copy_n(x.data(), x.numel(), y.data());
  }

 private:
  Communicator* comm_ = nullptr;
  uint64_t channel_ = 0;
};

NOISEFLOW_REGISTER_NODE(Gather);

}  // namespace
}  // namespace noiseflow::nodes
