// runtime/plan/schedule.hpp — one order of a tick's tasks.
//
//   forward of every node not fed by the optimizer (topological order)
//   backward tasks (consumers first)
//   forward of the optimizer and of every node it feeds (EMA, checkpoint)
//
// The flow graph may run independent tasks in another order unless the plan chains them
// (serial_forward / serial_backward); lifetimes are positions in this order.
#pragma once

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

std::vector<Task> plan_schedule(const graph::Graph& g, const AutodiffPlan& ad);

}  // namespace noiseflow::runtime::plan
