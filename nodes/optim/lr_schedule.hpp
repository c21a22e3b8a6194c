// nodes/optim/lr_schedule.hpp — learning-rate schedules shared by the optimizers.
//
// A pure function of the 1-based update count s = tick + 1, so a run resumed at tick k continues
// bitwise as if never stopped. With w = warmup steps, N = total steps (attribute `total`, 0: the
// run's tick count when planned) and p = clamp((s - w) / (N - w), 0, 1):
//   warm-up      lr_s = lr * s / w                                  for s < w (w = 0: none)
//   constant     lr_s = lr
//   cosine       lr_s = min_lr + (lr - min_lr) * (1 + cos(pi p)) / 2     (diffusers' cosine with warm-up)
//   linear       lr_s = min_lr + (lr - min_lr) * (1 - p)                 (diffusers' linear with warm-up)
// After N steps the decaying schedules stay at min_lr; with N <= w (a short run of a long-warm-up
// recipe, e.g. --set steps=100) the run warms up and then sits at min_lr (diffusers does the same). A time budget (run.minutes) that ends a run
// early does not change N: the schedule is on ticks, not on the clock.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "runtime/node.hpp"

namespace noiseflow::nodes::optim {

/// Adds the schedule attributes (lr, warmup, schedule, total, min_lr) to an optimizer's schema.
inline runtime::Schema& lr_schedule_attrs(runtime::Schema& s, double default_lr) {
  return s.attr_float("lr", default_lr, 0.0, {}, "peak learning rate (0 only updates the moments)")
      .attr_int("warmup", 0, 0, {}, "linear warm-up steps: lr_s = lr * s / warmup for s < warmup (0: off)")
      .attr_string("schedule", "constant", {"constant", "cosine", "linear"},
                   "after the warm-up: constant lr, cosine or linear decay from lr to min_lr at step `total`")
      .attr_int("total", 0, 0, {}, "the step at which cosine/linear reach min_lr (0: the run's tick count)")
      .attr_float("min_lr", 0.0, 0.0, {}, "the learning rate the decay ends at (cosine, linear)");
}

/// The schedule of one optimizer node, read once at plan time.
struct LrSchedule {
  std::string kind = "constant";
  double lr = 0, min_lr = 0;
  int64_t warmup = 0, total = 0;

  /// Reads the attributes; fails naming min_lr when a decay would go up.
  static LrSchedule from(const runtime::Context& ctx) {
    LrSchedule s;
    s.kind = ctx.attr_string("schedule");
    s.lr = ctx.attr_float("lr");
    s.min_lr = ctx.attr_float("min_lr");
    s.warmup = ctx.attr_int("warmup");
    s.total = ctx.attr_int("total") > 0 ? ctx.attr_int("total") : ctx.ticks();
    if (s.kind != "constant") {
      if (s.min_lr > s.lr)
        ctx.fail("min_lr", "min_lr " + std::to_string(s.min_lr) + " is above lr " + std::to_string(s.lr) +
                               " (a decay goes down)");
    }
    return s;
  }

  /// The learning rate of update s (1-based).
  double at(int64_t s) const {
    if (warmup > 0 && s < warmup) return lr * (double(s) / double(warmup));
    if (kind == "constant") return lr;
    const double p = std::clamp(double(s - warmup) / double(std::max<int64_t>(1, total - warmup)), 0.0, 1.0);
    const double f = kind == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * p)) : 1.0 - p;
    return min_lr + (lr - min_lr) * f;
  }
};

}  // namespace noiseflow::nodes::optim
