#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>

#include "runtime/checkpoint.hpp"

#include "noiseflow/noiseflow.hpp"

namespace noiseflow {

namespace {
graph::Graph load(const std::string& path, const Options& o) {
  graph::LoadOptions lo;
  lo.schemas = &runtime::Registry::global();
  lo.overrides = o.params;
  lo.seed = o.seed;
  lo.ticks = o.ticks;
  return graph::load_pipeline(path, lo);
}
}  // namespace

Pipeline::Pipeline(std::string path, Options options)
    : path_(std::move(path)), options_(std::move(options)), graph_(std::make_unique<graph::Graph>(load(path_, options_))) {}

Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;

void Pipeline::set_param(const std::string& name, const nlohmann::json& value) {
  if (exec_) throw std::logic_error("set_param: the pipeline has already been planned");
  auto o = options_;
  o.params[name] = value;
  graph_ = std::make_unique<graph::Graph>(load(path_, o));
  options_ = std::move(o);
  plan_.reset();
}

const graph::Graph& Pipeline::graph() const { return *graph_; }

runtime::Executor& Pipeline::executor() {
  if (!exec_) {
    auto ex = std::make_unique<runtime::Executor>(*graph_, runtime::ExecutorOptions{
        .threads = options_.threads, .flow_threads = options_.flow_threads, .reference = options_.reference});
    if (options_.resume) resume(*ex);
    exec_ = std::move(ex);
  }
  return *exec_;
}

const runtime::plan::ExecutionPlan& Pipeline::plan() {
  if (exec_) return exec_->plan();
  if (!plan_) plan_ = std::make_unique<runtime::plan::ExecutionPlan>(runtime::plan::make_plan(*graph_, {.reference = options_.reference}));
  return *plan_;
}

void Pipeline::resume(runtime::Executor& ex) {
  const graph::GraphNode* ck = nullptr;
  for (auto& n : graph_->nodes)
    if (n.op == "io.checkpoint") ck = &n;
  if (!ck)
    throw RunError({graph_->file, "", "", "no_checkpoint_node", "--resume needs an io.checkpoint node in the pipeline"},
                   "plan");
  std::string path = ck->attrs["path"];
  if (!std::filesystem::exists(path))
    throw runtime::plan_error(*ck, "attr \"path\"", "nothing_to_resume",
                              "nothing to resume: no checkpoint at " + path + " (run without --resume to start)");
  int64_t step = runtime::load_checkpoint(ex, path, runtime::LoadMode::Resume);
  if (step > graph_->ticks)
    throw RunError({path, "", "", "checkpoint_past_run",
                    "checkpoint is at step " + std::to_string(step) + ", past the run's " +
                        std::to_string(graph_->ticks) + " ticks"},
                   "plan");
  ex.set_next_tick(step);
}

void Pipeline::run(const std::function<void(const TickInfo&)>& on_tick) { executor().run(on_tick); }
void Pipeline::step() { executor().step(); }
void Pipeline::cancel() {
  if (exec_) exec_->cancel();
}
Tensor Pipeline::output(const std::string& ref) { return executor().output(ref); }
std::vector<std::pair<std::string, std::string>> Pipeline::artifacts() const {
  return exec_ ? exec_->state().artifacts() : std::vector<std::pair<std::string, std::string>>{};
}

std::vector<std::string> node_types() { return runtime::Registry::global().ops(); }

void load_plugin(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!h) throw RunError({path, "", "", "plugin_failed", std::string("cannot load plugin: ") + dlerror()}, "load");
}

}  // namespace noiseflow
