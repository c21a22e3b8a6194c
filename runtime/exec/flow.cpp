#include "runtime/exec/flow.hpp"

#include <algorithm>

namespace noiseflow::runtime::exec {

namespace flow = tbb::flow;

FlowGraph::FlowGraph(const graph::Graph& g, const plan::ExecutionPlan& plan, TaskRunner& runner,
                     std::function<void(int64_t)> allreduce)
    : allreduce_body_(std::move(allreduce)) {
  const size_t n = g.nodes.size();
  fwd_.resize(n);
  bwd_.resize(n);
  auto body = [&runner](int i, bool backward) {
    return [&runner, i, backward](const flow::continue_msg&) {
      runner.run(i, backward);
      return flow::continue_msg();
    };
  };
  for (size_t i = 0; i < n; ++i) fwd_[i] = std::make_unique<Task>(g_, body(int(i), false));
  for (int i : plan.autodiff.backward_order) bwd_[size_t(i)] = std::make_unique<Task>(g_, body(i, true));
  if (plan.allreduce.active() && allreduce_body_) {
    const int opt = plan.autodiff.optimizer;
    allreduce_ = std::make_unique<Task>(g_, [this, &runner, opt](const flow::continue_msg&) {
      runner.run_allreduce(allreduce_body_, opt);
      return flow::continue_msg();
    });
  }
  add_edges(g, plan);
}

void FlowGraph::edge(Task* a, Task* b) {
  if (a == b || std::find(edges_.begin(), edges_.end(), std::pair{a, b}) != edges_.end()) return;
  edges_.push_back({a, b});
  flow::make_edge(*a, *b);
}

void FlowGraph::add_edges(const graph::Graph& g, const plan::ExecutionPlan& plan) {
  const size_t n = g.nodes.size();
  const plan::AutodiffPlan& ad = plan.autodiff;
  std::vector<bool> has_pred(n, false);
  for (size_t i = 0; i < n; ++i) {
    const graph::GraphNode& gn = g.nodes[i];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && !gn.schema->is_back_edge(gn.schema->inputs()[p].name)) {
        edge(fwd_[size_t(gn.inputs[p]->node)].get(), fwd_[i].get());
        has_pred[i] = true;
      }
  }
  // Backward: after the node's own forward and after every consumer's backward.
  for (int i : ad.backward_order) {
    edge(fwd_[size_t(i)].get(), bwd_[size_t(i)].get());
    const graph::GraphNode& gn = g.nodes[size_t(i)];
    for (size_t p = 0; p < gn.inputs.size(); ++p)
      if (gn.inputs[p] && ad.in_backward[size_t(gn.inputs[p]->node)] && gn.schema->inputs()[p].differentiable)
        edge(bwd_[size_t(i)].get(), bwd_[size_t(gn.inputs[p]->node)].get());
  }
  // Shared buffers need the schedule's order.
  Task* prev_fwd = nullptr;
  Task* prev_bwd = nullptr;
  for (const plan::Task& t : plan.schedule) {
    Task* cur = (t.backward ? bwd_ : fwd_)[size_t(t.node)].get();
    Task*& prev = t.backward ? prev_bwd : prev_fwd;
    if ((t.backward ? plan.serial_backward : plan.serial_forward) && prev) edge(prev, cur);
    prev = cur;
  }
  // The optimizer steps after every backward task, and everything it feeds after it.
  // With data parallelism the allreduce sits between them.
  if (ad.optimizer >= 0) {
    Task* before_opt = allreduce_ ? allreduce_.get() : fwd_[size_t(ad.optimizer)].get();
    for (int b : ad.backward_order) edge(bwd_[size_t(b)].get(), before_opt);
    if (allreduce_) edge(allreduce_.get(), fwd_[size_t(ad.optimizer)].get());
    has_pred[size_t(ad.optimizer)] = true;
  }
  for (size_t i = 0; i < n; ++i)
    if (!has_pred[i]) flow::make_edge(start_, *fwd_[i]);
}

void FlowGraph::run_tick() {
  start_.try_put(flow::continue_msg());
  g_.wait_for_all();
}

}  // namespace noiseflow::runtime::exec
