// nodes/eval/sample_grid.cpp — pictures while training: every `every` ticks this sink samples a few
// images with the run's current EMA (or raw) weights and writes them as a PNG grid titled with the step,
// runs/NAME/samples/step_000500.png. The noise is drawn from the same seed every time, so successive
// grids show the same starting points turning into images as the model learns.
//
//   training run                              sampling pipeline (pipelines/eval/preview.json)
//   xt ─┐                                     noise ─> x (state) ─┐
//   t ──┼─> net.* (any net) ─> loss ...       ts.t ───────────────┼─> net.*  (the run's, flattened)
//   sched                                     sched (the run's)   │     └─> step ─> x_next ─> PNG
//
// When the run is planned, the sampling pipeline file is read and its node `net` (a stand-in, so the
// file also checks and runs on its own) is replaced by the run's own net instance: every node whose id
// starts with "net.", attributes as resolved, each of the net's inputs (x, t, labels ...) rewired to what
// the stand-in is given there, every reference to the stand-in's output pointed at the net's. Its
// `sched` node becomes the run's schedule node, and its params channels, height and width come from
// the shape of the net's input x: any image size and channel count, any net. Each preview builds a fresh
// executor for it (its state nodes start over), copies the weights in and runs it to the end.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "graph/pipeline.hpp"
#include "nodes/draw/png_grid.hpp"
#include "nodes/eval/run_weights.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct SampleGrid final : Node {
  static Schema schema() {
    return Schema("eval.sample_grid",
                  "Pictures while training: every `every` ticks samples `n` images from fixed noise with a short "
                  "sampler and the run's current EMA (or raw) weights, and writes them as a PNG grid titled with "
                  "the step (FOLDER/step_000500.png). The sampling pipeline gets the run's own net (instance `net`) "
                  "and schedule, so any net, image size and channel count (1 or 3) works; records the seconds each "
                  "grid took as the run scalar preview_seconds")
        .optional_input("after", "what must be computed first (connect the EMA's step)")
        .attr_string("pipeline", "pipelines/eval/preview.json", {},
                     "the sampling pipeline: its node `net` is replaced by the run's net and its node `sched` by the "
                     "run's schedule; its params n, steps, sampler, spacing, prediction, seed, channels, height and "
                     "width are set from this node; `output` is read after its last tick")
        .attr_string("net", "net", {}, "the run's net instance: the nodes whose ids start with NET. (it needs an input x "
                                       "[N, C, H, W]; its other inputs must have counterparts in the sampling pipeline)")
        .attr_string("schedule", "sched", {}, "the run's diffusion.schedule node (copied into the sampling pipeline)")
        .attr_string("weights", "ema", {}, "ema: the EMA copies; raw: the trained weights; another name: the copies "
                     "of the optim.ema with that prefix")
        .attr_int("n", 16, 1, 1024, "images per grid")
        .attr_int("steps", 20, 1, 1000, "sampler steps")
        .attr_string("sampler", "ddim", {}, "the sampler (sampler.<name>)")
        .attr_string("spacing", "trailing", {}, "the grid spacing")
        .attr_int("t_max", -1, -1, {},
                  "the sampler's grid covers [0, t_max] (sampler.timesteps' t_max, e.g. a consistency model distilled "
                  "below t_max); -1: all T timesteps")
        .attr_string("prediction", "eps", {"eps", "x0", "v"}, "what the net predicts (the training objective)")
        .attr_int("seed", 0, 0, {}, "seed of the sampling pipeline: the same noise in every grid")
        .attr_string("output", "step.x_next", {}, "the sampling pipeline's images [n, C, H, W] in [-1, 1]")
        .attr_string("folder", "", {}, "where the PNGs go; empty: samples/ in the run folder (runs/NAME/samples)")
        .attr_int("cols", 0, 0, 1024, "images per row; 0 = ceil(sqrt(n))")
        .attr_int("scale", 2, 1, 16, "integer upscaling of the images")
        .sink()
        .timed_in_probe();
  }

  void plan(Context& ctx) override {
    if (!ctx.executor()) ctx.fail("pipeline", "eval.sample_grid needs a running pipeline");
    const graph::Graph& g = ctx.executor()->graph();
    const std::string file = ctx.attr_string("pipeline"), net = ctx.attr_string("net"), prefix = net + ".";

    // The run's net, flattened.
    graph::Json net_nodes = graph::Json::object();
    for (auto& [id, nd] : g.resolved["nodes"].items())
      if (id.rfind(prefix, 0) == 0) net_nodes[id] = nd;
    if (net_nodes.empty()) ctx.fail("net", "the run has no net instance \"" + net + "\" (no node " + prefix + "*)");

    // The sampling pipeline as written, with its stand-in net.
    graph::Json doc;
    {
      std::ifstream in(file);
      if (!in) ctx.fail("pipeline", "cannot read the sampling pipeline " + file);
      try {
        doc = graph::Json::parse(in);
      } catch (const std::exception& e) {
        ctx.fail("pipeline", file + " is not JSON: " + e.what());
      }
    }
    if (!doc.is_object() || !doc["nodes"].is_object() || !doc["nodes"].contains(net) || !doc["nodes"][net].is_object())
      ctx.fail("pipeline", file + " has no node \"" + net + "\" to put the run's net in place of");
    graph::Json& nodes = doc["nodes"];
    const graph::Json stand_in = nodes[net];
    const graph::Json stand_in_inputs = stand_in.value("inputs", graph::Json::object());

    // The net's inputs: the aliases NET.NAME of nodes outside it, each rewired to the stand-in's.

    std::map<std::string, std::string> rewire;  // the run's ref -> the sampling pipeline's
    const graph::Shape* image_shape = nullptr;
    for (auto& [alias, ref] : g.aliases) {
      if (alias.rfind(prefix, 0) != 0 || alias.find('.', prefix.size()) != std::string::npos) continue;
      if (g.nodes[size_t(ref.node)].id.rfind(prefix, 0) == 0) continue;  // an output
      const std::string input = alias.substr(prefix.size());
      if (!stand_in_inputs.contains(input) || !stand_in_inputs[input].is_string())
        ctx.fail("pipeline", file + ": node \"" + net + "\" has no input \"" + input + "\", which the run's net reads (from \"" +
                                 g.ref_name(ref) + "\")");
      rewire[g.ref_name(ref)] = stand_in_inputs[input].get<std::string>();
      if (input == "x") image_shape = &g.shape(ref);
    }
    if (!image_shape || image_shape->size() != 4 || ((*image_shape)[1] != 1 && (*image_shape)[1] != 3))
      ctx.fail("net", "the run's net \"" + net + "\" needs an input x of images [N, 1 or 3, H, W]" +
                          (image_shape ? ", got " + graph::shape_str(*image_shape) : std::string()));
    for (auto& [id, nd] : net_nodes.items())
      if (nd.contains("inputs"))
        for (auto& [port, ref] : nd["inputs"].items()) {
          auto it = rewire.find(ref.get<std::string>());
          if (it != rewire.end()) ref = it->second;
        }

    // The stand-in's outputs become the net's; the run's schedule replaces the pipeline's.
    for (auto& [id, nd] : nodes.items())
      if (nd.is_object() && nd.contains("inputs") && nd["inputs"].is_object())
        for (auto& [port, ref] : nd["inputs"].items()) {
          if (!ref.is_string()) continue;
          const std::string r = ref.get<std::string>();
          if (r != net && r.rfind(prefix, 0) != 0) continue;
          auto target = g.aliases.find(r);
          if (target == g.aliases.end())
            ctx.fail("pipeline", file + ": node \"" + id + "\" reads \"" + r + "\", which the run's net does not output");
          ref = g.ref_name(target->second);
        }
    nodes.erase(net);
    for (auto& [id, nd] : net_nodes.items()) nodes[id] = nd;
    const std::string sched = ctx.attr_string("schedule");
    const int si = g.find(sched);
    if (si < 0 || g.nodes[size_t(si)].op != "diffusion.schedule")
      ctx.fail("schedule", "the run has no diffusion.schedule node \"" + sched + "\"");
    if (!nodes.contains(sched)) ctx.fail("pipeline", file + " has no node \"" + sched + "\" for the run's schedule");
    nodes[sched] = graph::Json{{"op", "diffusion.schedule"}, {"attrs", g.nodes[size_t(si)].attrs}};

    const graph::Shape& s = *image_shape;
    graph::LoadOptions o;
    o.schemas = &Registry::global();
    o.overrides = {{"n", ctx.attr_int("n")},           {"steps", ctx.attr_int("steps")},
                   {"sampler", ctx.attr_string("sampler")}, {"spacing", ctx.attr_string("spacing")},
                   {"prediction", ctx.attr_string("prediction")}, {"seed", ctx.attr_int("seed")},
                   {"channels", s[1]},                  {"height", s[2]},
                   {"width", s[3]}};
    // Only when set: a sampling pipeline of its own need not declare t_max.
    if (ctx.attr_int("t_max") >= 0) o.overrides["t_max"] = ctx.attr_int("t_max");
    try {
      graph_ = graph::load_pipeline_text(doc.dump(), file, o);
    } catch (const graph::GraphError& e) {
      ctx.fail("pipeline", "the sampling pipeline (" + file + " with the run's net) does not load: " + e.what());
    }
    const std::string out = ctx.attr_string("output");
    const int oi = graph_.find(out.substr(0, out.find('.')));
    if (oi < 0) ctx.fail("output", file + " has no node \"" + out.substr(0, out.find('.')) + "\"");
    shape_ = {ctx.attr_int("n"), s[1], s[2], s[3]};
    grid_.plan(ctx, shape_[0], s[1], s[2], s[3], ctx.attr_int("cols"), 1, -1.f, ctx.attr_int("scale"),
               {.title_chars = 12});  // "step 1000000"
  }

  void forward(Context& ctx) override {
    const auto started = std::chrono::steady_clock::now();
    Executor sub(graph_);
    eval::copy_run_weights(ctx, sub, ctx.attr_string("net") + ".", ctx.attr_string("weights"), ctx.attr_string("pipeline"));
    sub.run();
    const Tensor x = sub.output(ctx.attr_string("output"));
    if (x.shape() != shape_)
      ctx.fail("output", ctx.attr_string("output") + " is " + graph::shape_str(x.shape()) + ", expected " +
                             graph::shape_str(shape_));
    // The step the weights are at: the checkpoint's count, ticks done.
    const int64_t step = ctx.tick() + 1;
    std::string folder = ctx.attr_string("folder");
    if (folder.empty()) {
      const std::string run_dir = ctx.run_state() ? ctx.run_state()->run_dir : std::string();
      folder = (run_dir.empty() ? "runs/" + ctx.executor()->graph().name : run_dir) + "/samples";
    }
    char name[64];
    std::snprintf(name, sizeof name, "/step_%06lld.png", (long long)step);
    grid_.write(ctx, x.data(), folder + name, {}, {}, "step " + std::to_string(step));
    if (ctx.run_state())
      ctx.run_state()->scalar("preview_seconds", ctx.tick(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }

 private:
  graph::Graph graph_;
  graph::Shape shape_;
  draw::PngGrid grid_;
};

NOISEFLOW_REGISTER_NODE(SampleGrid);

}  // namespace
}  // namespace noiseflow::nodes
