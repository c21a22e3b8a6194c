// runtime/harness.hpp — one node, run on its own (for tests and tools).
//
// Infers shapes from the schema, creates the node, initialises its
// parameters, plans it, and runs forward/backward on tensors you supply.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/exec/instance.hpp"
#include "runtime/node.hpp"

namespace noiseflow::runtime {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class NodeHarness {
 public:
  /// `attrs` may omit attributes that have defaults. Throws graph::ShapeError
  /// or NodeError on bad input. With `layout` nChw16c, every rank-4 input, output and gradient whose
  /// channels are a multiple of 16 is stored blocked, as the executor would (inputs and gradients are
  /// still given plain and converted; read results with Tensor::to_plain()).
  NodeHarness(const std::string& op, const Json& attrs, const NamedTensors& inputs, uint64_t seed = 1,
              int64_t ticks = 1, Layout layout = Layout::plain);

  /// Overwrites an input's values (same element count; given plain, converted to the input's layout).
  void set_input(const std::string& name, const Tensor& t);
  void forward(int64_t tick = 0);
  /// Computes gradients of every differentiable input and every parameter;
  /// outputs not listed get zero gradient.
  void backward(const NamedTensors& grad_outputs);

  Tensor& input(const std::string& name);
  Tensor& output(const std::string& name = {});
  Tensor& grad_input(const std::string& name) { return in_.ctx.grad_input(name); }
  Param& param(const std::string& local_name) { return in_.ctx.param_ref(local_name); }
  std::deque<Param>& params() { return params_; }
  Context& ctx() { return in_.ctx; }
  Node& node() { return *in_.node; }

 private:
  exec::Instance in_;  // made and planned by the same code as the executor's instances
  std::deque<Param> params_;
};

}  // namespace noiseflow::runtime
