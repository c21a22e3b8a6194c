// runtime/executor.hpp — a validated graph planned once and run per tick on
// a tbb::flow::graph.
//
//   start ──> data ──> add_noise ──> net ──> loss ──> [backward tasks] ──> opt
//        └──> sched ──┘        └──> write_images (sink, every N)
//
// Plan: node instances, their primitives (plan()), every output tensor
// preallocated, parameters created and initialised, one flow-graph node per
// graph node. Heavy nodes (oneDNN) run one at a time on a compute lane that
// uses all cores; with flow_threads > 1, light nodes (data, I/O) run beside
// them on TBB.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::runtime {

/// An error while planning or running a node, already formatted
/// `FILE: node "ID", FIELD: message` (phase: plan, forward, backward).
struct RunError : std::runtime_error {
  std::string node, phase;
  RunError(const std::string& msg, std::string node_, std::string phase_)
      : std::runtime_error(msg), node(std::move(node_)), phase(std::move(phase_)) {}
};

struct ExecutorOptions {
  int threads = 0;       ///< OpenMP threads of heavy nodes; 0: all cores
  /// TBB threads running node bodies (light nodes beside the heavy lane); 0: one. On 2 cores a second
  /// one made a unet-small training step ~10% slower (its OpenMP team competes with the lane's).
  int flow_threads = 0;
  bool profile = false;  ///< time every node's forward and backward
  /// The straightforward path: plainest kernels (Context::reference()) and one buffer per gradient
  /// instead of buffers shared by lifetime. For checking the optimised path; slower, more memory.
  bool reference = false;
};

/// Accumulated time of one node (ExecutorOptions::profile).
struct NodeProfile {
  std::string id, op;
  double forward_s = 0, backward_s = 0;
  int64_t forward_calls = 0, backward_calls = 0;
};

/// What the plan decided about memory and layouts (Executor::plan_stats()).
struct PlanStats {
  int64_t tensors = 0, blocked_tensors = 0;  ///< node outputs, and how many of them are nChw16c
  int64_t conversions = 0;                    ///< plain copies of blocked tensors for plain-only nodes
  int64_t activation_bytes = 0;               ///< node outputs (kept for the backward pass when training)
  int64_t shared_activation_bytes = 0;        ///< of which buffers shared by lifetime (no optimizer)
  int64_t gradient_tensors = 0;               ///< gradients of node outputs
  int64_t gradient_bytes = 0;                 ///< their buffers (shared by lifetime on the optimised path)
  int64_t gradient_bytes_unshared = 0;        ///< what one buffer per gradient would take
};

/// Progress of a run, handed to the per-tick callback.
struct TickInfo {
  int64_t tick = 0;   ///< the tick just finished (0-based)
  int64_t ticks = 0;  ///< total ticks of the run
  double seconds = 0; ///< wall time since the run started
};

class Executor {
 public:
  /// Plans the graph; throws RunError when a node cannot be planned.
  Executor(const graph::Graph& g, ExecutorOptions opt = {}, std::shared_ptr<RunState> state = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  /// Runs ticks [first, graph.ticks), calling on_tick after each. Throws
  /// RunError (or Cancelled after cancel()).
  void run(const std::function<void(const TickInfo&)>& on_tick = {});
  /// Runs exactly one tick (its index is the next tick).
  void step();
  /// Asks a running run() to stop after the current tick (thread-safe).
  void cancel() { cancel_ = true; }

  /// The tensor of "node" or "node.output" (a plain copy when the plan keeps it nChw16c). Throws for an
  /// intermediate tensor whose buffer the plan shares (pipelines without an optimizer, optimised path).
  Tensor output(const std::string& ref) const;
  /// Every parameter, by qualified name.
  std::deque<Param>& params() { return params_; }
  Param* find_param(const std::string& name);
  const graph::Graph& graph() const { return graph_; }
  RunState& state() { return *state_; }
  int64_t next_tick() const { return next_tick_; }
  /// Sets the next tick to run (resume).
  void set_next_tick(int64_t t) { next_tick_ = t; }
  /// Node instances (for checkpointing optimizer state).
  Node& node(int i) { return *instances_[i].node; }
  Context& context(int i) { return instances_[i].ctx; }
  /// Per-node times since the last reset (needs ExecutorOptions::profile).
  std::vector<NodeProfile> profile() const;
  void reset_profile();
  const PlanStats& plan_stats() const { return stats_; }
  /// Whether the graph has an optimizer (a training pipeline).
  bool training() const { return !backward_order_.empty(); }

 private:
  struct Instance {
    std::unique_ptr<Node> node;
    Context ctx;
    bool in_backward = false;
    // Gradient routing: for each output, the consumers' grad-input tensors to sum (the first one is
    // grad_outputs_[o] itself: the others are added into it).
    std::vector<std::vector<Tensor>> grad_sources;
    // Layout conversions at the edges of blocked regions (plan_layouts): before forward, a blocked
    // producer's tensor into this node's plain input; after backward, this node's plain gradient into
    // the blocked gradient its producer reads.
    struct Conversion {
      Tensor from, to;
    };
    std::vector<Conversion> input_conversions, grad_conversions;
    double fwd_s = 0, bwd_s = 0;
    int64_t fwd_n = 0, bwd_n = 0;
  };
  void plan_layouts();
  void plan_forward_buffers();
  void plan_autodiff();
  void build_flow();
  void run_tick(int64_t tick);
  [[noreturn]] void rethrow(const std::exception& e, int node, const char* phase) const;
  bool due(const Instance& in, int64_t tick) const;

  graph::Graph graph_;
  ExecutorOptions opt_;
  std::shared_ptr<RunState> state_;
  std::vector<Instance> instances_;
  std::deque<Param> params_;
  std::vector<int> backward_order_;  // nodes whose backward runs, consumers first
  PlanStats stats_;
  bool serial_backward_ = false;     // backward tasks chained in backward_order_ (shared gradient buffers)
  bool serial_forward_ = false;      // forward tasks chained in graph order (shared activation buffers)
  std::set<std::pair<int, int>> shared_outputs_;  // (node, output) on shared buffers: not readable
  struct Flow;
  std::unique_ptr<Flow> flow_;
  std::mutex lane_;  // the compute lane for heavy nodes
  std::atomic<bool> cancel_{false};
  int64_t next_tick_ = 0;
  std::mutex error_m_;
  std::exception_ptr error_;
};

}  // namespace noiseflow::runtime
