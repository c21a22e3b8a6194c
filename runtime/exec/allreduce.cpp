#include "runtime/exec/allreduce.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "runtime/run_state.hpp"

namespace noiseflow::runtime::exec {

GradientAllreduce::GradientAllreduce(const plan::ExecutionPlan& plan, std::vector<Instance>& instances,
                                     Communicator& comm)
    : comm_(comm) {
  int64_t floats = 0;
  for (int i : plan.allreduce.nodes)
    for (Param* p : instances[size_t(i)].ctx.params_) {
      if (p->grad.blocked()) throw std::logic_error("allreduce: gradient of " + p->name + " is not plain");
      grads_.push_back(p->grad);
      floats += p->grad.numel();
    }
  Context& opt = instances[size_t(plan.autodiff.optimizer)].ctx;
  loss_ = opt.inputs_[size_t(opt.schema().input_index("loss"))];
  state_ = opt.run_state_;
  if (floats + 1 != plan.allreduce.floats)
    throw std::logic_error("allreduce: the plan counts " + std::to_string(plan.allreduce.floats) +
                           " floats, the bound gradients " + std::to_string(floats + 1));
  buffer_.resize(size_t(floats + 1));
}

void GradientAllreduce::run(int64_t tick) {
  const auto t0 = std::chrono::steady_clock::now();
  float* b = buffer_.data();
  for (Tensor& g : grads_) std::memcpy(b, g.data(), size_t(g.numel()) * sizeof(float)), b += g.numel();
  *b = loss_.data()[0];
  comm_.allreduce_mean(buffer_.data(), int64_t(buffer_.size()));
  b = buffer_.data();
  for (Tensor& g : grads_) std::memcpy(g.data(), b, size_t(g.numel()) * sizeof(float)), b += g.numel();
  loss_.data()[0] = *b;
  // The logged loss is the global batch's (the loss node recorded its rank's share).
  double v = 0;
  int64_t at = -1;
  if (state_ && state_->latest("loss", v, &at) && at == tick) state_->scalar("loss", tick, double(*b));
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++calls_;
}

}  // namespace noiseflow::runtime::exec
