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

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

/// The separate [T] outputs of a schedule node, in output order after its `table`, with their table rows
/// (diffusion.schedule's, and those of plugin schedules laid out like it).
inline constexpr std::array<std::pair<const char*, ScheduleRow>, 6> kScheduleRowOutputs{{
    {"betas", kBeta},
    {"alphas", kAlpha},
    {"alpha_bar", kAlphaBar},
    {"sqrt_alpha_bar", kSqrtAlphaBar},
    {"sqrt_one_minus_alpha_bar", kSqrtOneMinusAlphaBar},
    {"posterior_variance", kPosteriorVariance},
}};

/// The [8, T] table (row-major) of the betas beta_0 .. beta_{T-1}: every row computed in double from
/// them, stored as float.
inline std::vector<float> schedule_table_from_betas(const std::vector<double>& beta) {
  const int64_t T = int64_t(beta.size());
  std::vector<float> table(size_t(kScheduleRows * T), 0.f);
  auto put = [&](ScheduleRow r, int64_t t, double v) { table[size_t(int64_t(r) * T + t)] = float(v); };
  double abar = 1.0;
  for (int64_t t = 0; t < T; ++t) {
    const double b = beta[size_t(t)], a = 1.0 - b, abar_prev = abar;
    abar *= a;
    put(kBeta, t, b);
    put(kAlpha, t, a);
    put(kAlphaBar, t, abar);
    put(kSqrtAlphaBar, t, std::sqrt(abar));
    put(kSqrtOneMinusAlphaBar, t, std::sqrt(1.0 - abar));
    // abar_{-1} = 1, so the posterior variance at t = 0 is exactly 0 (avoid 0/0 for tiny beta_0).
    put(kPosteriorVariance, t, t == 0 ? 0.0 : b * (1.0 - abar_prev) / (1.0 - abar));
    // 1 / sqrt(alpha) is infinite where beta = 1 (the zero-SNR step): stored as inf, which only
    // the eps-parametrised DDPM step reads.
    put(kAlphaBarPrev, t, abar_prev);
    put(kRecipSqrtAlpha, t, 1.0 / std::sqrt(a));
  }
  return table;
}

/// Copies a schedule node's constant `table` (from schedule_table_from_betas) into its outputs: `table`
/// and the kScheduleRowOutputs rows. Constant outputs are copied every tick, so they stay right even if
/// the plan shares their buffers.
inline void write_schedule_outputs(runtime::Context& ctx, const std::vector<float>& table) {
  runtime::Tensor& out = ctx.output("table");
  if (out.empty()) return;
  const int64_t T = out.dim(1);
  std::copy(table.begin(), table.end(), out.data());
  for (const auto& [name, row] : kScheduleRowOutputs)
    std::copy_n(table.begin() + int64_t(row) * T, T, ctx.output(name).data());
}

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

namespace noiseflow::nodes::diffusion {

/// A point of the noise process x = a x0 + b eps (a = sqrt(abar), b = sqrt(1 - abar)); the data at
/// a = 1, b = 0. Its noise level is sigma = b / a and its log-SNR lambda = log(a / b).
struct NoiseLevel {
  double a = 1.0, b = 0.0;
};

/// log(b_t / a_t) at integer t, with a_t floored at `a_floor` (0: +inf where abar = 0).
inline double log_sigma_at(const ScheduleTable& s, int64_t t, double a_floor = 0.0) {
  const double a = std::max(double(s.at(kSqrtAlphaBar, t)), a_floor);
  return std::log(double(s.at(kSqrtOneMinusAlphaBar, t))) - std::log(a);
}

/// The noise level at a continuous timestep t in [0, T-1]: the table's own (a, b) at integers; in
/// between, log sigma interpolated linearly (k-diffusion's t_to_sigma), a = 1 / sqrt(1 + sigma^2).
inline NoiseLevel level_at(const ScheduleTable& s, double t) {
  const double lo = std::floor(t);
  if (t == lo) return {s.at(kSqrtAlphaBar, int64_t(lo)), s.at(kSqrtOneMinusAlphaBar, int64_t(lo))};
  const double w = t - lo;
  const double ls = (1.0 - w) * log_sigma_at(s, int64_t(lo)) + w * log_sigma_at(s, int64_t(lo) + 1);
  if (std::isinf(ls)) return {0.0, 1.0};
  const double sigma = std::exp(ls), a = 1.0 / std::sqrt(1.0 + sigma * sigma);
  return {a, sigma * a};
}

/// The inverse of level_at for the floored table: the continuous timestep whose log sigma (a floored
/// at `a_floor`) is log(sigma); sigma is clamped to the table's range [sigma_0, sigma_{T-1}].
inline double timestep_of_sigma(const ScheduleTable& s, double sigma, double a_floor) {
  const int64_t T = s.steps();
  const double ls = std::log(sigma);
  if (T == 1 || ls <= log_sigma_at(s, 0, a_floor)) return 0.0;
  if (ls >= log_sigma_at(s, T - 1, a_floor)) return double(T - 1);
  int64_t lo = 0, hi = T - 1;  // log sigma increases with t
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (log_sigma_at(s, mid, a_floor) <= ls ? lo : hi) = mid;
  }
  const double l0 = log_sigma_at(s, lo, a_floor), l1 = log_sigma_at(s, hi, a_floor);
  return double(lo) + (l1 > l0 ? (ls - l0) / (l1 - l0) : 0.0);
}

/// Reads a continuous timestep t[i] in [0, T-1]; fails naming `field` otherwise.
inline double continuous_timestep_at(const runtime::Context& ctx, const runtime::Tensor& t, int64_t i, int64_t steps,
                                     const std::string& field = "t") {
  const float v = t[i];
  if (!(v >= 0.f) || v > float(steps - 1))
    ctx.fail(field, "timestep t[" + std::to_string(i) + "] = " + std::to_string(v) + " is not in [0, " +
                        std::to_string(steps - 1) + "]");
  return v;
}

}  // namespace noiseflow::nodes::diffusion
