#include "runtime/exec/task.hpp"

#include <chrono>

#include <omp.h>

namespace noiseflow::runtime::exec {

bool TaskRunner::due(int i, int64_t tick) const {
  const graph::GraphNode& gn = g_.nodes[size_t(i)];
  if (!gn.every && !gn.at_end) return true;
  if (gn.every && (tick + 1) % gn.every == 0) return true;
  return gn.at_end && tick + 1 == g_.ticks;
}

void TaskRunner::forward(Instance& in) {
  for (auto& cv : in.input_conversions) cv.to.assign(cv.from);
  in.node->forward(in.ctx);
}

void TaskRunner::backward(Instance& in) {
  for (auto& sources : in.fan_in) {
    if (sources.size() < 2) continue;
    float* d = sources[0].data();
    for (size_t k = 1; k < sources.size(); ++k) {
      const float* s = sources[k].data();
      for (int64_t e = 0; e < sources[0].numel(); ++e) d[e] += s[e];
    }
  }
  in.node->backward(in.ctx);
  for (auto& cv : in.grad_conversions) cv.to.assign(cv.from);
}

void TaskRunner::record(std::exception_ptr e) {
  std::lock_guard lock(error_m_);
  if (!error_) error_ = std::move(e);
}

void TaskRunner::run(int i, bool backward_task) {
  Instance& in = instances_[size_t(i)];
  {
    std::lock_guard lock(error_m_);
    if (error_) return;
  }
  if (!backward_task && !due(i, in.ctx.tick_)) return;
  try {
    if (cancel_) throw Cancelled();
    const bool heavy = in.ctx.schema_->is_heavy();
    std::unique_lock<std::mutex> lane(lane_, std::defer_lock);
    if (heavy) lane.lock();
    omp_set_num_threads(heavy ? threads_ : 1);
    const auto t0 = profile_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    if (backward_task) backward(in);
    else forward(in);
    if (profile_) {
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      (backward_task ? in.bwd_s : in.fwd_s) += dt;
      ++(backward_task ? in.bwd_n : in.fwd_n);
    }
  } catch (const Cancelled&) {
    record(std::current_exception());
  } catch (const std::exception& e) {
    record(std::make_exception_ptr(as_run_error(e, g_.nodes[size_t(i)], backward_task ? "backward" : "forward")));
  } catch (...) {
    record(std::make_exception_ptr(RunError({g_.nodes[size_t(i)].file, g_.nodes[size_t(i)].id,
                                             backward_task ? "backward" : "forward", "node_failed",
                                             "a non-standard exception"},
                                            backward_task ? "backward" : "forward")));
  }
}

std::exception_ptr TaskRunner::take_error() {
  std::lock_guard lock(error_m_);
  return std::exchange(error_, nullptr);
}

}  // namespace noiseflow::runtime::exec
