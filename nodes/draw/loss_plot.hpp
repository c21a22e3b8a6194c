// nodes/draw/loss_plot.hpp — a run's loss curve as a PNG, drawn from its log.csv (support code of the
// picture library, not a node type):
//
//   log.csv (tick,loss,...)  ->  loss.png: the raw loss per step, thin and light, its smoothed curve
//                                over it (a centred moving average of about n / 40 steps), log-scale y,
//                                x = step (tick + 1)
//
// The CLI calls it at every checkpoint and at the end of a run (tools/noiseflow.cpp); it reads the whole
// log back, so a resumed run's curve starts at step 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace noiseflow::nodes::draw {

/// The smoothing window for a log of `n` rows: about n / 40 steps, odd, from 1 to 101.
int64_t smoothing_window(int64_t n);

/// `v` smoothed by a centred moving average: each value the mean of the finite values among the `window`
/// (odd) values around it, fewer at the ends, so the curve does not lag behind the raw loss. Non-finite
/// values stay NaN in the output (the curve has a gap there).
std::vector<double> centred_mean(const std::vector<double>& v, int64_t window);

/// Reads (step, loss) from a log.csv whose header names the columns "tick" and "loss": step = tick + 1.
/// Rows that do not parse are skipped. Throws std::runtime_error when the file cannot be read or the
/// header lacks either column.
void read_loss_log(const std::string& csv, std::vector<double>& steps, std::vector<double>& loss);

/// Draws the loss curve of `csv` into `png` (written atomically) with `title` above it. Returns the number
/// of rows drawn; with no finite positive loss nothing is written and it returns 0. Throws
/// std::runtime_error naming the file when one cannot be read or written.
int64_t write_loss_plot(const std::string& csv, const std::string& png, const std::string& title);

}  // namespace noiseflow::nodes::draw
