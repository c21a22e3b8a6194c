// runtime/plan/plan.hpp — the execution plan: every decision the executor follows, as one value.
//
//   graph ──layouts──> which tensors are nChw16c, plain copies for plain-only consumers
//         ──autodiff─> which nodes run backward, in what order, who writes which gradient
//         ──schedule─> one order of a tick's tasks (forward, backward, optimizer and after)
//         ──buffers──> lifetimes on that order, shared slots for tensors that never overlap
//         ──stats────> the plan's counts and its memory report
//
// The planners are pure functions of the validated graph and the options: a plan can be printed
// (noiseflow plan), compared (operator==) and tested without creating a node. runtime/exec/ binds node
// instances to it and runs it.
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::runtime::plan {

/// A node output: (node index, output index).
struct ValueId {
  int node = -1;
  int output = 0;
  auto operator<=>(const ValueId&) const = default;
};

/// One task of a tick: a node's forward or its backward.
struct Task {
  int node = -1;
  bool backward = false;
  bool operator==(const Task&) const = default;
};

/// Positions in ExecutionPlan::schedule, both inclusive.
struct Lifetime {
  int from = 0, until = 0;
  bool operator==(const Lifetime&) const = default;
};

/// Where a tensor's memory comes from: a buffer of its own (slot -1), or a planned slot shared with
/// tensors whose lifetimes do not overlap.
struct Storage {
  int slot = -1;
  int64_t bytes = 0;
  Lifetime life;
  bool operator==(const Storage&) const = default;
};

/// One node output.
struct TensorPlan {
  ValueId value;
  Shape shape;
  Layout layout = Layout::plain;
  Storage storage;
  bool operator==(const TensorPlan&) const = default;
};

/// A plain copy of a blocked tensor, made for a plain-only consumer's input port before its forward.
struct Conversion {
  ValueId value;
  int node = -1, port = -1;
  bool operator==(const Conversion&) const = default;
};

/// The gradient of `value` that the backward of `consumer` writes for its input `port`. With one
/// consumer it is the producer's output gradient itself; with several, the producer sums them
/// (AutodiffPlan::fan_in). `converted`: the consumer is plain-only and `value` blocked, so the consumer
/// writes a plain copy that is converted into this tensor after its backward.
struct Gradient {
  ValueId value;
  int consumer = -1, port = -1;
  Layout layout = Layout::plain;
  Storage storage;
  bool converted = false;
  bool operator==(const Gradient&) const = default;
};

/// Several gradients of one value, summed into the first before the producer's backward.
struct FanIn {
  ValueId value;
  std::vector<int> gradients;  ///< indices into AutodiffPlan::gradients; the first receives the sum
  bool operator==(const FanIn&) const = default;
};

/// What the backward pass is (empty without an optimizer).
struct AutodiffPlan {
  int optimizer = -1;                ///< the optimizer node, -1 without one
  ValueId loss;                      ///< the optimizer's loss input
  std::vector<int> backward_order;   ///< nodes whose backward runs, consumers first
  std::vector<char> in_backward;     ///< per node
  std::vector<Gradient> gradients;   ///< in the order the backward writes them
  std::vector<FanIn> fan_in;         ///< values with several consumers' gradients
  std::vector<ValueId> zero_gradients;  ///< outputs of backward nodes no gradient flows to (all zeros)
  std::vector<int> trainable_nodes;  ///< nodes whose parameters the optimizer updates (backward order)
  std::vector<int> optimizer_readers;  ///< nodes reading an optimizer output (EMA): same trainable list
  /// Weight tying (GraphNode::params_of): per owner whose parameters a node in the backward uses, the
  /// nodes in the backward that use them (the owner first when it is in the backward itself). Their
  /// parameter gradients are summed into the owner's after every backward task and before the optimizer
  /// (and the allreduce); the owner is trainable then, a tied node never is.
  struct TieSum {
    int owner = -1;
    std::vector<int> users;  ///< in the backward, the owner first if it is one of them
    bool operator==(const TieSum&) const = default;
  };
  std::vector<TieSum> tie_sums;
  bool operator==(const AutodiffPlan&) const = default;
};

/// Data parallelism over several ranks (PlanOptions::ranks > 1): one task after every backward task and
/// before the optimizer averages, across the ranks, every trainable parameter's gradient and the loss in
/// one fused buffer (runtime/distributed.hpp, a ring in fixed order), so the optimizer steps on the
/// gradient of the global batch's mean loss on every rank alike. A sampling pipeline (no optimizer, a
/// batch attribute the ranks split) on several ranks has none: ranks stays 1.
struct AllreducePlan {
  int ranks = 1;
  std::vector<int> nodes;  ///< trainable nodes whose parameter gradients are averaged (AutodiffPlan order)
  int64_t floats = 0;      ///< the fused buffer: every parameter gradient element, then the loss
  bool active() const { return ranks > 1; }
  bool operator==(const AllreducePlan&) const = default;
};

/// A buffer shared by lifetime.
struct Slot {
  enum class Pool { activations, gradients } pool = Pool::activations;
  int64_t bytes = 0;
  bool operator==(const Slot&) const = default;
};

/// What the plan decided about memory and layouts.
struct PlanStats {
  int64_t tensors = 0, blocked_tensors = 0;  ///< node outputs, and how many of them are nChw16c
  int64_t conversions = 0;                    ///< plain copies of blocked tensors for plain-only nodes
  int64_t activation_bytes = 0;               ///< node outputs (kept for the backward pass when training)
  int64_t shared_activation_bytes = 0;        ///< of which buffers shared by lifetime (no optimizer)
  int64_t gradient_tensors = 0;               ///< gradients of node outputs
  int64_t gradient_bytes = 0;                 ///< their buffers (shared by lifetime on the optimised path)
  int64_t gradient_bytes_unshared = 0;        ///< what one buffer per gradient would take
  bool operator==(const PlanStats&) const = default;
};

/// Bytes the plan allocates before the first tick; everything is allocated up front and kept, so the sum is
/// the peak.
struct MemoryReport {
  int64_t activations = 0;      ///< node outputs, their shared slots and plain copies for plain-only nodes
  int64_t gradients = 0;        ///< gradients of node outputs (slots, own buffers, zeros, plain copies)
  int64_t parameters = 0;       ///< parameter values
  int64_t parameter_gradients = 0;
  int64_t optimizer_state = 0;  ///< optimizer moments, EMA weights (Schema::memory)
  int64_t node_memory = 0;      ///< what nodes hold beyond their tensors: data sets, tables (Schema::memory)
  int64_t scratch = 0;          ///< the largest per-call working memory of a node (scratchpads, staging)
  int64_t communication = 0;    ///< data parallelism: the fused gradient buffer and the ring's receive chunk
  int64_t peak() const {
    return activations + gradients + parameters + parameter_gradients + optimizer_state + node_memory + scratch +
           communication;
  }
  bool operator==(const MemoryReport&) const = default;
};

struct PlanOptions {
  /// The straightforward path: plain tensors only, one buffer per gradient, no shared activations, backward
  /// tasks free to run in any valid order.
  bool reference = false;
  /// Data-parallel ranks (the graph loaded with graph::LoadOptions::ranks): > 1 plans the gradient allreduce.
  int ranks = 1;
};

/// The plan of one pipeline.
struct ExecutionPlan {
  bool reference = false;
  std::vector<std::vector<TensorPlan>> tensors;  ///< [node][output]
  std::vector<Conversion> conversions;
  AutodiffPlan autodiff;
  AllreducePlan allreduce;     ///< data parallelism: between the backward tasks and the optimizer
  std::vector<Task> schedule;  ///< a valid order of every task of a tick; lifetimes are positions in it
  bool serial_forward = false;   ///< forward tasks chained in schedule order (activations share slots)
  bool serial_backward = false;  ///< backward tasks chained in schedule order (gradients share slots)
  std::vector<Slot> slots;
  PlanStats stats;
  MemoryReport memory;

  const TensorPlan& tensor(ValueId v) const { return tensors[size_t(v.node)][size_t(v.output)]; }
  bool training() const { return autodiff.optimizer >= 0; }
  /// Position of a task in the schedule, -1 if it is not there.
  int position(Task t) const;
  /// Whether a node output lives in a shared slot (its value is gone once its lifetime ends).
  bool shared(ValueId v) const { return tensor(v).storage.slot >= 0; }
  bool operator==(const ExecutionPlan&) const = default;
};

/// Plans a validated graph. Throws RunError (phase "plan") for graphs that cannot be differentiated:
/// two optimizers, nothing to optimise, a non-differentiable input between parameters and the loss; and
/// for data parallelism (ranks > 1) without an optimizer.
ExecutionPlan make_plan(const graph::Graph& g, const PlanOptions& options = {});

}  // namespace noiseflow::runtime::plan
