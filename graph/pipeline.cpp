#include "graph/pipeline.hpp"

#include "graph/loader_detail.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

namespace noiseflow::graph {

namespace fs = std::filesystem;

namespace {

using namespace detail;

std::string qt(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

// Defined in graph.cpp: ordering and shape inference.
void order_and_infer(Graph& g, Diagnostics& diag);

Graph load_pipeline(const std::string& path, const LoadOptions& options) {
  std::optional<std::string> text = detail::read_file(path);
  if (!text || fs::is_directory(path)) {
    Diagnostics d;
    d.add(path, "", "", "missing_file", fs::exists(path) ? "cannot read the pipeline file" : "no such pipeline file");
    d.throw_if_any();
  }
  return load_pipeline_text(*text, path, options);
}

Graph load_pipeline_text(const std::string& text, const std::string& path, const LoadOptions& options) {
  Diagnostics diag;
  std::optional<Json> doc = detail::parse_document(text, path, diag);
  diag.throw_if_any();  // a document that did not parse was reported
  const Expansion ex = expand_pipeline(*doc, path, options, diag);

  Graph g;
  g.file = path;
  g.name = ex.name;
  g.params = ex.params;

  // run block
  const Json& run = ex.run;
  if (!run.is_object()) {
    diag.add(path, "", "run", "wrong_type", "expected an object like {\"ticks\": 100}");
  } else {
    for (auto& [k, v] : run.items())
      if (k != "ticks" && k != "seed" && k != "name")
        diag.add(path, "", "run", "unknown_key", "unknown run key " + qt(k) + suggest(k, {"ticks", "seed", "name"}));
    if (run.contains("ticks")) {
      if (!run["ticks"].is_number_integer() || run["ticks"].get<int64_t>() < 1)
        diag.add(path, "", "run", "wrong_type", "\"ticks\" must be an integer >= 1, got " + run["ticks"].dump());
      else g.ticks = run["ticks"];
    }
    if (run.contains("seed")) {
      if (!run["seed"].is_number_integer() || run["seed"].get<int64_t>() < 0)
        diag.add(path, "", "run", "wrong_type", "\"seed\" must be a non-negative integer, got " + run["seed"].dump());
      else g.seed = run["seed"];
    }
    if (run.contains("name") && run["name"].is_string()) g.name = run["name"];
  }
  if (options.ticks) g.ticks = *options.ticks;
  if (options.seed) g.seed = *options.seed;

  // Flat nodes -> graph nodes.
  std::map<std::string, int> index;
  for (auto& f : ex.nodes) {
    if (index.count(f.id)) {
      diag.add(f.file, f.id, "", "duplicate_id", "two nodes have this id");
      continue;
    }
    if (ex.aliases.count(f.id)) diag.add(f.file, f.id, "", "duplicate_id", "node id clashes with a subgraph instance or input");
    index[f.id] = int(g.nodes.size());
    GraphNode n;
    n.id = f.id;
    n.op = f.op;
    n.file = f.file;
    n.every = f.every;
    n.at_end = f.at_end;
    n.schema = f.bad ? nullptr : options.schemas->find_schema(f.op);
    if (n.schema) n.inputs.resize(n.schema->inputs().size());
    g.nodes.push_back(std::move(n));
  }

  // Resolves a qualified reference through aliases; fills err on failure.
  std::function<std::optional<NodeRef>(const std::string&, int, std::string&)> resolve =
      [&](const std::string& r, int depth, std::string& err) -> std::optional<NodeRef> {
    if (depth > 64) {
      err = "reference loops through subgraph aliases";
      return std::nullopt;
    }
    auto rdot = r.rfind('.');
    if (ex.broken.count(r) || (rdot != std::string::npos && ex.broken.count(r.substr(0, rdot)))) {
      err = "";
      return std::nullopt;  // already reported
    }
    auto it = index.find(r);
    if (it != index.end()) return NodeRef{it->second, 0};
    auto al = ex.aliases.find(r);
    if (al != ex.aliases.end()) {
      if (auto* ambiguous = std::get_if<AmbiguousInstance>(&al->second)) {
        err = ambiguous->message;
        return std::nullopt;
      }
      return resolve(std::get<std::string>(al->second), depth + 1, err);
    }
    auto dot = r.rfind('.');
    if (dot != std::string::npos) {
      std::string head = r.substr(0, dot), tail = r.substr(dot + 1);
      auto h = index.find(head);
      if (h != index.end()) {
        const GraphNode& src = g.nodes[h->second];
        if (!src.schema) {
          err = "";
          return std::nullopt;  // already reported
        }
        int oi = src.schema->output_index(tail);
        if (oi < 0) {
          std::vector<std::string> outs;
          for (auto& o : src.schema->outputs()) outs.push_back(o.name);
          err = "node " + qt(head) + " (" + src.op + ") has no output " + qt(tail) + suggest(tail, outs);
          return std::nullopt;
        }
        return NodeRef{h->second, oi};
      }
      auto ha = ex.aliases.find(head);
      const std::string* target = ha != ex.aliases.end() ? std::get_if<std::string>(&ha->second) : nullptr;
      if (target && index.count(*target)) return resolve(*target + "." + tail, depth + 1, err);
    }
    err = "no node";
    return std::nullopt;
  };

  for (auto& f : ex.nodes) {
    auto it = index.find(f.id);
    if (it == index.end()) continue;
    GraphNode& n = g.nodes[it->second];
    if (!n.schema) continue;
    const Schema& s = *n.schema;
    // Inputs.
    std::vector<std::string> in_names;
    for (auto& p : s.inputs()) in_names.push_back(p.name);
    for (auto& [port, ref] : f.inputs) {
      int pi = s.input_index(port);
      if (pi < 0) {
        diag.add(f.file, f.id, "input " + qt(port), "unknown_input",
                 "node type " + f.op + " has no input " + qt(port) + suggest(port, in_names));
        continue;
      }
      std::string err;
      auto r = resolve(ref.qualified, 0, err);
      if (!r) {
        if (err == "no node") {
          const Scope& sc = ex.scopes[ref.scope];
          diag.add(f.file, f.id, "input " + qt(port), "unknown_node",
                   "no node " + qt(ref.text) + suggest(ref.text, sc.names));
        } else if (!err.empty()) {
          diag.add(f.file, f.id, "input " + qt(port), "unknown_output", err);
        }
        continue;
      }
      n.inputs[pi] = *r;
    }
    for (size_t i = 0; i < s.inputs().size(); ++i)
      if (!s.inputs()[i].optional && !n.inputs[i] &&
          std::none_of(f.inputs.begin(), f.inputs.end(), [&](auto& p) { return p.first == s.inputs()[i].name; }))
        diag.add(f.file, f.id, "input " + qt(s.inputs()[i].name), "missing_input",
                 "required input is not connected (" + s.op() + " needs " + qt(s.inputs()[i].name) + ")");
    // Attributes.
    std::vector<std::string> attr_names;
    for (auto& a : s.attrs()) attr_names.push_back(a.name);
    for (auto& [k, v] : f.attrs.items())
      if (!s.find_attr(k))
        diag.add(f.file, f.id, "attr " + qt(k), "unknown_attr",
                 "node type " + f.op + " has no attribute " + qt(k) + suggest(k, attr_names));
    n.attrs = s.with_defaults(f.attrs);
    for (auto& d : s.check_attrs(n.attrs, f.file, f.id)) diag.add(std::move(d));
    if ((n.every || n.at_end) && !s.is_sink())
      diag.add(f.file, f.id, n.every ? "every" : "at_end", "not_a_sink", "only sink nodes take every/at_end (" + s.op() + " is not a sink)");
  }

  // Subgraph outputs that point nowhere.
  for (auto& [target, where] : ex.outputs) {
    std::string err;
    if (!resolve(target, 0, err) && err == "no node") {
      std::string local = target.substr(ex.scopes[where.scope].prefix.size());
      diag.add(where.file, "", "outputs", "unknown_node", "no node " + qt(local) + suggest(local, ex.scopes[where.scope].names));
    }
  }
  for (auto& [name, target] : ex.aliases) {
    std::string err;
    if (auto r = resolve(name, 0, err)) g.aliases[name] = *r;
  }
  diag.throw_if_any();

  order_and_infer(g, diag);
  diag.throw_if_any();

  // The resolved, flattened pipeline.
  Json nodes = Json::object();
  for (auto& n : g.nodes) {
    Json jn{{"op", n.op}, {"attrs", n.attrs}};
    Json ins = Json::object();
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (n.inputs[i]) ins[n.schema->inputs()[i].name] = g.ref_name(*n.inputs[i]);
    if (!ins.empty()) jn["inputs"] = ins;
    if (n.every) jn["every"] = n.every;
    if (n.at_end) jn["at_end"] = true;
    nodes[n.id] = jn;
  }
  g.resolved = Json{{"noiseflow", 1}, {"name", g.name}, {"params", g.params}, {"nodes", nodes},
                    {"run", {{"ticks", g.ticks}, {"seed", g.seed}}}};
  return g;
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

}  // namespace noiseflow::graph
