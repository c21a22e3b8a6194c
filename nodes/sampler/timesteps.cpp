// nodes/sampler/timesteps.cpp — the grid a sampler steps through and the net's timestep at each
// tick (one tick per model evaluation; the pipeline's run.ticks "auto" takes the count from here).
#include <string>
#include <vector>

#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

bool discrete(const std::string& spacing) {
  return spacing == "leading" || spacing == "trailing" || spacing == "linspace";
}

struct SamplerTimesteps final : Node {
  static Schema schema() {
    return Schema("sampler.timesteps",
                  "The K-point grid of a sampler (spacing leading, trailing, linspace, karras or exponential over "
                  "the schedule) and, every tick, the timestep the net evaluates: one tick per model evaluation "
                  "(K, or 2K - 1 for heun); give the pipeline run.ticks \"auto\"")
        .input("like", "any tensor [N, ...]: the batch N and the shape of the history")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("t", "[N] the net's timestep this tick (fractional for the sigma spacings)")
        .output("points", "[3, K+1] per grid point: t, a = sqrt(abar), b = sqrt(1 - abar); the last is the data "
                          "(t = -1, a = 1, b = 0)")
        .output("history", "[H, N, ...] zeros: the start of the sampler's history state")
        .attr_string("sampler", "ddpm", sampler_names(), "the step node this grid feeds (sampler.<name>)")
        .attr_int("steps", 1000, 1, 100000, "number of steps K (leading, trailing and linspace: at most T)")
        .attr_string("spacing", "leading", spacing_choices(), kSpacingDoc)
        .attr_float("rho", 7.0, 0.0, 1000.0, "karras: the exponent rho (> 0)")
        .attr_float("strength", 1.0, 0.0, 1.0, kStrengthDoc)
        .attr_int("t_max", -1, -1, {}, "the grid's largest timestep: the spacing is laid over [0, t_max] (-1: T - 1); "
                                       "a distilled model sampled in few steps may start below pure noise")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T_all = diffusion::schedule_steps(c), t_max = c.attr_int("t_max");
          if (t_max >= T_all)
            c.fail("t_max", "t_max " + std::to_string(t_max) + " is past the schedule's last timestep " + std::to_string(T_all - 1));
          const int64_t T = t_max < 0 ? T_all : t_max + 1;
          const int64_t K = c.attr_int("steps");
          const std::string spacing = c.attr_string("spacing");
          if (discrete(spacing) && K > T)
            c.fail("steps", "spacing " + spacing + " picks K of the " + (t_max < 0 ? "T = " : "t_max + 1 = ") +
                                std::to_string(T) + " timesteps, so steps must be at most " +
                                (t_max < 0 ? "T" : "t_max + 1") + ", got " + std::to_string(K));
          if (!(c.attr_float("rho") > 0.0)) c.fail("rho", "rho must be > 0");
          const SamplerInfo& info = sampler_info(c.attr_string("sampler"));
          const int64_t kept = kept_steps(K, c.attr_float("strength"));
          const int64_t n = evaluations(info, kept);
          c.require_ticks(n, "steps",
                          std::string(info.name) + " with steps = " + std::to_string(K) +
                              (kept < K ? " at strength " + std::to_string(c.attr_float("strength")) + " (" +
                                              std::to_string(kept) + " steps kept)"
                                        : std::string()) +
                              (info.two_evaluations ? " (2 x steps - 1 model evaluations)" : ""));
          c.set_output("t", {like[0]});
          c.set_output("points", {3, kept + 1});
          graph::Shape h{info.history};
          h.insert(h.end(), like.begin(), like.end());
          c.set_output("history", h);
        });
  }

  void plan(Context& ctx) override { info_ = &sampler_info(ctx.attr_string("sampler")); }

  void forward(Context& ctx) override {
    if (pts_.empty()) {
      // The schedule is a constant: build the grid once, on the first tick that sees it.
      pts_ = make_points(diffusion::ScheduleTable(ctx.input("schedule")), ctx.attr_string("spacing"),
                         ctx.attr_int("steps"), ctx.attr_float("rho"), ctx.attr_int("t_max"));
      check_grid(ctx);
      keep_last_steps(pts_, kept_steps(ctx.attr_int("steps"), ctx.attr_float("strength")));
    }
    const int64_t K = int64_t(pts_.size()) - 1;
    const Eval e = eval_at(*info_, ctx.tick());
    if (ctx.tick() >= evaluations(*info_, K))  // (heun's last step evaluates once: 2K - 1 ticks)
      ctx.fail("steps", "tick " + std::to_string(ctx.tick()) + " is past the last of the " +
                            std::to_string(evaluations(*info_, K)) + " model evaluations; run the pipeline with "
                            "run.ticks \"auto\"");
    ctx.output("t").fill(float(pts_[size_t(e.step + (e.second ? 1 : 0))].t));
    Tensor& points = ctx.output("points");
    for (int64_t k = 0; k <= K; ++k) {
      points.data()[kPointT * (K + 1) + k] = float(pts_[size_t(k)].t);
      points.data()[kPointA * (K + 1) + k] = float(pts_[size_t(k)].a);
      points.data()[kPointB * (K + 1) + k] = float(pts_[size_t(k)].b);
    }
    ctx.output("history").fill(0.f);
  }

 private:
  // The grid must strictly decrease in noise: a repeated timestep (steps close to T with some
  // spacings) would make a zero-length step.
  void check_grid(const Context& ctx) const {
    for (size_t k = 1; k + 1 < pts_.size(); ++k)
      if (!(pts_[k].t < pts_[k - 1].t))
        ctx.fail("steps", "spacing " + ctx.attr_string("spacing") + " with steps = " +
                              std::to_string(ctx.attr_int("steps")) + " repeats timestep " +
                              std::to_string(pts_[k].t) + "; use fewer steps or another spacing");
  }

  const SamplerInfo* info_ = nullptr;
  std::vector<Point> pts_;
};

NOISEFLOW_REGISTER_NODE(SamplerTimesteps);

}  // namespace
}  // namespace noiseflow::nodes
