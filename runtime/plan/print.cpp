#include "runtime/plan/print.hpp"

#include <cstdio>

namespace noiseflow::runtime::plan {

namespace {

std::string value_name(const graph::Graph& g, ValueId v) {
  const graph::GraphNode& gn = g.nodes[size_t(v.node)];
  return gn.id + "." + gn.schema->outputs()[size_t(v.output)].name;
}

std::string task_name(const graph::Graph& g, Task t) {
  return std::string(t.backward ? "backward " : "forward  ") + g.nodes[size_t(t.node)].id;
}

const char* layout_name(Layout l) { return l == Layout::nChw16c ? "nChw16c" : "plain"; }

std::string slot_name(const Storage& s) { return s.slot < 0 ? "own" : "slot " + std::to_string(s.slot); }

std::string fmt(const char* f, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, args...);
  return buf;
}

std::string mb(int64_t bytes) { return fmt("%.1f MB", double(bytes) / 1e6); }

graph::Json storage_json(const Storage& s) {
  return {{"slot", s.slot}, {"bytes", s.bytes}, {"from", s.life.from}, {"until", s.life.until}};
}

graph::Json memory_json(const MemoryReport& m) {
  graph::Json j{{"activations", m.activations},         {"gradients", m.gradients},
                {"parameters", m.parameters},           {"parameter_gradients", m.parameter_gradients},
                {"optimizer_state", m.optimizer_state}, {"node_memory", m.node_memory},
                {"scratch", m.scratch},
                {"peak", m.peak()}};
  if (m.communication) j["communication"] = m.communication;
  return j;
}

std::string memory_text(const MemoryReport& m) {
  std::string s = "memory (allocated before the first tick and kept; the sum is the peak):\n";
  s += fmt("  activations          %12s\n", mb(m.activations).c_str());
  s += fmt("  gradients            %12s\n", mb(m.gradients).c_str());
  s += fmt("  parameters           %12s\n", mb(m.parameters).c_str());
  s += fmt("  parameter gradients  %12s\n", mb(m.parameter_gradients).c_str());
  s += fmt("  optimizer state      %12s\n", mb(m.optimizer_state).c_str());
  s += fmt("  node memory          %12s   (data sets, tables)\n", mb(m.node_memory).c_str());
  s += fmt("  scratch              %12s   (the largest per-call scratchpad and staging)\n", mb(m.scratch).c_str());
  if (m.communication)
    s += fmt("  communication        %12s   (the fused gradient buffer of data parallelism)\n",
             mb(m.communication).c_str());
  s += fmt("  peak                 %12s\n", mb(m.peak()).c_str());
  return s;
}

}  // namespace

std::string plan_text(const graph::Graph& g, const ExecutionPlan& plan) {
  std::string s = "plan of " + g.file + ": " + (plan.training() ? "training" : "no optimizer") + ", " +
                  (plan.reference ? "straightforward path" : "optimised path") + "\n\n";
  s += fmt("tasks per tick, in order (%zu)%s%s:\n", plan.schedule.size(), plan.serial_forward ? ", forward chained" : "",
           plan.serial_backward ? ", backward chained" : "");
  for (size_t k = 0; k < plan.schedule.size(); ++k)
    s += fmt("  %4zu  %s\n", k, task_name(g, plan.schedule[k]).c_str());
  if (plan.allreduce.active())
    s += fmt("  gradient allreduce over %d ranks before %s: %lld floats (%s) of %zu nodes' parameter gradients "
             "and the loss, one fused buffer, a ring in fixed rank order\n",
             plan.allreduce.ranks, g.nodes[size_t(plan.autodiff.optimizer)].id.c_str(),
             (long long)plan.allreduce.floats, mb(plan.allreduce.floats * 4).c_str(), plan.allreduce.nodes.size());
  s += "\ntensors (node output, shape, layout, buffer, bytes, lifetime in task positions):\n";
  for (const auto& outs : plan.tensors)
    for (const TensorPlan& t : outs)
      s += fmt("  %-36s %-18s %-8s %-8s %11lld  %d..%d\n", value_name(g, t.value).c_str(), graph::shape_str(t.shape).c_str(),
               layout_name(t.layout), slot_name(t.storage).c_str(), (long long)t.storage.bytes, t.storage.life.from,
               t.storage.life.until);
  if (plan.training()) {
    s += "\ngradients (of node output, written by consumer's backward for input, layout, buffer, bytes, lifetime):\n";
    for (const Gradient& gr : plan.autodiff.gradients) {
      const graph::GraphNode& c = g.nodes[size_t(gr.consumer)];
      s += fmt("  %-36s <- %-30s %-8s %-8s %11lld  %d..%d%s\n", value_name(g, gr.value).c_str(),
               (c.id + "." + c.schema->inputs()[size_t(gr.port)].name).c_str(), layout_name(gr.layout),
               slot_name(gr.storage).c_str(), (long long)gr.storage.bytes, gr.storage.life.from, gr.storage.life.until,
               gr.converted ? "  (written plain, converted)" : "");
    }
    for (const FanIn& f : plan.autodiff.fan_in)
      s += fmt("  sum of %zu gradients into %s before its backward\n", f.gradients.size(), value_name(g, f.value).c_str());
  }
  std::vector<std::string> tied;
  for (const auto& gn : g.nodes)
    if (!gn.params_of.empty()) tied.push_back(gn.id);
  if (!tied.empty()) {
    s += fmt("\nweight tying (%zu nodes use another node's parameters: one tensor each, saved under the owner's name):\n",
             tied.size());
    for (const auto& gn : g.nodes)
      if (!gn.params_of.empty()) s += "  " + gn.id + " uses the parameters of " + gn.params_of + "\n";
    for (const auto& t : plan.autodiff.tie_sums) {
      std::string users;
      for (int u : t.users) users += (users.empty() ? "" : ", ") + g.nodes[size_t(u)].id;
      s += "  gradients of " + users + " summed into " + g.nodes[size_t(t.owner)].id + "'s before the optimizer\n";
    }
  }
  s += fmt("\nlayout conversions per tick (%zu):\n", plan.conversions.size());
  for (const Conversion& c : plan.conversions)
    s += "  " + value_name(g, c.value) + " -> plain copy for " + g.nodes[size_t(c.node)].id + "." +
         g.nodes[size_t(c.node)].schema->inputs()[size_t(c.port)].name + "\n";
  s += fmt("\nshared slots (%zu):\n", plan.slots.size());
  for (size_t k = 0; k < plan.slots.size(); ++k)
    s += fmt("  slot %-4zu %-11s %11lld bytes\n", k,
             plan.slots[k].pool == Slot::Pool::activations ? "activations" : "gradients", (long long)plan.slots[k].bytes);
  s += fmt("\n%lld of %lld tensors nChw16c; %lld gradient tensors in %s (%s unshared)\n\n",
           (long long)plan.stats.blocked_tensors, (long long)plan.stats.tensors, (long long)plan.stats.gradient_tensors,
           mb(plan.stats.gradient_bytes).c_str(), mb(plan.stats.gradient_bytes_unshared).c_str());
  return s + memory_text(plan.memory);
}

graph::Json plan_json(const graph::Graph& g, const ExecutionPlan& plan) {
  graph::Json j{{"file", g.file}, {"training", plan.training()}, {"reference", plan.reference},
                {"serial_forward", plan.serial_forward}, {"serial_backward", plan.serial_backward}};
  j["schedule"] = graph::Json::array();
  for (const Task& t : plan.schedule)
    j["schedule"].push_back({{"node", g.nodes[size_t(t.node)].id}, {"phase", t.backward ? "backward" : "forward"}});
  j["tensors"] = graph::Json::array();
  for (const auto& outs : plan.tensors)
    for (const TensorPlan& t : outs)
      j["tensors"].push_back({{"value", value_name(g, t.value)}, {"shape", t.shape}, {"layout", layout_name(t.layout)},
                              {"storage", storage_json(t.storage)}});
  j["gradients"] = graph::Json::array();
  for (const Gradient& gr : plan.autodiff.gradients)
    j["gradients"].push_back({{"value", value_name(g, gr.value)},
                              {"consumer", g.nodes[size_t(gr.consumer)].id},
                              {"input", g.nodes[size_t(gr.consumer)].schema->inputs()[size_t(gr.port)].name},
                              {"layout", layout_name(gr.layout)},
                              {"converted", gr.converted},
                              {"storage", storage_json(gr.storage)}});
  j["ties"] = graph::Json::array();
  for (const auto& gn : g.nodes)
    if (!gn.params_of.empty()) j["ties"].push_back({{"node", gn.id}, {"params_of", gn.params_of}});
  j["tie_sums"] = graph::Json::array();
  for (const auto& t : plan.autodiff.tie_sums) {
    graph::Json users = graph::Json::array();
    for (int u : t.users) users.push_back(g.nodes[size_t(u)].id);
    j["tie_sums"].push_back({{"owner", g.nodes[size_t(t.owner)].id}, {"users", users}});
  }
  j["conversions"] = graph::Json::array();
  for (const Conversion& c : plan.conversions)
    j["conversions"].push_back({{"value", value_name(g, c.value)}, {"node", g.nodes[size_t(c.node)].id},
                                {"input", g.nodes[size_t(c.node)].schema->inputs()[size_t(c.port)].name}});
  j["slots"] = graph::Json::array();
  for (const Slot& sl : plan.slots)
    j["slots"].push_back({{"pool", sl.pool == Slot::Pool::activations ? "activations" : "gradients"}, {"bytes", sl.bytes}});
  const PlanStats& st = plan.stats;
  j["stats"] = {{"tensors", st.tensors},
                {"blocked_tensors", st.blocked_tensors},
                {"conversions", st.conversions},
                {"activation_bytes", st.activation_bytes},
                {"shared_activation_bytes", st.shared_activation_bytes},
                {"gradient_tensors", st.gradient_tensors},
                {"gradient_bytes", st.gradient_bytes},
                {"gradient_bytes_unshared", st.gradient_bytes_unshared}};
  j["memory"] = memory_json(plan.memory);
  if (plan.allreduce.active())
    j["allreduce"] = {{"ranks", plan.allreduce.ranks}, {"floats", plan.allreduce.floats},
                      {"before", g.nodes[size_t(plan.autodiff.optimizer)].id}};
  return j;
}

}  // namespace noiseflow::runtime::plan
