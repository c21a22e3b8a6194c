// graph/pipeline.cpp — loading a pipeline: the stages of graph/loader_detail.hpp in order,
// then the run block, ordering and shape inference (graph.cpp) and the resolved JSON.
#include "graph/pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "graph/loader_detail.hpp"

namespace noiseflow::graph {

// Defined in graph.cpp: ordering and shape inference.
void order_and_infer(Graph& g, Diagnostics& diag);

namespace {

using namespace detail;

// The run block: ticks, seed, minutes, fit and name, then the options that override them.
void read_run(Graph& g, const Json& run, const std::string& path, const LoadOptions& options, Diagnostics& diag) {
  const std::vector<std::string> keys = {"ticks", "seed", "name", "minutes", "fit"};
  bool zero_ticks = false;
  if (!run.is_object()) {
    diag.add(path, "", "run", "wrong_type", "expected an object like {\"ticks\": 100}");
  } else {
    for (auto& [k, v] : run.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end())
        diag.add(path, "", "run", "unknown_key", "unknown run key " + quote(k) + suggest(k, keys));
    if (run.contains("fit")) {
      const Json& f = run["fit"];
      if (!f.is_string() || !g.params.contains(f.get<std::string>()))
        diag.add(path, "", "run", "bad_fit",
                 "\"fit\" names the param that a budget sizes (e.g. \"steps\"): a string naming one of the params, got " +
                     f.dump());
      else g.fit = f.get<std::string>();
    }
    if (run.contains("ticks")) {
      if (run["ticks"] == "auto")
        g.ticks_auto = true;
      else if (run["ticks"] == 0 && !g.fit.empty())
        zero_ticks = true;  // sized by the budget (run.fit), checked below
      else if (!run["ticks"].is_number_integer() || run["ticks"].get<int64_t>() < 1)
        diag.add(path, "", "run", "wrong_type",
                 "\"ticks\" must be an integer >= 1 or \"auto\" (the count a sampler node requires), got " +
                     run["ticks"].dump());
      else g.ticks = run["ticks"];
    }
    if (run.contains("seed")) {
      if (!run["seed"].is_number_integer() || run["seed"].get<int64_t>() < 0)
        diag.add(path, "", "run", "wrong_type", "\"seed\" must be a non-negative integer, got " + run["seed"].dump());
      else g.seed = run["seed"];
    }
    if (run.contains("minutes")) {
      const Json& m = run["minutes"];
      if (!m.is_number() || !(m.get<double>() >= 0) || !std::isfinite(m.get<double>()))
        diag.add(path, "", "run", "wrong_type",
                 "\"minutes\" (the wall-clock budget) must be a number >= 0 (0: no budget), got " + m.dump());
      else g.minutes = m.get<double>();
    }
    if (run.contains("name") && run["name"].is_string()) g.name = run["name"];
  }
  if (options.ticks) {
    g.ticks = *options.ticks;
    g.ticks_auto = false;
    zero_ticks = false;
  }
  if (options.seed) g.seed = *options.seed;
  if (zero_ticks) {
    if (g.minutes > 0) {
      g.fit_pending = true;  // the runner sizes `fit` to the budget (noiseflow::Pipeline)
      g.ticks = 0;
    } else {
      diag.add(path, "", "params." + g.fit, "no_budget",
               "0 ticks: give the run a length (--set " + g.fit + "=N) or a budget to size it to (--set minutes=M)");
    }
  }
  if (g.fit_pending && g.ticks_auto)
    diag.add(path, "", "run", "bad_fit", "a run sized by its budget (\"fit\") cannot also take \"ticks\": \"auto\"");
}

// Tick counts that nodes require (the samplers: one tick per model evaluation) against run.ticks:
// "auto" takes the one count they agree on; a number (or --ticks) must equal each of them.
void reconcile_ticks(Graph& g, const LoadOptions& options, Diagnostics& diag) {
  if (g.fit_pending) return;  // the sized graph, loaded again with its tick count, is checked
  const GraphNode* first = nullptr;
  for (const GraphNode& n : g.nodes) {
    if (!n.ticks) continue;
    const auto& d = *n.ticks;
    const std::string field = "attr " + quote(d.field);
    if (g.ticks_auto && !first) {
      first = &n;
      g.ticks = d.ticks;
    } else if (g.ticks_auto) {
      if (d.ticks != first->ticks->ticks)
        diag.add(n.file, n.id, field, "tick_mismatch",
                 d.why + " takes " + std::to_string(d.ticks) + " ticks, but node " + quote(first->id) + " takes " +
                     std::to_string(first->ticks->ticks) + " (" + first->ticks->why + ")");
    } else if (d.ticks != g.ticks) {
      const std::string source = options.ticks ? "--ticks is " : "run.ticks is ";
      diag.add(n.file, n.id, field, "tick_mismatch",
               d.why + " takes " + std::to_string(d.ticks) + " ticks (one per model evaluation), but " + source +
                   std::to_string(g.ticks) + "; write \"run\": {\"ticks\": \"auto\"} to follow the node");
    }
  }
  if (g.ticks_auto && !first)
    diag.add(g.file, "", "run", "wrong_type",
             "\"ticks\": \"auto\" needs a node that requires a tick count (a sampler's timesteps node); give a number");
}

// Attribute names, values (Schema::check_attrs, on the attributes with defaults filled) and
// every/at_end, which only sinks take.
void check_node_attrs(const FlatNode& f, GraphNode& n, Diagnostics& diag) {
  const Schema& s = *n.schema;
  std::vector<std::string> attr_names;
  for (auto& a : s.attrs()) attr_names.push_back(a.name);
  for (auto& [k, v] : f.attrs.items())
    if (!s.find_attr(k))
      diag.add(f.file, f.id, "attr " + quote(k), "unknown_attr",
               "node type " + f.op + " has no attribute " + quote(k) + suggest(k, attr_names));
  n.attrs = s.with_defaults(f.attrs);
  for (auto& d : s.check_attrs(n.attrs, f.file, f.id)) diag.add(std::move(d));
  if ((n.every || n.at_end) && !s.is_sink())
    diag.add(f.file, f.id, n.every ? "every" : "at_end", "not_a_sink",
             "only sink nodes take every/at_end (" + s.op() + " is not a sink)");
}

// Inputs and attributes of every node whose type is known, node by node.
void bind_nodes(Graph& g, const Expansion& ex, const NodeIndex& index, const Resolver& resolver, Diagnostics& diag) {
  for (auto& f : ex.nodes) {
    auto it = index.find(f.id);
    if (it == index.end()) continue;
    GraphNode& n = g.nodes[it->second];
    if (!n.schema) continue;
    connect_inputs(f, n, resolver, ex, diag);
    check_node_attrs(f, n, diag);
  }
}

// Data parallelism: every data source's global batch becomes its rank's slice, batch / ranks.
void slice_batches(Graph& g, Diagnostics& diag) {
  if (g.ranks <= 1) return;
  for (GraphNode& n : g.nodes) {
    if (!n.schema || n.schema->batch_attr_name().empty()) continue;
    const std::string& a = n.schema->batch_attr_name();
    if (!n.attrs.contains(a) || !n.attrs[a].is_number_integer()) continue;  // check_attrs reported it
    const int64_t b = n.attrs[a].get<int64_t>();
    if (b % g.ranks != 0) {
      diag.add(n.file, n.id, "attr " + quote(a), "batch_not_divisible",
               "the global batch " + std::to_string(b) + " does not divide by the " + std::to_string(g.ranks) +
                   " ranks of this run (each rank takes batch / ranks samples); give a batch that is a "
                   "multiple of " + std::to_string(g.ranks) + " or run another number of ranks");
      continue;
    }
    n.attrs[a] = b / g.ranks;
  }
}

// Weight tying: every "params_of" names a node of the same type with the same parameters (names and
// shapes); chains end at the owner, which GraphNode::params_of then names. A node without parameters shares
// nothing (an instance's activations, its data nodes): its tie is dropped, and one written on such a node
// itself is an error.
void resolve_ties(Graph& g, const Expansion& ex, Diagnostics& diag) {
  std::map<std::string, const FlatNode*> flat;
  for (auto& f : ex.nodes) flat.emplace(f.id, &f);
  auto param_list = [](const GraphNode& n) {
    std::string s;
    for (auto& p : n.params) s += (s.empty() ? "" : ", ") + p.name + " " + shape_str(p.shape);
    return s.empty() ? std::string("none") : s;
  };
  for (GraphNode& n : g.nodes) {
    if (n.params_of.empty() || !n.schema) continue;
    const FlatNode& f = *flat.at(n.id);
    const bool own = f.params_of_node == n.id;  // written on the node itself, not on its instance
    const std::string who = own ? std::string() : "node " + quote(n.id) + ": ";
    if (n.params.empty()) {
      if (own) diag.add(f.params_of_file, n.id, "params_of", "no_params", "node type " + n.op + " has no parameters to share");
      n.params_of.clear();
      continue;
    }
    const int o = g.find(n.params_of);
    if (o < 0) {
      std::vector<std::string> ids;
      for (auto& m : g.nodes)
        if (m.id != n.id) ids.push_back(m.id);
      diag.add(f.params_of_file, f.params_of_node, "params_of", "unknown_node",
               who + "no node " + quote(n.params_of) + " to share parameters with" + suggest(n.params_of, ids));
      n.params_of.clear();
      continue;
    }
    const GraphNode& owner = g.nodes[size_t(o)];
    bool same = owner.params.size() == n.params.size();
    for (size_t k = 0; same && k < n.params.size(); ++k)
      same = owner.params[k].name == n.params[k].name && owner.params[k].shape == n.params[k].shape;
    if (owner.op != n.op)
      diag.add(f.params_of_file, f.params_of_node, "params_of", "tie_mismatch",
               who + "a " + n.op + " cannot use the parameters of " + quote(owner.id) + ", a " + owner.op);
    else if (!same)
      diag.add(f.params_of_file, f.params_of_node, "params_of", "tie_mismatch",
               who + "its parameters (" + param_list(n) + ") differ from those of " + quote(owner.id) + " (" +
                   param_list(owner) + ")");
  }
  for (GraphNode& n : g.nodes) {
    std::string cur = n.params_of;
    for (size_t hops = 0; !cur.empty(); ++hops) {
      const int o = g.find(cur);
      if (o < 0 || g.nodes[size_t(o)].params_of.empty()) break;
      if (hops > g.nodes.size()) {
        diag.add(n.file, n.id, "params_of", "tie_cycle", "params_of goes round in a cycle: no node owns the parameters");
        cur.clear();
        break;
      }
      cur = g.nodes[size_t(o)].params_of;
    }
    if (!n.params_of.empty()) n.params_of = cur;
  }
}

// The flattened pipeline, params substituted: itself loadable. Batches are the global ones (Graph::ranks).
Json resolved_json(const Graph& g) {
  Json nodes = Json::object();
  for (auto& n : g.nodes) {
    Json jn{{"op", n.op}, {"attrs", n.attrs}};
    if (g.ranks > 1 && !n.schema->batch_attr_name().empty() && n.attrs.contains(n.schema->batch_attr_name()))
      jn["attrs"][n.schema->batch_attr_name()] = n.attrs[n.schema->batch_attr_name()].get<int64_t>() * g.ranks;
    Json ins = Json::object();
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i]) ins[n.schema->inputs()[i].name] = g.ref_name(*n.inputs[i]);
    if (!ins.empty()) jn["inputs"] = ins;
    if (n.every) jn["every"] = n.every;
    if (n.at_end) jn["at_end"] = true;
    if (!n.params_of.empty()) jn["params_of"] = n.params_of;
    nodes[n.id] = jn;
  }
  Json run = {{"ticks", g.ticks}, {"seed", g.seed}};
  if (g.minutes > 0) run["minutes"] = g.minutes;
  if (!g.fit.empty()) run["fit"] = g.fit;
  return Json{{"noiseflow", 1}, {"name", g.name}, {"params", g.params}, {"nodes", nodes}, {"run", run}};
}

}  // namespace

Graph load_pipeline(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::optional<std::string> text = read_file(path);
  if (!text || fs::is_directory(path)) {
    Diagnostics d;
    d.add(path, "", "", "missing_file", fs::exists(path) ? "cannot read the pipeline file" : "no such pipeline file");
    d.throw_if_any();
  }
  return load_pipeline_text(*text, path, options);
}

Graph load_pipeline_text(const std::string& text, const std::string& path, const LoadOptions& options) {
  Diagnostics diag;
  std::optional<Json> doc = parse_document(text, path, diag);
  diag.throw_if_any();  // a document that did not parse was reported
  const Expansion ex = expand_pipeline(*doc, path, options, diag);

  Graph g;
  g.file = path;
  g.name = ex.name;
  g.params = ex.params;
  read_run(g, ex.run, path, options, diag);

  const NodeIndex index = add_graph_nodes(g, ex, options, diag);
  const Resolver resolver(g, ex, index);
  bind_nodes(g, ex, index, resolver, diag);
  check_subgraph_outputs(resolver, ex, diag);
  g.aliases = resolve_aliases(resolver, ex);
  diag.throw_if_any();
  g.ranks = std::max(1, options.ranks);
  slice_batches(g, diag);
  diag.throw_if_any();

  order_and_infer(g, diag);
  diag.throw_if_any();
  resolve_ties(g, ex, diag);
  diag.throw_if_any();
  reconcile_ticks(g, options, diag);
  diag.throw_if_any();
  g.resolved = resolved_json(g);
  return g;
}

}  // namespace noiseflow::graph
