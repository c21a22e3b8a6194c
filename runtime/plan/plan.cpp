#include "runtime/plan/plan.hpp"

#include <algorithm>

#include "runtime/errors.hpp"

#include "runtime/plan/autodiff.hpp"
#include "runtime/plan/buffers.hpp"
#include "runtime/plan/layouts.hpp"
#include "runtime/plan/schedule.hpp"
#include "runtime/plan/stats.hpp"

namespace noiseflow::runtime::plan {

namespace {
AllreducePlan plan_allreduce(const graph::Graph& g, const AutodiffPlan& ad, int ranks) {
  AllreducePlan a;
  a.ranks = std::max(1, ranks);
  if (!a.active()) return a;
  if (ad.optimizer < 0) {
    // Sampling: the ranks split a batch of samples (a data source's batch attribute) and dist.gather
    // collects them on rank 0; there are no gradients to average.
    for (const graph::GraphNode& n : g.nodes) {
      const std::string& b = n.schema->batch_attr_name();
      if (!b.empty() && n.attrs.contains(b) && n.attrs[b].is_number_integer() && n.attrs[b].get<int64_t>() > 0)
        return AllreducePlan{};
    }
    throw RunError({g.file, "", "", "data_parallel_needs_optimizer",
                    "data parallelism over " + std::to_string(a.ranks) +
                        " ranks splits a batch: this pipeline has neither an optimizer (training) nor a data source "
                        "with a batch attribute (sampling: random.normal's `batch`); run it as one process"},
                   "plan");
  }
  a.nodes = ad.trainable_nodes;
  for (int i : a.nodes)
    for (const graph::ParamDecl& p : g.nodes[size_t(i)].params) a.floats += graph::numel(p.shape);
  a.floats += 1;  // the loss
  return a;
}
}  // namespace

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
  plan.allreduce = plan_allreduce(g, plan.autodiff, options.ranks);
  plan.schedule = plan_schedule(g, plan.autodiff);
  plan_buffers(g, plan);
  plan.stats = plan_stats(plan);
  plan.memory = memory_report(g, plan);
  if (plan.allreduce.active())
    plan.memory.communication = (plan.allreduce.floats + plan.allreduce.floats / plan.allreduce.ranks + 2) * 4;
  return plan;
}

}  // namespace noiseflow::runtime::plan
