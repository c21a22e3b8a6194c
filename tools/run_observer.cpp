// tools/run_observer.cpp — a run's folder and progress (tools/run_observer.hpp).
#include "tools/run_observer.hpp"

#include <algorithm>

namespace noiseflow::tools {

RunObserver::RunObserver(Pipeline& p, const std::string& run_dir, bool folder)
    : p_(p), first_tick_(p.executor().next_tick()), started_(std::chrono::steady_clock::now()) {
  if (!folder) return;
  folder_.emplace(p.graph(), first_tick_, run_dir);
  runtime::RunState& st = p.executor().state();
  // Nodes that write into the run folder (eval.sample_grid's samples/) find it here.
  st.run_dir = folder_->dir();
  st.before_checkpoint = [this](int64_t tick) {
    folder_->row(tick, p_.executor().state(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    folder_->plot();
  };
}

Progress RunObserver::tick(const TickInfo& t) {
  const runtime::RunState& st = p_.executor().state();
  if (folder_) folder_->row(t.tick, st, t.seconds);
  Progress pr;
  pr.value = t.tick + 1;
  pr.max = t.ticks;
  pr.seconds = t.seconds;
  int64_t loss_tick = -1;
  pr.has_loss = st.latest("loss", pr.loss, &loss_tick);
  pr.loss_now = pr.has_loss && loss_tick == t.tick;
  pr.rate = double(t.tick + 1 - first_tick_) / std::max(t.seconds, 1e-9);
  pr.eta = double(t.ticks - t.tick - 1) / std::max(pr.rate, 1e-9);
  if (const double minutes = p_.graph().minutes; minutes > 0 && p_.graph().sized.is_null()) pr.eta = std::min(pr.eta, std::max(0.0, minutes * 60 - t.seconds));
  return pr;
}

void RunObserver::finish() {
  if (folder_) folder_->plot();
}

}  // namespace noiseflow::tools
