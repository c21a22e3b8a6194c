// nodes/diffusion/ddim_timesteps.cpp — the K-step timestep sequence of a DDIM
// sampler, one entry per tick, largest first.
//
//   uniform   s_i = floor(i T / K),            i = 0..K-1   (0, T/K, ..., as in Song et al. 2021)
//   trailing  s_i = round(T - i T / K) - 1,    i = 0..K-1   (T-1, ..., Lin et al. 2023, "Common diffusion
//                                                            noise schedules are flawed"; round half to even
//                                                            like numpy)
//
// Tick k gives t = the (k+1)-th largest s and t_prev = the next smaller one,
// or -1 after the smallest (ddim_step then returns x0_hat).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// The sequence, largest first.
std::vector<int64_t> ddim_sequence(const std::string& spacing, int64_t T, int64_t K) {
  std::vector<int64_t> seq(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i) {
    if (spacing == "trailing")
      seq[size_t(i)] = int64_t(std::nearbyint(double(T) - double(i) * (double(T) / double(K)))) - 1;
    else
      seq[size_t(i)] = i * T / K;
  }
  std::sort(seq.begin(), seq.end(), std::greater<>());
  return seq;
}

struct DdimTimesteps final : Node {
  static Schema schema() {
    return Schema("diffusion.ddim_timesteps",
                  "Timesteps of a K-step DDIM sampler, one per tick from the largest to the smallest: t [N] and the "
                  "next smaller t_prev [N] (-1 at the last step); spacing uniform floor(i T / K) or trailing "
                  "round(T - i T / K) - 1, i = 0..K-1. Run the pipeline for exactly `steps` ticks")
        .input("like", "any tensor [N, ...]; only its first dimension (the batch N) is used")
        .input("schedule", "[8, T] schedule table from diffusion.schedule (gives T)")
        .output("t", "[N] the current timestep (float32 holding an integer in [0, T))")
        .output("t_prev", "[N] the timestep after this step, or -1 at the last step")
        .attr_int("steps", 50, 1, 100000, "number of sampling steps K (1..T)")
        .attr_string("spacing", "uniform", {"uniform", "trailing"},
                     "uniform: 0, T/K, 2T/K, ... (floor); trailing: T-1, T-1-T/K, ... (Lin et al. 2023)")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T = schedule_steps(c);
          const int64_t K = c.attr_int("steps");
          if (K < 1 || K > T)
            c.fail("steps", "steps must be in [1, T] with T = " + std::to_string(T) + " (schedule shape [8, " +
                                std::to_string(T) + "]), got " + std::to_string(K));
          c.require_ticks(K, "steps", "a DDIM grid with steps = " + std::to_string(K));
          c.set_output("t", {like[0]});
          c.set_output("t_prev", {like[0]});
        });
  }

  void plan(Context& ctx) override {
    seq_ = ddim_sequence(ctx.attr_string("spacing"), ctx.input("schedule").dim(1), ctx.attr_int("steps"));
  }

  void forward(Context& ctx) override {
    const int64_t k = ctx.tick(), K = int64_t(seq_.size());
    if (k >= K)
      ctx.fail("steps", "tick " + std::to_string(k) + " is past the last of the " + std::to_string(K) +
                            " DDIM steps; run the pipeline for run.ticks = steps = " + std::to_string(K) + " ticks");
    ctx.output("t").fill(float(seq_[size_t(k)]));
    ctx.output("t_prev").fill(k + 1 < K ? float(seq_[size_t(k + 1)]) : -1.f);
  }

 private:
  std::vector<int64_t> seq_;
};

NOISEFLOW_REGISTER_NODE(DdimTimesteps);

}  // namespace
}  // namespace noiseflow::nodes
