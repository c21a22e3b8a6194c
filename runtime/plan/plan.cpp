#include "runtime/plan/plan.hpp"

#include "runtime/plan/autodiff.hpp"
#include "runtime/plan/buffers.hpp"
#include "runtime/plan/layouts.hpp"
#include "runtime/plan/schedule.hpp"
#include "runtime/plan/stats.hpp"

namespace noiseflow::runtime::plan {

int ExecutionPlan::position(Task t) const {
  for (size_t k = 0; k < schedule.size(); ++k)
    if (schedule[k] == t) return int(k);
  return -1;
}

ExecutionPlan make_plan(const graph::Graph& g, const PlanOptions& options) {
  ExecutionPlan plan;
  plan.reference = options.reference;
  LayoutPlan lp = plan_layouts(g, options.reference);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    plan.tensors.emplace_back();
    for (size_t o = 0; o < g.nodes[i].output_shapes.size(); ++o)
      plan.tensors.back().push_back({{int(i), int(o)}, g.nodes[i].output_shapes[o], lp.layouts[i][o], {}});
  }
  plan.conversions = std::move(lp.conversions);
  plan.autodiff = plan_autodiff(g, lp.layouts);
  plan.schedule = plan_schedule(g, plan.autodiff);
  plan_buffers(g, plan);
  plan.stats = plan_stats(plan);
  plan.memory = memory_report(g, plan);
  return plan;
}

}  // namespace noiseflow::runtime::plan
