// tools/studio/api_json.cpp — the JSON shapes of the studio's API (docs/API.md): node types as
// /object_info describes them, diagnostics, history entries, /system_stats.
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include "graph/schema.hpp"
#include "tools/studio/studio_impl.hpp"

namespace noiseflow::studio {

namespace {

std::string type_name(graph::AttrType t) {
  switch (t) {
    case graph::AttrType::Int: return "int";
    case graph::AttrType::Float: return "float";
    case graph::AttrType::Bool: return "bool";
    case graph::AttrType::String: return "string";
    case graph::AttrType::IntList: return "int_list";
    case graph::AttrType::FloatList: return "float_list";
    case graph::AttrType::Any: return "any";
  }
  return "any";
}

}  // namespace

Json object_info(const graph::Schema& s) {
  Json required = Json::object(), optional = Json::object(), req_order = Json::array(), opt_order = Json::array();
  for (const auto& in : s.inputs()) {
    Json spec = Json::array({"TENSOR", {{"tooltip", in.doc}, {"differentiable", in.differentiable}}});
    (in.optional ? optional : required)[in.name] = spec;
    (in.optional ? opt_order : req_order).push_back(in.name);
  }
  Json outputs = Json::array(), names = Json::array(), tips = Json::array();
  for (const auto& o : s.outputs()) outputs.push_back("TENSOR"), names.push_back(o.name), tips.push_back(o.doc);
  Json attrs = Json::array();
  for (const auto& a : s.attrs()) {
    Json j = {{"name", a.name}, {"type", type_name(a.type)}, {"required", a.required()}, {"doc", a.doc}};
    if (!a.required()) j["default"] = a.default_value;
    if (a.min) j["min"] = *a.min;
    if (a.max) j["max"] = *a.max;
    if (!a.choices.empty()) j["choices"] = a.choices;
    attrs.push_back(j);
  }
  const std::string& op = s.op();
  const size_t dot = op.find('.');
  return {{"name", op},
          {"display_name", dot == std::string::npos ? op : op.substr(dot + 1)},
          {"category", dot == std::string::npos ? std::string("core") : op.substr(0, dot)},
          {"description", s.doc()},
          {"input", {{"required", required}, {"optional", optional}}},
          {"input_order", {{"required", req_order}, {"optional", opt_order}}},
          {"output", outputs},
          {"output_name", names},
          {"output_tooltips", tips},
          {"output_node", s.outputs().empty()},
          {"attrs", attrs},
          {"schema", s.to_json()}};
}

Json diag_json(const graph::Diagnostic& d) {
  return {{"file", d.file}, {"node", d.node}, {"field", d.field}, {"code", d.code}, {"message", d.message},
          {"text", d.str()}};
}

Json history_entry(const RunEntry& e) {
  Json l = Json::array();
  for (auto& [t, v] : e.loss) l.push_back({t, std::isfinite(v) ? Json(v) : Json(nullptr)});
  const bool done = e.status == "success" || e.status == "error" || e.status == "interrupted";
  const Json prompt = {{"path", e.path}, {"params", e.params}, {"name", e.name}, {"pipeline", e.doc}};
  return {{"number", e.number},
          {"prompt", prompt},
          {"status", {{"status_str", e.status}, {"completed", e.status == "success"}, {"done", done},
                      {"messages", e.messages}}},
          {"progress", e.progress},
          {"loss", l},
          {"outputs", e.outputs},
          {"run_dir", e.run_dir},
          {"error", e.error}};
}

Json system_stats() {
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return {{"system", {{"os", "linux"}, {"cpu", cpu}, {"cores", std::thread::hardware_concurrency()},
                      {"noiseflow_version", "1"}, {"root", fs::current_path().string()}}}};
}

}  // namespace noiseflow::studio
