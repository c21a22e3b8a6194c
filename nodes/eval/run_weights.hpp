// nodes/eval/run_weights.hpp — what the evaluation sinks share (eval.sample_fd, eval.sample_grid): copying
// the training run's current weights into a sub-pipeline's executor before running it.
#pragma once

#include <map>
#include <string>

#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes::eval {

/// Copies into every parameter of `sub` whose name starts with `scope` the run's tensor of the same name:
/// with `weights` "raw" the trained parameter, else the copy of the optim.ema with that prefix ("ema":
/// ema.NAME). Fails naming the node's `scope` attribute when a tensor is missing or has another shape, or
/// when nothing was copied; `pipeline` names the sub-pipeline in those messages.
inline void copy_run_weights(runtime::Context& ctx, runtime::Executor& sub, const std::string& scope,
                             const std::string& weights, const std::string& pipeline) {
  // The run's weights by name: parameters, and the EMA copies among the node state tensors.
  std::map<std::string, runtime::Tensor> source;
  for (auto& [name, t] : runtime::checkpoint_tensors(*ctx.executor())) source.emplace(name, t);
  const std::string prefix = weights == "raw" ? "" : weights + ".";
  int64_t copied = 0;
  for (auto& p : sub.params()) {
    if (p.name.rfind(scope, 0) != 0) continue;
    auto it = source.find(prefix + p.name);
    if (it == source.end())
      ctx.fail("scope", "the training run has no " + prefix + p.name + " for the sampling pipeline " + pipeline +
                            " (does its net match the training pipeline's?)");
    if (it->second.shape() != p.value.shape())
      ctx.fail("scope", p.name + " has shape " + graph::shape_str(it->second.shape()) + " in the run but " +
                            graph::shape_str(p.value.shape()) + " in the sampling pipeline");
    p.value.copy_from(it->second);
    ++copied;
  }
  if (copied == 0) ctx.fail("scope", "no parameter of the sampling pipeline starts with \"" + scope + "\"");
}

}  // namespace noiseflow::nodes::eval
