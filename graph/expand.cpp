// graph/expand.cpp — one pipeline file to flat nodes: its header, params, placeholder
// inputs and node declarations (subgraph instances are includes.cpp's part).
#include <algorithm>
#include <filesystem>

#include "graph/loader_detail.hpp"

namespace noiseflow::graph::detail {

namespace fs = std::filesystem;

namespace {

// "layout" holds the studio's node positions ({"nodes": {ID: [x, y]}}): kept in the file, never read here.
const std::set<std::string> kTopKeys = {"noiseflow", "name",  "doc", "params", "include",
                                        "inputs",    "outputs", "nodes", "run",  "layout"};
const std::set<std::string> kNodeKeys = {"op", "attrs", "inputs", "every", "at_end", "doc", "if", "params_of"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_valid_id(const std::string& id) {
  return !id.empty() && id.find_first_of(" \t\"/\\") == std::string::npos && id.front() != '.' && id.back() != '.';
}

}  // namespace

Expansion expand_pipeline(const Json& doc, const std::string& path, const LoadOptions& options, Diagnostics& diag) {
  Expansion out;
  Expander expander(options, diag, out);
  FileFrame top(doc, path, "", std::nullopt, {fs::path(path).lexically_normal().string()});
  expander.expand_file(top, options.overrides, {});
  return out;
}

std::vector<SubgraphOutput> Expander::expand_file(FileFrame& f, const std::map<std::string, Json>& overrides,
                                                  const std::map<std::string, RawRef>& bindings) {
  if (!check_header(f)) return {};
  f.params = resolve_params(f.doc, f.path, overrides, f.site, diag_);
  const Substituter subst(f.params, f.path, diag_);
  if (f.top()) read_top_level(f, subst);
  read_includes(f, subst);
  f.scope = int(out_.scopes.size());
  out_.scopes.push_back({f.prefix, {}});
  if (f.top()) add_placeholder_inputs(f, subst);
  else declare_inputs(f, bindings);
  if (!expand_nodes(f, subst)) return {};
  return f.top() ? std::vector<SubgraphOutput>{} : read_outputs(f);
}

// The document is an object of format version 1 with known top-level keys; false if no object.
bool Expander::check_header(const FileFrame& f) {
  const Json& doc = f.doc;
  if (!doc.is_object()) {
    diag_.add(f.path, "", "", "not_an_object", "expected a JSON object with \"noiseflow\": 1");
    return false;
  }
  if (!doc.contains("noiseflow")) {
    diag_.add(f.path, "", "noiseflow", "missing_version", "missing \"noiseflow\": 1 (the format version)");
  } else if (doc["noiseflow"] != 1) {
    diag_.add(f.path, "", "noiseflow", "bad_version",
              "unsupported format version " + doc["noiseflow"].dump() + " (expected 1)");
  }
  const std::vector<std::string> top_keys(kTopKeys.begin(), kTopKeys.end());
  for (auto& [k, v] : doc.items())
    if (!kTopKeys.count(k)) diag_.add(f.path, "", k, "unknown_key", "unknown top-level key" + suggest(k, top_keys));
  return true;
}

// What only the top-level file gives: the pipeline's params, name and run block.
void Expander::read_top_level(const FileFrame& f, const Substituter& subst) {
  out_.params = f.params;
  out_.name = fs::path(f.path).stem().string();
  if (f.doc.contains("name")) {
    if (f.doc["name"].is_string()) out_.name = f.doc["name"].get<std::string>();
    else diag_.add(f.path, "", "name", "wrong_type", "expected the pipeline's name as a string, got " + f.doc["name"].dump());
  }
  if (f.doc.contains("run")) out_.run = subst(f.doc["run"], "", "run");
}

// A subgraph file checked or run on its own: its inputs become `input` placeholder nodes of the
// declared shapes.
void Expander::add_placeholder_inputs(FileFrame& f, const Substituter& subst) {
  if (!f.doc.contains("inputs")) return;
  const Json& ins = f.doc["inputs"];
  if (!ins.is_object()) {
    diag_.add(f.path, "", "inputs", "wrong_type", "expected an object of name: {\"shape\": [...]}");
    return;
  }
  for (auto& [name, spec] : ins.items()) {
    if (!spec.is_object() || !spec.contains("shape")) {
      diag_.add(f.path, "", "inputs", "missing_shape",
                "input " + quote(name) + " needs {\"shape\": [...]} for the file to be checked or run on its own");
      continue;
    }
    FlatNode n;
    n.id = name;
    n.op = kInputOp;
    n.file = f.path;
    n.attrs = Json{{"shape", subst(spec["shape"], name, "inputs")}};
    out_.nodes.push_back(std::move(n));
    out_.scopes[f.scope].names.push_back(name);
  }
}

// Every node of the file, in id order; false if the file has no "nodes" object.
bool Expander::expand_nodes(const FileFrame& f, const Substituter& subst) {
  if (!f.doc.contains("nodes") || !f.doc["nodes"].is_object()) {
    diag_.add(f.path, "", "nodes", f.doc.contains("nodes") ? "wrong_type" : "missing_nodes",
              "expected an object of node id: {\"op\": ...}");
    return false;
  }
  const Json& nodes = f.doc["nodes"];
  for (auto& [id, nd] : nodes.items()) out_.scopes[f.scope].names.push_back(id);
  for (auto& [id, nd] : nodes.items()) {
    std::optional<NodeDecl> decl = read_node(f, id, nd, subst);
    if (!decl) continue;
    if (f.includes.count(decl->op)) expand_instance(f, *decl, nd);
    else add_flat_node(f, std::move(*decl), nd, subst);
  }
  return true;
}

// A node's id, keys, condition, op, attrs and inputs; nullopt if it is absent (a false "if") or
// too broken to go on with (reported).
std::optional<NodeDecl> Expander::read_node(const FileFrame& f, const std::string& id, const Json& nd,
                                            const Substituter& subst) {
  const std::string qid = f.prefix + id;
  if (contains(f.input_names, id)) diag_.add(f.path, qid, "", "duplicate_id", "node id equals a subgraph input name");
  if (!is_valid_id(id)) {
    diag_.add(f.path, qid, "", "bad_id",
              "node ids may not be empty, contain spaces, quotes or slashes, or start/end with '.'");
    return std::nullopt;
  }
  if (!nd.is_object()) {
    diag_.add(f.path, qid, "", "wrong_type", "expected an object with \"op\"");
    return std::nullopt;
  }
  const std::vector<std::string> node_keys(kNodeKeys.begin(), kNodeKeys.end());
  for (auto& [k, v] : nd.items())
    if (!kNodeKeys.count(k)) diag_.add(f.path, qid, k, "unknown_key", "unknown node key" + suggest(k, node_keys));
  if (nd.contains("if") && !condition_holds(f, qid, nd, subst)) return std::nullopt;
  if (!nd.contains("op") || !nd["op"].is_string()) {
    diag_.add(f.path, qid, "op", "missing_op", "missing \"op\" (the node type)");
    return std::nullopt;
  }
  // Params may choose the type: "op": "sampler.${sampler}".
  const Json op = subst(nd["op"], qid, "op");
  if (!op.is_string() || op.get<std::string>().empty()) {
    diag_.add(f.path, qid, "op", "wrong_type", "\"op\" must name a node type, got " + op.dump());
    return std::nullopt;
  }
  NodeDecl decl{qid, op.get<std::string>(), nd.value("attrs", Json::object()), {}, {}, {}};
  if (op != nd["op"]) decl.op_written = nd["op"].get<std::string>();
  if (!decl.attrs.is_object()) {
    diag_.add(f.path, qid, "attrs", "wrong_type", "expected an object of attribute: value");
    decl.attrs = Json::object();
  }
  decl.attrs = subst(decl.attrs, qid, "attrs");
  decl.inputs = read_inputs(f, qid, nd, subst);
  // Weight tying: "params_of": "net" uses node (or subgraph instance) net's parameters.
  if (nd.contains("params_of")) {
    const Json p = subst(nd["params_of"], qid, "params_of");
    if (!p.is_string() || p.get<std::string>().empty() || p.get<std::string>() == id)
      diag_.add(f.path, qid, "params_of", "wrong_type",
                "expected the id of another node or subgraph instance of the same type, got " + p.dump());
    else decl.params_of = f.prefix + p.get<std::string>();
  }
  return decl;
}

// A conditional node is present only when its (substituted) "if" is true; a non-boolean is reported.
bool Expander::condition_holds(const FileFrame& f, const std::string& qid, const Json& nd, const Substituter& subst) {
  Json cond = subst(nd["if"], qid, "if");
  if (!cond.is_boolean()) {
    diag_.add(f.path, qid, "if", "wrong_type", "expected true or false (usually \"$param\"), got " + cond.dump());
    return false;
  }
  return cond.get<bool>();
}

// The node's "inputs": port -> reference, qualified with the file's prefix.
std::vector<std::pair<std::string, RawRef>> Expander::read_inputs(const FileFrame& f, const std::string& qid,
                                                                  const Json& nd, const Substituter& subst) {
  std::vector<std::pair<std::string, RawRef>> inputs;
  if (!nd.contains("inputs")) return inputs;
  if (!nd["inputs"].is_object()) {
    diag_.add(f.path, qid, "inputs", "wrong_type", "expected an object of input: \"node\" or \"node.output\"");
    return inputs;
  }
  auto is_ref = [](const Json& r) { return r.is_string() && !r.get<std::string>().empty(); };
  for (auto& [port, ref] : nd["inputs"].items()) {
    const std::string field = "input " + quote(port);
    if (!is_ref(ref)) {
      diag_.add(f.path, qid, field, "wrong_type", "expected \"node\" or \"node.output\", got " + ref.dump());
      continue;
    }
    // Params may name the source: "inputs": {"b": "$residual"}.
    Json sub = subst(ref, qid, field);
    if (!is_ref(sub)) {
      diag_.add(f.path, qid, field, "wrong_type", "expected \"node\" or \"node.output\", got " + sub.dump());
      continue;
    }
    const std::string text = sub.get<std::string>();
    inputs.push_back({port, RawRef{f.prefix + text, text, f.scope}});
  }
  return inputs;
}

// A node of a registered type (or of a missing include, already reported), with every/at_end.
void Expander::add_flat_node(const FileFrame& f, NodeDecl decl, const Json& nd, const Substituter& subst) {
  const std::string written = decl.op_written;
  FlatNode n;
  n.id = decl.qid;
  n.op = decl.op;
  n.file = f.path;
  n.attrs = std::move(decl.attrs);
  n.inputs = std::move(decl.inputs);
  if (!decl.params_of.empty()) n.params_of = decl.params_of, n.params_of_file = f.path, n.params_of_node = n.id;
  if (nd.contains("every")) {
    Json e = subst(nd["every"], n.id, "every");
    if (!e.is_number_integer() || e.get<int64_t>() < 1)
      diag_.add(f.path, n.id, "every", "wrong_type", "expected an integer >= 1, got " + e.dump());
    else n.every = e.get<int64_t>();
  }
  if (nd.contains("at_end")) {
    Json e = subst(nd["at_end"], n.id, "at_end");
    if (!e.is_boolean()) diag_.add(f.path, n.id, "at_end", "wrong_type", "expected true or false, got " + e.dump());
    else n.at_end = e.get<bool>();
  }
  const SchemaProvider* schemas = options_.schemas;
  if (f.missing_includes.count(n.op)) {
    n.bad = true;  // the missing file is the one message
  } else if (!schemas || !schemas->find_schema(n.op)) {
    std::vector<std::string> candidates = schemas ? schemas->ops() : std::vector<std::string>{};
    for (auto& [alias, file] : f.includes) candidates.push_back(alias);
    diag_.add(f.path, n.id, "op", "unknown_op",
              "unknown node type " + quote(n.op) + (written.empty() ? "" : " (from " + quote(written) + ")") +
                  suggest(n.op, candidates));
    n.bad = true;
  }
  out_.nodes.push_back(std::move(n));
}

}  // namespace noiseflow::graph::detail
