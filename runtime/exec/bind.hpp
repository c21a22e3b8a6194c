// runtime/exec/bind.hpp — node instances bound to an ExecutionPlan.
//
// Binding follows the plan and decides nothing: every output gets the buffer (or the shared slot) and the
// layout the plan gave it, every input the producer's tensor or its planned plain copy, every backward node
// its gradient tensors and fan-in lists, the optimizer (and the nodes it feeds) the trainable parameters.
#pragma once

#include <deque>
#include <vector>

#include "runtime/exec/instance.hpp"
#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::exec {

struct Bound {
  std::vector<Instance> instances;  ///< indexed like graph.nodes
  std::deque<Param> params;         ///< every parameter (stable addresses)
  /// Weight tying: a tied node's parameters, its own name and gradient over its owner's value (the same
  /// buffer). Not in `params`: a checkpoint holds each tensor once, under the owner's name.
  std::deque<Param> tied;
};

/// Weight tying: sums, for every AutodiffPlan::TieSum, the users' parameter gradients into the owner's (the
/// owner's own gradient counts only when the owner is in the backward). Runs after every backward task.
void sum_tied_gradients(const plan::AutodiffPlan& ad, std::vector<Instance>& instances);

/// Creates every node instance of `g` and its tensors as `plan` says; throws RunError (phase plan) for
/// an unknown op or a buffer that cannot be allocated (code out_of_memory, naming the node, the output and
/// the bytes). Nodes are not planned yet (plan_nodes).
void bind(const graph::Graph& g, const plan::ExecutionPlan& plan, bool reference, Bound& out);

/// Runs every node's plan(): sources first, so a weight loader fills parameters before their users plan.
/// Throws RunError naming the node (phase plan).
void plan_nodes(const graph::Graph& g, std::vector<Instance>& instances);

}  // namespace noiseflow::runtime::exec
