// nodes/optim/ema.cpp — exponential moving averages of the trainable weights, beside the raw ones.
//
//   "opt": { "op": "optim.adam", "inputs": { "loss": "loss" } },
//   "ema": { "op": "optim.ema",  "inputs": { "step": "opt" } }      // after every update
//
// After optimizer step s (its `step` output): ema = d * ema + (1 - d) * w with d = decay, or with
// `warmup` d = min(decay, (1 + s) / (10 + s)) (tf.train.ExponentialMovingAverage with num_updates =
// the step count after the update). The copies start as the weights at plan time. The runtime gives
// this node the optimizer's trainable list because it consumes the optimizer's output (see
// Executor::plan_autodiff); that data edge also orders it after the update. The copies are
// checkpointed as "ema.<param>" (live handles: a checkpoint load writes into them).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

constexpr int64_t kBlock = 16384;
constexpr int64_t kParallelMin = 65536;

struct Ema final : Node {
  static Schema schema() {
    return Schema("optim.ema",
                  "Exponential moving average of the trainable weights after every optimizer step: "
                  "ema = d * ema + (1 - d) * w, checkpointed as \"ema.<param>\"; connect `step` to the optimizer")
        .input("step", "[1] the optimizer's step output (orders this node after the update)")
        .output("step", "[1] the step, passed through (for checkpoints that must follow the EMA)")
        .attr_float("decay", 0.999, 0.0, 1.0, "decay d of the average, in [0, 1]")
        .attr_bool("warmup", false, "use d = min(decay, (1 + step) / (10 + step)) early in training")
        .memory([](const graph::MemoryContext& m) { return graph::NodeMemory{m.trainable_bytes, 0}; })  // the average
        .heavy()
        .shape([](graph::ShapeContext& c) {
          if (c.input("step") != Shape{1})
            c.fail("step", "expected the optimizer's step [1], got " + graph::shape_str(c.input("step")));
          c.set_output("step", {1});
        });
  }

  void plan(Context& ctx) override {
    const auto& ps = ctx.trainable();
    if (ps.empty())
      ctx.fail("step", "no trainable parameters: connect `step` to an optimizer's step output (e.g. \"opt.step\")");
    for (size_t k = 0; k < ps.size(); ++k) {
      ema_.push_back(ps[k]->value.clone());
      const int64_t n = ps[k]->value.numel();
      for (int64_t b = 0; b < n; b += kBlock) blocks_.push_back({k, b, std::min(n, b + kBlock)});
      total_ += n;
    }
  }

  void forward(Context& ctx) override {
    const double step = ctx.input("step")[0];
    double d = ctx.attr_float("decay");
    if (ctx.attr_bool("warmup")) d = std::min(d, (1.0 + step) / (10.0 + step));
    const float keep = float(d), take = float(1.0 - d);
    const auto& ps = ctx.trainable();
    const int64_t nb = int64_t(blocks_.size());
#pragma omp parallel for schedule(static) if (total_ >= kParallelMin)
    for (int64_t b = 0; b < nb; ++b) {
      const Block& bl = blocks_[b];
      const float* w = ps[bl.param]->value.data();
      float* e = ema_[bl.param].data();
#pragma omp simd
      for (int64_t i = bl.begin; i < bl.end; ++i) e[i] = keep * e[i] + take * w[i];
    }
    ctx.output("step")[0] = ctx.input("step")[0];
  }

  std::vector<std::pair<std::string, Tensor>> state_tensors(Context& ctx) override {
    std::vector<std::pair<std::string, Tensor>> out;
    const auto& ps = ctx.trainable();
    for (size_t k = 0; k < ps.size() && k < ema_.size(); ++k) out.push_back({"ema." + ps[k]->name, ema_[k]});
    return out;
  }

 private:
  struct Block {
    size_t param;
    int64_t begin, end;
  };
  std::vector<Tensor> ema_;
  std::vector<Block> blocks_;
  int64_t total_ = 0;
};

NOISEFLOW_REGISTER_NODE(Ema);

}  // namespace
}  // namespace noiseflow::nodes
