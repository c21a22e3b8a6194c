// tools/studio/api_json.cpp — the JSON shapes of the studio's API (docs/API.md): node types as
// /object_info describes them, diagnostics, history entries, /system_stats.
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include "graph/schema.hpp"
#include "tools/studio/studio_impl.hpp"

namespace noiseflow::studio {

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
    Json j = {{"name", a.name}, {"type", graph::attr_type_name(a.type)}, {"required", a.required()}, {"doc", a.doc}};
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
  // ComfyUI's [number, prompt_id, prompt, extra_data, outputs_to_execute]; noiseflow's own fields beside it.
  const Json prompt = Json::array({e.number, e.id, e.submitted, e.extra_data, e.outputs_to_execute});
  const Json own = {{"path", e.path}, {"params", e.params}, {"name", e.name}, {"pipeline", e.doc}};
  return {{"number", e.number},
          {"prompt", prompt},
          {"noiseflow", own},
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
  // RAM from /proc/meminfo (kB): the devices' memory is the machine's, as noiseflow runs on the CPU.
  int64_t total = 0, available = 0;
  std::ifstream mi("/proc/meminfo");
  for (std::string line; std::getline(mi, line);) {
    auto kb = [&] { return std::stoll(line.substr(line.find(':') + 1)) * 1024; };
    if (line.rfind("MemTotal:", 0) == 0) total = kb();
    if (line.rfind("MemAvailable:", 0) == 0) available = kb();
  }
  const Json device = {{"name", cpu.empty() ? std::string("cpu") : cpu}, {"type", "cpu"}, {"index", 0},
                       {"vram_total", total}, {"vram_free", available}, {"torch_vram_total", total},
                       {"torch_vram_free", available}};
  return {{"system", {{"os", "posix"}, {"ram_total", total}, {"ram_free", available}, {"cpu", cpu},
                      {"cores", std::thread::hardware_concurrency()}, {"noiseflow_version", "1"},
                      {"root", fs::current_path().string()}}},
          {"devices", Json::array({device})}};
}

}  // namespace noiseflow::studio
