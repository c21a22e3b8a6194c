#include "runtime/exec/flow.hpp"

#include <algorithm>

namespace noiseflow::runtime::exec {

namespace flow = tbb::flow;

FlowGraph::FlowGraph(const graph::Graph& g, const plan::ExecutionPlan& plan, TaskRunner& runner,
                     std::function<void(int64_t)> allreduce, std::function<void(int64_t)> ties)
    : allreduce_body_(std::move(allreduce)), ties_body_(std::move(ties)) {
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
  if (!plan.autodiff.tie_sums.empty() && ties_body_) {
    const int opt = plan.autodiff.optimizer;
    ties_ = std::make_unique<Task>(g_, [this, &runner, opt](const flow::continue_msg&) {
      runner.run_allreduce(ties_body_, opt, "tied gradients");
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
    Task* opt = fwd_[size_t(ad.optimizer)].get();
    Task* before_opt = ties_ ? ties_.get() : allreduce_ ? allreduce_.get() : opt;
    for (int b : ad.backward_order) edge(bwd_[size_t(b)].get(), before_opt);
    if (ties_) edge(ties_.get(), allreduce_ ? allreduce_.get() : opt);
    if (allreduce_) edge(allreduce_.get(), opt);
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
