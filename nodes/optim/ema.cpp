// nodes/optim/ema.cpp — exponential moving averages of the trainable weights, beside the raw ones.
//
//   "opt": { "op": "optim.adam", "inputs": { "loss": "loss" } },
//   "ema": { "op": "optim.ema",  "inputs": { "step": "opt" } }      // after every update
//
// After optimizer step s (its `step` output): ema = d * ema + (1 - d) * w with d = decay, or ramped:
//   ramp "tf"      d = min(decay, (1 + s) / (10 + s))   (tf.train.ExponentialMovingAverage with
//                  num_updates = the step count after the update; also `warmup: true`)
//   ramp "power"   k = max(0, s - update_after - 1); d = 0 at k = 0, else
//                  d = clamp(1 - (1 + k / inv_gamma)^-power, min_decay, decay)
//                  (diffusers' EMAModel with use_ema_warmup; power 2/3 for short runs, 3/4 for long)
// The copies start as the weights at plan time. The runtime gives
// this node the optimizer's trainable list because it consumes the optimizer's output (see
// Executor::plan_autodiff); that data edge also orders it after the update. The copies are
// checkpointed as "<prefix>.<param>" (prefix "ema" unless set; live handles: a checkpoint load writes
// into them), so a fixed and a ramped average can be kept side by side under different prefixes.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/optim/param_blocks.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Ema final : Node {
  static Schema schema() {
    return Schema("optim.ema",
                  "Exponential moving average of the trainable weights after every optimizer step: "
                  "ema = d * ema + (1 - d) * w, checkpointed as \"ema.<param>\"; connect `step` to the optimizer")
        .input("step", "[1] the optimizer's step output (orders this node after the update)")
        .output("step", "[1] the step, passed through (for checkpoints that must follow the EMA)")
        .attr_float("decay", 0.999, 0.0, 1.0, "decay d of the average, in [0, 1]")
        .attr_string("ramp", "none", {"none", "tf", "power"},
                     "none: d = decay; tf: d = min(decay, (1 + step) / (10 + step)); power: d = min(decay, 1 - (1 + k / "
                     "inv_gamma)^-power), k = step - update_after - 1 (diffusers' EMAModel warm-up)")
        .attr_bool("warmup", false, "the same as ramp \"tf\" (kept for older pipelines)")
        .attr_float("power", 2.0 / 3.0, 0.0, {}, "exponent of the power ramp (2/3 suits short runs, 3/4 long ones)")
        .attr_float("inv_gamma", 1.0, 0.0, {}, "inverse multiplicative factor of the power ramp (> 0)")
        .attr_float("min_decay", 0.0, 0.0, 1.0, "lower bound of the power ramp's decay")
        .attr_int("update_after", 0, 0, {}, "power ramp: steps before averaging starts (the copy follows w)")
        .attr_string("prefix", "ema", {}, "checkpoint names \"<prefix>.<param>\" (two EMAs need two prefixes)")
        .memory([](const graph::MemoryContext& m) { return graph::NodeMemory{m.trainable_bytes, 0}; })  // the average
        .heavy()
        .shape([](graph::ShapeContext& c) {
          if (c.input("step") != Shape{1})
            c.fail("step", "expected the optimizer's step [1], got " + graph::shape_str(c.input("step")));
          const std::string ramp = c.attr_string("ramp");
          if (c.attr_bool("warmup") && ramp == "power")
            c.fail("warmup", "choose one ramp: warmup: true is ramp \"tf\", but ramp is \"power\"");
          if (ramp == "power" && c.attr_float("inv_gamma") <= 0) c.fail("inv_gamma", "must be above 0 for the power ramp");
          if (ramp == "power" && c.attr_float("power") <= 0) c.fail("power", "must be above 0 for the power ramp");
          if (c.attr_float("min_decay") > c.attr_float("decay"))
            c.fail("min_decay", "is above decay (the ramp's upper bound)");
          const std::string prefix = c.attr_string("prefix");
          if (prefix.empty() || prefix.find('.') != std::string::npos)
            c.fail("prefix", "must be a non-empty name without '.', got \"" + prefix + "\"");
          c.set_output("step", {1});
        });
  }

  void plan(Context& ctx) override {
    const std::string ramp = ctx.attr_string("ramp");
    ramp_ = ramp == "tf" || ctx.attr_bool("warmup") ? Ramp::Tf : ramp == "power" ? Ramp::Power : Ramp::None;
    decay_ = ctx.attr_float("decay");
    power_ = ctx.attr_float("power");
    inv_gamma_ = ctx.attr_float("inv_gamma");
    min_decay_ = ctx.attr_float("min_decay");
    update_after_ = ctx.attr_int("update_after");
    const auto& ps = ctx.trainable();
    if (ps.empty())
      ctx.fail("step", "no trainable parameters: connect `step` to an optimizer's step output (e.g. \"opt.step\")");
    for (size_t k = 0; k < ps.size(); ++k) ema_.push_back(ps[k]->value.clone());
    blocks_ = optim::ParamBlocks(ps);
  }

  void forward(Context& ctx) override {
    const double step = ctx.input("step")[0];
    const double d = decay_at(step);
    const float keep = float(d), take = float(1.0 - d);
    const auto& ps = ctx.trainable();
    blocks_.for_each([&](int64_t, const optim::ParamBlocks::Block& bl) {
      const float* w = ps[bl.param]->value.data();
      float* e = ema_[bl.param].data();
#pragma omp simd
      for (int64_t i = bl.begin; i < bl.end; ++i) e[i] = keep * e[i] + take * w[i];
    });
    ctx.output("step")[0] = ctx.input("step")[0];
  }

  /// The decay after optimizer step `step` (1-based).
  double decay_at(double step) const {
    if (ramp_ == Ramp::Tf) return std::min(decay_, (1.0 + step) / (10.0 + step));
    if (ramp_ == Ramp::None) return decay_;
    const double k = std::max(0.0, step - double(update_after_) - 1.0);
    if (k <= 0) return 0.0;
    const double d = 1.0 - std::pow(1.0 + k / inv_gamma_, -power_);
    return std::max(std::min(d, decay_), min_decay_);
  }

  std::vector<std::pair<std::string, Tensor>> state_tensors(Context& ctx) override {
    std::vector<std::pair<std::string, Tensor>> out;
    const auto& ps = ctx.trainable();
    const std::string prefix = ctx.attr_string("prefix") + ".";
    for (size_t k = 0; k < ps.size() && k < ema_.size(); ++k) out.push_back({prefix + ps[k]->name, ema_[k]});
    return out;
  }

 private:
  enum class Ramp { None, Tf, Power };
  Ramp ramp_ = Ramp::None;
  double decay_ = 0.999, power_ = 2.0 / 3.0, inv_gamma_ = 1.0, min_decay_ = 0.0;
  int64_t update_after_ = 0;
  std::vector<Tensor> ema_;
  optim::ParamBlocks blocks_;
};

NOISEFLOW_REGISTER_NODE(Ema);

}  // namespace
}  // namespace noiseflow::nodes
