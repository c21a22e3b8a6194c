// tools/run_observer.hpp — one run's bookkeeping, shared by `noiseflow run`'s progress line and the
// studio's progress messages: the run folder (log.csv rows each tick and before each checkpoint, loss.png
// at checkpoints and at the end), and each tick's progress (rate, ETA within the minutes budget, loss).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "noiseflow/noiseflow.hpp"
#include "tools/run_folder.hpp"

namespace noiseflow::tools {

/// Where a run stands after a tick.
struct Progress {
  int64_t value = 0;     ///< ticks done
  int64_t max = 0;       ///< the run's ticks
  double seconds = 0;    ///< since the run started
  double rate = 0;       ///< ticks per second since the run (or its resume) started
  double eta = 0;        ///< seconds left: at this rate, and within run.minutes when it sets a budget
  bool has_loss = false;  ///< a loss has been logged (loss is the latest)
  double loss = 0;       ///< the latest logged loss
  bool loss_now = false;  ///< the latest loss was logged at this tick
};

class RunObserver {
 public:
  /// Plans the pipeline (Pipeline::executor) and, with `folder`, makes its run folder (`run_dir`, default
  /// runs/NAME) and hooks it in: nodes find it in RunState::run_dir, and a row and loss.png are written
  /// before each checkpoint. Without a folder (data-parallel ranks but the first) it only measures.
  RunObserver(Pipeline& p, const std::string& run_dir = "", bool folder = true);
  /// After each tick: the log row, and where the run stands.
  Progress tick(const TickInfo& t);
  /// After the run (whatever its outcome): loss.png redrawn.
  void finish();
  /// The run folder, when there is one.
  RunFolder* folder() { return folder_ ? &*folder_ : nullptr; }
  /// The tick the run started at (after a resume, the checkpoint's).
  int64_t first_tick() const { return first_tick_; }

 private:
  Pipeline& p_;
  std::optional<RunFolder> folder_;
  int64_t first_tick_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace noiseflow::tools
