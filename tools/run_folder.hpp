// tools/run_folder.hpp — a run's folder, runs/NAME/: the resolved pipeline, log.csv of the logged
// scalars per tick (tick,loss,lr,grad_norm,seconds,fd and the run's tick count) and loss.png drawn from it. Written by `noiseflow run` and by `noiseflow serve`.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "graph/pipeline.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::tools {

class RunFolder {
 public:
  /// Makes the folder (default runs/NAME) and writes pipeline.json and log.csv's header. A new run
  /// (first_tick 0) keeps a finished run's log.csv and pipeline.json as log.N.csv and pipeline.N.json; a
  /// resumed one keeps the rows before first_tick.
  RunFolder(const graph::Graph& g, int64_t first_tick, const std::string& dir);
  /// Writes tick's row unless it is written already (io.checkpoint asks for it before the tick ends).
  void row(int64_t tick, const runtime::RunState& st, double seconds);
  /// Redraws loss.png from log.csv (every row, those before a resume too), if any row has a loss. A plot
  /// that cannot be written is a warning on stderr: the run goes on.
  void plot();
  const std::string& dir() const { return dir_; }
  bool plotted() const { return plotted_; }

 private:
  std::string dir_, name_;
  bool plotted_ = false;
  std::ofstream out_;
  int64_t written_ = -1;
  int64_t ticks_ = 0;  // the run's tick count, log.csv's last column
};

}  // namespace noiseflow::tools
