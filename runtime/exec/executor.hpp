// runtime/exec/executor.hpp — a validated graph planned once (runtime/plan/) and run per tick.
//
//   graph ──make_plan──> ExecutionPlan ──bind──> node instances ──FlowGraph──> run / step / cancel / output
//
// The executor decides nothing itself: layouts, gradients, task order and buffers come from the plan.
// Each executor runs its flow graph in a tbb::task_arena of its own (flow_threads slots), so several
// executors in one process, in several threads and with different thread counts, do not share a
// process-wide TBB limit; the caller's OpenMP thread count is restored after every call.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/distributed.hpp"
#include "runtime/exec/instance.hpp"
#include "runtime/plan/plan.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::runtime {

using plan::PlanStats;

struct ExecutorOptions {
  int threads = 0;       ///< OpenMP threads of heavy nodes; 0: all cores
  /// TBB threads running node bodies (light nodes beside the heavy lane); 0: one. On 2 cores a second
  /// one made a unet-small training step ~10% slower (its OpenMP team competes with the lane's).
  int flow_threads = 0;
  bool profile = false;  ///< time every node's forward and backward
  /// The straightforward path: plainest kernels (Context::reference()) and one buffer per gradient
  /// instead of buffers shared by lifetime. For checking the optimised path; slower, more memory.
  bool reference = false;
  /// Refuse, before allocating, a plan whose peak memory (plan::MemoryReport::peak) exceeds this many
  /// bytes. 0: what the process can use (runtime/memory.hpp available_memory); negative: no check.
  int64_t memory_limit = 0;
  /// Data parallelism: the ranks this executor trains with (runtime/distributed.hpp); null or one rank:
  /// a single process. The graph must be loaded for as many ranks (graph::LoadOptions::ranks).
  std::shared_ptr<Communicator> comm = nullptr;
  /// A budget probe (noiseflow::Pipeline sizing a run to run.minutes): sinks do not run, except those that
  /// are Schema::timed_in_probe, once, at the graph's last tick.
  bool probe = false;
};

/// Accumulated time of one node (ExecutorOptions::profile).
struct NodeProfile {
  std::string id, op;
  double forward_s = 0, backward_s = 0;
  int64_t forward_calls = 0, backward_calls = 0;
};

/// Progress of a run, handed to the per-tick callback.
struct TickInfo {
  int64_t tick = 0;   ///< the tick just finished (0-based)
  int64_t ticks = 0;  ///< total ticks of the run
  double seconds = 0; ///< wall time since the run started
};

class Executor {
 public:
  /// Plans the graph and binds it; throws RunError when it cannot be planned.
  Executor(const graph::Graph& g, ExecutorOptions opt = {}, std::shared_ptr<RunState> state = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Runs ticks [next_tick, graph.ticks), calling on_tick after each. Throws RunError (or Cancelled after
  /// cancel()); a failed tick is run again by the next run().
  void run(const std::function<void(const TickInfo&)>& on_tick = {});
  /// Runs exactly one tick (its index is the next tick).
  void step();
  /// Asks a running run() to stop after the current tick (thread-safe). Under data parallelism rank 0's
  /// request stops every rank at the same tick boundary; the other ranks' requests are ignored (mpirun
  /// forwards a signal to every rank).
  void cancel();
  /// When run.minutes ended the last run() early: {ticks done, ticks the pipeline asked for}.
  std::optional<std::pair<int64_t, int64_t>> budget_stop() const { return budget_stop_; }

  /// The tensor of "node" or "node.output" (a plain copy when the plan keeps it nChw16c). Throws for an
  /// intermediate tensor whose buffer the plan shares (pipelines without an optimizer, optimised path).
  Tensor output(const std::string& ref) const;
  /// Every parameter, by qualified name.
  std::deque<Param>& params();
  Param* find_param(const std::string& name);
  const graph::Graph& graph() const { return graph_; }
  const plan::ExecutionPlan& plan() const { return plan_; }
  RunState& state() { return *state_; }
  int64_t next_tick() const { return next_tick_; }
  /// Sets the next tick to run (resume).
  void set_next_tick(int64_t t) { next_tick_ = t; }
  /// Node instances (for checkpointing optimizer state).
  Node& node(int i);
  Context& context(int i);
  /// Per-node times since the last reset (needs ExecutorOptions::profile).
  std::vector<NodeProfile> profile() const;
  void reset_profile();
  const PlanStats& plan_stats() const { return plan_.stats; }
  /// Whether the graph has an optimizer (a training pipeline).
  bool training() const { return plan_.training(); }
  /// Data parallelism: this process's rank and the rank count (0 and 1 alone).
  int rank() const { return opt_.comm ? opt_.comm->rank() : 0; }
  int ranks() const { return opt_.comm ? opt_.comm->size() : 1; }
  /// Data parallelism: the ranks' communicator (null in a single process); dist.gather sends through it.
  Communicator* communicator() const { return opt_.comm.get(); }
  /// Data parallelism: seconds spent in the gradient allreduce since the last reset, and its calls.
  std::pair<double, int64_t> allreduce_time() const;

 private:
  void run_tick(int64_t tick);
  /// Data parallelism, before the first tick this executor runs: every rank takes rank 0's parameters,
  /// node state (optimizer moments, EMA) and next tick, so all start from the same model.
  void sync_replicas();
  /// Makes `tick` the run's last (run.minutes).
  void end_after(int64_t tick);
  struct Impl;

  graph::Graph graph_;
  ExecutorOptions opt_;
  std::shared_ptr<RunState> state_;
  plan::ExecutionPlan plan_;
  std::unique_ptr<Impl> impl_;
  int64_t next_tick_ = 0;
  bool synced_ = false;
  /// Data parallelism: cancel() waits for the end of the tick (rank 0 decides for all, see run()).
  std::atomic<bool> cancel_asked_{false};
  std::optional<std::pair<int64_t, int64_t>> budget_stop_;
};

}  // namespace noiseflow::runtime
