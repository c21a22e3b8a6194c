// nodes/io/load_checkpoint.cpp — loads a checkpoint's weights (EMA or raw)
// into the pipeline's parameters before anything runs.
#include <filesystem>

#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct LoadCheckpoint final : Node {
  static Schema schema() {
    return Schema("io.load_checkpoint",
                  "loads weights from a safetensors checkpoint into the pipeline's parameters (once, before the first tick)")
        .attr_string("path", std::nullopt, {}, "the checkpoint file")
        .attr_string("weights", "ema", {}, "ema: the EMA copies (ema.<name>); raw: the trained weights; another "
                     "name: the copies of the optim.ema with that prefix (<name>.<param>)")
        .attr_string("prefix", "", {}, "name prefix the pipeline's parameters carry but the file may lack (e.g. net.)")
        .attr_string("hint", "", {}, "appended to the error when the file is missing (how to make one)")
        .attr_string("scope", "", {}, "load only the parameters whose names start with this (e.g. cls.); empty: all")
        .attr_string("file_scope", "", {}, "what the file calls `scope` (e.g. net. for a classifier trained as \"net\")")
        .attr_bool("allow_nonfinite", false, "load weights holding NaN or Inf (to inspect a diverged run); "
                   "otherwise such a tensor is an error naming it")
        .output("step", "[1] the step the checkpoint was written at")
        .shape([](graph::ShapeContext& c) {
          const std::string w = c.attr_string("weights");
          if (w.empty() || w.find('.') != std::string::npos)
            c.fail("weights", "expected ema, raw or an EMA prefix without '.', got \"" + w + "\"");
          c.set_output("step", {1});
        });
  }

  void plan(Context& ctx) override {
    if (!ctx.executor()) ctx.fail("path", "io.load_checkpoint needs a running pipeline");
    std::string path = ctx.attr_string("path");
    if (!std::filesystem::exists(path)) {
      std::string hint = ctx.attr_string("hint");
      ctx.fail("path", "no checkpoint at " + path + (hint.empty() ? "" : ": " + hint));
    }
    try {
      const std::string weights = ctx.attr_string("weights");
      LoadMode mode = weights == "raw" ? LoadMode::Weights : LoadMode::Ema;
      step_ = load_checkpoint(*ctx.executor(), path,
                              {.mode = mode,
                               .prefix = ctx.attr_string("prefix"),
                               .scope = ctx.attr_string("scope"),
                               .file_scope = ctx.attr_string("file_scope"),
                               .ema_prefix = weights,
                               .allow_nonfinite = ctx.attr_bool("allow_nonfinite")});
    } catch (const CheckpointError& e) {
      ctx.fail("path", e.what());
    }
  }

  void forward(Context& ctx) override { ctx.output("step").fill(float(step_)); }

 private:
  int64_t step_ = 0;
};

NOISEFLOW_REGISTER_NODE(LoadCheckpoint);

}  // namespace
}  // namespace noiseflow::nodes
