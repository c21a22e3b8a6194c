// runtime/plan/stats.hpp — the plan's counts and its memory report, from the plan alone.
#pragma once

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

/// Tensors, blocked tensors, conversions, activation and gradient bytes.
PlanStats plan_stats(const ExecutionPlan& plan);

/// Bytes of activations, gradients, parameters, optimizer state and node memory (Schema::memory).
MemoryReport memory_report(const graph::Graph& g, const ExecutionPlan& plan);

}  // namespace noiseflow::runtime::plan
