// runtime/exec/allreduce.hpp — the planned gradient allreduce of data-parallel training.
//
//   bwd(...) ──> bwd(first layer) ──> allreduce ──> fwd(opt) ──> fwd(ema)
//
// One fused buffer per tick: every trainable parameter's gradient (in the plan's order) and the loss are
// copied in, averaged over the ranks by the Communicator (a ring in fixed rank order: the same bits on every
// rank and in every run with the same rank count) and copied back, so the optimizer steps on the gradient
// of the global batch's mean loss and logs the global loss.
#pragma once

#include <vector>

#include "runtime/distributed.hpp"
#include "runtime/exec/instance.hpp"
#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::exec {

class GradientAllreduce {
 public:
  GradientAllreduce(const plan::ExecutionPlan& plan, std::vector<Instance>& instances, Communicator& comm);
  /// Averages the gradients and the loss of tick `tick` over the ranks.
  void run(int64_t tick);
  /// Wall time spent in run() (waiting for the slowest rank included), and its calls.
  double seconds() const { return seconds_; }
  int64_t calls() const { return calls_; }
  void reset_time() { seconds_ = 0, calls_ = 0; }

 private:
  std::vector<Tensor> grads_;  ///< the parameter gradients, in the plan's order
  Tensor loss_;
  RunState* state_ = nullptr;
  Communicator& comm_;
  std::vector<float> buffer_;
  double seconds_ = 0;
  int64_t calls_ = 0;
};

}  // namespace noiseflow::runtime::exec
