// nodes/sampler/repaint_timesteps.cpp — the grid and the per-tick timestep of inpainting with RePaint's
// resampling (Lugmayr et al. 2022): the sampler steps down the grid, and every `jump_length` points it
// goes back up `jump_length` points (sampler.inpaint noises x there), `resample` - 1 times, so that the
// known and the generated regions are harmonised (repaint_moves in sampler.hpp).
//
// A step node reads its tick's grid points from columns tick and tick + 1 of `points`. With jumps the
// point a step starts from is not where the previous one ended, so `points` is rewritten every tick:
// column k holds the start of evaluation k, except column tick + 1, which holds where this tick's step
// ends. Without jumps (resample = 1) that is the plain grid of sampler.timesteps, and any sampler but
// heun (two evaluations per step) works; with jumps, only the samplers without history across steps
// (ddpm, ddim, euler, euler_a), since a jump invalidates what a multistep sampler remembers.
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

bool memoryless(const std::string& sampler) {
  return sampler == "ddpm" || sampler == "ddim" || sampler == "euler" || sampler == "euler_a";
}

struct RepaintTimesteps final : Node {
  static Schema schema() {
    return Schema("sampler.repaint_timesteps",
                  "sampler.timesteps for inpainting with RePaint's resampling (Lugmayr et al. 2022): down the K-point "
                  "grid, and every jump_length points back up jump_length points, resample - 1 times; one tick per "
                  "model evaluation, K + (resample - 1) jump_length x (the jump points) in all. `levels` tells "
                  "sampler.inpaint where each step ends and where the next one starts")
        .input("like", "any tensor [N, ...]: the batch N and the shape of the history")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("t", "[N] the net's timestep this tick")
        .output("points", "[3, E+1] the grid as this tick's step reads it: columns tick and tick + 1 are where it "
                          "starts and ends (E = the ticks)")
        .output("history", "[H, N, ...] zeros: the start of the sampler's history state")
        .output("levels", "[4] (a, b) where this tick's step ends, then (a, b) where the next tick starts")
        .attr_string("sampler", "ddpm", sampler_names(), "the step node this grid feeds (sampler.<name>; not heun)")
        .attr_int("steps", 250, 1, 100000, "number of grid points K (leading, trailing and linspace: at most T)")
        .attr_string("spacing", "leading", spacing_choices(), kSpacingDoc)
        .attr_float("rho", 7.0, 0.0, 1000.0, "karras: the exponent rho (> 0)")
        .attr_float("strength", 1.0, 0.0, 1.0, kStrengthDoc)
        .attr_int("jump_length", 10, 1, 100000, "grid points of a resampling jump back up (RePaint's j)")
        .attr_int("resample", 1, 1, 1000, "RePaint's r: every jump point is passed r times; 1: no jumps")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T = diffusion::schedule_steps(c);
          const int64_t K = c.attr_int("steps");
          const std::string spacing = c.attr_string("spacing"), sampler = c.attr_string("sampler");
          if (discrete(spacing) && K > T)
            c.fail("steps", "spacing " + spacing + " picks K of the T = " + std::to_string(T) +
                                " timesteps, so steps must be at most T, got " + std::to_string(K));
          if (!(c.attr_float("rho") > 0.0)) c.fail("rho", "rho must be > 0");
          const SamplerInfo& info = sampler_info(sampler);
          if (info.two_evaluations)
            c.fail("sampler", sampler + " evaluates the net twice per step; inpainting takes a one-evaluation sampler");
          if (c.attr_int("resample") > 1 && !memoryless(sampler))
            c.fail("sampler", sampler + " keeps a history across steps, which a resampling jump invalidates: with "
                                        "resample > 1 use ddpm, ddim, euler or euler_a");
          const int64_t kept = kept_steps(K, c.attr_float("strength"));
          const int64_t E = int64_t(repaint_moves(kept, c.attr_int("jump_length"), c.attr_int("resample")).size());
          c.require_ticks(E, "resample",
                          std::to_string(kept) + " steps with resample = " + std::to_string(c.attr_int("resample")) +
                              " and jump_length = " + std::to_string(c.attr_int("jump_length")));
          c.set_output("t", {like[0]});
          c.set_output("points", {3, E + 1});
          graph::Shape h{info.history};
          h.insert(h.end(), like.begin(), like.end());
          c.set_output("history", h);
          c.set_output("levels", {4});
        });
  }

  void forward(Context& ctx) override {
    if (pts_.empty()) {
      pts_ = make_points(diffusion::ScheduleTable(ctx.input("schedule")), ctx.attr_string("spacing"),
                         ctx.attr_int("steps"), ctx.attr_float("rho"));
      for (size_t k = 1; k + 1 < pts_.size(); ++k)
        if (!(pts_[k].t < pts_[k - 1].t))
          ctx.fail("steps", "spacing " + ctx.attr_string("spacing") + " with steps = " +
                                std::to_string(ctx.attr_int("steps")) + " repeats timestep " +
                                std::to_string(pts_[k].t) + "; use fewer steps or another spacing");
      keep_last_steps(pts_, kept_steps(ctx.attr_int("steps"), ctx.attr_float("strength")));
      moves_ = repaint_moves(int64_t(pts_.size()) - 1, ctx.attr_int("jump_length"), ctx.attr_int("resample"));
    }
    const int64_t E = int64_t(moves_.size()), tick = ctx.tick();
    if (tick >= E)
      ctx.fail("resample", "tick " + std::to_string(tick) + " is past the last of the " + std::to_string(E) +
                               " model evaluations; run the pipeline with run.ticks \"auto\"");
    const Move& m = moves_[size_t(tick)];
    ctx.output("t").fill(float(pts_[size_t(m.from)].t));
    Tensor& points = ctx.output("points");
    auto put = [&](int64_t col, const Point& p) {
      points.data()[kPointT * (E + 1) + col] = float(p.t);
      points.data()[kPointA * (E + 1) + col] = float(p.a);
      points.data()[kPointB * (E + 1) + col] = float(p.b);
    };
    for (int64_t k = 0; k < E; ++k) put(k, pts_[size_t(moves_[size_t(k)].from)]);
    put(E, pts_.back());
    put(tick + 1, pts_[size_t(m.to)]);
    Tensor& levels = ctx.output("levels");
    levels[0] = float(pts_[size_t(m.to)].a);
    levels[1] = float(pts_[size_t(m.to)].b);
    levels[2] = float(pts_[size_t(m.next)].a);
    levels[3] = float(pts_[size_t(m.next)].b);
    ctx.output("history").fill(0.f);
  }

 private:
  std::vector<Point> pts_;
  std::vector<Move> moves_;
};

NOISEFLOW_REGISTER_NODE(RepaintTimesteps);

}  // namespace
}  // namespace noiseflow::nodes
