#include "runtime/plan/layouts.hpp"

#include <map>

namespace noiseflow::runtime::plan {

namespace {

using graph::LayoutSupport;

// Union-find over the node outputs that could be blocked.
struct Regions {
  std::map<ValueId, int> ids;
  std::vector<int> parent;
  std::vector<char> blockable, near_any;

  int find(int x) {
    while (parent[size_t(x)] != x) x = parent[size_t(x)] = parent[size_t(parent[size_t(x)])];
    return x;
  }
  int id(ValueId v) const {
    auto it = ids.find(v);
    return it == ids.end() ? -1 : it->second;
  }
};

Regions candidates(const graph::Graph& g) {
  Regions r;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (size_t o = 0; o < g.nodes[i].output_shapes.size(); ++o)
      if (Tensor::can_block(g.nodes[i].output_shapes[o])) {
        const auto support = g.nodes[i].schema->layout_support();
        r.ids[{int(i), int(o)}] = int(r.parent.size());
        r.parent.push_back(int(r.parent.size()));
        r.blockable.push_back(support != LayoutSupport::plain);
        r.near_any.push_back(support == LayoutSupport::any);
      }
  return r;
}

// Joins the tensors of every uniform node; marks those an `any` node touches.
void join(const graph::Graph& g, Regions& r) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    const auto support = gn.schema->layout_support();
    if (support == LayoutSupport::plain) continue;
    std::vector<int> mine;
    for (auto& in : gn.inputs)
      if (in && r.id({in->node, in->output}) >= 0) mine.push_back(r.id({in->node, in->output}));
    for (size_t o = 0; o < gn.output_shapes.size(); ++o)
      if (r.id({int(i), int(o)}) >= 0) mine.push_back(r.id({int(i), int(o)}));
    for (int t : mine) {
      if (support == LayoutSupport::any) r.near_any[size_t(t)] = 1;
      if (support == LayoutSupport::uniform) r.parent[size_t(r.find(t))] = r.find(mine[0]);
    }
  }
}

}  // namespace

LayoutPlan plan_layouts(const graph::Graph& g, bool reference) {
  LayoutPlan lp;
  for (auto& gn : g.nodes) lp.layouts.emplace_back(gn.output_shapes.size(), Layout::plain);
  if (reference) return lp;
  Regions r = candidates(g);
  join(g, r);
  std::vector<char> region_ok(r.parent.size(), 1), region_any(r.parent.size(), 0);
  for (size_t t = 0; t < r.parent.size(); ++t) {
    if (!r.blockable[t]) region_ok[size_t(r.find(int(t)))] = 0;
    if (r.near_any[t]) region_any[size_t(r.find(int(t)))] = 1;
  }
  for (auto& [v, t] : r.ids)
    if (region_ok[size_t(r.find(t))] && region_any[size_t(r.find(t))])
      lp.layouts[size_t(v.node)][size_t(v.output)] = Layout::nChw16c;
  // Plain-only consumers of blocked tensors read converted copies.
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    if (gn.schema->layout_support() != LayoutSupport::plain) continue;
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && lp.layouts[size_t(gn.inputs[p]->node)][size_t(gn.inputs[p]->output)] == Layout::nChw16c)
        lp.conversions.push_back({{gn.inputs[p]->node, gn.inputs[p]->output}, int(i), int(p)});
  }
  return lp;
}

}  // namespace noiseflow::runtime::plan
