// graph/graph.cpp — ordering (Boost.Graph topological sort, cycles only through state
// nodes), shape inference of every edge, Graph's lookups, hash and Graphviz output.
#include <algorithm>
#include <sstream>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/topological_sort.hpp>

#include "graph/pipeline.hpp"

namespace noiseflow::graph {

namespace {

using BGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

// Ordering edges: producer -> consumer, except back edges (a state node's `next`).
BGraph build(const Graph& g) {
  BGraph bg(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const GraphNode& n = g.nodes[i];
    for (size_t p = 0; p < n.inputs.size(); ++p)
      if (n.inputs[p] && !n.schema->is_back_edge(n.schema->inputs()[p].name))
        boost::add_edge(n.inputs[p]->node, i, bg);
  }
  return bg;
}

// A cycle for the error message, found by depth-first search.
std::vector<int> find_cycle(const Graph& g) {
  size_t n = g.nodes.size();
  std::vector<int> color(n, 0), parent(n, -1);
  std::vector<std::vector<int>> succ(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t p = 0; p < g.nodes[i].inputs.size(); ++p)
      if (g.nodes[i].inputs[p] && !g.nodes[i].schema->is_back_edge(g.nodes[i].schema->inputs()[p].name))
        succ[g.nodes[i].inputs[p]->node].push_back(int(i));
  std::vector<int> cycle;
  std::function<bool(int)> dfs = [&](int u) {
    color[u] = 1;
    for (int v : succ[u]) {
      if (color[v] == 1) {
        cycle.push_back(v);
        for (int w = u; w != v && w >= 0; w = parent[w]) cycle.push_back(w);
        cycle.push_back(v);
        std::reverse(cycle.begin(), cycle.end());
        return true;
      }
      if (color[v] == 0) {
        parent[v] = u;
        if (dfs(v)) return true;
      }
    }
    color[u] = 2;
    return false;
  };
  for (size_t i = 0; i < n && cycle.empty(); ++i)
    if (color[i] == 0) dfs(int(i));
  return cycle;
}

std::string field_of(const Schema& s, const std::string& field) {
  if (s.find_input(field)) return "input \"" + field + "\"";
  if (s.find_attr(field)) return "attr \"" + field + "\"";
  if (s.output_index(field) >= 0) return "output \"" + field + "\"";
  return field;
}

}  // namespace

void order_and_infer(Graph& g, Diagnostics& diag) {
  BGraph bg = build(g);
  std::vector<size_t> rev;
  try {
    boost::topological_sort(bg, std::back_inserter(rev));
  } catch (const boost::not_a_dag&) {
    auto cyc = find_cycle(g);
    std::string chain;
    for (size_t i = 0; i < cyc.size(); ++i) chain += (i ? " -> " : "") + g.nodes[cyc[i]].id;
    const GraphNode& first = g.nodes[cyc.empty() ? 0 : cyc[0]];
    diag.add(first.file, first.id, "inputs", "cycle",
             "cycle " + chain + " (only a state node's \"next\" input may close a loop)");
    return;
  }
  g.order.assign(rev.rbegin(), rev.rend());

  // Shapes, producers first; a node whose inputs are unknown (after an
  // earlier error) is skipped so one mistake gives one message.
  std::vector<bool> known(g.nodes.size(), false);
  for (int i : g.order) {
    GraphNode& n = g.nodes[i];
    const Schema& s = *n.schema;
    std::vector<std::optional<Shape>> shapes(s.inputs().size());
    bool ready = true;
    for (size_t p = 0; p < n.inputs.size(); ++p) {
      if (!n.inputs[p] || s.is_back_edge(s.inputs()[p].name)) continue;
      if (!known[n.inputs[p]->node]) ready = false;
      else shapes[p] = g.shape(*n.inputs[p]);
    }
    if (!ready) continue;
    try {
      auto ctx = s.infer(n.attrs, shapes);
      n.output_shapes = ctx.outputs;
      n.params = ctx.params;
      n.ticks = ctx.ticks;
      known[i] = true;
    } catch (const ShapeError& e) {
      diag.add(n.file, n.id, field_of(s, e.field), "shape_mismatch", e.what());
    } catch (const std::exception& e) {
      diag.add(n.file, n.id, "", "shape_error", e.what());
    }
  }
  // Back edges must carry the shape of what they feed (state: next == init).
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    GraphNode& n = g.nodes[i];
    for (size_t p = 0; p < n.inputs.size(); ++p) {
      if (!n.inputs[p] || !n.schema->is_back_edge(n.schema->inputs()[p].name)) continue;
      if (!known[i] || !known[n.inputs[p]->node]) continue;
      const Shape& got = g.shape(*n.inputs[p]);
      if (n.output_shapes.empty() || got != n.output_shapes[0])
        diag.add(n.file, n.id, "input \"" + n.schema->inputs()[p].name + "\"", "shape_mismatch",
                 "shape " + shape_str(got) + " does not match the state's shape " +
                     shape_str(n.output_shapes.empty() ? Shape{} : n.output_shapes[0]));
    }
  }
}

int Graph::find(const std::string& id) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].id == id) return int(i);
  return -1;
}

std::optional<NodeRef> Graph::resolve(const std::string& ref) const {
  int i = find(ref);
  if (i >= 0) return NodeRef{i, 0};
  auto a = aliases.find(ref);
  if (a != aliases.end()) return a->second;
  auto dot = ref.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  i = find(ref.substr(0, dot));
  if (i < 0 || !nodes[i].schema) return std::nullopt;
  int o = nodes[i].schema->output_index(ref.substr(dot + 1));
  if (o < 0) return std::nullopt;
  return NodeRef{i, o};
}

std::string Graph::ref_name(NodeRef r) const {
  const GraphNode& n = nodes[r.node];
  return n.id + "." + n.schema->outputs()[r.output].name;
}

int64_t Graph::param_count() const {
  int64_t c = 0;
  for (auto& n : nodes)
    if (n.params_of.empty())  // a tied node's parameters are its owner's
      for (auto& p : n.params) c += numel(p.shape);
  return c;
}

std::string Graph::hash() const {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : resolved["nodes"].dump()) h = (h ^ c) * 1099511628211ull;
  std::ostringstream os;
  os << std::hex << h;
  return os.str();
}

std::string Graph::dot() const {
  BGraph bg(nodes.size());
  std::vector<std::string> labels, edge_labels;
  for (auto& n : nodes) labels.push_back(n.id + "\\n" + n.op);
  std::map<std::pair<size_t, size_t>, std::string> elabel;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (size_t p = 0; p < nodes[i].inputs.size(); ++p) {
      if (!nodes[i].inputs[p]) continue;
      auto r = *nodes[i].inputs[p];
      boost::add_edge(r.node, i, bg);
      std::string l = nodes[i].schema->inputs()[p].name + " " + shape_str(shape(r));
      auto& e = elabel[{size_t(r.node), i}];
      e += (e.empty() ? "" : "\\n") + l;
    }
  std::ostringstream os;
  auto vw = [&](std::ostream& out, size_t v) { out << "[label=\"" << labels[v] << "\", shape=box]"; };
  auto ew = [&](std::ostream& out, BGraph::edge_descriptor e) {
    out << "[label=\"" << elabel[{boost::source(e, bg), boost::target(e, bg)}] << "\"]";
  };
  boost::write_graphviz(os, bg, vw, ew);
  return os.str();
}

}  // namespace noiseflow::graph
