// runtime/exec/task.hpp — the body of every flow-graph task.
//
// A task runs one node's forward or backward: it skips sinks that are not due, honours cancel(), takes
// the compute lane for heavy nodes (one at a time, all OpenMP threads; light nodes get one thread),
// refreshes planned layout conversions and fan-in sums around the node's own code, optionally times it,
// and turns anything thrown into a RunError naming the node and the phase. The first error of a tick is
// kept; later tasks of that tick do nothing. Under data parallelism, ranks other than 0 skip the sinks
// (checkpoints, images, metrics: rank 0 writes them) and the nodes that only feed them.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "runtime/exec/instance.hpp"

namespace noiseflow::runtime::exec {

class TaskRunner {
 public:
  /// `rank`: data parallelism's rank of this process; sinks (and what only feeds them) run on rank 0 only.
  /// `probe`: a budget probe (ExecutorOptions::probe): the sinks that are Schema::timed_in_probe run once, at
  /// the last tick, whatever their `every`; every other sink never.
  TaskRunner(const graph::Graph& g, std::vector<Instance>& instances, int threads, bool profile, int rank = 0,
             bool probe = false);

  /// Runs the forward (backward = false) or backward task of node `i`; never throws.
  void run(int i, bool backward);
  /// Runs `body`, the gradient allreduce before optimizer node `optimizer` (data parallelism), like a task:
  /// skipped after an error of the tick, an exception becomes a RunError naming the optimizer (phase
  /// allreduce); never throws.
  void run_allreduce(const std::function<void(int64_t tick)>& body, int optimizer, const char* what = "allreduce");
  /// The error of the tick, if any, cleared.
  std::exception_ptr take_error();
  /// Whether node `i` runs at `tick`: sinks every N ticks and/or at the end; a node whose consumers
  /// are all such sinks only when one of them does (a classifier feeding an at_end metric runs once).
  bool due(int i, int64_t tick) const;
  void cancel() { cancel_ = true; }
  /// Whether cancel() was asked for; clears the request.
  bool take_cancel() { return cancel_.exchange(false); }
  bool cancel_requested() const { return cancel_; }

 private:
  void forward(Instance& in);
  void backward(Instance& in);
  void record(std::exception_ptr e);

  bool sink_due(int i, int64_t tick) const;

  const graph::Graph& g_;
  std::vector<Instance>& instances_;
  std::vector<bool> always_;             // runs every tick
  std::vector<std::vector<int>> gates_;  // otherwise: the gated sinks it serves
  int threads_;
  bool profile_;
  int rank_ = 0;
  bool probe_ = false;
  std::mutex lane_;  // the compute lane for heavy nodes
  std::atomic<bool> cancel_{false};
  std::mutex error_m_;
  std::exception_ptr error_;
};

}  // namespace noiseflow::runtime::exec
