// graph/includes.cpp — subgraphs: a file's include table, a subgraph's declared inputs and
// outputs, and instances expanded inline with qualified ids ("net.down.0.conv1").
#include <algorithm>
#include <filesystem>

#include "graph/loader_detail.hpp"

namespace noiseflow::graph::detail {

namespace fs = std::filesystem;

// "include": alias -> file (relative to the including file; "$param" substituted, so a pipeline can take
// its net as a param: --set net=nets/my_unet.json), each checked to exist.
void Expander::read_includes(FileFrame& f, const Substituter& subst) {
  if (!f.doc.contains("include")) return;
  const Json& table = f.doc["include"];
  if (!table.is_object()) {
    diag_.add(f.path, "", "include", "wrong_type", "expected an object of alias: file");
    return;
  }
  for (auto& [alias, raw] : table.items()) {
    const std::string field = "include " + quote(alias);
    const Json v = subst(raw, "", field);
    if (!v.is_string()) {
      diag_.add(f.path, "", field, "wrong_type", "expected a file path string");
      continue;
    }
    const std::string file = (fs::path(f.path).parent_path() / v.get<std::string>()).lexically_normal().string();
    if (options_.check_include) {
      if (const std::string refused = options_.check_include(file); !refused.empty()) {
        diag_.add(f.path, "", field, "path_refused", refused);
        f.missing_includes.insert(alias);
        continue;
      }
    }
    if (!fs::exists(file)) {
      diag_.add(f.path, "", field, "missing_file",
                "included file " + quote(file) + " does not exist" +
                    (v != raw ? " (" + raw.dump() + " from the params: --set the param to a net file that exists, or "
                                "write one with noiseflow net unet)"
                              : std::string()));
      f.missing_includes.insert(alias);
      continue;
    }
    if (options_.schemas && options_.schemas->find_schema(alias))
      diag_.add(f.path, "", field, "alias_shadows_op", "include alias shadows the node type " + quote(alias));
    f.includes[alias] = file;
  }
}

// A subgraph's "inputs" (names), each an alias of what the instance connects to it.
void Expander::declare_inputs(FileFrame& f, const std::map<std::string, RawRef>& bindings) {
  if (f.doc.contains("inputs")) {
    const Json& ins = f.doc["inputs"];
    if (ins.is_array()) {
      for (auto& n : ins)
        if (n.is_string()) f.input_names.push_back(n.get<std::string>());
    } else if (ins.is_object()) {
      for (auto& [k, v] : ins.items()) f.input_names.push_back(k);
    } else {
      diag_.add(f.path, "", "inputs", "wrong_type", "expected a list of input names");
    }
  }
  const InstanceSite& site = *f.site;
  for (auto& n : f.input_names) {
    out_.scopes[f.scope].names.push_back(n);
    auto b = bindings.find(n);
    if (b != bindings.end()) out_.aliases[f.prefix + n] = b->second.qualified;
  }
  for (auto& [name, ref] : bindings)
    if (std::find(f.input_names.begin(), f.input_names.end(), name) == f.input_names.end())
      diag_.add(site.file, site.node, "input " + quote(name), "unknown_input",
                "subgraph " + quote(f.path) + " has no input " + quote(name) + suggest(name, f.input_names));
  for (auto& n : f.input_names)
    if (!bindings.count(n)) {
      diag_.add(site.file, site.node, "input " + quote(n), "missing_input",
                "required input of subgraph " + quote(f.path) + " is not connected");
      out_.broken.insert(f.prefix + n);
    }
}

// A subgraph instance: the included file expanded inline, its attrs as the subgraph's params and
// its inputs bound to the subgraph's.
void Expander::expand_instance(const FileFrame& f, const NodeDecl& decl, const Json& nd) {
  const std::string& file = f.includes.at(decl.op);
  if (std::find(f.stack.begin(), f.stack.end(), file) != f.stack.end()) {
    std::string chain;
    for (auto& s : f.stack) chain += s + " -> ";
    diag_.add(f.path, decl.qid, "op", "include_cycle", "include cycle: " + chain + file);
    out_.broken.insert(decl.qid);
    return;
  }
  if (nd.contains("every") || nd.contains("at_end"))
    diag_.add(f.path, decl.qid, "every", "not_a_sink", "a subgraph instance cannot carry every/at_end");
  std::optional<Json> doc = parse_included(file, f.path, "include " + quote(decl.op), diag_);
  // Unreadable files were reported; a document that is just `null` is skipped too.
  if (!doc || doc->is_null()) {
    out_.broken.insert(decl.qid);
    return;
  }
  std::map<std::string, Json> overrides;
  for (auto& [k, v] : decl.attrs.items()) overrides[k] = v;
  std::map<std::string, RawRef> bindings(decl.inputs.begin(), decl.inputs.end());
  FileFrame sub(*doc, file, decl.qid + ".", InstanceSite{f.path, decl.qid}, f.stack);
  sub.stack.push_back(file);
  const size_t first = out_.nodes.size();
  const std::vector<SubgraphOutput> outs = expand_file(sub, overrides, bindings);
  // An instance with "params_of": "other" ties each of its nodes to the node of the same local id in
  // instance other (a node tied within the instance keeps its own tie; the chain ends at other's).
  if (!decl.params_of.empty())
    for (size_t k = first; k < out_.nodes.size(); ++k) {
      FlatNode& n = out_.nodes[k];
      if (!n.params_of.empty()) continue;
      n.params_of = decl.params_of + n.id.substr(decl.qid.size());
      n.params_of_file = f.path, n.params_of_node = decl.qid;
    }
  // "instance.output" stands for the output's target; an output named like its node needs no alias.
  for (auto& o : outs)
    if (o.target != decl.qid + "." + o.name) out_.aliases[decl.qid + "." + o.name] = o.target;
  alias_instance(decl.qid, outs, file);
}

// The instance's own name means its only output, or the one named "out"; JSON objects keep no
// order, so with several others it must be named.
void Expander::alias_instance(const std::string& qid, const std::vector<SubgraphOutput>& outs, const std::string& file) {
  auto named_out = std::find_if(outs.begin(), outs.end(), [](const SubgraphOutput& o) { return o.name == "out"; });
  if (outs.size() == 1) {
    out_.aliases[qid] = outs.front().target;
  } else if (named_out != outs.end()) {
    out_.aliases[qid] = named_out->target;
  } else if (!outs.empty()) {
    std::string names;
    for (auto& o : outs) names += (names.empty() ? "" : ", ") + quote(o.name);
    out_.aliases[qid] = AmbiguousInstance{"subgraph instance " + quote(qid) + " has several outputs (" + names +
                                          "): name one, e.g. " + quote(qid + "." + outs.front().name)};
  } else {
    diag_.add(file, "", "outputs", "missing_outputs", "a subgraph must declare its outputs");
  }
}

// A subgraph's "outputs": name -> "node" or "node.output" in the subgraph.
std::vector<SubgraphOutput> Expander::read_outputs(const FileFrame& f) {
  std::vector<SubgraphOutput> outputs;
  const Json outs = f.doc.value("outputs", Json());
  if (outs.is_null()) return outputs;
  if (!outs.is_object()) {
    diag_.add(f.path, "", "outputs", "wrong_type", "expected an object of name: \"node\" or \"node.output\"");
    return outputs;
  }
  for (auto& [name, ref] : outs.items()) {
    if (!ref.is_string()) {
      diag_.add(f.path, "", "outputs", "wrong_type", "output " + quote(name) + ": expected \"node\" or \"node.output\"");
      continue;
    }
    const std::string target = f.prefix + ref.get<std::string>();
    outputs.push_back({name, target});
    out_.outputs[target] = {f.path, f.scope};
  }
  return outputs;
}

}  // namespace noiseflow::graph::detail
