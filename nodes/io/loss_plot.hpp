// nodes/io/loss_plot.hpp — a run's loss curve as a PNG, drawn from its log.csv:
//
//   log.csv (tick,loss,...)  ->  loss.png: the raw loss per step, thin and light, its smoothed curve
//                                over it (debiased EMA 0.98), log-scale y, x = step (tick + 1)
//
// The CLI calls it at every checkpoint and at the end of a run (tools/noiseflow.cpp); it reads the whole
// log back, so a resumed run's curve starts at step 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace noiseflow::nodes::io {

/// The EMA weight of the smoothed curve.
inline constexpr double kLossSmoothing = 0.98;

/// `v` smoothed by an exponential moving average of weight `beta`, divided by 1 - beta^k (the
/// debiasing of Adam's moments) so the first values are not pulled towards 0. Non-finite values are skipped
/// and NaN in the output (the curve has a gap there).
std::vector<double> debiased_ema(const std::vector<double>& v, double beta);

/// Reads (step, loss) from a log.csv whose header names the columns "tick" and "loss": step = tick + 1.
/// Rows that do not parse are skipped. Throws std::runtime_error when the file cannot be read or the
/// header lacks either column.
void read_loss_log(const std::string& csv, std::vector<double>& steps, std::vector<double>& loss);

/// Draws the loss curve of `csv` into `png` (written atomically) with `title` above it. Returns the number
/// of rows drawn; with no finite positive loss nothing is written and it returns 0. Throws
/// std::runtime_error naming the file when one cannot be read or written.
int64_t write_loss_plot(const std::string& csv, const std::string& png, const std::string& title);

}  // namespace noiseflow::nodes::io
