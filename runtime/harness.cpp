#include "runtime/harness.hpp"


namespace noiseflow::runtime {

NodeHarness::NodeHarness(const std::string& op, const Json& attrs, const NamedTensors& inputs, uint64_t seed,
                         int64_t ticks, Layout layout) {
  auto laid_out = [layout](Tensor t) {
    if (layout == Layout::nChw16c && Tensor::can_block(t.shape())) t.set_layout(Layout::nChw16c);
    return t;
  };
  const NodeType* type = Registry::global().find(op);
  if (!type) throw std::invalid_argument("NodeHarness: unknown op '" + op + "'");
  const Schema& s = type->schema;
  in_ = exec::make_instance(*type, "node", s.with_defaults(attrs), seed, ticks);
  in_.ctx.inputs_.resize(s.inputs().size());
  std::vector<std::optional<Shape>> shapes(s.inputs().size());
  for (auto& [name, t] : inputs) {
    int i = s.input_index(name);
    if (i < 0) throw std::invalid_argument("NodeHarness: " + op + " has no input '" + name + "'");
    in_.ctx.inputs_[i] = laid_out(Tensor(t.shape()));
    in_.ctx.inputs_[i].assign_plain(t.blocked() ? t.to_plain() : t);
    shapes[i] = t.shape();
  }
  // The loader's attribute checks (type, range, choices, required), raised as the shape rule's error type.
  for (const graph::Diagnostic& d : s.check_attrs(in_.ctx.attrs_, "", "node")) {
    const std::string name = d.field.size() > 7 ? d.field.substr(6, d.field.size() - 7) : d.field;  // attr "NAME"
    throw graph::ShapeError(name, d.message);
  }
  auto sc = s.infer(in_.ctx.attrs_, shapes);
  for (auto& shape : sc.outputs) in_.ctx.outputs_.push_back(laid_out(Tensor(shape)));
  exec::add_params(in_, sc.params, seed, params_);
  in_.ctx.training_ = s.is_differentiable() || !sc.params.empty();
  exec::plan_instance(in_);
}

void NodeHarness::set_input(const std::string& name, const Tensor& t) {
  Tensor& in = input(name);
  if (in.blocked()) in.assign_plain(t.view(in.shape()));
  else in.copy_from(t);
}

Tensor& NodeHarness::input(const std::string& name) {
  int i = in_.ctx.schema().input_index(name);
  if (i < 0 || in_.ctx.inputs_[i].empty()) throw std::invalid_argument("NodeHarness: no input '" + name + "'");
  return in_.ctx.inputs_[i];
}

Tensor& NodeHarness::output(const std::string& name) { return name.empty() ? in_.ctx.output(0) : in_.ctx.output(name); }

void NodeHarness::forward(int64_t tick) {
  in_.ctx.tick_ = tick;
  in_.node->forward(in_.ctx);
}

void NodeHarness::backward(const NamedTensors& grad_outputs) {
  const Schema& s = in_.ctx.schema();
  in_.ctx.grad_outputs_.clear();
  for (auto& o : in_.ctx.outputs_) {
    in_.ctx.grad_outputs_.emplace_back(o.shape());
    in_.ctx.grad_outputs_.back().set_layout(o.layout());
  }
  for (auto& [name, g] : grad_outputs) {
    int i = s.output_index(name);
    if (i < 0) throw std::invalid_argument("NodeHarness: no output '" + name + "'");
    Tensor& go = in_.ctx.grad_outputs_[i];
    if (go.blocked()) go.assign_plain(g.blocked() ? g.to_plain() : g.view(go.shape()));
    else go.copy_from(g);
  }
  in_.ctx.grad_inputs_.assign(s.inputs().size(), Tensor());
  for (size_t i = 0; i < s.inputs().size(); ++i)
    if (s.inputs()[i].differentiable && !in_.ctx.inputs_[i].empty()) {
      in_.ctx.grad_inputs_[i] = Tensor(in_.ctx.inputs_[i].shape());
      in_.ctx.grad_inputs_[i].set_layout(in_.ctx.inputs_[i].layout());
    }
  for (auto* p : in_.ctx.params_) p->grad.zero();
  in_.node->backward(in_.ctx);
}

}  // namespace noiseflow::runtime
