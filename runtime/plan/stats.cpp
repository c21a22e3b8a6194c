#include "runtime/plan/stats.hpp"

#include <algorithm>

namespace noiseflow::runtime::plan {

namespace {
int64_t bytes_of(const Shape& s) { return graph::numel(s) * int64_t(sizeof(float)); }

int64_t slot_bytes(const ExecutionPlan& plan, Slot::Pool pool) {
  int64_t b = 0;
  for (const Slot& s : plan.slots)
    if (s.pool == pool) b += s.bytes;
  return b;
}

int64_t param_bytes(const graph::GraphNode& gn) {
  int64_t b = 0;
  for (const auto& p : gn.params) b += bytes_of(p.shape);
  return b;
}
}  // namespace

PlanStats plan_stats(const ExecutionPlan& plan) {
  PlanStats st;
  for (const auto& outs : plan.tensors)
    for (const TensorPlan& t : outs) {
      ++st.tensors;
      st.blocked_tensors += t.layout == Layout::nChw16c;
      if (t.storage.slot < 0) st.activation_bytes += t.storage.bytes;
    }
  st.conversions = int64_t(plan.conversions.size());
  st.shared_activation_bytes = slot_bytes(plan, Slot::Pool::activations);
  st.activation_bytes += st.shared_activation_bytes;
  for (const Gradient& gr : plan.autodiff.gradients) {
    ++st.gradient_tensors;
    st.gradient_bytes_unshared += gr.storage.bytes;
    if (gr.storage.slot < 0) st.gradient_bytes += gr.storage.bytes;
  }
  st.gradient_bytes += slot_bytes(plan, Slot::Pool::gradients);
  return st;
}

MemoryReport memory_report(const graph::Graph& g, const ExecutionPlan& plan) {
  MemoryReport m;
  m.activations = plan.stats.activation_bytes;
  for (const Conversion& c : plan.conversions) m.activations += plan.tensor(c.value).storage.bytes;
  m.gradients = plan.stats.gradient_bytes;
  for (const ValueId& v : plan.autodiff.zero_gradients) m.gradients += plan.tensor(v).storage.bytes;
  for (const Gradient& gr : plan.autodiff.gradients)
    if (gr.converted) m.gradients += gr.storage.bytes;
  int64_t trainable = 0;
  for (int i : plan.autodiff.trainable_nodes) trainable += param_bytes(g.nodes[size_t(i)]);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    if (gn.params_of.empty()) m.parameters += param_bytes(gn);  // a tied node uses its owner's values
    m.parameter_gradients += param_bytes(gn);                    // but writes gradients of its own
    if (!gn.schema->memory_fn()) continue;
    std::vector<std::optional<Shape>> inputs;
    for (const auto& in : gn.inputs) inputs.push_back(in ? std::optional<Shape>(g.shape(*in)) : std::nullopt);
    bool updates = int(i) == plan.autodiff.optimizer;
    for (int r : plan.autodiff.optimizer_readers) updates = updates || r == int(i);
    const graph::NodeMemory nm =
        gn.schema->memory_fn()({gn.attrs, inputs, gn.output_shapes, updates ? trainable : 0, plan.reference});
    m.optimizer_state += nm.optimizer_state;
    m.node_memory += nm.other;
    m.scratch = std::max(m.scratch, nm.scratch);
  }
  return m;
}

}  // namespace noiseflow::runtime::plan
