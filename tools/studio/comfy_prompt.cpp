// tools/studio/comfy_prompt.cpp — ComfyUI's API-format prompt as a noiseflow pipeline document
// (tools/studio/comfy_prompt.hpp).
#include "tools/studio/comfy_prompt.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace noiseflow::studio {

namespace {

const std::set<std::string> kRunInputs = {"ticks", "seed", "minutes", "name"};

std::string quote(const std::string& s) { return "\"" + s + "\""; }

// A link [id, slot]: the source id (a string or an integer) and the slot; false when `v` is no link.
bool as_link(const Json& v, std::string& id, int64_t& slot) {
  if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer()) return false;
  if (v[0].is_string()) id = v[0].get<std::string>();
  else if (v[0].is_number_integer()) id = std::to_string(v[0].get<int64_t>());
  else return false;
  slot = v[1].get<int64_t>();
  return true;
}

}  // namespace

Json node_error(const std::string& type, const std::string& message, const std::string& details, Json extra_info) {
  return {{"type", type}, {"message", message}, {"details", details}, {"extra_info", std::move(extra_info)}};
}

bool is_api_format(const Json& prompt) { return prompt.is_object() && !prompt.contains("nodes"); }

ApiPrompt translate_api_prompt(const Json& prompt, const graph::SchemaProvider& schemas) {
  ApiPrompt out;
  if (!prompt.is_object()) {
    out.error = node_error("invalid_prompt", "the prompt must be an object of node id: {\"class_type\", \"inputs\"}",
                           "got " + std::string(prompt.type_name()));
    return out;
  }
  if (prompt.empty()) {
    out.error = node_error("prompt_no_outputs", "the prompt has no nodes", "");
    return out;
  }
  auto fail = [&](const std::string& id, const Json& class_type, Json err) {
    Json& ne = out.node_errors[id];
    if (!ne.contains("errors")) ne = {{"errors", Json::array()}, {"dependent_outputs", Json::array()}, {"class_type", class_type}};
    ne["errors"].push_back(err);
    if (out.error.is_null()) out.error = err;
  };
  // The node types, first: links name their source's outputs by slot.
  std::map<std::string, const graph::Schema*> types;
  std::string run_node;
  for (const auto& [id, node] : prompt.items()) {
    if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string()) {
      fail(id, nullptr, node_error("invalid_prompt", "node " + quote(id) + " has no \"class_type\" (a node type's name)",
                                   "Node ID '#" + id + "'", {{"node_id", id}}));
      continue;
    }
    const std::string op = node["class_type"].get<std::string>();
    if (node.contains("inputs") && !node["inputs"].is_object()) {
      fail(id, op, node_error("invalid_prompt", "\"inputs\" of node " + quote(id) + " must be an object of name: value",
                              "Node ID '#" + id + "'", {{"node_id", id}}));
      continue;
    }
    if (op == kRunClass) {
      if (!run_node.empty())
        fail(id, op, node_error("invalid_prompt", "a second " + kRunClass + " node (the first is " + quote(run_node) + ")",
                                "Node ID '#" + id + "'", {{"node_id", id}}));
      else run_node = id;
      continue;
    }
    const graph::Schema* s = schemas.find_schema(op);
    if (!s) {
      fail(id, op, node_error("missing_node_type", "no node type " + quote(op) + graph::suggest(op, schemas.ops()),
                              "Node ID '#" + id + "'", {{"node_id", id}, {"class_type", op}}));
      continue;
    }
    types[id] = s;
  }
  Json nodes = Json::object(), run = Json::object();
  std::string name = "prompt";
  for (const auto& [id, node] : prompt.items()) {
    if (!node.is_object() || !node.contains("class_type") || !node["class_type"].is_string()) continue;
    const std::string op = node["class_type"].get<std::string>();
    const Json inputs = node.contains("inputs") && node["inputs"].is_object() ? node["inputs"] : Json::object();
    if (op == kRunClass && id == run_node) {
      for (const auto& [k, v] : inputs.items()) {
        std::string src;
        int64_t slot = 0;
        if (!kRunInputs.count(k))
          fail(id, op, node_error("unknown_input", "unknown run setting " + quote(k) +
                                  graph::suggest(k, {kRunInputs.begin(), kRunInputs.end()}) +
                                  " (ticks, seed, minutes, name)", "input " + quote(k), {{"input_name", k}}));
        else if (as_link(v, src, slot))
          fail(id, op, node_error("invalid_input_type", "run setting " + quote(k) + " takes a value, not a link",
                                  "input " + quote(k), {{"input_name", k}}));
        else if (k == "name" && v.is_string()) name = v.get<std::string>();
        else if (k == "name")
          fail(id, op, node_error("invalid_input_type", "\"name\" must be a string, got " + v.dump(), "input \"name\"",
                                  {{"input_name", k}}));
        else run[k] = v;
      }
      continue;
    }
    auto t = types.find(id);
    if (t == types.end()) continue;
    const graph::Schema& s = *t->second;
    Json n = {{"op", op}}, ins = Json::object(), attrs = Json::object();
    for (const auto& [k, v] : inputs.items()) {
      std::string src;
      int64_t slot = 0;
      if (s.find_input(k)) {
        if (!as_link(v, src, slot)) {
          fail(id, op, node_error("bad_linked_input", "input " + quote(k) + " takes a link [node id, output slot], got " + v.dump(),
                                  "input " + quote(k), {{"input_name", k}}));
          continue;
        }
        auto from = types.find(src);
        if (!prompt.contains(src)) {
          fail(id, op, node_error("bad_linked_input", "input " + quote(k) + " links to node " + quote(src) + ", which the prompt does not have",
                                  "input " + quote(k), {{"input_name", k}}));
        } else if (from == types.end()) {
          if (src == run_node)
            fail(id, op, node_error("bad_linked_input", "input " + quote(k) + " links to the " + kRunClass + " node, which has no outputs",
                                    "input " + quote(k), {{"input_name", k}}));
          // else: the source's own error says why
        } else if (slot < 0 || size_t(slot) >= from->second->outputs().size()) {
          const size_t n_out = from->second->outputs().size();
          fail(id, op, node_error("bad_linked_input", "input " + quote(k) + " links to output slot " + std::to_string(slot) +
                                  " of node " + quote(src) + " (" + from->second->op() + "), which has " + std::to_string(n_out) +
                                  (n_out == 1 ? " output" : " outputs"), "input " + quote(k), {{"input_name", k}}));
        } else {
          ins[k] = src + "." + from->second->outputs()[size_t(slot)].name;
        }
      } else if (s.find_attr(k)) {
        attrs[k] = v;
      } else if ((k == "every" || k == "at_end") && !s.outputs().empty()) {
        fail(id, op, node_error("invalid_input_type", quote(k) + " is for nodes without outputs (sinks)", "input " + quote(k),
                                {{"input_name", k}}));
      } else if (k == "every" || k == "at_end") {
        n[k] = v;
      } else {
        std::vector<std::string> names;
        for (auto& p : s.inputs()) names.push_back(p.name);
        for (auto& a : s.attrs()) names.push_back(a.name);
        fail(id, op, node_error("unknown_input", op + " has no input or attribute " + quote(k) + graph::suggest(k, names),
                                "input " + quote(k), {{"input_name", k}}));
      }
    }
    if (!ins.empty()) n["inputs"] = ins;
    if (!attrs.empty()) n["attrs"] = attrs;
    nodes[id] = n;
    if (s.outputs().empty()) out.outputs.push_back(id);
  }
  if (!out.node_errors.empty()) return out;
  out.doc = {{"noiseflow", 1}, {"name", name}, {"nodes", nodes}};
  if (!run.empty()) out.doc["run"] = run;
  return out;
}

Json node_errors(const std::vector<graph::Diagnostic>& diags, const Json& doc) {
  Json out = Json::object();
  for (const auto& d : diags) {
    if (d.node.empty()) continue;
    Json class_type = nullptr;
    if (doc.is_object() && doc.contains("nodes") && doc["nodes"].is_object() && doc["nodes"].contains(d.node)) {
      const Json& n = doc["nodes"][d.node];
      if (n.is_object() && n.contains("op") && n["op"].is_string()) class_type = n["op"];
    }
    Json& ne = out[d.node];
    if (!ne.contains("errors")) ne = {{"errors", Json::array()}, {"dependent_outputs", Json::array()}, {"class_type", class_type}};
    Json extra = Json::object();
    if (d.field.rfind("input \"", 0) == 0 || d.field.rfind("attr \"", 0) == 0) {
      const size_t q = d.field.find('"');
      extra["input_name"] = d.field.substr(q + 1, d.field.size() - q - 2);
    }
    ne["errors"].push_back(node_error(d.code, d.message, d.field, extra));
  }
  return out;
}

}  // namespace noiseflow::studio
