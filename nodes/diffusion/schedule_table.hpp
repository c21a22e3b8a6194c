// nodes/diffusion/schedule_table.hpp — the layout of the noise-schedule table.
//
// diffusion.schedule emits one [8, T] table; every node that needs schedule
// coefficients (add_noise, the samplers) takes it as an input named
// `schedule` and reads rows by these indices:
//
//   row 0  beta_t
//   row 1  alpha_t = 1 - beta_t
//   row 2  alpha_bar_t = prod_{s<=t} alpha_s
//   row 3  sqrt(alpha_bar_t)
//   row 4  sqrt(1 - alpha_bar_t)
//   row 5  posterior variance beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), 0 at t = 0
//   row 6  alpha_bar_{t-1}, 1 at t = 0
//   row 7  1 / sqrt(alpha_t)
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "graph/schema.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes::diffusion {

/// Row indices of the [8, T] schedule table.
enum ScheduleRow : int64_t {
  kBeta = 0,                 ///< beta_t
  kAlpha = 1,                ///< 1 - beta_t
  kAlphaBar = 2,             ///< cumulative product of alpha up to t
  kSqrtAlphaBar = 3,         ///< sqrt(alpha_bar_t)
  kSqrtOneMinusAlphaBar = 4, ///< sqrt(1 - alpha_bar_t)
  kPosteriorVariance = 5,    ///< beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t); 0 at t = 0
  kAlphaBarPrev = 6,         ///< alpha_bar_{t-1}; 1 at t = 0
  kRecipSqrtAlpha = 7,       ///< 1 / sqrt(alpha_t)
};
/// Number of rows in the schedule table.
inline constexpr int64_t kScheduleRows = 8;

/// Shape rule helper: fails unless input `name` is an [8, T] schedule table; returns T.
inline int64_t schedule_steps(const graph::ShapeContext& c, const std::string& name = "schedule") {
  const graph::Shape& s = c.input(name);
  if (s.size() != 2 || s[0] != kScheduleRows || s[1] < 1)
    c.fail(name, "expected a schedule table of shape [8, T] (the first output of diffusion.schedule), got shape " +
                     graph::shape_str(s));
  return s[1];
}

/// Run-time view of a schedule table tensor ([8, T], plain row-major).
class ScheduleTable {
 public:
  explicit ScheduleTable(const runtime::Tensor& table) : data_(table.data()), steps_(table.dim(1)) {}
  /// Number of diffusion steps T.
  int64_t steps() const { return steps_; }
  /// Pointer to row `r` (T floats).
  const float* row(ScheduleRow r) const { return data_ + int64_t(r) * steps_; }
  /// Value of row `r` at timestep t (unchecked).
  float at(ScheduleRow r, int64_t t) const { return data_[int64_t(r) * steps_ + t]; }

 private:
  const float* data_;
  int64_t steps_;
};

/// Reads timestep `t[i]` as an integer in [0, T); fails naming `field` when it is
/// not an integer or is out of range.
inline int64_t timestep_at(const runtime::Context& ctx, const runtime::Tensor& t, int64_t i, int64_t steps,
                           const std::string& field = "t") {
  float v = t[i];
  if (!(v >= 0.f) || v >= float(steps) || v != std::floor(v))
    ctx.fail(field, "timestep t[" + std::to_string(i) + "] = " + std::to_string(v) +
                        " is not an integer in [0, " + std::to_string(steps) + ")");
  return int64_t(v);
}

}  // namespace noiseflow::nodes::diffusion
