// nodes/draw/loss_plot.cpp — the loss curve of loss_plot.hpp.
#include "nodes/draw/loss_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "nodes/draw/plot.hpp"

namespace noiseflow::nodes::draw {

int64_t smoothing_window(int64_t n) { return std::clamp<int64_t>((n / 40) | 1, 1, 101); }

std::vector<double> centred_mean(const std::vector<double>& v, int64_t window) {
  // Prefix sums of the finite values and of their count.
  const size_t n = v.size();
  std::vector<double> sum(n + 1, 0.0), count(n + 1, 0.0), out(n, NAN);
  for (size_t i = 0; i < n; ++i) {
    const bool ok = std::isfinite(v[i]);
    sum[i + 1] = sum[i] + (ok ? v[i] : 0.0);
    count[i + 1] = count[i] + (ok ? 1.0 : 0.0);
  }
  const int64_t half = std::max<int64_t>(window, 1) / 2;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) continue;
    const size_t lo = size_t(std::max<int64_t>(0, int64_t(i) - half)), hi = std::min(n, i + size_t(half) + 1);
    out[i] = (sum[hi] - sum[lo]) / (count[hi] - count[lo]);
  }
  return out;
}

void read_loss_log(const std::string& csv, std::vector<double>& steps, std::vector<double>& loss) {
  std::ifstream in(csv);
  if (!in) throw std::runtime_error(csv + ": cannot read the run's log");
  std::string line;
  std::getline(in, line);
  int tick_col = -1, loss_col = -1, col = 0;
  std::stringstream header(line);
  for (std::string name; std::getline(header, name, ','); ++col) {
    if (!name.empty() && name.back() == '\r') name.pop_back();
    if (name == "tick") tick_col = col;
    if (name == "loss") loss_col = col;
  }
  if (tick_col < 0 || loss_col < 0)
    throw std::runtime_error(csv + ": the header names no \"tick\" and \"loss\" columns: " + line);
  steps.clear(), loss.clear();
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string cell;
    double tick = NAN, value = NAN;
    for (int c = 0; std::getline(row, cell, ','); ++c) {
      char* end = nullptr;
      const double v = std::strtod(cell.c_str(), &end);
      if (end == cell.c_str()) continue;
      if (c == tick_col) tick = v;
      if (c == loss_col) value = v;
    }
    if (!std::isfinite(tick)) continue;
    steps.push_back(tick + 1);
    loss.push_back(value);
  }
}

int64_t write_loss_plot(const std::string& csv, const std::string& png, const std::string& title) {
  std::vector<double> steps, loss;
  read_loss_log(csv, steps, loss);
  int64_t shown = 0;
  for (double v : loss) shown += std::isfinite(v) && v > 0;
  if (shown == 0) return 0;
  const int64_t window = smoothing_window(int64_t(loss.size()));
  const std::string smoothed_label = window > 1 ? "mean of " + std::to_string(window) + " steps, centred" : "loss";
  LineChart chart;
  chart.title = title;
  chart.x_title = "step";
  chart.y_title = "loss (log scale)";
  chart.x_from_zero = true;
  chart.series.push_back({steps, loss, {170, 200, 235}, 1, "loss per step"});
  chart.series.push_back({steps, centred_mean(loss, window), {20, 70, 160}, 3, smoothed_label});
  draw_chart(chart).write_png(png);
  return shown;
}

}  // namespace noiseflow::nodes::draw
