// nodes/diffusion/timesteps.cpp — one diffusion timestep per sample.
//
// Training draws t ~ U{0, ..., T-1} per sample and per tick:
// t[i] = below(T, key, tick, i), a pure function of (seed, node id, tick, i), i the sample's index in
// the global batch (a data-parallel rank's samples start at Context::sample_offset).
// sampling "lognormal" draws the noise level instead (Karras et al. 2022, EDM's training
// distribution): log sigma ~ N(log_sigma_mean, log_sigma_std^2) with sigma = sqrt(1 - abar) /
// sqrt(abar), and t is the integer timestep of the schedule nearest to it in log sigma (sigma
// clamped to the schedule's range). With `values`, t is that fixed list tiled to the batch instead.
#include <algorithm>
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct Timesteps final : Node {
  static Schema schema() {
    return Schema("diffusion.timesteps",
                  "Timesteps t [N] for a batch: uniform integers in [0, T) drawn per sample and per tick, "
                  "or the fixed list `values` tiled to N")
        .input("like", "any tensor [N, ...]; only its first dimension (the batch N) is used")
        .input("schedule", "[8, T] schedule table from diffusion.schedule (gives T)")
        .output("t", "[N] float32 holding integers in [0, T)")
        .attr_ints("values", std::vector<int64_t>{},
                   "fixed timesteps tiled to N (each in [0, T)); empty: draw every tick")
        .attr_string("sampling", "uniform", {"uniform", "lognormal"},
                     "uniform over {0, ..., T-1}, or lognormal: log sigma ~ N(log_sigma_mean, log_sigma_std^2), t "
                     "the nearest timestep")
        .attr_float("log_sigma_mean", -1.2, {}, {}, "lognormal: mean of log sigma (EDM's P_mean)")
        .attr_float("log_sigma_std", 1.2, 0.0, {}, "lognormal: standard deviation of log sigma (EDM's P_std)")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& like = c.input("like");
          if (like.empty()) c.fail("like", "expected a tensor with a batch dimension, got a scalar shape []");
          const int64_t T = schedule_steps(c);
          const std::vector<int64_t> values = c.attr_ints("values");
          for (size_t i = 0; i < values.size(); ++i)
            if (values[i] < 0 || values[i] >= T)
              c.fail("values", "values[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                                   " is outside [0, T) with T = " + std::to_string(T) + " (schedule shape [8, " +
                                   std::to_string(T) + "])");
          c.set_output("t", {like[0]});
        });
  }

  void plan(Context& ctx) override {
    values_ = ctx.attr_ints("values");
    key_ = ctx.random_key();
    lognormal_ = ctx.attr_string("sampling") == "lognormal";
    if (lognormal_ && !values_.empty()) ctx.fail("sampling", "lognormal draws timesteps; it takes no fixed `values`");
  }

  void forward(Context& ctx) override {
    Tensor& t = ctx.output("t");
    const int64_t n = t.numel();
    if (!values_.empty()) {
      const int64_t m = int64_t(values_.size());
      for (int64_t i = 0; i < n; ++i) t[i] = float(values_[size_t(i % m)]);
      return;
    }
    const uint64_t T = uint64_t(ctx.input("schedule").dim(1));
    const uint64_t stream = uint64_t(ctx.tick());
    const int64_t first = ctx.sample_offset(n);  // the global index of sample 0 (data parallelism)
    if (!lognormal_) {
      for (int64_t i = 0; i < n; ++i) t[i] = float(random::below(T, key_, stream, uint64_t(first + i)));
      return;
    }
    const ScheduleTable s(ctx.input("schedule"));
    if (log_sigma_.empty()) {  // log sigma per timestep (increasing in t), abar floored so t = T-1 is finite
      for (int64_t k = 0; k < int64_t(T); ++k) log_sigma_.push_back(log_sigma_at(s, k, 1.0 / 4096.0));
    }
    draws_.resize(size_t(n));
    random::fill_normal(draws_.data(), n, key_, stream, float(ctx.attr_float("log_sigma_mean")),
                        float(ctx.attr_float("log_sigma_std")), first);
    for (int64_t i = 0; i < n; ++i) {
      const double ls = draws_[size_t(i)];
      auto it = std::lower_bound(log_sigma_.begin(), log_sigma_.end(), ls);
      int64_t k = int64_t(it - log_sigma_.begin());
      if (k >= int64_t(T)) k = int64_t(T) - 1;
      else if (k > 0 && ls - log_sigma_[size_t(k - 1)] < log_sigma_[size_t(k)] - ls) --k;  // the nearer neighbour
      t[i] = float(k);
    }
  }

 private:
  std::vector<int64_t> values_;
  uint64_t key_ = 0;
  bool lognormal_ = false;
  std::vector<double> log_sigma_;
  std::vector<float> draws_;
};

NOISEFLOW_REGISTER_NODE(Timesteps);

}  // namespace
}  // namespace noiseflow::nodes
