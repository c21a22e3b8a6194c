#include "runtime/plan/schedule.hpp"

namespace noiseflow::runtime::plan {

std::vector<Task> plan_schedule(const graph::Graph& g, const AutodiffPlan& ad) {
  // Nodes at or after the optimizer through ordering edges.
  std::vector<char> after(g.nodes.size(), 0);
  if (ad.optimizer >= 0)
    for (int i : g.order) {
      const graph::GraphNode& gn = g.nodes[size_t(i)];
      after[size_t(i)] = i == ad.optimizer;
      for (size_t p = 0; p < gn.inputs.size(); ++p)
        if (gn.inputs[p] && !gn.schema->is_back_edge(gn.schema->inputs()[p].name) && after[size_t(gn.inputs[p]->node)])
          after[size_t(i)] = 1;
    }
  std::vector<Task> s;
  for (int i : g.order)
    if (!after[size_t(i)]) s.push_back({i, false});
  for (int i : ad.backward_order) s.push_back({i, true});
  for (int i : g.order)
    if (after[size_t(i)]) s.push_back({i, false});
  return s;
}

}  // namespace noiseflow::runtime::plan
