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

const std::set<std::string> kTopKeys = {"noiseflow", "name", "doc", "params", "include", "inputs", "outputs", "nodes", "run"};
const std::set<std::string> kNodeKeys = {"op", "attrs", "inputs", "every", "at_end", "doc", "if"};

std::string qt(const std::string& s) { return "\"" + s + "\""; }

// Alias target marking an instance name that does not pick one output; the rest is the message.
const std::string kAmbiguous = "\x01";

// What a raw input reference is resolved against.
struct RawRef {
  std::string qualified;  // scope prefix + text
  std::string text;       // as written
  int scope = 0;          // index into Expander::scopes_
};

struct FlatNode {
  std::string id, op, file;
  Json attrs;
  std::vector<std::pair<std::string, RawRef>> inputs;  // port -> ref
  int64_t every = 0;
  bool at_end = false;
  bool bad = false;  // had errors already; skip later checks
};

struct Scope {
  std::string prefix;
  std::vector<std::string> names;  // local names, for suggestions
};

class Expander {
 public:
  Expander(const LoadOptions& opt, Diagnostics& diag) : opt_(opt), diag_(diag) {}

  std::vector<FlatNode> flat;
  std::map<std::string, std::string> aliases;  // qualified name -> qualified target ref
  std::vector<Scope> scopes;
  Json top_params = Json::object();
  Json top_run = Json::object();
  std::string top_name;

  // Expands one file's nodes into `flat`. `bindings`: subgraph input name -> qualified ref in the parent.
  // Returns the subgraph's outputs: name -> qualified target, in declaration order.
  std::vector<std::pair<std::string, std::string>> expand(const Json& doc, const std::string& path,
                                                          const std::string& prefix,
                                                          const std::map<std::string, Json>& overrides,
                                                          const std::string& override_node,
                                                          const std::map<std::string, RawRef>& bindings,
                                                          std::vector<std::string> stack, bool top) {
    std::vector<std::pair<std::string, std::string>> outputs;
    if (!doc.is_object()) {
      diag_.add(path, "", "", "not_an_object", "expected a JSON object with \"noiseflow\": 1");
      return outputs;
    }
    // Format and top-level keys.
    if (!doc.contains("noiseflow")) {
      diag_.add(path, "", "noiseflow", "missing_version", "missing \"noiseflow\": 1 (the format version)");
    } else if (doc["noiseflow"] != 1) {
      diag_.add(path, "", "noiseflow", "bad_version", "unsupported format version " + doc["noiseflow"].dump() + " (expected 1)");
    }
    std::vector<std::string> top_keys(kTopKeys.begin(), kTopKeys.end());
    for (auto& [k, v] : doc.items())
      if (!kTopKeys.count(k)) diag_.add(path, "", k, "unknown_key", "unknown top-level key" + suggest(k, top_keys));

    std::optional<InstanceSite> site;
    if (!override_node.empty()) site = InstanceSite{file_of_override_, override_node};
    Json params = resolve_params(doc, path, overrides, site, diag_);
    const Substituter subst(params, path, diag_);
    if (top) {
      top_params = params;
      top_name = doc.value("name", fs::path(path).stem().string());
      if (doc.contains("run")) top_run = subst(doc["run"], "", "run");
    }

    // Includes: alias -> path (relative to this file).
    std::map<std::string, std::string> includes;
    std::set<std::string> missing_includes;  // aliases already reported: their instances stay silent
    if (doc.contains("include")) {
      if (!doc["include"].is_object()) {
        diag_.add(path, "", "include", "wrong_type", "expected an object of alias: file");
      } else {
        for (auto& [alias, v] : doc["include"].items()) {
          if (!v.is_string()) {
            diag_.add(path, "", "include " + qt(alias), "wrong_type", "expected a file path string");
            continue;
          }
          fs::path p = fs::path(path).parent_path() / v.get<std::string>();
          std::string inc = p.lexically_normal().string();
          if (!fs::exists(inc)) {
            diag_.add(path, "", "include " + qt(alias), "missing_file", "included file " + qt(inc) + " does not exist");
            missing_includes.insert(alias);
            continue;
          }
          if (opt_.schemas && opt_.schemas->find_schema(alias))
            diag_.add(path, "", "include " + qt(alias), "alias_shadows_op", "include alias shadows the node type " + qt(alias));
          includes[alias] = inc;
        }
      }
    }

    // Scope of this file.
    int scope = int(scopes.size());
    scopes.push_back({prefix, {}});
    std::vector<std::string> input_names;
    if (!top && doc.contains("inputs")) {
      const Json& ins = doc["inputs"];
      if (ins.is_array()) {
        for (auto& n : ins)
          if (n.is_string()) input_names.push_back(n.get<std::string>());
      } else if (ins.is_object()) {
        for (auto& [k, v] : ins.items()) input_names.push_back(k);
      } else {
        diag_.add(path, "", "inputs", "wrong_type", "expected a list of input names");
      }
    }
    if (top && doc.contains("inputs")) {
      // A subgraph file checked or run on its own: its inputs become `input`
      // placeholder nodes of the declared shapes.
      const Json& ins = doc["inputs"];
      if (!ins.is_object()) {
        diag_.add(path, "", "inputs", "wrong_type", "expected an object of name: {\"shape\": [...]}");
      } else {
        for (auto& [name, spec] : ins.items()) {
          if (!spec.is_object() || !spec.contains("shape")) {
            diag_.add(path, "", "inputs", "missing_shape",
                      "input " + qt(name) + " needs {\"shape\": [...]} for the file to be checked or run on its own");
            continue;
          }
          FlatNode f;
          f.id = name;
          f.op = "input";
          f.file = path;
          f.attrs = Json{{"shape", subst(spec["shape"], name, "inputs")}};
          flat.push_back(std::move(f));
          scopes[scope].names.push_back(name);
        }
      }
    }
    for (auto& n : input_names) {
      scopes[scope].names.push_back(n);
      auto b = bindings.find(n);
      if (b != bindings.end()) aliases[prefix + n] = b->second.qualified, binding_scopes_[prefix + n] = b->second;
    }
    for (auto& [k, v] : bindings)
      if (std::find(input_names.begin(), input_names.end(), k) == input_names.end())
        diag_.add(file_of_override_, override_node, "input " + qt(k), "unknown_input",
                  "subgraph " + qt(path) + " has no input " + qt(k) + suggest(k, input_names));
    for (auto& n : input_names)
      if (!bindings.count(n)) {
        diag_.add(file_of_override_, override_node, "input " + qt(n), "missing_input",
                  "required input of subgraph " + qt(path) + " is not connected");
        broken.insert(prefix + n);
      }

    if (!doc.contains("nodes") || !doc["nodes"].is_object()) {
      diag_.add(path, "", "nodes", doc.contains("nodes") ? "wrong_type" : "missing_nodes",
                "expected an object of node id: {\"op\": ...}");
      return outputs;
    }
    for (auto& [id, nd] : doc["nodes"].items()) scopes[scope].names.push_back(id);
    for (auto& [id, nd] : doc["nodes"].items()) {
      std::string qid = prefix + id;
      if (std::find(input_names.begin(), input_names.end(), id) != input_names.end())
        diag_.add(path, qid, "", "duplicate_id", "node id equals a subgraph input name");
      if (id.empty() || id.find_first_of(" \t\"/\\") != std::string::npos || id.front() == '.' || id.back() == '.') {
        diag_.add(path, qid, "", "bad_id", "node ids may not be empty, contain spaces, quotes or slashes, or start/end with '.'");
        continue;
      }
      if (!nd.is_object()) {
        diag_.add(path, qid, "", "wrong_type", "expected an object with \"op\"");
        continue;
      }
      std::vector<std::string> nkeys(kNodeKeys.begin(), kNodeKeys.end());
      for (auto& [k, v] : nd.items())
        if (!kNodeKeys.count(k)) diag_.add(path, qid, k, "unknown_key", "unknown node key" + suggest(k, nkeys));
      if (nd.contains("if")) {
        // A conditional node: present only when its (substituted) condition is true.
        Json cond = subst(nd["if"], qid, "if");
        if (!cond.is_boolean()) {
          diag_.add(path, qid, "if", "wrong_type", "expected true or false (usually \"$param\"), got " + cond.dump());
          continue;
        }
        if (!cond.get<bool>()) continue;
      }
      if (!nd.contains("op") || !nd["op"].is_string()) {
        diag_.add(path, qid, "op", "missing_op", "missing \"op\" (the node type)");
        continue;
      }
      std::string op = nd["op"];
      Json attrs = nd.value("attrs", Json::object());
      if (!attrs.is_object()) {
        diag_.add(path, qid, "attrs", "wrong_type", "expected an object of attribute: value");
        attrs = Json::object();
      }
      attrs = subst(attrs, qid, "attrs");
      std::vector<std::pair<std::string, RawRef>> ins;
      if (nd.contains("inputs")) {
        if (!nd["inputs"].is_object()) {
          diag_.add(path, qid, "inputs", "wrong_type", "expected an object of input: \"node\" or \"node.output\"");
        } else {
          for (auto& [port, ref] : nd["inputs"].items()) {
            if (!ref.is_string() || ref.get<std::string>().empty()) {
              diag_.add(path, qid, "input " + qt(port), "wrong_type", "expected \"node\" or \"node.output\", got " + ref.dump());
              continue;
            }
            // Params may name the source: "inputs": {"b": "$residual"}.
            Json sub = subst(ref, qid, "input " + qt(port));
            if (!sub.is_string() || sub.get<std::string>().empty()) {
              diag_.add(path, qid, "input " + qt(port), "wrong_type", "expected \"node\" or \"node.output\", got " + sub.dump());
              continue;
            }
            std::string text = sub;
            ins.push_back({port, RawRef{prefix + text, text, scope}});
          }
        }
      }
      auto inc = includes.find(op);
      if (inc != includes.end()) {
        // A subgraph instance: expand the included file inline.
        if (std::find(stack.begin(), stack.end(), inc->second) != stack.end()) {
          std::string chain;
          for (auto& s : stack) chain += s + " -> ";
          diag_.add(path, qid, "op", "include_cycle", "include cycle: " + chain + inc->second);
          broken.insert(qid);
          continue;
        }
        if (nd.contains("every") || nd.contains("at_end"))
          diag_.add(path, qid, "every", "not_a_sink", "a subgraph instance cannot carry every/at_end");
        std::optional<Json> sub = parse_included(inc->second, path, "include " + qt(op), diag_);
        if (!sub || sub->is_null()) {
          broken.insert(qid);
          continue;
        }
        std::map<std::string, Json> sub_overrides;
        for (auto& [k, v] : attrs.items()) sub_overrides[k] = v;
        std::map<std::string, RawRef> sub_bindings;
        for (auto& [port, ref] : ins) sub_bindings[port] = ref;
        auto saved_file = file_of_override_;
        file_of_override_ = path;
        auto st = stack;
        st.push_back(inc->second);
        auto outs = expand(*sub, inc->second, qid + ".", sub_overrides, qid, sub_bindings, st, false);
        file_of_override_ = saved_file;
        for (auto& [o, target] : outs)
          if (target != qid + "." + o) aliases[qid + "." + o] = target;  // an output named like its node needs no alias
        // The instance's own name means its only output, or the one named "out";
        // JSON objects keep no order, so with several others it must be named.
        auto named_out = std::find_if(outs.begin(), outs.end(), [](auto& o) { return o.first == "out"; });
        if (outs.size() == 1) aliases[qid] = outs.front().second;
        else if (named_out != outs.end()) aliases[qid] = named_out->second;
        else if (!outs.empty()) {
          std::string names;
          for (auto& o : outs) names += (names.empty() ? "" : ", ") + qt(o.first);
          aliases[qid] = kAmbiguous + "subgraph instance " + qt(qid) + " has several outputs (" + names +
                         "): name one, e.g. " + qt(qid + "." + outs.front().first);
        }
        else diag_.add(inc->second, "", "outputs", "missing_outputs", "a subgraph must declare its outputs");
        continue;
      }
      FlatNode f;
      f.id = qid;
      f.op = op;
      f.file = path;
      f.attrs = attrs;
      f.inputs = std::move(ins);
      if (nd.contains("every")) {
        Json e = subst(nd["every"], qid, "every");
        if (!e.is_number_integer() || e.get<int64_t>() < 1) diag_.add(path, qid, "every", "wrong_type", "expected an integer >= 1, got " + e.dump());
        else f.every = e.get<int64_t>();
      }
      if (nd.contains("at_end")) {
        Json e = subst(nd["at_end"], qid, "at_end");
        if (!e.is_boolean()) diag_.add(path, qid, "at_end", "wrong_type", "expected true or false, got " + e.dump());
        else f.at_end = e.get<bool>();
      }
      if (missing_includes.count(op)) {
        f.bad = true;  // the missing file is the one message
      } else if (!opt_.schemas || !opt_.schemas->find_schema(op)) {
        std::vector<std::string> cands = opt_.schemas ? opt_.schemas->ops() : std::vector<std::string>{};
        for (auto& [a, _] : includes) cands.push_back(a);
        diag_.add(path, qid, "op", "unknown_op", "unknown node type " + qt(op) + suggest(op, cands));
        f.bad = true;
      }
      flat.push_back(std::move(f));
    }
    if (!top) {
      const Json outs = doc.value("outputs", Json());
      if (outs.is_object()) {
        for (auto& [name, ref] : outs.items()) {
          if (!ref.is_string()) {
            diag_.add(path, "", "outputs", "wrong_type", "output " + qt(name) + ": expected \"node\" or \"node.output\"");
            continue;
          }
          outputs.push_back({name, prefix + ref.get<std::string>()});
          output_scopes_[prefix + ref.get<std::string>()] = {path, scope};
        }
      } else if (!outs.is_null()) {
        diag_.add(path, "", "outputs", "wrong_type", "expected an object of name: \"node\" or \"node.output\"");
      }
    }
    return outputs;
  }

  std::string file_of_override_;
  // Names already reported (failed subgraph instances, unconnected subgraph
  // inputs): references to them, or to their outputs, add no further message.
  std::set<std::string> broken;
  std::map<std::string, RawRef> binding_scopes_;
  std::map<std::string, std::pair<std::string, int>> output_scopes_;

 private:
  const LoadOptions& opt_;
  Diagnostics& diag_;
};

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
  Expander ex(options, diag);
  std::optional<Json> doc = detail::parse_document(text, path, diag);
  diag.throw_if_any();  // a document that did not parse was reported
  std::string canon = fs::path(path).lexically_normal().string();
  ex.expand(*doc, path, "", options.overrides, "", {}, {canon}, true);

  Graph g;
  g.file = path;
  g.name = ex.top_name;
  g.params = ex.top_params;

  // run block
  const Json& run = ex.top_run;
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
  for (auto& f : ex.flat) {
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
      if (al->second.rfind(kAmbiguous, 0) == 0) {
        err = al->second.substr(kAmbiguous.size());
        return std::nullopt;
      }
      return resolve(al->second, depth + 1, err);
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
      if (ha != ex.aliases.end() && index.count(ha->second)) return resolve(ha->second + "." + tail, depth + 1, err);
    }
    err = "no node";
    return std::nullopt;
  };

  for (auto& f : ex.flat) {
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
  for (auto& [target, where] : ex.output_scopes_) {
    std::string err;
    if (!resolve(target, 0, err) && err == "no node") {
      std::string local = target.substr(ex.scopes[where.second].prefix.size());
      diag.add(where.first, "", "outputs", "unknown_node", "no node " + qt(local) + suggest(local, ex.scopes[where.second].names));
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
