// nodes/io/checkpoint.cpp — writes the run's checkpoint (safetensors): every
// parameter, the optimizer moments and EMA weights, and the step, atomically.
#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Checkpoint final : Node {
  static Schema schema() {
    return Schema("io.checkpoint",
                  "writes a safetensors checkpoint (weights, optimizer moments, EMA weights, step) atomically; "
                  "`noiseflow run --resume` continues from it")
        .optional_input("after", "anything that must be computed first (connect the optimizer's or EMA's step)")
        .attr_string("path", std::nullopt, {}, "file to write, e.g. runs/mnist/checkpoint.safetensors")
        .checkpoint_writer("path")
        .sink();
  }

  void forward(Context& ctx) override {
    if (!ctx.executor()) ctx.fail("path", "io.checkpoint needs a running pipeline");
    std::string path = ctx.attr_string("path");
    if (ctx.run_state() && ctx.run_state()->before_checkpoint) ctx.run_state()->before_checkpoint(ctx.tick());
    try {
      save_checkpoint(*ctx.executor(), path, ctx.tick() + 1);
    } catch (const CheckpointError& e) {
      ctx.fail("path", e.what());
    }
    if (ctx.run_state()) ctx.run_state()->artifact("checkpoint", path, ctx.id());
  }
};

NOISEFLOW_REGISTER_NODE(Checkpoint);

}  // namespace
}  // namespace noiseflow::nodes
