// runtime/plan/print.hpp — the plan as text (noiseflow plan) and as JSON (noiseflow plan --json).
#pragma once

#include <string>

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

/// Every task of a tick in order, every tensor with its layout, slot, bytes and lifetime, every gradient,
/// the conversions, the slots and the memory report.
std::string plan_text(const graph::Graph& g, const ExecutionPlan& plan);

/// The same as JSON: { "file", "training", "reference", "schedule": [...], "tensors": [...], "gradients": [...],
/// "conversions": [...], "slots": [...], "stats": {...}, "memory": {...} }.
graph::Json plan_json(const graph::Graph& g, const ExecutionPlan& plan);

}  // namespace noiseflow::runtime::plan
