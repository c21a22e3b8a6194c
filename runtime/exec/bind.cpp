#include "runtime/exec/bind.hpp"

#include <algorithm>
#include <map>

namespace noiseflow::runtime::exec {

namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

// Buffers of the plan's shared slots, allocated on first use.
class SlotBuffers {
 public:
  explicit SlotBuffers(const plan::ExecutionPlan& p) : plan_(p), buffers_(p.slots.size()) {}
  Tensor view(int slot, const Shape& shape, Layout layout) {
    Tensor& b = buffers_[size_t(slot)];
    if (b.empty()) b = Tensor(Shape{plan_.slots[size_t(slot)].bytes / int64_t(sizeof(float))});
    Tensor t = b.prefix_view(shape);
    t.set_layout(layout);
    return t;
  }

 private:
  const plan::ExecutionPlan& plan_;
  std::vector<Tensor> buffers_;
};

Tensor laid_out(const Shape& shape, Layout layout) {
  Tensor t(shape);
  t.set_layout(layout);
  return t;
}

// Runs an allocation, naming the node and the tensor when it fails.
template <class F>
auto allocating(const graph::GraphNode& gn, const std::string& what, F&& f) {
  try {
    return f();
  } catch (const OutOfMemory& e) {
    throw plan_error(gn, what, "out_of_memory", std::string("out of memory: ") + e.what());
  }
}

void bind_outputs(const graph::Graph& g, const plan::ExecutionPlan& plan, SlotBuffers& slots, Bound& b) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const plan::TensorPlan& t : plan.tensors[i]) {
      const std::string what = "output " + q(g.nodes[i].schema->outputs()[size_t(t.value.output)].name);
      b.instances[i].ctx.outputs_.push_back(allocating(g.nodes[i], what, [&] {
        return t.storage.slot >= 0 ? slots.view(t.storage.slot, t.shape, t.layout) : laid_out(t.shape, t.layout);
      }));
    }
}

void bind_inputs(const graph::Graph& g, const plan::ExecutionPlan& plan, Bound& b) {
  std::map<std::pair<int, int>, plan::ValueId> converted;  // (node, port) -> value
  for (const plan::Conversion& c : plan.conversions) converted[{c.node, c.port}] = c.value;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    Instance& in = b.instances[i];
    in.ctx.inputs_.resize(gn.inputs.size());
    for (size_t p = 0; p < gn.inputs.size(); ++p) {
      if (!gn.inputs[p]) continue;
      const Tensor& src = b.instances[size_t(gn.inputs[p]->node)].ctx.outputs_[size_t(gn.inputs[p]->output)];
      if (converted.count({int(i), int(p)})) {
        in.ctx.inputs_[p] = allocating(gn, "input " + q(gn.schema->inputs()[p].name), [&] { return Tensor(src.shape()); });
        in.input_conversions.push_back({src, in.ctx.inputs_[p]});
      } else {
        in.ctx.inputs_[p] = src;
      }
    }
  }
}

void bind_gradients(const graph::Graph& g, const plan::ExecutionPlan& plan, SlotBuffers& slots, Bound& b) {
  const plan::AutodiffPlan& ad = plan.autodiff;
  for (int i : ad.backward_order) {
    Instance& in = b.instances[size_t(i)];
    in.in_backward = true;
    in.ctx.training_ = true;
    in.ctx.grad_inputs_.assign(g.nodes[size_t(i)].inputs.size(), Tensor());
    in.ctx.grad_outputs_.resize(g.nodes[size_t(i)].output_shapes.size());
    in.fan_in.resize(g.nodes[size_t(i)].output_shapes.size());
  }
  for (const plan::ValueId& v : ad.zero_gradients) {
    const plan::TensorPlan& t = plan.tensor(v);
    b.instances[size_t(v.node)].ctx.grad_outputs_[size_t(v.output)] =
        allocating(g.nodes[size_t(v.node)], "gradient", [&] { return laid_out(t.shape, t.layout); });
  }
  std::vector<char> summed(ad.gradients.size(), 0);
  for (const plan::FanIn& f : ad.fan_in)
    for (int k : f.gradients) summed[size_t(k)] = 1;
  for (size_t k = 0; k < ad.gradients.size(); ++k) {
    const plan::Gradient& gr = ad.gradients[k];
    const graph::GraphNode& cn = g.nodes[size_t(gr.consumer)];
    const Shape& shape = plan.tensor(gr.value).shape;
    Tensor t = allocating(cn, "gradient", [&] {
      return gr.storage.slot >= 0 ? slots.view(gr.storage.slot, shape, gr.layout) : laid_out(shape, gr.layout);
    });
    Instance& producer = b.instances[size_t(gr.value.node)];
    auto& sources = producer.fan_in[size_t(gr.value.output)];
    if (!summed[k] || sources.empty()) producer.ctx.grad_outputs_[size_t(gr.value.output)] = t;
    if (summed[k]) sources.push_back(t);
    Instance& consumer = b.instances[size_t(gr.consumer)];
    if (gr.converted) {
      consumer.ctx.grad_inputs_[size_t(gr.port)] = allocating(cn, "gradient", [&] { return Tensor(shape); });
      consumer.grad_conversions.push_back({consumer.ctx.grad_inputs_[size_t(gr.port)], t});
    } else {
      consumer.ctx.grad_inputs_[size_t(gr.port)] = t;
    }
  }
  b.instances[size_t(ad.loss.node)].ctx.grad_outputs_[size_t(ad.loss.output)].fill(1.f);  // d loss / d loss
}

void bind_trainable(const plan::ExecutionPlan& plan, Bound& b) {
  const plan::AutodiffPlan& ad = plan.autodiff;
  Context& opt = b.instances[size_t(ad.optimizer)].ctx;
  for (int i : ad.trainable_nodes)
    for (Param* p : b.instances[size_t(i)].ctx.params_) opt.trainable_.push_back(p);
  for (int r : ad.optimizer_readers) b.instances[size_t(r)].ctx.trainable_ = opt.trainable_;
}

}  // namespace

void bind(const graph::Graph& g, const plan::ExecutionPlan& plan, bool reference, Bound& b) {
  b.instances.clear();
  b.instances.reserve(g.nodes.size());
  for (const graph::GraphNode& gn : g.nodes) {
    const NodeType* type = Registry::global().find(gn.op);
    if (!type) throw plan_error(gn, "op", "unknown_op", "no node type " + q(gn.op));
    b.instances.push_back(make_instance(*type, gn.id, gn.attrs, g.seed, g.ticks));
    b.instances.back().ctx.reference_ = reference;
    if (gn.params_of.empty())
      allocating(gn, "params", [&] {
        add_params(b.instances.back(), gn.params, g.seed, b.params);
        return 0;
      });
  }
  // Weight tying: the owner's values, a gradient of the node's own (the loader checked names and shapes).
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    if (gn.params_of.empty()) continue;
    Context& owner = b.instances[size_t(g.find(gn.params_of))].ctx;
    Context& c = b.instances[i].ctx;
    for (const auto& d : gn.params) {
      const Param& o = *owner.param_by_local_.at(d.name);
      b.tied.push_back(Param{gn.id + "." + d.name, o.value, allocating(gn, "params", [&] { return Tensor(d.shape); }), d.init});
      b.tied.back().grad.zero();
      c.params_.push_back(&b.tied.back());
      c.param_by_local_[d.name] = &b.tied.back();
    }
  }
  SlotBuffers slots(plan);
  bind_outputs(g, plan, slots, b);
  bind_inputs(g, plan, b);
  if (plan.training()) {
    bind_gradients(g, plan, slots, b);
    bind_trainable(plan, b);
  }
}

void sum_tied_gradients(const plan::AutodiffPlan& ad, std::vector<Instance>& instances) {
  for (const auto& t : ad.tie_sums) {
    const std::vector<Param*>& owner = instances[size_t(t.owner)].ctx.params_;
    const bool owner_used = t.users.front() == t.owner;
    for (size_t k = 0; k < owner.size(); ++k) {
      float* d = owner[k]->grad.data();
      const int64_t n = owner[k]->grad.numel();
      if (!owner_used) std::fill(d, d + n, 0.f);
      for (size_t u = owner_used ? 1 : 0; u < t.users.size(); ++u) {
        const float* s = instances[size_t(t.users[u])].ctx.params_[k]->grad.data();
        for (int64_t e = 0; e < n; ++e) d[e] += s[e];
      }
    }
  }
}

void plan_nodes(const graph::Graph& g, std::vector<Instance>& instances) {
  auto is_source = [&](int i) {
    return std::none_of(g.nodes[size_t(i)].inputs.begin(), g.nodes[size_t(i)].inputs.end(),
                        [](auto& r) { return r.has_value(); });
  };
  std::vector<int> order;
  for (int i : g.order)
    if (is_source(i)) order.push_back(i);
  for (int i : g.order)
    if (!is_source(i)) order.push_back(i);
  for (int i : order) {
    try {
      plan_instance(instances[size_t(i)]);
    } catch (const std::exception& e) {
      throw as_run_error(e, g.nodes[size_t(i)], "plan");
    }
  }
}

}  // namespace noiseflow::runtime::exec
