#include "runtime/exec/task.hpp"

#include <algorithm>
#include <chrono>

#include <omp.h>

namespace noiseflow::runtime::exec {

TaskRunner::TaskRunner(const graph::Graph& g, std::vector<Instance>& instances, int threads, bool profile, int rank,
                       bool probe)
    : g_(g), instances_(instances), threads_(threads), profile_(profile), rank_(rank), probe_(probe) {
  const size_t n = g.nodes.size();
  always_.assign(n, false);
  gates_.assign(n, {});
  std::vector<std::vector<int>> consumers(n);
  std::vector<bool> back(n, false);  // feeds a state's next: needed every tick
  for (size_t j = 0; j < n; ++j) {
    const graph::GraphNode& c = g.nodes[j];
    for (size_t p = 0; p < c.inputs.size(); ++p) {
      if (!c.inputs[p]) continue;
      const int src = c.inputs[p]->node;
      if (c.schema->is_back_edge(c.schema->inputs()[p].name)) back[size_t(src)] = true;
      else consumers[size_t(src)].push_back(int(j));
    }
  }
  // The optimizer and everything downstream of it (EMA) update state every tick.
  std::vector<bool> update(n, false);
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    update[size_t(i)] = gn.schema->is_optimizer();
    for (auto& in : gn.inputs)
      if (in && update[size_t(in->node)]) update[size_t(i)] = true;
  }
  // Consumers before producers: g.order lists producers first.
  for (auto it = g.order.rbegin(); it != g.order.rend(); ++it) {
    const size_t i = size_t(*it);
    const graph::GraphNode& gn = g.nodes[i];
    if (gn.every || gn.at_end) {
      gates_[i] = {int(i)};
      continue;
    }
    if (back[i] || consumers[i].empty() || gn.schema->is_stateful() || update[i]) {
      always_[i] = true;
      continue;
    }
    for (int c : consumers[i]) {
      if (always_[size_t(c)]) {
        always_[i] = true;
        break;
      }
      for (int s : gates_[size_t(c)])
        if (std::find(gates_[i].begin(), gates_[i].end(), s) == gates_[i].end()) gates_[i].push_back(s);
    }
    if (always_[i]) gates_[i].clear();
  }
}

bool TaskRunner::sink_due(int i, int64_t tick) const {
  const graph::GraphNode& gn = g_.nodes[size_t(i)];
  if (probe_) return gn.schema->is_timed_in_probe() && tick + 1 == g_.ticks;
  if (gn.every && (tick + 1) % gn.every == 0) return true;
  return gn.at_end && tick + 1 == g_.ticks;
}

bool TaskRunner::due(int i, int64_t tick) const {
  if (rank_ != 0 && (g_.nodes[size_t(i)].schema->is_sink() || !gates_[size_t(i)].empty())) return false;
  if (probe_ && g_.nodes[size_t(i)].schema->is_sink() && gates_[size_t(i)].empty()) return false;  // an ungated sink
  if (always_[size_t(i)]) return true;
  for (int s : gates_[size_t(i)])
    if (sink_due(s, tick)) return true;
  return false;
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

void TaskRunner::run_allreduce(const std::function<void(int64_t)>& body, int optimizer, const char* what) {
  {
    std::lock_guard lock(error_m_);
    if (error_) return;
  }
  const graph::GraphNode& gn = g_.nodes[size_t(optimizer)];
  try {
    body(instances_[size_t(optimizer)].ctx.tick_);
  } catch (const std::exception& e) {
    record(std::make_exception_ptr(as_run_error(e, gn, what)));
  }
}

std::exception_ptr TaskRunner::take_error() {
  std::lock_guard lock(error_m_);
  return std::exchange(error_, nullptr);
}

}  // namespace noiseflow::runtime::exec
