#include "runtime/harness.hpp"

#include "runtime/parameters.hpp"

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
  ctx_.id_ = "node";
  ctx_.schema_ = &s;
  ctx_.attrs_ = s.with_defaults(attrs);
  ctx_.seed_ = seed;
  ctx_.ticks_ = ticks;
  ctx_.inputs_.resize(s.inputs().size());
  std::vector<std::optional<Shape>> shapes(s.inputs().size());
  for (auto& [name, t] : inputs) {
    int i = s.input_index(name);
    if (i < 0) throw std::invalid_argument("NodeHarness: " + op + " has no input '" + name + "'");
    ctx_.inputs_[i] = laid_out(Tensor(t.shape()));
    ctx_.inputs_[i].assign_plain(t.blocked() ? t.to_plain() : t);
    shapes[i] = t.shape();
  }
  for (auto& a : s.attrs())
    if (a.required() && !ctx_.attrs_.contains(a.name))
      throw std::invalid_argument("NodeHarness: " + op + " needs attribute '" + a.name + "'");
  auto sc = s.infer(ctx_.attrs_, shapes);
  for (auto& shape : sc.outputs) ctx_.outputs_.push_back(laid_out(Tensor(shape)));
  for (auto& d : sc.params) {
    params_.push_back(make_param("node." + d.name, d.shape, d.init, seed));
    ctx_.params_.push_back(&params_.back());
    ctx_.param_by_local_[d.name] = &params_.back();
  }
  node_ = type->make();
  node_->plan(ctx_);
}

void NodeHarness::set_input(const std::string& name, const Tensor& t) {
  Tensor& in = input(name);
  if (in.blocked()) in.assign_plain(t.view(in.shape()));
  else in.copy_from(t);
}

Tensor& NodeHarness::input(const std::string& name) {
  int i = ctx_.schema().input_index(name);
  if (i < 0 || ctx_.inputs_[i].empty()) throw std::invalid_argument("NodeHarness: no input '" + name + "'");
  return ctx_.inputs_[i];
}

Tensor& NodeHarness::output(const std::string& name) { return name.empty() ? ctx_.output(0) : ctx_.output(name); }

void NodeHarness::forward(int64_t tick) {
  ctx_.tick_ = tick;
  node_->forward(ctx_);
}

void NodeHarness::backward(const NamedTensors& grad_outputs) {
  const Schema& s = ctx_.schema();
  ctx_.grad_outputs_.clear();
  for (auto& o : ctx_.outputs_) {
    ctx_.grad_outputs_.emplace_back(o.shape());
    ctx_.grad_outputs_.back().set_layout(o.layout());
  }
  for (auto& [name, g] : grad_outputs) {
    int i = s.output_index(name);
    if (i < 0) throw std::invalid_argument("NodeHarness: no output '" + name + "'");
    Tensor& go = ctx_.grad_outputs_[i];
    if (go.blocked()) go.assign_plain(g.blocked() ? g.to_plain() : g.view(go.shape()));
    else go.copy_from(g);
  }
  ctx_.grad_inputs_.assign(s.inputs().size(), Tensor());
  for (size_t i = 0; i < s.inputs().size(); ++i)
    if (s.inputs()[i].differentiable && !ctx_.inputs_[i].empty()) {
      ctx_.grad_inputs_[i] = Tensor(ctx_.inputs_[i].shape());
      ctx_.grad_inputs_[i].set_layout(ctx_.inputs_[i].layout());
    }
  for (auto* p : ctx_.params_) p->grad.zero();
  node_->backward(ctx_);
}

}  // namespace noiseflow::runtime
