// graph/resolve.cpp — flat nodes to graph nodes, and their input references ("node",
// "node.output", subgraph instance names) to node outputs, with did-you-mean suggestions.
#include <algorithm>

#include "graph/loader_detail.hpp"

namespace noiseflow::graph::detail {

NodeIndex add_graph_nodes(Graph& g, const Expansion& ex, const LoadOptions& options, Diagnostics& diag) {
  NodeIndex index;
  for (auto& f : ex.nodes) {
    if (index.count(f.id)) {
      diag.add(f.file, f.id, "", "duplicate_id", "two nodes have this id");
      continue;
    }
    if (ex.aliases.count(f.id))
      diag.add(f.file, f.id, "", "duplicate_id", "node id clashes with a subgraph instance or input");
    index[f.id] = int(g.nodes.size());
    GraphNode n;
    n.id = f.id;
    n.op = f.op;
    n.file = f.file;
    n.every = f.every;
    n.at_end = f.at_end;
    n.params_of = f.params_of;
    n.schema = f.bad ? nullptr : options.schemas->find_schema(f.op);
    if (n.schema) n.inputs.resize(n.schema->inputs().size());
    g.nodes.push_back(std::move(n));
  }
  return index;
}

// `ref`, or the instance or node it is an output of, was reported already.
bool Resolver::is_broken(const std::string& ref) const {
  auto dot = ref.rfind('.');
  return ex_.broken.count(ref) || (dot != std::string::npos && ex_.broken.count(ref.substr(0, dot)));
}

std::variant<NodeRef, RefError> Resolver::resolve(const std::string& ref, int depth) const {
  if (depth > 64) return RefError{RefError::Kind::unknown_output, "reference loops through subgraph aliases"};
  if (is_broken(ref)) return RefError{RefError::Kind::already_reported, ""};
  auto node = index_.find(ref);
  if (node != index_.end()) {
    // A bare name means the node's first output; a node without outputs (an optimizer, a sink) has none to give.
    const GraphNode& src = g_.nodes[node->second];
    if (src.schema && src.schema->outputs().empty())
      return RefError{RefError::Kind::unknown_output,
                      "node " + quote(ref) + " (" + src.op + ") has no outputs to read"};
    return NodeRef{node->second, 0};
  }
  auto alias = ex_.aliases.find(ref);
  if (alias != ex_.aliases.end()) {
    if (auto* ambiguous = std::get_if<AmbiguousInstance>(&alias->second))
      return RefError{RefError::Kind::unknown_output, ambiguous->message};
    return resolve(std::get<std::string>(alias->second), depth + 1);
  }
  auto dot = ref.rfind('.');
  if (dot != std::string::npos)
    if (auto r = resolve_output(ref.substr(0, dot), ref.substr(dot + 1), depth)) return *r;
  return RefError{RefError::Kind::no_node, ""};
}

// "head.tail" as output `tail` of node `head`, or through an alias `head`; nullopt if `head` is
// neither.
std::optional<std::variant<NodeRef, RefError>> Resolver::resolve_output(const std::string& head, const std::string& tail,
                                                                        int depth) const {
  auto node = index_.find(head);
  if (node != index_.end()) {
    const GraphNode& src = g_.nodes[node->second];
    if (!src.schema) return RefError{RefError::Kind::already_reported, ""};
    int output = src.schema->output_index(tail);
    if (output >= 0) return NodeRef{node->second, output};
    std::vector<std::string> outs;
    for (auto& o : src.schema->outputs()) outs.push_back(o.name);
    return RefError{RefError::Kind::unknown_output,
                    "node " + quote(head) + " (" + src.op + ") has no output " + quote(tail) + suggest(tail, outs)};
  }
  auto alias = ex_.aliases.find(head);
  const std::string* target = alias != ex_.aliases.end() ? std::get_if<std::string>(&alias->second) : nullptr;
  if (target && index_.count(*target)) return resolve(*target + "." + tail, depth + 1);
  return std::nullopt;
}

void connect_inputs(const FlatNode& f, GraphNode& n, const Resolver& resolver, const Expansion& ex, Diagnostics& diag) {
  const Schema& s = *n.schema;
  std::vector<std::string> in_names;
  for (auto& p : s.inputs()) in_names.push_back(p.name);
  for (auto& [port, ref] : f.inputs) {
    const std::string field = "input " + quote(port);
    int pi = s.input_index(port);
    if (pi < 0) {
      diag.add(f.file, f.id, field, "unknown_input",
               "node type " + f.op + " has no input " + quote(port) + suggest(port, in_names));
      continue;
    }
    std::variant<NodeRef, RefError> r = resolver.resolve(ref.qualified);
    if (auto* source = std::get_if<NodeRef>(&r)) {
      n.inputs[pi] = *source;
      continue;
    }
    const RefError& e = std::get<RefError>(r);
    if (e.kind == RefError::Kind::no_node)
      diag.add(f.file, f.id, field, "unknown_node",
               "no node " + quote(ref.text) + suggest(ref.text, ex.scopes[ref.scope].names));
    else if (e.kind == RefError::Kind::unknown_output)
      diag.add(f.file, f.id, field, "unknown_output", e.message);
  }
  auto declared = [&](const std::string& port) {
    return std::any_of(f.inputs.begin(), f.inputs.end(), [&](auto& p) { return p.first == port; });
  };
  // A declared input that failed to resolve was reported above.
  for (size_t i = 0; i < s.inputs().size(); ++i)
    if (!s.inputs()[i].optional && !n.inputs[i] && !declared(s.inputs()[i].name))
      diag.add(f.file, f.id, "input " + quote(s.inputs()[i].name), "missing_input",
               "required input is not connected (" + s.op() + " needs " + quote(s.inputs()[i].name) + ")");
}

void check_subgraph_outputs(const Resolver& resolver, const Expansion& ex, Diagnostics& diag) {
  for (auto& [target, site] : ex.outputs) {
    std::variant<NodeRef, RefError> r = resolver.resolve(target);
    auto* e = std::get_if<RefError>(&r);
    if (!e || e->kind != RefError::Kind::no_node) continue;
    const Scope& scope = ex.scopes[site.scope];
    const std::string local = target.substr(scope.prefix.size());
    diag.add(site.file, "", "outputs", "unknown_node", "no node " + quote(local) + suggest(local, scope.names));
  }
}

std::map<std::string, NodeRef> resolve_aliases(const Resolver& resolver, const Expansion& ex) {
  std::map<std::string, NodeRef> resolved;
  for (auto& [name, target] : ex.aliases) {
    std::variant<NodeRef, RefError> r = resolver.resolve(name);
    if (auto* source = std::get_if<NodeRef>(&r)) resolved[name] = *source;
  }
  return resolved;
}

}  // namespace noiseflow::graph::detail
