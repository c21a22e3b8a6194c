#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "runtime/checkpoint.hpp"

#include "noiseflow/noiseflow.hpp"

namespace noiseflow {

namespace {
graph::Graph load(const std::string& path, const std::optional<std::string>& text, const Options& o) {
  graph::LoadOptions lo;
  lo.schemas = &runtime::Registry::global();
  lo.overrides = o.params;
  lo.seed = o.seed;
  lo.ticks = o.ticks;
  lo.ranks = o.comm ? o.comm->size() : 1;
  lo.check_include = o.check_include;
  return text ? graph::load_pipeline_text(*text, path, lo) : graph::load_pipeline(path, lo);
}
}  // namespace

Pipeline::Pipeline(std::string path, Options options) : Pipeline(std::move(path), std::nullopt, std::move(options)) {}

Pipeline::Pipeline(std::string path, std::optional<std::string> text, Options options)
    : path_(std::move(path)), text_(std::move(text)), options_(std::move(options)),
      graph_(std::make_unique<graph::Graph>(load(path_, text_, options_))) {}

Pipeline Pipeline::from_text(std::string text, std::string path, Options options) {
  return Pipeline(std::move(path), std::optional<std::string>(std::move(text)), std::move(options));
}

Pipeline::~Pipeline() = default;
Pipeline::Pipeline(Pipeline&&) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&&) noexcept = default;

void Pipeline::set_param(const std::string& name, const nlohmann::json& value) {
  if (exec_) throw std::logic_error("set_param: the pipeline has already been planned");
  auto o = options_;
  o.params[name] = value;
  graph_ = std::make_unique<graph::Graph>(load(path_, text_, o));
  options_ = std::move(o);
  plan_.reset();
}

const graph::Graph& Pipeline::graph() const { return *graph_; }

runtime::Executor& Pipeline::executor() {
  if (!exec_) {
    auto ex = std::make_unique<runtime::Executor>(*graph_, runtime::ExecutorOptions{
        .threads = options_.threads, .flow_threads = options_.flow_threads, .reference = options_.reference,
        .comm = options_.comm});
    if (options_.resume) resume(*ex);
    exec_ = std::move(ex);
  }
  return *exec_;
}

const runtime::plan::ExecutionPlan& Pipeline::plan() {
  if (exec_) return exec_->plan();
  if (!plan_) plan_ = std::make_unique<runtime::plan::ExecutionPlan>(runtime::plan::make_plan(
      *graph_, {.reference = options_.reference, .ranks = options_.comm ? options_.comm->size() : 1}));
  return *plan_;
}

void Pipeline::resume(runtime::Executor& ex) {
  // The (last) node that writes the run's checkpoint (Schema::checkpoint_writer).
  const graph::GraphNode* ck = nullptr;
  for (auto& n : graph_->nodes)
    if (!n.schema->checkpoint_path_attr().empty()) ck = &n;
  if (!ck) {
    std::string writers;
    for (auto& op : runtime::Registry::global().ops())
      if (!runtime::Registry::global().find_schema(op)->checkpoint_path_attr().empty())
        writers += (writers.empty() ? "" : " or ") + op;
    throw RunError({graph_->file, "", "", "no_checkpoint_node",
                    "--resume needs an " + (writers.empty() ? std::string("checkpoint-writing") : writers) +
                        " node in the pipeline"},
                   "plan");
  }
  const std::string& path_attr = ck->schema->checkpoint_path_attr();
  std::string path = ck->attrs[path_attr];
  if (!std::filesystem::exists(path))
    throw runtime::plan_error(*ck, "attr \"" + path_attr + "\"", "nothing_to_resume",
                              "nothing to resume: no checkpoint at " + path + " (run without --resume to start)");
  int64_t step = runtime::load_checkpoint(ex, path, {.mode = runtime::LoadMode::Resume});
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

std::vector<float> values(const Tensor& t) {
  if (t.empty()) return {};
  return t.blocked() ? t.to_plain().to_vector() : t.to_vector();
}

std::vector<std::string> node_types() { return runtime::Registry::global().ops(); }

// The plugin contract (docs/NOTES.md, "Plugins and embedding"): a shared library whose static
// initialisers register at least one node type (NOISEFLOW_REGISTER_NODE), none of them already known. Its
// references to noiseflow resolve against the loading program, which exports its symbols (ENABLE_EXPORTS).
void load_plugin(const std::string& path) {
  static std::mutex mutex;
  // Canonical path -> the error its load raised (empty: loaded). dlopen runs a library's initialisers only
  // once, so a second load of the same file repeats the first outcome instead of loading it again.
  static std::map<std::string, graph::Diagnostic> loaded;
  const std::lock_guard lock(mutex);
  const auto fail = [&](std::string code, std::string message) {
    return RunError({path, "", "", std::move(code), "cannot load plugin: " + std::move(message)}, "load");
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw fail("plugin_failed", std::filesystem::exists(path, ec) ? "not a regular file" : "no such file");
  const std::string key = std::filesystem::canonical(path, ec).string();
  if (auto it = loaded.find(key); it != loaded.end()) {
    if (it->second.code.empty()) return;
    throw RunError(it->second, "load");
  }
  // A path without a slash would make dlopen search the library path instead of taking the file.
  const std::string file = std::filesystem::absolute(path, ec).string();
  auto& reg = runtime::Registry::global();
  reg.begin_load(path);
  void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_GLOBAL);
  const char* dl_error = h ? nullptr : dlerror();
  const auto report = reg.end_load();
  std::optional<RunError> error;
  if (!h) {
    error = fail("plugin_failed", dl_error ? dl_error : "dlopen failed");
  } else if (!report.problems.empty()) {
    std::string all;
    for (auto& p : report.problems) all += (all.empty() ? "" : "; ") + p.message;
    error = fail(report.problems.front().code, all);
  } else if (report.added.empty()) {
    error = fail("plugin_no_nodes",
                 "it registers no node types (a plugin registers each of its node types with "
                 "NOISEFLOW_REGISTER_NODE, which runs when the library is loaded)");
  }
  if (error) {
    // Its node types are gone from the registry; the library stays mapped (unloading C++ code whose
    // objects may still be referenced is not worth the risk).
    reg.remove(report);
    loaded[key] = error->diagnostic;
    throw *error;
  }
  loaded[key] = {};
}

}  // namespace noiseflow
