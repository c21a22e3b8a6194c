// runtime/plan/autodiff.hpp — the backward pass derived from the optimizer's loss.
//
//   params ──> conv ──> add ──> loss ──> optimizer ──> ema
//                └──────┘ (fan-out: two gradients, summed before conv's backward)
//
// A node runs backward when it lies upstream of the loss and downstream of a trainable parameter
// (requires_grad); its backward runs after those of all its consumers (backward_order: consumers first).
// Every (consumer, input port) that sends gradient to a value writes one Gradient; a value with several
// senders gets a FanIn, summed into its first gradient before the producer's backward.
#pragma once

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

/// Derives the backward pass (an empty AutodiffPlan, optimizer -1, without an optimizer). Gradients get
/// their layouts here and their storage from plan_buffers. Throws RunError (phase "plan", codes
/// two_optimizers, missing_loss, nothing_to_optimise, not_differentiable).
AutodiffPlan plan_autodiff(const graph::Graph& g, const std::vector<std::vector<Layout>>& layouts);

}  // namespace noiseflow::runtime::plan
