#include "runtime/executor.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include <omp.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>

#include "runtime/parameters.hpp"

namespace noiseflow::runtime {

namespace flow = tbb::flow;

struct Executor::Flow {
  flow::graph g;
  flow::broadcast_node<flow::continue_msg> start{g};
  std::vector<std::unique_ptr<flow::continue_node<flow::continue_msg>>> fwd, bwd;
  std::unique_ptr<tbb::global_control> limit;
};

namespace {
std::string q(const std::string& s) { return "\"" + s + "\""; }

int effective_threads(int requested) {
  if (requested > 0) return requested;
  return omp_get_num_procs();
}

// Buffers shared by tensors whose lifetimes [from, until] (positions in a fixed execution order) do not
// overlap. Requests must come in order of `from`; each takes the smallest free buffer that fits, else a new
// one.
class SharedBuffers {
 public:
  Tensor take(const Shape& shape, Layout layout, int from, int until) {
    const int64_t need = graph::numel(shape);
    Buffer* best = nullptr;
    for (auto& b : buffers_)
      if (b.busy_until < from && b.storage.numel() >= need && (!best || b.storage.numel() < best->storage.numel()))
        best = &b;
    if (!best) {
      best = &buffers_.emplace_back(Buffer{Tensor(Shape{need}), 0});
      bytes_ += need * int64_t(sizeof(float));
    }
    best->busy_until = until;
    Tensor t = best->storage.prefix_view(shape);
    t.set_layout(layout);
    return t;
  }
  int64_t bytes() const { return bytes_; }

 private:
  struct Buffer {
    Tensor storage;
    int busy_until;
  };
  std::deque<Buffer> buffers_;
  int64_t bytes_ = 0;
};
}  // namespace

[[noreturn]] void Executor::rethrow(const std::exception& e, int i, const char* phase) const {
  const graph::GraphNode& n = graph_.nodes[i];
  std::string field;
  if (auto* ne = dynamic_cast<const NodeError*>(&e)) {
    field = ne->field;
    const Schema& s = *n.schema;
    if (s.find_input(field)) field = "input " + q(field);
    else if (s.find_attr(field)) field = "attr " + q(field);
  } else if (auto* gs = dynamic_cast<const graph::ShapeError*>(&e)) {
    field = gs->field;
  } else {
    field = phase;
  }
  std::string msg = n.file + ": node " + q(n.id) + ", " + (field.empty() ? std::string(phase) : field) + ": " + e.what();
  throw RunError(msg, n.id, phase);
}

Executor::Executor(const graph::Graph& g, ExecutorOptions opt, std::shared_ptr<RunState> state)
    : graph_(g), opt_(opt), state_(state ? std::move(state) : std::make_shared<RunState>()) {
  int threads = effective_threads(opt_.threads);
  omp_set_num_threads(threads);
  flow_ = std::make_unique<Flow>();
  // TBB threads running node bodies. One by default: heavy nodes use every core through OpenMP anyway,
  // and a second TBB thread brings its own OpenMP team that competes with the lane's (docs/PERFORMANCE.md).
  const int flow_threads = opt_.flow_threads > 0 ? opt_.flow_threads : 1;
  flow_->limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, flow_threads);

  const size_t n = graph_.nodes.size();
  instances_.resize(n);
  // Outputs and parameters first, so inputs can bind to producers' tensors.
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = graph_.nodes[i];
    Instance& in = instances_[i];
    const NodeType* type = Registry::global().find(gn.op);
    if (!type) throw RunError(gn.file + ": node " + q(gn.id) + ", op: no node type " + q(gn.op), gn.id, "plan");
    in.node = type->make();
    Context& c = in.ctx;
    c.id_ = gn.id;
    c.schema_ = &type->schema;
    c.attrs_ = gn.attrs;
    c.seed_ = graph_.seed;
    c.ticks_ = graph_.ticks;
    c.run_state_ = state_.get();
    c.executor_ = this;
    c.reference_ = opt_.reference;
    for (auto& s : gn.output_shapes) c.outputs_.push_back(Tensor::unallocated(s));  // buffers once planned
    for (auto& d : gn.params) {
      params_.push_back(make_param(gn.id + "." + d.name, d.shape, d.init, graph_.seed));
      c.params_.push_back(&params_.back());
      c.param_by_local_[d.name] = &params_.back();
    }
  }
  if (!opt_.reference) plan_layouts();
  if (!opt_.reference && std::none_of(graph_.nodes.begin(), graph_.nodes.end(),
                                      [](const graph::GraphNode& gn) { return gn.schema->is_optimizer(); }))
    plan_forward_buffers();
  for (auto& in : instances_)
    for (auto& t : in.ctx.outputs_) t.allocate();
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = graph_.nodes[i];
    Instance& in = instances_[i];
    Context& c = in.ctx;
    c.inputs_.resize(gn.inputs.size());
    for (size_t p = 0; p < gn.inputs.size(); ++p) {
      if (!gn.inputs[p]) continue;
      const Tensor& src = instances_[gn.inputs[p]->node].ctx.outputs_[gn.inputs[p]->output];
      if (src.blocked() && gn.schema->layout_support() == graph::LayoutSupport::plain) {
        c.inputs_[p] = Tensor(src.shape());  // a plain copy, refreshed before every forward
        in.input_conversions.push_back({src, c.inputs_[p]});
      } else {
        c.inputs_[p] = src;
      }
    }
  }
  plan_autodiff();
  for (size_t i = 0; i < n; ++i) {
    const Instance& in = instances_[i];
    for (size_t o = 0; o < in.ctx.outputs_.size(); ++o) {
      const Tensor& t = in.ctx.outputs_[o];
      ++stats_.tensors;
      stats_.blocked_tensors += t.blocked();
      if (!shared_outputs_.count({int(i), int(o)})) stats_.activation_bytes += t.numel() * int64_t(sizeof(float));
    }
    stats_.conversions += int64_t(in.input_conversions.size());
  }
  stats_.activation_bytes += stats_.shared_activation_bytes;
  // Plan every node (primitives are created here, on this thread, once):
  // sources first, so a weight loader fills parameters before their users plan.
  std::vector<int> plan_order;
  for (int i : graph_.order)
    if (std::none_of(graph_.nodes[i].inputs.begin(), graph_.nodes[i].inputs.end(), [](auto& r) { return r.has_value(); }))
      plan_order.push_back(i);
  for (int i : graph_.order)
    if (std::any_of(graph_.nodes[i].inputs.begin(), graph_.nodes[i].inputs.end(), [](auto& r) { return r.has_value(); }))
      plan_order.push_back(i);
  for (int i : plan_order) {
    try {
      instances_[i].node->plan(instances_[i].ctx);
    } catch (const std::exception& e) {
      rethrow(e, i, "plan");
    }
  }
  build_flow();
}

Executor::~Executor() = default;

// Which tensors live in nChw16c. Tensors joined by a `uniform` node (element-wise ops: all its rank-4
// tensors share one layout) form a region; a region is blocked when every tensor in it can be (rank 4,
// channels a multiple of 16, produced by a node that handles blocked layouts) and some `any` node
// (a convolution) reads or writes it, so that chains conv -> add -> group_norm -> silu -> conv never leave
// the layout the convolutions run fastest on. `plain` consumers of a blocked tensor get converted copies.
void Executor::plan_layouts() {
  const size_t n = graph_.nodes.size();
  std::map<std::pair<int, int>, int> ids;  // (node, output) -> region element
  std::vector<int> parent;
  std::vector<char> blockable, near_any;
  for (size_t i = 0; i < n; ++i)
    for (size_t o = 0; o < graph_.nodes[i].output_shapes.size(); ++o)
      if (Tensor::can_block(graph_.nodes[i].output_shapes[o])) {
        ids[{int(i), int(o)}] = int(parent.size());
        parent.push_back(int(parent.size()));
        blockable.push_back(graph_.nodes[i].schema->layout_support() != graph::LayoutSupport::plain);
        near_any.push_back(graph_.nodes[i].schema->layout_support() == graph::LayoutSupport::any);
      }
  auto find = [&](int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = graph_.nodes[i];
    const auto support = gn.schema->layout_support();
    if (support == graph::LayoutSupport::plain) continue;
    std::vector<int> mine;  // this node's blockable tensors
    for (auto& r : gn.inputs)
      if (r)
        if (auto it = ids.find({r->node, r->output}); it != ids.end()) mine.push_back(it->second);
    for (size_t o = 0; o < gn.output_shapes.size(); ++o)
      if (auto it = ids.find({int(i), int(o)}); it != ids.end()) mine.push_back(it->second);
    for (int t : mine) {
      if (support == graph::LayoutSupport::any) near_any[t] = 1;
      if (support == graph::LayoutSupport::uniform) parent[find(t)] = find(mine[0]);
    }
  }
  std::vector<char> region_ok(parent.size(), 1), region_any(parent.size(), 0);
  for (size_t t = 0; t < parent.size(); ++t) {
    if (!blockable[t]) region_ok[find(int(t))] = 0;
    if (near_any[t]) region_any[find(int(t))] = 1;
  }
  for (auto& [key, t] : ids)
    if (region_ok[find(t)] && region_any[find(t)])
      instances_[key.first].ctx.outputs_[key.second].set_layout(Layout::nChw16c);
}

// Without an optimizer no value is kept for a backward pass. On the optimised path the forward tasks then
// run one after another in topological order, and the outputs of compute (heavy) nodes share buffers by
// lifetime: from the producer's forward to its last consumer's. Left whole: outputs of light nodes (sources,
// state and sampler nodes may keep values across ticks), outputs read through a back edge (latched at the end
// of the tick), outputs nobody consumes and subgraph outputs ("net"), so what a caller reads stays intact.
void Executor::plan_forward_buffers() {
  const size_t n = graph_.nodes.size();
  std::vector<int> pos(n, 0);
  for (size_t k = 0; k < graph_.order.size(); ++k) pos[graph_.order[k]] = int(k);
  std::map<std::pair<int, int>, int> last;  // (node, output) -> position of its last consumer
  std::set<std::pair<int, int>> keep;
  for (const auto& [alias, ref] : graph_.aliases) keep.insert({ref.node, ref.output});
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = graph_.nodes[i];
    for (size_t p = 0; p < gn.inputs.size(); ++p) {
      if (!gn.inputs[p]) continue;
      const std::pair key{gn.inputs[p]->node, gn.inputs[p]->output};
      if (gn.schema->is_back_edge(gn.schema->inputs()[p].name)) keep.insert(key);
      else last[key] = std::max(last.count(key) ? last[key] : 0, pos[i]);
    }
  }
  SharedBuffers shared;
  for (size_t k = 0; k < graph_.order.size(); ++k) {
    const int i = graph_.order[k];
    const graph::GraphNode& gn = graph_.nodes[i];
    if (!gn.schema->is_heavy() || gn.schema->is_sink()) continue;
    for (size_t o = 0; o < gn.output_shapes.size(); ++o) {
      const std::pair key{i, int(o)};
      if (keep.count(key) || !last.count(key)) continue;
      Tensor& t = instances_[i].ctx.outputs_[o];
      t = shared.take(t.shape(), t.layout(), int(k), last[key]);
      shared_outputs_.insert(key);
    }
  }
  serial_forward_ = !shared_outputs_.empty();
  stats_.shared_activation_bytes = shared.bytes();
}

void Executor::plan_autodiff() {
  const size_t n = graph_.nodes.size();
  std::vector<int> optimizers;
  for (size_t i = 0; i < n; ++i)
    if (graph_.nodes[i].schema->is_optimizer()) optimizers.push_back(int(i));
  if (optimizers.empty()) return;
  const graph::GraphNode& opt_node = graph_.nodes[optimizers[0]];
  if (optimizers.size() > 1)
    throw RunError(opt_node.file + ": node " + q(graph_.nodes[optimizers[1]].id) +
                       ", op: only one optimizer per pipeline is supported (found " + q(opt_node.id) + " too)",
                   graph_.nodes[optimizers[1]].id, "plan");
  int li = opt_node.schema->input_index("loss");
  if (li < 0 || !opt_node.inputs[li])
    throw RunError(opt_node.file + ": node " + q(opt_node.id) + ", input \"loss\": the optimizer needs a loss input",
                   opt_node.id, "plan");
  int loss = opt_node.inputs[li]->node;

  // requires_grad: a node has parameters, or a differentiable input fed by such a node.
  std::vector<bool> req(n, false);
  for (int i : graph_.order) {
    const graph::GraphNode& gn = graph_.nodes[i];
    if (!gn.params.empty() && !gn.schema->is_optimizer()) req[i] = true;
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && gn.schema->inputs()[p].differentiable && req[gn.inputs[p]->node]) req[i] = true;
  }
  // Ancestors of the loss (ordering edges only).
  std::vector<bool> anc(n, false);
  anc[loss] = true;
  for (auto it = graph_.order.rbegin(); it != graph_.order.rend(); ++it) {
    if (!anc[*it]) continue;
    const graph::GraphNode& gn = graph_.nodes[*it];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && !gn.schema->is_back_edge(gn.schema->inputs()[p].name)) anc[gn.inputs[p]->node] = true;
  }
  if (!req[loss])
    throw RunError(opt_node.file + ": node " + q(opt_node.id) + ", input \"loss\": no trainable parameter upstream of " +
                       q(graph_.nodes[loss].id) + " (nothing to optimise)",
                   opt_node.id, "plan");
  // A node on the path whose gradient would be silently dropped is an error.
  for (size_t i = 0; i < n; ++i) {
    if (!anc[i]) continue;
    const graph::GraphNode& gn = graph_.nodes[i];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && req[gn.inputs[p]->node] && !gn.schema->inputs()[p].differentiable)
        throw RunError(gn.file + ": node " + q(gn.id) + ", input " + q(gn.schema->inputs()[p].name) + ": " + gn.op +
                           " is not differentiable in this input, but it lies between trainable parameters and the loss " +
                           q(graph_.nodes[loss].id),
                       gn.id, "plan");
  }
  // Backward order: consumers first.
  for (auto it = graph_.order.rbegin(); it != graph_.order.rend(); ++it)
    if (anc[*it] && req[*it]) {
      backward_order_.push_back(*it);
      instances_[*it].in_backward = true;
    }
  // Gradient routing: who sends gradient to which (producer, output).
  std::map<std::pair<int, int>, std::vector<std::pair<int, int>>> senders;  // (prod, out) -> [(cons, port)]
  for (int i : backward_order_) {
    const graph::GraphNode& gn = graph_.nodes[i];
    Context& c = instances_[i].ctx;
    c.grad_inputs_.assign(gn.inputs.size(), Tensor());
    c.grad_outputs_.resize(gn.output_shapes.size());
    instances_[i].grad_sources.resize(gn.output_shapes.size());
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && gn.schema->inputs()[p].differentiable && instances_[gn.inputs[p]->node].in_backward)
        senders[{gn.inputs[p]->node, gn.inputs[p]->output}].push_back({i, int(p)});
  }
  // Gradient buffers. On the optimised path the backward tasks run one after another in
  // backward_order_, so every gradient tensor has a known lifetime — from the backward of the consumer
  // that writes it to the backward of the producer that reads it — and tensors whose lifetimes do not
  // overlap share a buffer (best fit among the free ones). The reference path gives each its own.
  serial_backward_ = !opt_.reference;
  std::vector<int> pos(n, -1);
  for (size_t k = 0; k < backward_order_.size(); ++k) pos[backward_order_[k]] = int(k);
  SharedBuffers shared;
  auto grad_tensor = [&](const Tensor& value, int from, int until) {
    ++stats_.gradient_tensors;
    stats_.gradient_bytes_unshared += value.numel() * int64_t(sizeof(float));
    if (serial_backward_) return shared.take(value.shape(), value.layout(), from, until);
    stats_.gradient_bytes += value.numel() * int64_t(sizeof(float));
    Tensor t(value.shape());
    t.set_layout(value.layout());
    return t;
  };
  for (int i : backward_order_) {
    Instance& in = instances_[i];
    for (size_t o = 0; o < in.ctx.grad_outputs_.size(); ++o)
      if (!senders.count({i, int(o)})) {
        in.ctx.grad_outputs_[o] = Tensor(graph_.nodes[i].output_shapes[o]);  // no gradient flows back: zeros
        in.ctx.grad_outputs_[o].set_layout(in.ctx.outputs_[o].layout());
      }
  }
  // In backward order, so lifetimes are handed out by their start.
  for (int c : backward_order_) {
    const graph::GraphNode& gn = graph_.nodes[c];
    for (size_t port = 0; port < gn.inputs.size(); ++port) {
      if (!gn.inputs[port]) continue;
      auto it = senders.find({gn.inputs[port]->node, gn.inputs[port]->output});
      if (it == senders.end() || std::find(it->second.begin(), it->second.end(), std::pair{c, int(port)}) == it->second.end())
        continue;
      const int prod = gn.inputs[port]->node, out = gn.inputs[port]->output;
      Instance& producer = instances_[prod];
      const Tensor& value = producer.ctx.outputs_[out];
      Tensor t = grad_tensor(value, pos[c], pos[prod]);
      if (it->second.size() == 1) {
        producer.ctx.grad_outputs_[out] = t;  // one consumer: it writes straight into our gradient
      } else {
        if (producer.grad_sources[out].empty()) producer.ctx.grad_outputs_[out] = t;
        producer.grad_sources[out].push_back(t);
      }
      Instance& consumer = instances_[c];
      if (consumer.ctx.inputs_[port].layout() != t.layout()) {  // a plain node reading a blocked tensor
        consumer.ctx.grad_inputs_[port] = Tensor(value.shape());
        consumer.grad_conversions.push_back({consumer.ctx.grad_inputs_[port], t});
      } else {
        consumer.ctx.grad_inputs_[port] = t;
      }
    }
  }
  stats_.gradient_bytes += shared.bytes();
  instances_[loss].ctx.grad_outputs_[opt_node.inputs[li]->output].fill(1.f);  // d loss / d loss
  for (int i : backward_order_)
    for (Param* p : instances_[i].ctx.params_) instances_[optimizers[0]].ctx.trainable_.push_back(p);
  // Nodes fed directly by the optimizer (optim.ema through its `step` input) see the same trainable
  // list; that data edge already runs them after the update (build_flow).
  for (size_t i = 0; i < n; ++i)
    for (const auto& in : graph_.nodes[i].inputs)
      if (in && in->node == optimizers[0]) {
        instances_[i].ctx.trainable_ = instances_[optimizers[0]].ctx.trainable_;
        break;
      }
}

bool Executor::due(const Instance& in, int64_t tick) const {
  const graph::GraphNode& gn = graph_.nodes[&in - instances_.data()];
  if (!gn.every && !gn.at_end) return true;
  if (gn.every && (tick + 1) % gn.every == 0) return true;
  return gn.at_end && tick + 1 == graph_.ticks;
}

void Executor::build_flow() {
  Flow& f = *flow_;
  const size_t n = graph_.nodes.size();
  const int threads = effective_threads(opt_.threads);
  f.fwd.resize(n);
  f.bwd.resize(n);
  auto body = [this, threads](int i, bool backward) {
    return [this, i, backward, threads](const flow::continue_msg&) {
      Instance& in = instances_[i];
      {
        std::lock_guard lock(error_m_);
        if (error_) return flow::continue_msg();
      }
      if (!backward && !due(in, in.ctx.tick_)) return flow::continue_msg();
      try {
        if (cancel_) throw Cancelled();
        std::unique_lock<std::mutex> lane(lane_, std::defer_lock);
        if (in.ctx.schema_->is_heavy()) lane.lock();
        omp_set_num_threads(in.ctx.schema_->is_heavy() ? threads : 1);
        auto t0 = opt_.profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
        if (backward) {
          for (size_t o = 0; o < in.grad_sources.size(); ++o) {
            if (in.grad_sources[o].size() < 2) continue;
            Tensor& g = in.ctx.grad_outputs_[o];  // the first source
            float* d = g.data();
            for (size_t k = 1; k < in.grad_sources[o].size(); ++k) {
              const float* s = in.grad_sources[o][k].data();
              for (int64_t e = 0; e < g.numel(); ++e) d[e] += s[e];
            }
          }
          in.node->backward(in.ctx);
          for (auto& cv : in.grad_conversions) cv.to.assign(cv.from);
        } else {
          for (auto& cv : in.input_conversions) cv.to.assign(cv.from);
          in.node->forward(in.ctx);
        }
        if (opt_.profile) {
          double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          (backward ? in.bwd_s : in.fwd_s) += dt;
          ++(backward ? in.bwd_n : in.fwd_n);
        }
      } catch (...) {
        std::lock_guard lock(error_m_);
        if (!error_) {
          try {
            throw;
          } catch (const Cancelled&) {
            error_ = std::current_exception();
          } catch (const std::exception& e) {
            try {
              rethrow(e, i, backward ? "backward" : "forward");
            } catch (...) {
              error_ = std::current_exception();
            }
          }
        }
      }
      return flow::continue_msg();
    };
  };
  for (size_t i = 0; i < n; ++i)
    f.fwd[i] = std::make_unique<flow::continue_node<flow::continue_msg>>(f.g, body(int(i), false));
  for (int i : backward_order_)
    f.bwd[i] = std::make_unique<flow::continue_node<flow::continue_msg>>(f.g, body(i, true));

  std::set<std::pair<flow::continue_node<flow::continue_msg>*, flow::continue_node<flow::continue_msg>*>> edges;
  auto edge = [&](flow::continue_node<flow::continue_msg>* a, flow::continue_node<flow::continue_msg>* b) {
    if (a != b && edges.insert({a, b}).second) flow::make_edge(*a, *b);
  };
  std::vector<bool> has_pred(n, false);
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = graph_.nodes[i];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && !gn.schema->is_back_edge(gn.schema->inputs()[p].name)) {
        edge(f.fwd[gn.inputs[p]->node].get(), f.fwd[i].get());
        has_pred[i] = true;
      }
  }
  // Backward: after the node's own forward and after every consumer's backward.
  for (int i : backward_order_) {
    edge(f.fwd[i].get(), f.bwd[i].get());
    const graph::GraphNode& gn = graph_.nodes[i];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && instances_[gn.inputs[p]->node].in_backward && gn.schema->inputs()[p].differentiable)
        edge(f.bwd[i].get(), f.bwd[gn.inputs[p]->node].get());
  }
  // Shared buffers need the planned order.
  if (serial_forward_)
    for (size_t k = 1; k < graph_.order.size(); ++k) edge(f.fwd[graph_.order[k - 1]].get(), f.fwd[graph_.order[k]].get());
  if (serial_backward_)
    for (size_t k = 1; k < backward_order_.size(); ++k)
      edge(f.bwd[backward_order_[k - 1]].get(), f.bwd[backward_order_[k]].get());
  // The optimizer steps after every backward task, and everything it feeds after it.
  for (size_t i = 0; i < n; ++i)
    if (graph_.nodes[i].schema->is_optimizer()) {
      for (int b : backward_order_) edge(f.bwd[b].get(), f.fwd[i].get());
      has_pred[i] = true;
    }
  for (size_t i = 0; i < n; ++i)
    if (!has_pred[i]) flow::make_edge(f.start, *f.fwd[i]);
}

void Executor::run_tick(int64_t tick) {
  for (auto& in : instances_) in.ctx.tick_ = tick;
  flow_->start.try_put(flow::continue_msg());
  flow_->g.wait_for_all();
  std::exception_ptr err;
  {
    std::lock_guard lock(error_m_);
    err = error_;
    error_ = nullptr;
  }
  if (err) {
    flow_->g.reset();
    std::rethrow_exception(err);
  }
  for (int i : graph_.order) {
    try {
      instances_[i].node->end_tick(instances_[i].ctx);
    } catch (const std::exception& e) {
      rethrow(e, i, "end of tick");
    }
  }
}

void Executor::step() {
  omp_set_num_threads(effective_threads(opt_.threads));
  run_tick(next_tick_);
  ++next_tick_;
}

void Executor::run(const std::function<void(const TickInfo&)>& on_tick) {
  auto t0 = std::chrono::steady_clock::now();
  omp_set_num_threads(effective_threads(opt_.threads));
  while (next_tick_ < graph_.ticks) {
    if (cancel_) {
      cancel_ = false;  // honoured: a later run() may continue
      throw Cancelled();
    }
    run_tick(next_tick_);
    ++next_tick_;
    if (on_tick) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      on_tick({next_tick_ - 1, graph_.ticks, s});
    }
  }
}

Tensor Executor::output(const std::string& ref) const {
  auto r = graph_.resolve(ref);
  if (!r) throw std::invalid_argument("no node output " + q(ref) + " in " + graph_.file);
  if (shared_outputs_.count({r->node, r->output}))
    throw std::invalid_argument("node output " + q(ref) + " of " + graph_.file +
                                " is an intermediate tensor whose buffer the plan shares with others (a pipeline "
                                "without an optimizer reuses memory by lifetime): read a subgraph output or an "
                                "unconsumed output, or run with ExecutorOptions::reference (CLI --reference)");
  const Tensor& t = instances_[r->node].ctx.outputs_[r->output];
  return t.blocked() ? t.to_plain() : t;
}

std::vector<NodeProfile> Executor::profile() const {
  std::vector<NodeProfile> v;
  for (size_t i = 0; i < instances_.size(); ++i) {
    const Instance& in = instances_[i];
    v.push_back({graph_.nodes[i].id, graph_.nodes[i].op, in.fwd_s, in.bwd_s, in.fwd_n, in.bwd_n});
  }
  return v;
}

void Executor::reset_profile() {
  for (auto& in : instances_) in.fwd_s = in.bwd_s = 0, in.fwd_n = in.bwd_n = 0;
}

Param* Executor::find_param(const std::string& name) {
  for (auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace noiseflow::runtime
