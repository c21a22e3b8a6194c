// runtime/exec/instance.hpp — a node instance: the Node object and the Context it runs with.
//
// The executor binds one per graph node from an ExecutionPlan (bind.hpp); NodeHarness makes one for a
// node run on its own. Both fill the context through the functions here.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::runtime::exec {

/// A copy between two tensors of one shape in different layouts, made every tick.
struct Copy {
  Tensor from, to;
};

struct Instance {
  std::unique_ptr<Node> node;
  Context ctx;
  bool in_backward = false;
  /// Per output with several consumers: the gradients they wrote, summed into the first (which is
  /// ctx.grad_outputs_[o]) before backward.
  std::vector<std::vector<Tensor>> fan_in;
  std::vector<Copy> input_conversions;  ///< before forward: blocked producer tensors into plain inputs
  std::vector<Copy> grad_conversions;   ///< after backward: plain input gradients into blocked ones
  double fwd_s = 0, bwd_s = 0;
  int64_t fwd_n = 0, bwd_n = 0;
};

/// A node of `type` with its context's identity filled: id, schema, attributes (defaults filled by the
/// caller), seed and tick count.
Instance make_instance(const NodeType& type, std::string id, Json attrs, uint64_t seed, int64_t ticks);

/// Creates and initialises the parameters `decls` of an instance, qualified "<id>.<name>", in `store`.
void add_params(Instance& in, const std::vector<graph::ParamDecl>& decls, uint64_t seed, std::deque<Param>& store);

/// Runs the instance's plan() (once, before the first tick).
void plan_instance(Instance& in);

}  // namespace noiseflow::runtime::exec
