// runtime/exec/flow.hpp — the plan's tasks as one tbb::flow::graph, built once and run per tick.
//
//   start ──> fwd(data) ──> fwd(net) ──> fwd(loss) ──> bwd(loss) ──> bwd(net) ──> fwd(opt) ──> fwd(ema)
//
// Edges: producer before consumer (back edges of state nodes excepted); a node's backward after its
// forward and after its consumers' backward; the optimizer after every backward; and, where the plan shares
// buffers, each forward (or backward) after the one before it in the schedule. With data parallelism
// (plan.allreduce), one more task between the last backward and the optimizer averages the gradients; with
// weight tying (plan.autodiff.tie_sums), one before it sums the tied nodes' gradients into their owners'.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <tbb/flow_graph.h>

#include "runtime/exec/task.hpp"
#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::exec {

class FlowGraph {
 public:
  /// Builds the graph; construct it inside the task_arena that will run it.
  /// `allreduce`: the body of the planned gradient allreduce (plan.allreduce.active() only).
  /// `ties`: the body that sums tied gradients (plan.autodiff.tie_sums non-empty only).
  FlowGraph(const graph::Graph& g, const plan::ExecutionPlan& plan, TaskRunner& runner,
            std::function<void(int64_t tick)> allreduce = {}, std::function<void(int64_t tick)> ties = {});
  /// Runs every task of one tick and waits for them (inside the arena).
  void run_tick();
  /// After a failed tick: resets the graph so it can run again.
  void reset() { g_.reset(); }

 private:
  using Task = tbb::flow::continue_node<tbb::flow::continue_msg>;
  void add_edges(const graph::Graph& g, const plan::ExecutionPlan& plan);
  void edge(Task* a, Task* b);

  tbb::flow::graph g_;
  tbb::flow::broadcast_node<tbb::flow::continue_msg> start_{g_};
  std::vector<std::unique_ptr<Task>> fwd_, bwd_;
  std::unique_ptr<Task> allreduce_;  ///< data parallelism: between the backward and the optimizer
  std::function<void(int64_t)> allreduce_body_;
  std::unique_ptr<Task> ties_;  ///< weight tying: after the backward, before the allreduce and optimizer
  std::function<void(int64_t)> ties_body_;
  std::vector<std::pair<Task*, Task*>> edges_;
};

}  // namespace noiseflow::runtime::exec
