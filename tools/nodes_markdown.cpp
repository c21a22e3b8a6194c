// tools/nodes_markdown.cpp — `noiseflow nodes --markdown`: the node reference from the schemas.
//
// The text is a pure function of the registry (std::map order, no dates, no paths but a plugin's), so
// docs/nodes.md can be compared with it byte for byte (the ctest "docs/nodes.md is what noiseflow nodes
// --markdown prints").
#include "tools/nodes_markdown.hpp"

#include <charconv>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <vector>

namespace noiseflow::tools {
namespace {

using graph::AttrSpec;
using graph::PortSpec;
using graph::Schema;

// What each built-in group is about; a group without an entry (a plugin's) gets no line.
const std::map<std::string, std::string>& group_blurbs() {
  static const std::map<std::string, std::string> blurbs{
      {"core", "Graph structure: inputs written by the embedding API, values carried across ticks, the tick index."},
      {"data", "Data sets and batches: MNIST, IDX files, PNG folders, the 2-D toy mixture, labels, augmentation."},
      {"diffusion", "The diffusion process: noise schedule, timesteps, forward noising, training targets and loss "
                    "weights, DDPM/DDIM steps, classifier-free guidance, the variational bound's terms, inpainting "
                    "masks."},
      {"dist", "Data parallelism (mpirun): collecting the ranks' slices of a batch on rank 0."},
      {"eval", "Sample quality: Frechet distances of the digit classifier's features; the variational bound in bits "
               "per dimension."},
      {"io", "Files: checkpoints, tensors, image grids, trajectories, metrics."},
      {"loss", "Losses, reduced to a scalar an optimizer minimises."},
      {"nn", "Neural-network layers (oneDNN primitives and noiseflow's own kernels), differentiable."},
      {"optim", "Optimizers (they make a pipeline a training pipeline) and the EMA of the weights."},
      {"random", "Random tensors, reproducible from (seed, node id, tick)."},
      {"sampler", "Samplers on a timestep grid: DDPM, DDIM, Euler, Heun, DPM-Solver++, UniPC and their grids; "
                  "image to image (SDEdit) and inpainting (RePaint)."},
      {"tensor", "Tensor utilities: constants, repeats, scaling, slices."},
  };
  return blurbs;
}

std::string group_of(const std::string& op) {
  const auto dot = op.find('.');
  return dot == std::string::npos ? "core" : op.substr(0, dot);
}

// Text for a Markdown table cell or paragraph: no line breaks, `|` escaped, nothing read as emphasis or
// as an HTML tag (a `<` before a letter, `/` or `!`). Backticks are kept (docs quote names with them).
std::string text(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i], next = i + 1 < s.size() ? s[i + 1] : ' ';
    if (c == '\n' || c == '\r') out += ' ';
    else if (c == '|') out += "\\|";
    else if (c == '*') out += "\\*";
    else if (c == '<' && (std::isalpha(static_cast<unsigned char>(next)) || next == '/' || next == '!')) out += "&lt;";
    else out += c;
  }
  return out;
}

std::string code(const std::string& s) { return "`" + s + "`"; }

// The shortest text that reads back as v: 1000, 0.0001, 1e-09.
std::string number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(int64_t(v));
  char b[64];
  auto r = std::to_chars(b, b + sizeof b, v);
  return std::string(b, r.ptr);
}

// GitHub's heading anchors: lower case, only letters, digits, spaces, '-' and '_', spaces made '-',
// repeats numbered -1, -2, ...
class Anchors {
 public:
  std::string add(const std::string& heading) {
    std::string slug;
    for (char c : heading) {
      if (c >= 'A' && c <= 'Z') slug += char(c - 'A' + 'a');
      else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') slug += c;
      else if (c == ' ') slug += '-';
    }
    std::string unique = slug;
    for (int k = 1; used_.count(unique); ++k) unique = slug + "-" + std::to_string(k);
    used_.insert(unique);
    return unique;
  }

 private:
  std::set<std::string> used_;
};

std::string allowed(const AttrSpec& a) {
  if (!a.choices.empty()) {
    std::string s;
    for (auto& c : a.choices) s += (s.empty() ? "" : ", ") + code(c);
    return s;
  }
  if (a.min && a.max) return number(*a.min) + " to " + number(*a.max);
  if (a.min) return "&ge; " + number(*a.min);
  if (a.max) return "&le; " + number(*a.max);
  return "";
}

std::string layouts(graph::LayoutSupport l) {
  switch (l) {
    case graph::LayoutSupport::uniform: return "plain or nChw16c, one layout for all its rank-4 tensors";
    case graph::LayoutSupport::any: return "plain or nChw16c, each rank-4 tensor its own";
    case graph::LayoutSupport::plain: break;
  }
  return "plain";
}

void node_section(std::ostream& o, const Schema& s, const std::string& origin) {
  o << "### " << code(s.op()) << "\n\n" << text(s.doc()) << "\n\n";
  // Properties, one line.
  std::vector<std::string> props;
  std::string grads;
  for (auto& in : s.inputs())
    if (in.differentiable) grads += (grads.empty() ? "" : ", ") + code(in.name);
  props.push_back(s.is_gradient_barrier() ? "stops the gradient: nothing upstream gets one through it"
                  : grads.empty()         ? "not differentiable"
                                          : "differentiable in " + grads);
  if (s.is_optimizer()) props.push_back("optimizer: the runtime derives the backward pass from its `loss`");
  if (s.is_sink()) props.push_back("sink: takes `every` and `at_end`, runs after the tick's compute");
  props.push_back(s.is_heavy() ? "heavy: runs on the compute lane with all cores" : "light: one thread, beside the compute lane");
  props.push_back("layouts: " + layouts(s.layout_support()));
  if (!origin.empty()) props.push_back("from the plugin " + code(origin));
  o << "*";
  for (size_t i = 0; i < props.size(); ++i) o << (i ? " · " : "") << props[i];
  o << "*\n\n";

  if (!s.inputs().empty()) {
    o << "| Input | Required | Gradient | Description |\n|---|---|---|---|\n";
    for (auto& in : s.inputs()) {
      std::string doc = text(in.doc);
      if (s.is_back_edge(in.name)) doc += std::string(doc.empty() ? "" : " ") + "(a back edge: read at the next tick)";
      o << "| " << code(in.name) << " | " << (in.optional ? "optional" : "yes") << " | "
        << (in.differentiable ? "yes" : "") << " | " << doc << " |\n";
    }
    o << "\n";
  }
  if (!s.outputs().empty()) {
    o << "| Output | Description |\n|---|---|\n";
    for (auto& out : s.outputs()) o << "| " << code(out.name) << " | " << text(out.doc) << " |\n";
    o << "\n";
  }
  if (!s.attrs().empty()) {
    o << "| Attribute | Type | Default | Allowed | Description |\n|---|---|---|---|---|\n";
    for (auto& a : s.attrs())
      o << "| " << code(a.name) << " | " << graph::attr_type_name(a.type) << " | "
        << (a.required() ? std::string("required") : code(a.default_value.dump())) << " | " << allowed(a) << " | "
        << text(a.doc) << " |\n";
    o << "\n";
  }
}

}  // namespace

std::string nodes_markdown(const runtime::Registry& registry) {
  // Groups in order: core first, then by name; ops by name within each (Registry::ops is sorted).
  std::map<std::string, std::vector<std::string>> groups;
  for (auto& op : registry.ops()) groups[group_of(op)].push_back(op);
  std::vector<std::string> order;
  if (groups.count("core")) order.push_back("core");
  for (auto& [g, _] : groups)
    if (g != "core") order.push_back(g);

  // Anchors in document order, as GitHub numbers repeats.
  Anchors anchors;
  anchors.add("Node reference");
  anchors.add("Contents");
  std::map<std::string, std::string> anchor;  // group or op -> anchor
  for (auto& g : order) {
    anchor["group " + g] = anchors.add(g);
    for (auto& op : groups[g]) anchor[op] = anchors.add(op);
  }

  std::ostringstream o;
  o << "# Node reference\n\n"
    << "Every node type of noiseflow's node library, from the schemas the loader validates pipelines against: "
       "a node's doc, its inputs (connected as `\"input\": \"node\"` or `\"node.output\"`), outputs and "
       "attributes (`\"attrs\"`, with their defaults and allowed values). "
    << registry.size() << " node types in " << order.size() << " groups.\n\n"
    << "Generated by `noiseflow nodes --markdown`; do not edit. After changing a schema, regenerate it from the "
       "repository root with\n\n```sh\nbuild/tools/noiseflow nodes --markdown > docs/nodes.md\n```\n\n"
    << "(a test fails while the file is stale). `noiseflow --plugin LIB nodes --markdown` includes a plugin's "
       "node types.\n\n";
  o << "## Contents\n\n";
  for (auto& g : order) {
    o << "- [" << g << "](#" << anchor["group " + g] << "):";
    for (size_t i = 0; i < groups[g].size(); ++i)
      o << (i ? " ·" : "") << " [" << code(groups[g][i]) << "](#" << anchor[groups[g][i]] << ")";
    o << "\n";
  }
  o << "\n";
  for (auto& g : order) {
    o << "## " << g << "\n\n";
    if (auto it = group_blurbs().find(g); it != group_blurbs().end()) o << it->second << "\n\n";
    for (auto& op : groups[g]) node_section(o, registry.find(op)->schema, registry.origin(op));
  }
  std::string out = o.str();
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

}  // namespace noiseflow::tools
