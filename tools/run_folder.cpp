// tools/run_folder.cpp — runs/NAME/ (tools/run_folder.hpp).
#include "tools/run_folder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "nodes/draw/loss_plot.hpp"
#include "runtime/atomic_write.hpp"

namespace noiseflow::tools {

namespace {

// Whether a log.csv holds a row below its header.
bool has_rows(const std::string& csv) {
  std::ifstream in(csv);
  std::string line;
  return std::getline(in, line) && std::getline(in, line) && !line.empty();
}

}  // namespace

RunFolder::RunFolder(const graph::Graph& g, int64_t first_tick, const std::string& dir)
    : dir_(dir.empty() ? "runs/" + g.name : dir), name_(g.name), ticks_(g.ticks) {
  std::filesystem::create_directories(dir_);
  const auto fail = [](const std::string& m) -> void { throw std::runtime_error("run folder: " + m); };
  std::string csv = dir_ + "/log.csv";
  // A new run (not a resume) never writes over a finished run's record: a log with rows and its
  // pipeline.json move to log.N.csv and pipeline.N.json (the first free N) first.
  if (first_tick == 0 && has_rows(csv)) {
    int n = 1;
    while (std::filesystem::exists(dir_ + "/log." + std::to_string(n) + ".csv")) ++n;
    const std::string kept = dir_ + "/log." + std::to_string(n) + ".csv";
    std::filesystem::rename(csv, kept);
    if (std::filesystem::exists(dir_ + "/pipeline.json"))
      std::filesystem::rename(dir_ + "/pipeline.json", dir_ + "/pipeline." + std::to_string(n) + ".json");
    std::cerr << "noiseflow: the previous run's log is kept as " << kept << "\n";
  }
  // On resume keep the rows before the resumed tick, drop the rest. A run killed while it wrote its log
  // may have left a last row without its end of line, or cut anywhere: only whole rows with a tick are
  // kept. The new log replaces the old one atomically, then grows by appending.
  // The last column, ticks, is the run's tick count: a run sized by its budget records the count the
  // probe fixed on every row (a rerun with --set steps=<ticks> is the same run).
  std::string text = "tick,loss,lr,grad_norm,seconds,fd,ticks\n";
  if (first_tick > 0) {
    std::ifstream in(csv, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no end of line: a row cut short
      char* end = nullptr;
      const long long tick = std::strtoll(line.c_str(), &end, 10);
      const auto commas = std::count(line.begin(), line.end(), ',');
      if (end == line.c_str() || *end != ',' || (commas != 5 && commas != 6)) continue;
      if (commas == 5) line.append(",").append(std::to_string(ticks_));  // a row of a log from before the ticks column
      if (tick >= 0 && tick < first_tick) text += line + "\n";
    }
  }
  const std::string resolved = g.resolved.dump(2) + "\n";
  runtime::write_file_atomically(dir_ + "/pipeline.json", {resolved}, fail);
  runtime::write_file_atomically(csv, {text}, fail);
  out_.open(csv, std::ios::app);
}

void RunFolder::row(int64_t tick, const runtime::RunState& st, double seconds) {
  if (tick <= written_) return;
  double loss = NAN, lr = NAN, gn = NAN;
  st.latest("loss", loss), st.latest("lr", lr), st.latest("grad_norm", gn);
  if (std::isnan(loss)) return;
  written_ = tick;
  out_ << tick << ',' << loss << ',' << lr << ',' << gn << ',' << seconds << ',';
  // The sample quality where this tick measured it (eval.sample_fd), else empty.
  double fd = NAN;
  int64_t fd_tick = -1;
  if (st.latest("fd", fd, &fd_tick) && fd_tick == tick) out_ << fd;
  out_ << ',' << ticks_ << '\n';
  out_.flush();  // a row per write: a killed run loses no row its checkpoint covers
}

void RunFolder::plot() {
  if (written_ < 0) return;
  try {
    if (nodes::draw::write_loss_plot(dir_ + "/log.csv", dir_ + "/loss.png", name_ + ": training loss") > 0)
      plotted_ = true;
  } catch (const std::exception& e) {
    std::cerr << "\nnoiseflow: warning: no loss plot: " << e.what() << "\n";
  }
}

}  // namespace noiseflow::tools
