// nodes/diffusion/consistency_times.cpp — the noise-level pairs of Easy Consistency Tuning (ECT, Geng et al.
// 2024), per sample and tick, in the schedule's timesteps:
//
//   sigma_t ~ exp(N(log_sigma_mean, log_sigma_std^2))      clamped to the table's [sigma_0, sigma_{t_max}]
//   sigma_r = sigma_t (1 - q^-(stage+1) (1 + k sigmoid(-b sigma_t)))          the gap shrinks with the stage
//   w       = (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2             ECT's weighting, 1/sigma_t^2 + 1/sigma_data^2
//   or, weighting "eps", w = sqrt(sigma_t^2 + sigma_data^2) / (sigma_t^2 sigma_data): ECT's balance across noise
//   levels for a net that predicts eps, whose x0 error is sigma_t times its own (EDM's is at most sigma_data
//   times): with the L2-norm distance (loss.pseudo_huber c = 0) each level weighs the eps error as ECT weighs
//   its net's output error.
//
// stage = floor(stages * tick / ticks) (a per-tick schedule of the gap: `stages` equal stretches of the run)
// or floor(tick / stage_ticks). t and r are the continuous timesteps of those levels (sigma = sqrt(1-abar)/
// sqrt(abar), log sigma interpolated between the table's levels); r = 0, the table's least noisy level,
// where sigma_r falls below it (ECT takes the data itself there; sigma_0 of the linear schedule is 0.01).
// Declares the recipe's "model": "consistency", so the checkpoint records what the training made.
#include <algorithm>
#include <cmath>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

constexpr double kFloor = 1.0 / 4096.0;  // sqrt(abar) floor, as diffusion.timesteps' lognormal draws

struct ConsistencyTimes final : Node {
  static Schema schema() {
    return Schema("diffusion.consistency_times",
                  "ECT's noise-level pairs per sample and tick: t with log sigma ~ N(mean, std^2), r < t with "
                  "sigma_r = sigma_t (1 - q^-(stage+1) (1 + k sigmoid(-b sigma_t))) on a per-tick stage schedule, "
                  "and the weights (sigma_t^2 + sigma_data^2) / (sigma_t sigma_data)^2")
        .input("like", "any tensor [N, ...]; only its first dimension (the batch N) is used")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("t", "[N] continuous timesteps of sigma_t")
        .output("r", "[N] continuous timesteps of sigma_r (0 where sigma_r is below the table's least noise)")
        .output("weights", "[N] per-sample loss weights")
        .attr_float("log_sigma_mean", -1.1, {}, {}, "mean of log sigma_t (ECT's P_mean)")
        .attr_float("log_sigma_std", 2.0, 0.0, {}, "standard deviation of log sigma_t (ECT's P_std)")
        .attr_float("q", 4.0, 1.0001, {}, "the gap shrinks by this factor per stage")
        .attr_float("k", 8.0, 0.0, {}, "sigmoid adjustment: small sigma_t get a larger relative gap")
        .attr_float("b", 1.0, {}, {}, "sigmoid adjustment's slope in sigma_t")
        .attr_float("sigma_data", 0.5, 1e-6, {}, "the data's standard deviation in the weighting")
        .attr_string("weighting", "ect", {"ect", "eps"}, "ect: 1/sigma_t^2 + 1/sigma_data^2; eps: sqrt(sigma_t^2 + sigma_data^2) / "
                                                        "(sigma_t^2 sigma_data), the same balance for an eps-predicting net")
        .attr_int("stages", 4, 1, 64, "the run's ticks in this many equal stages (when stage_ticks is 0)")
        .attr_int("stage_ticks", 0, 0, {}, "ticks per stage; 0: the run's ticks / stages")
        .attr_int("t_max", -1, -1, {}, "the largest timestep t takes (sigma_t clamped to its level); -1: T - 1. A model "
                                       "sampled from t_max (sampler.timesteps' t_max) needs no consistency above it")
        .attr_string("model", "consistency", {"consistency"}, "what the trained net becomes (recorded in the checkpoint's recipe)")
        .recipe("model", "model")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor [N, ...] with a batch dimension");
          if (c.attr_int("t_max") >= schedule_steps(c))
            c.fail("t_max", "t_max " + std::to_string(c.attr_int("t_max")) + " is past the schedule's last timestep " +
                                std::to_string(schedule_steps(c) - 1));
          c.set_output("t", {like[0]});
          c.set_output("r", {like[0]});
          c.set_output("weights", {like[0]});
        });
  }

  void plan(Context& ctx) override {
    key_ = ctx.random_key();
    draws_.resize(size_t(ctx.output("t").numel()));
    const int64_t per = ctx.attr_int("stage_ticks");
    stage_ticks_ = per > 0 ? per : std::max<int64_t>(1, (ctx.ticks() + ctx.attr_int("stages") - 1) / ctx.attr_int("stages"));
  }

  /// The stage of tick `tick`.
  int64_t stage(int64_t tick) const { return tick / stage_ticks_; }

  void forward(Context& ctx) override {
    const ScheduleTable s(ctx.input("schedule"));
    const int64_t T = s.steps(), n = ctx.output("t").numel();
    const int64_t top = ctx.attr_int("t_max") < 0 ? T - 1 : ctx.attr_int("t_max");
    const double smin = std::exp(log_sigma_at(s, 0, kFloor)), smax = std::exp(log_sigma_at(s, top, kFloor));
    const double q = ctx.attr_float("q"), k = ctx.attr_float("k"), b = ctx.attr_float("b"), sd = ctx.attr_float("sigma_data");
    const double decay = std::pow(q, -double(stage(ctx.tick()) + 1));
    const bool eps_weights = ctx.attr_string("weighting") == "eps";
    random::fill_normal(draws_.data(), n, key_, uint64_t(ctx.tick()), float(ctx.attr_float("log_sigma_mean")),
                        float(ctx.attr_float("log_sigma_std")), ctx.sample_offset(n));
    Tensor &t = ctx.output("t"), &r = ctx.output("r"), &w = ctx.output("weights");
    for (int64_t i = 0; i < n; ++i) {
      const double st = std::clamp(std::exp(double(draws_[size_t(i)])), smin, smax);
      const double ratio = 1.0 - decay * (1.0 + k / (1.0 + std::exp(b * st)));  // sigmoid(-b st) = 1 / (1 + e^{b st})
      const double sr = st * ratio;
      t[i] = float(timestep_of_sigma(s, st, kFloor));
      r[i] = sr < smin ? 0.f : std::min(float(timestep_of_sigma(s, sr, kFloor)), t[i]);
      w[i] = eps_weights ? float(std::sqrt(st * st + sd * sd) / (st * st * sd)) : float((st * st + sd * sd) / (st * st * sd * sd));
    }
    if (ctx.run_state()) ctx.run_state()->scalar("stage", ctx.tick(), double(stage(ctx.tick())));
  }

 private:
  uint64_t key_ = 0;
  int64_t stage_ticks_ = 1;
  std::vector<float> draws_;
};

NOISEFLOW_REGISTER_NODE(ConsistencyTimes);

}  // namespace
}  // namespace noiseflow::nodes
