// nodes/diffusion/loss_weights.cpp — per-sample loss weights by timestep, for loss.mse's `weights`.
//
// With SNR s = abar_t / (1 - abar_t) = (sqrt(abar) / sqrt(1 - abar))^2, each objective's squared
// error is a multiple of the x0 error: |eps - eps^|^2 = s |x0 - x0^|^2, |v - v^|^2 = (s + 1) |x0 - x0^|^2.
// A weighting names the weight w(s) it puts on the x0 error; the node outputs w(s) / c_objective
// (c_eps = s, c_x0 = 1, c_v = s + 1), the factor for the objective actually trained:
//   none     every weight 1 (the plain loss of the objective)
//   snr      w = s: the weighting the eps loss has; weights eps 1, x0 s, v s / (s + 1)
//   min_snr  w = min(s, gamma) (Hang et al. 2023, Min-SNR-gamma): eps min(s, gamma) / s (1 where
//            s <= gamma, also at s = 0), x0 min(s, gamma), v min(s, gamma) / (s + 1) (diffusers)
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct LossWeights final : Node {
  static Schema schema() {
    return Schema("diffusion.loss_weights",
                  "per-sample loss weights [N] by timestep for loss.mse: none (1), snr, or min_snr (Min-SNR-gamma, "
                  "Hang et al. 2023), each converted to the objective trained (eps, x0 or v)")
        .input("t", "[N] timesteps (integers in [0, T))")
        .input("schedule", "[8, T] schedule table")
        .output("weights", "[N] the weight of each sample's squared error")
        .attr_string("weighting", "min_snr", {"none", "snr", "min_snr"},
                     "none: 1; snr: weight SNR on the x0 error; min_snr: min(SNR, gamma) on the x0 error")
        .attr_float("gamma", 5.0, 0.0, {}, "min_snr's cap on the SNR weight (5 in the paper)")
        .attr_string("objective", "eps", {"eps", "x0", "v"}, "the objective loss.mse compares (diffusion.target's)")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& t = c.input("t");
          if (t.size() != 1) c.fail("t", "expected timesteps [N], got " + graph::shape_str(t));
          schedule_steps(c);
          if (c.attr_string("weighting") == "min_snr" && c.attr_float("gamma") <= 0)
            c.fail("gamma", "must be above 0 (the cap of min(SNR, gamma))");
          c.set_output("weights", t);
        });
  }

  void plan(Context& ctx) override {
    const std::string w = ctx.attr_string("weighting"), o = ctx.attr_string("objective");
    weighting_ = w == "none" ? 0 : w == "snr" ? 1 : 2;
    objective_ = o == "eps" ? 0 : o == "x0" ? 1 : 2;
    gamma_ = ctx.attr_float("gamma");
  }

  /// The weight at SNR s (s = 0 allowed: zero-terminal-SNR schedules).
  double weight(double s) const {
    if (weighting_ == 0) return 1.0;
    const double w = weighting_ == 1 ? s : std::min(s, gamma_);  // on the x0 error
    if (objective_ == 1) return w;
    if (objective_ == 2) return w / (s + 1.0);
    if (weighting_ == 1 || s <= gamma_) return 1.0;  // eps: w / s, its limit 1 as s -> 0
    return gamma_ / s;
  }

  void forward(Context& ctx) override {
    const ScheduleTable sched(ctx.input("schedule"));
    const Tensor& t = ctx.input("t");
    Tensor& out = ctx.output("weights");
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int64_t k = timestep_at(ctx, t, i, sched.steps());
      const double a = sched.at(kSqrtAlphaBar, k), b = sched.at(kSqrtOneMinusAlphaBar, k);
      const double s = b > 0 ? (a / b) * (a / b) : std::numeric_limits<double>::infinity();
      out[i] = float(weight(s));
    }
  }

 private:
  int weighting_ = 2, objective_ = 0;
  double gamma_ = 5.0;
};

NOISEFLOW_REGISTER_NODE(LossWeights);

}  // namespace
}  // namespace noiseflow::nodes
