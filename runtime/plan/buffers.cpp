#include "runtime/plan/buffers.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace noiseflow::runtime::plan {

int IntervalAllocator::take(int64_t bytes, Lifetime life) {
  if (life.from < last_from_) throw std::logic_error("IntervalAllocator: requests must come in order of their start");
  last_from_ = life.from;
  int best = -1;
  for (size_t k = 0; k < mine_.size(); ++k) {
    const Slot& s = slots_[size_t(mine_[k].first)];
    if (mine_[k].second < life.from && s.bytes >= bytes &&
        (best < 0 || s.bytes < slots_[size_t(mine_[size_t(best)].first)].bytes))
      best = int(k);
  }
  if (best < 0) {
    slots_.push_back({pool_, bytes});
    mine_.push_back({int(slots_.size()) - 1, life.until});
    bytes_ += bytes;
    return int(slots_.size()) - 1;
  }
  mine_[size_t(best)].second = life.until;
  return mine_[size_t(best)].first;
}

namespace {

int64_t bytes_of(const Shape& s) { return graph::numel(s) * int64_t(sizeof(float)); }

// Values whose buffers must outlive the tick's tasks: read through a back edge (latched at the end of the
// tick) or named as a subgraph's output (what a caller reads).
std::set<ValueId> kept_whole(const graph::Graph& g) {
  std::set<ValueId> keep;
  for (const auto& [alias, ref] : g.aliases) keep.insert({ref.node, ref.output});
  for (const auto& gn : g.nodes)
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && gn.schema->is_back_edge(gn.schema->inputs()[p].name))
        keep.insert({gn.inputs[p]->node, gn.inputs[p]->output});
  return keep;
}

// Lifetime of every node output: from its producer's forward to its last reader (forward of an ordering
// consumer; when training, the backward of the producer or of a consumer, where that backward reads it:
// Schema::backward_reads). Returns whether each has a forward consumer.
std::set<ValueId> activation_lifetimes(const graph::Graph& g, ExecutionPlan& plan) {
  std::set<ValueId> consumed;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& t : plan.tensors[i]) t.storage.life = {plan.position({int(i), false}), plan.position({int(i), false})};
  auto extend = [&](ValueId v, int pos) {
    Lifetime& l = plan.tensors[size_t(v.node)][size_t(v.output)].storage.life;
    l.until = std::max(l.until, pos);
  };
  const int end = int(plan.schedule.size()) - 1;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    const int bwd = plan.position({int(i), true});
    if (gn.schema->backward_reads_outputs())
      for (size_t o = 0; o < gn.output_shapes.size() && bwd >= 0; ++o) extend({int(i), int(o)}, bwd);
    for (size_t p = 0; p < gn.inputs.size(); ++p) {
      if (!gn.inputs[p]) continue;
      const ValueId v{gn.inputs[p]->node, gn.inputs[p]->output};
      if (gn.schema->is_back_edge(gn.schema->inputs()[p].name)) {
        extend(v, end);
        continue;
      }
      consumed.insert(v);
      extend(v, gn.schema->backward_reads_input(p) ? std::max(plan.position({int(i), false}), bwd)
                                                    : plan.position({int(i), false}));
    }
  }
  for (const auto& [alias, ref] : g.aliases) extend({ref.node, ref.output}, end);
  return consumed;
}

// Outputs of heavy nodes share slots by lifetime (without an optimizer nothing is kept for a backward pass;
// with one, what the backward tasks read lives until they ran). Left whole: outputs of light nodes (sources,
// state and sampler nodes may keep values across ticks), back-edge reads, unconsumed outputs and subgraph
// outputs.
void share_activations(const graph::Graph& g, ExecutionPlan& plan, const std::set<ValueId>& consumed) {
  const std::set<ValueId> keep = kept_whole(g);
  IntervalAllocator alloc(Slot::Pool::activations, plan.slots);
  for (int i : g.order) {
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    // Optimizers keep their outputs (the step count) from tick to tick.
    if (!gn.schema->is_heavy() || gn.schema->is_sink() || gn.schema->is_optimizer()) continue;
    for (size_t o = 0; o < gn.output_shapes.size(); ++o) {
      const ValueId v{i, int(o)};
      if (keep.count(v) || !consumed.count(v)) continue;
      Storage& s = plan.tensors[size_t(i)][o].storage;
      s.slot = alloc.take(s.bytes, s.life);
      plan.serial_forward = true;
    }
  }
}

// Gradients live from the backward of their consumer to the backward of their producer; on the optimised
// path the backward tasks are chained in the schedule's order and gradients share slots.
void gradient_storage(const graph::Graph& g, ExecutionPlan& plan) {
  IntervalAllocator alloc(Slot::Pool::gradients, plan.slots);
  for (Gradient& gr : plan.autodiff.gradients) {
    gr.storage.bytes = bytes_of(g.shape({gr.value.node, gr.value.output}));
    gr.storage.life = {plan.position({gr.consumer, true}), plan.position({gr.value.node, true})};
    if (!plan.reference) gr.storage.slot = alloc.take(gr.storage.bytes, gr.storage.life);
  }
  plan.serial_backward = !plan.reference;
}

}  // namespace

void plan_buffers(const graph::Graph& g, ExecutionPlan& plan) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto& t : plan.tensors[i]) t.storage.bytes = bytes_of(t.shape);
  const std::set<ValueId> consumed = activation_lifetimes(g, plan);
  if (plan.training()) gradient_storage(g, plan);
  if (!plan.reference) share_activations(g, plan, consumed);
}

}  // namespace noiseflow::runtime::plan
