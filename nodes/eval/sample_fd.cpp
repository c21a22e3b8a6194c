// nodes/eval/sample_fd.cpp — sample quality during training: every `every` ticks this sink copies the
// run's current EMA (or raw) weights into a sampling pipeline of its own (pipelines/eval/train_fd.json:
// a short deterministic sampler, then the digit classifier's Frechet distance against the held-out
// digits), runs it to the end and records the distance as the run scalar `fd` (a log.csv column).
// The sub-pipeline is loaded and validated once, when the run is planned; each evaluation builds a
// fresh executor for it (its state nodes start over).
#include <filesystem>
#include <string>

#include "graph/pipeline.hpp"
#include "nodes/eval/run_weights.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct SampleFd final : Node {
  static Schema schema() {
    return Schema("eval.sample_fd",
                  "Sample quality while training: runs a sampling pipeline (default pipelines/eval/train_fd.json) "
                  "with the run's current EMA or raw weights and records its Frechet distance as the run scalar "
                  "fd (log.csv); give it `every` N ticks")
        .optional_input("after", "what must be computed first (connect the EMA's step)")
        .output("fd", "[1] the latest distance (0 before the first evaluation)")
        .attr_string("pipeline", "pipelines/eval/train_fd.json",
                     {}, "the sampling pipeline: its params n, steps, sampler, spacing, prediction, T, zero_snr are "
                         "set from this node's attributes; its output fd.fd is read")
        .attr_string("weights", "ema", {}, "ema: the EMA copies; raw: the trained weights; another name: the copies "
                     "of the optim.ema with that prefix")
        .attr_string("scope", "net.", {}, "the parameters copied: those whose names start with this")
        .attr_int("n", 200, 2, {}, "samples per evaluation")
        .attr_int("steps", 20, 1, 100000, "sampler steps")
        .attr_string("sampler", "ddim", {}, "the sampler (sampler.<name>)")
        .attr_string("spacing", "trailing", {}, "the grid spacing")
        .attr_string("prediction", "eps", {"eps", "x0", "v"}, "what the net predicts (train.json's objective)")
        .attr_int("T", 1000, 1, 100000, "diffusion steps of the schedule")
        .attr_bool("zero_snr", false, "the schedule's zero-terminal-SNR rescale")
        .attr_string("classifier", "runs/mnist_classifier/classifier.safetensors", {},
                     "the classifier checkpoint (pipelines/eval/train_classifier.json)")
        .sink()
        .timed_in_probe()
        .shape([](graph::ShapeContext& c) { c.set_output("fd", {1}); });
  }

  void plan(Context& ctx) override {
    if (!ctx.executor()) ctx.fail("pipeline", "eval.sample_fd needs a running pipeline");
    // Fail before training starts, not at the first evaluation.
    if (!std::filesystem::exists(ctx.attr_string("classifier")))
      ctx.fail("classifier", "no classifier checkpoint at " + ctx.attr_string("classifier") +
                                 ": train the classifier first: noiseflow run pipelines/eval/train_classifier.json");
    graph::LoadOptions o;
    o.schemas = &Registry::global();
    o.overrides = {{"n", ctx.attr_int("n")},
                   {"steps", ctx.attr_int("steps")},
                   {"sampler", ctx.attr_string("sampler")},
                   {"spacing", ctx.attr_string("spacing")},
                   {"prediction", ctx.attr_string("prediction")},
                   {"T", ctx.attr_int("T")},
                   {"zero_snr", ctx.attr_bool("zero_snr")},
                   {"classifier", ctx.attr_string("classifier")}};
    try {
      graph_ = graph::load_pipeline(ctx.attr_string("pipeline"), o);
    } catch (const graph::GraphError& e) {
      ctx.fail("pipeline", std::string("the sampling pipeline does not load: ") + e.what());
    }
    if (graph_.find("fd") < 0) ctx.fail("pipeline", ctx.attr_string("pipeline") + " has no node \"fd\" to read");
    ctx.output("fd").fill(0.f);
  }

  void forward(Context& ctx) override {
    Executor sub(graph_);
    eval::copy_run_weights(ctx, sub, ctx.attr_string("scope"), ctx.attr_string("weights"), ctx.attr_string("pipeline"));
    sub.run();
    const double fd = sub.output("fd.fd")[0];
    ctx.output("fd")[0] = float(fd);
    if (ctx.run_state()) ctx.run_state()->scalar("fd", ctx.tick(), fd);
  }

 private:
  graph::Graph graph_;
};

NOISEFLOW_REGISTER_NODE(SampleFd);

}  // namespace
}  // namespace noiseflow::nodes
