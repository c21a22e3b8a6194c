#include "runtime/exec/executor.hpp"

#include <chrono>
#include <map>

#include <omp.h>
#include <tbb/task_arena.h>

#include "runtime/exec/allreduce.hpp"
#include "runtime/exec/bind.hpp"
#include "runtime/exec/flow.hpp"
#include "runtime/exec/task.hpp"
#include "runtime/memory.hpp"

namespace noiseflow::runtime {

namespace {
int effective_threads(int requested) { return requested > 0 ? requested : omp_get_num_procs(); }

// Sets this thread's OpenMP thread count for a scope and restores the caller's afterwards.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};
}  // namespace

struct Executor::Impl {
  exec::Bound bound;
  tbb::task_arena arena;
  std::unique_ptr<exec::TaskRunner> runner;
  std::unique_ptr<exec::FlowGraph> flow;
  std::unique_ptr<exec::GradientAllreduce> allreduce;
  explicit Impl(int flow_threads) : arena(flow_threads) {}
};

Executor::Executor(const graph::Graph& g, ExecutorOptions opt, std::shared_ptr<RunState> state)
    : graph_(g), opt_(opt), state_(state ? std::move(state) : std::make_shared<RunState>()),
      plan_(plan::make_plan(graph_, {.reference = opt_.reference, .ranks = opt_.comm ? opt_.comm->size() : 1})) {
  if (graph_.ranks != ranks())
    throw std::logic_error("Executor: the graph was loaded for " + std::to_string(graph_.ranks) +
                           " ranks (graph::LoadOptions::ranks) but the communicator has " + std::to_string(ranks()));
  check_plan_memory(graph_, plan_, opt_.memory_limit);
  const int threads = effective_threads(opt_.threads);
  OmpThreads omp(threads);  // primitives are created with the thread count that runs them
  // TBB threads running node bodies. One by default: heavy nodes use every core through OpenMP anyway,
  // and a second TBB thread brings its own OpenMP team that competes with the lane's (docs/PERFORMANCE.md).
  impl_ = std::make_unique<Impl>(opt_.flow_threads > 0 ? opt_.flow_threads : 1);
  exec::bind(graph_, plan_, opt_.reference, impl_->bound);
  for (auto& in : impl_->bound.instances) {
    in.ctx.run_state_ = state_.get();
    in.ctx.executor_ = this;
    in.ctx.rank_ = rank();
    in.ctx.ranks_ = ranks();
  }
  exec::plan_nodes(graph_, impl_->bound.instances);
  // Checkpoint names must be unique: two EMAs with one prefix would write over each other's copies.
  std::map<std::string, int> owner;  // name -> node index (-1: a parameter)
  for (auto& p : impl_->bound.params) owner.emplace(p.name, -1);
  for (size_t i = 0; i < impl_->bound.instances.size(); ++i) {
    exec::Instance& in = impl_->bound.instances[i];
    for (auto& [name, t] : in.node->state_tensors(in.ctx)) {
      auto [it, fresh] = owner.emplace(name, int(i));
      if (fresh) continue;
      const std::string other = it->second < 0 ? "a parameter" : "node \"" + graph_.nodes[size_t(it->second)].id + "\"";
      throw plan_error(graph_.nodes[i], in.ctx.schema_->find_attr("prefix") ? "prefix" : "state", "duplicate_state",
                       "its state tensor \"" + name + "\" has the name of " + other +
                           "'s; a checkpoint needs unique names (give one of them another prefix)");
    }
  }
  impl_->runner =
      std::make_unique<exec::TaskRunner>(graph_, impl_->bound.instances, threads, opt_.profile, rank(), opt_.probe);
  std::function<void(int64_t)> allreduce;
  if (plan_.allreduce.active()) {
    impl_->allreduce = std::make_unique<exec::GradientAllreduce>(plan_, impl_->bound.instances, *opt_.comm);
    allreduce = [a = impl_->allreduce.get()](int64_t tick) { a->run(tick); };
  }
  std::function<void(int64_t)> ties;
  if (!plan_.autodiff.tie_sums.empty())
    ties = [this](int64_t) { exec::sum_tied_gradients(plan_.autodiff, impl_->bound.instances); };
  impl_->arena.execute([&] {
    impl_->flow = std::make_unique<exec::FlowGraph>(graph_, plan_, *impl_->runner, std::move(allreduce), std::move(ties));
  });
}

Executor::~Executor() {
  if (impl_ && impl_->flow) impl_->arena.execute([&] { impl_->flow.reset(); });
}

void Executor::cancel() {
  if (ranks() > 1) cancel_asked_ = true;
  else impl_->runner->cancel();
}

void Executor::run_tick(int64_t tick) {
  for (auto& in : impl_->bound.instances) in.ctx.tick_ = tick;
  impl_->arena.execute([&] { impl_->flow->run_tick(); });
  if (std::exception_ptr err = impl_->runner->take_error()) {
    impl_->arena.execute([&] { impl_->flow->reset(); });
    std::rethrow_exception(err);
  }
  for (int i : graph_.order) {
    try {
      impl_->bound.instances[size_t(i)].node->end_tick(impl_->bound.instances[size_t(i)].ctx);
    } catch (const std::exception& e) {
      throw as_run_error(e, graph_.nodes[size_t(i)], "end of tick");
    }
  }
}

void Executor::sync_replicas() {
  if (synced_) return;
  synced_ = true;
  if (ranks() <= 1) return;
  Communicator& c = *opt_.comm;
  for (Param& p : impl_->bound.params) c.broadcast(p.value.data(), p.value.numel() * int64_t(sizeof(float)), 0);
  for (auto& in : impl_->bound.instances)
    for (auto& [name, t] : in.node->state_tensors(in.ctx)) c.broadcast(t.data(), t.numel() * int64_t(sizeof(float)), 0);
  c.broadcast(&next_tick_, sizeof next_tick_, 0);
}

std::pair<double, int64_t> Executor::allreduce_time() const {
  if (!impl_->allreduce) return {0.0, 0};
  return {impl_->allreduce->seconds(), impl_->allreduce->calls()};
}

void Executor::step() {
  sync_replicas();
  OmpThreads omp(effective_threads(opt_.threads));
  run_tick(next_tick_);
  ++next_tick_;
}

void Executor::end_after(int64_t tick) {
  graph_.ticks = tick + 1;  // the task runner's at_end test and every Context::last_tick() follow it
  for (auto& in : impl_->bound.instances) in.ctx.ticks_ = graph_.ticks;
}

void Executor::run(const std::function<void(const TickInfo&)>& on_tick) {
  sync_replicas();
  const auto t0 = std::chrono::steady_clock::now();
  OmpThreads omp(effective_threads(opt_.threads));
  // A run sized by its budget (graph::Graph::sized) runs the count it was sized to: its schedules end at
  // that tick, and a rerun with the count is the same run. Only an unsized run is cut by its minutes.
  const double budget = graph_.sized.is_null() ? graph_.minutes * 60.0 : 0.0;
  int64_t done = 0;
  while (next_tick_ < graph_.ticks) {
    // Rank 0 decides, for every rank, whether to cancel and whether the budget ends the run here.
    char decide[2] = {0, 0};  // cancel, last tick
    decide[0] = ranks() > 1 ? char(cancel_asked_.exchange(false)) : char(impl_->runner->take_cancel());
    if (budget > 0 && done > 0 && next_tick_ + 1 < graph_.ticks) {
      // The mean tick so far predicts this one and the next; when the next would end past the budget,
      // this tick is the last: the at_end sinks (the checkpoint) run in it, inside the budget.
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      decide[1] = s + 2.0 * s / double(done) > budget;
    }
    if (ranks() > 1) opt_.comm->broadcast(decide, sizeof decide, 0);
    if (decide[0]) throw Cancelled();  // honoured: a later run() may continue
    if (decide[1]) {
      budget_stop_ = {next_tick_ + 1, graph_.ticks};
      end_after(next_tick_);
    }
    run_tick(next_tick_);
    ++done;
    ++next_tick_;
    if (on_tick) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      on_tick({next_tick_ - 1, graph_.ticks, s});
    }
  }
}

Tensor Executor::output(const std::string& ref) const {
  auto r = graph_.resolve(ref);
  if (!r) throw std::invalid_argument("no node output \"" + ref + "\" in " + graph_.file);
  if (plan_.shared({r->node, r->output}))
    throw std::invalid_argument("node output \"" + ref + "\" of " + graph_.file +
                                " is an intermediate tensor whose buffer the plan shares with others (a pipeline "
                                "without an optimizer reuses memory by lifetime): read a subgraph output or an "
                                "unconsumed output, or run with ExecutorOptions::reference (CLI --reference)");
  const Tensor& t = impl_->bound.instances[size_t(r->node)].ctx.outputs_[size_t(r->output)];
  return t.blocked() ? t.to_plain() : t;
}

std::deque<Param>& Executor::params() { return impl_->bound.params; }
Node& Executor::node(int i) { return *impl_->bound.instances[size_t(i)].node; }
Context& Executor::context(int i) { return impl_->bound.instances[size_t(i)].ctx; }

std::vector<NodeProfile> Executor::profile() const {
  std::vector<NodeProfile> v;
  for (size_t i = 0; i < impl_->bound.instances.size(); ++i) {
    const exec::Instance& in = impl_->bound.instances[i];
    v.push_back({graph_.nodes[i].id, graph_.nodes[i].op, in.fwd_s, in.bwd_s, in.fwd_n, in.bwd_n});
  }
  return v;
}

void Executor::reset_profile() {
  for (auto& in : impl_->bound.instances) in.fwd_s = in.bwd_s = 0, in.fwd_n = in.bwd_n = 0;
  if (impl_->allreduce) impl_->allreduce->reset_time();
}

Param* Executor::find_param(const std::string& name) {
  for (auto& p : impl_->bound.params)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace noiseflow::runtime
