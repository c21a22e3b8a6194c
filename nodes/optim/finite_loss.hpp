// nodes/optim/finite_loss.hpp — what every optimizer checks before it updates: a loss gone NaN or
// infinite stops the run there, with the weights (and a checkpoint written after them) left alone.
#pragma once

#include <cmath>
#include <string>

#include "runtime/node.hpp"

namespace noiseflow::nodes::optim {

inline void check_finite_loss(runtime::Context& ctx, int64_t step) {
  const float loss = ctx.input("loss").data()[0];
  if (!std::isfinite(loss))
    ctx.fail("loss", "the loss is " + std::to_string(loss) + " at step " + std::to_string(step) +
                         " (it diverged: try a lower lr or clip_norm); the weights were left unchanged");
}

}  // namespace noiseflow::nodes::optim
