// runtime/recipe.cpp — how a model was trained, recorded in its checkpoint and checked on loading
// (runtime/recipe.hpp).
#include "runtime/recipe.hpp"

#include <fstream>
#include <optional>
#include <set>

namespace noiseflow::runtime {

using Json = nlohmann::json;

namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

Json recipe_of(const graph::Graph& g) {
  Json r = Json::object();
  std::set<std::string> ambiguous;
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (const auto& ra : gn.schema->recipe_attrs()) {
      if (!ra.defines || !gn.attrs.contains(ra.attr)) continue;
      const Json& v = gn.attrs[ra.attr];
      if (!r.contains(ra.key)) r[ra.key] = v;
      else if (r[ra.key] != v) ambiguous.insert(ra.key);
    }
  }
  for (const auto& k : ambiguous) r.erase(k);
  return r;
}

namespace {

// The top-level param an attribute was given by ("$name" or "${name}" in the pipeline file), if any.
std::optional<std::string> param_of(const graph::Graph& g, const graph::GraphNode& gn, const std::string& attr) {
  if (gn.file != g.file) return std::nullopt;
  std::ifstream f(g.file);
  const Json raw = Json::parse(f, nullptr, false);
  if (!raw.is_object() || !raw.contains("nodes") || !raw["nodes"].is_object()) return std::nullopt;
  const Json& nodes = raw["nodes"];
  if (!nodes.contains(gn.id) || !nodes[gn.id].is_object() || !nodes[gn.id].contains("attrs")) return std::nullopt;
  const Json& attrs = nodes[gn.id]["attrs"];
  if (!attrs.is_object() || !attrs.contains(attr) || !attrs[attr].is_string()) return std::nullopt;
  std::string v = attrs[attr];
  if (v.size() > 3 && v.rfind("${", 0) == 0 && v.back() == '}') v = v.substr(2, v.size() - 3);
  else if (v.size() > 1 && v[0] == '$') v = v.substr(1);
  else return std::nullopt;
  if (!g.params.is_object() || !g.params.contains(v)) return std::nullopt;
  return v;
}

}  // namespace

std::vector<std::string> recipe_mismatches(const graph::Graph& g, const Json& recorded) {
  std::vector<std::string> out;
  // "model": what the trained net is. A checkpoint without the entry holds a diffusion model; a distillation
  // records "consistency" (diffusion.consistency_times). A pipeline that uses a checkpoint without declaring
  // the kind it expects (every sampler but sampler.consistency) expects a diffusion model.
  const std::string model =
      recorded.contains("model") && recorded["model"].is_string() ? recorded["model"].get<std::string>() : "diffusion";
  bool declares_model = false;
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (const auto& ra : gn.schema->recipe_attrs()) {
      if (ra.key != "model" || !gn.attrs.contains(ra.attr)) continue;
      declares_model = true;
      if (gn.attrs[ra.attr] == model) continue;
      out.push_back("the checkpoint holds a " + model + " model, but node " + q(gn.id) + " (" + gn.op + ") expects a " +
                    gn.attrs[ra.attr].get<std::string>() + " model" +
                    (model == "diffusion" ? std::string(": distil it first (noiseflow run pipelines/distill.json) or "
                                                        "sample it with a diffusion sampler (--set sampler=dpmpp_2m_sde)")
                                          : std::string()));
    }
  }
  if (!declares_model && model != "diffusion")
    out.push_back("the checkpoint holds a " + model + " model (distilled), which only the consistency sampler "
                  "samples: run with --set sampler=consistency --set steps=1 (or 2, 4)");
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (const auto& ra : gn.schema->recipe_attrs()) {
      if (ra.key == "model" || !recorded.contains(ra.key) || !gn.attrs.contains(ra.attr)) continue;
      const Json& want = recorded[ra.key];
      const Json& have = gn.attrs[ra.attr];
      // Numbers compare as numbers (T may be 1000 or 1000.0 in a file).
      if (want == have || (want.is_number() && have.is_number() && want.get<double>() == have.get<double>())) continue;
      std::string m = "trained with " + ra.key + " " + want.dump() + ", but node " + q(gn.id) + " attr " + q(ra.attr) +
                      " is " + have.dump();
      const std::string value = want.is_string() ? want.get<std::string>() : want.dump();
      if (auto p = param_of(g, gn, ra.attr)) m += " (run with --set " + *p + "=" + value + ")";
      else m += " (set it to " + want.dump() + " in " + gn.file + ")";
      out.push_back(m);
    }
  }
  return out;
}

}  // namespace noiseflow::runtime
