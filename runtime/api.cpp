#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "runtime/checkpoint.hpp"
#include "runtime/safetensors.hpp"

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

// A budget probe: ticks 0 and 1 warm up, ticks [2, kProbeTicks - 1) are timed, the last one also runs the
// sinks that are Schema::timed_in_probe once. While probing, the fitted param holds kProbePlaceholder: only
// the probe's timing is kept, its numbers are thrown away and the sized run starts from tick 0.
constexpr int64_t kProbeTicks = 12;
constexpr int64_t kProbePlaceholder = int64_t(1) << 20;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The (last) node that writes the run's checkpoint (Schema::checkpoint_writer), null if none.
const graph::GraphNode* checkpoint_node(const graph::Graph& g) {
  const graph::GraphNode* ck = nullptr;
  for (auto& n : g.nodes)
    if (!n.schema->checkpoint_path_attr().empty()) ck = &n;
  return ck;
}

RunError no_checkpoint_node(const graph::Graph& g) {
  std::string writers;
  for (auto& op : runtime::Registry::global().ops())
    if (!runtime::Registry::global().find_schema(op)->checkpoint_path_attr().empty())
      writers += (writers.empty() ? "" : " or ") + op;
  return RunError({g.file, "", "", "no_checkpoint_node",
                   "--resume needs an " + (writers.empty() ? std::string("checkpoint-writing") : writers) +
                       " node in the pipeline"},
                  "plan");
}

// The path of the checkpoint --resume reads; throws when there is none.
std::string resume_path(const graph::Graph& g) {
  const graph::GraphNode* ck = checkpoint_node(g);
  if (!ck) throw no_checkpoint_node(g);
  const std::string& path_attr = ck->schema->checkpoint_path_attr();
  std::string path = ck->attrs[path_attr];
  if (!std::filesystem::exists(path))
    throw runtime::plan_error(*ck, "attr \"" + path_attr + "\"", "nothing_to_resume",
                              "nothing to resume: no checkpoint at " + path + " (run without --resume to start)");
  return path;
}

// Removes a folder when it goes out of scope.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() / ("noiseflow-probe-" + std::to_string(stamp));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

Pipeline::Pipeline(std::string path, Options options) : Pipeline(std::move(path), std::nullopt, std::move(options)) {}

Pipeline::Pipeline(std::string path, std::optional<std::string> text, Options options)
    : path_(std::move(path)), text_(std::move(text)), options_(std::move(options)),
      graph_(std::make_unique<graph::Graph>(load(path_, text_, options_))),
      created_(std::chrono::steady_clock::now()) {}

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
  if (!exec_ && graph_->fit_pending) size_to_budget();
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

// A run sized by its budget (graph::Graph::fit): a probe of kProbeTicks ticks measures a tick and one
// firing of each timed sink; the budget left after the probe, the sized run's planning and its at_end
// sinks, divided by the cost of a tick (its own plus each periodic sink's share), is the tick count. A
// resumed run takes the count its checkpoint recorded instead, so it continues the same run.
void Pipeline::size_to_budget() {
  graph::Graph& g = *graph_;
  const std::string param = g.fit;
  int64_t ticks = 0;
  nlohmann::json sized;
  if (options_.resume) {
    const std::string path = resume_path(g);
    const runtime::SafeTensors st = runtime::read_safetensors(path);
    auto it = st.metadata.find("sized");
    nlohmann::json rec = it == st.metadata.end() ? nlohmann::json() : nlohmann::json::parse(it->second, nullptr, false);
    if (!rec.is_object() || !rec.contains("ticks") || !rec["ticks"].is_number_integer())
      throw RunError({path, "", "", "not_sized",
                      "--resume of a run sized by its budget needs the tick count the checkpoint records (metadata "
                      "\"sized\"), and this checkpoint has none: resume with --set " + param + "=N, N the run's " +
                          param},
                     "plan");
    sized = rec;
    ticks = rec["ticks"].get<int64_t>();
  } else {
    Options o = options_;
    o.params[param] = kProbePlaceholder;
    graph::Graph pg = load(path_, text_, o);
    pg.ticks = kProbeTicks;
    pg.minutes = 0;
    const auto t_plan = std::chrono::steady_clock::now();
    runtime::Executor ex(pg, runtime::ExecutorOptions{.threads = options_.threads, .flow_threads = options_.flow_threads,
                                                      .profile = true, .reference = options_.reference,
                                                      .comm = options_.comm, .probe = true});
    const double plan_s = seconds_since(t_plan);
    const TempDir scratch;  // timed sinks that draw pictures write them here
    ex.state().run_dir = scratch.path.string();
    std::vector<double> dt;
    for (int64_t k = 0; k < kProbeTicks; ++k) {
      const auto t = std::chrono::steady_clock::now();
      ex.step();
      dt.push_back(seconds_since(t));
    }
    std::vector<double> timed(dt.begin() + 2, dt.end() - 1);
    std::nth_element(timed.begin(), timed.begin() + long(timed.size() / 2), timed.end());
    const double tick_s = timed[timed.size() / 2];
    double periodic_s = 0, at_end_s = 0;  // seconds per tick of the periodic sinks, seconds of the at_end ones
    nlohmann::json sinks = nlohmann::json::object();
    const auto profile = ex.profile();
    for (size_t i = 0; i < pg.nodes.size(); ++i) {
      const graph::GraphNode& n = pg.nodes[i];
      if (!n.schema->is_timed_in_probe() || (!n.every && !n.at_end)) continue;
      const double c = profile[i].forward_s;
      if (n.every) periodic_s += c / double(n.every);
      if (n.at_end) at_end_s += c;
      sinks[n.id] = c;
    }
    const double budget = g.minutes * 60.0;
    const double left = budget - seconds_since(created_) - plan_s - at_end_s;
    ticks = int64_t(std::floor(left / (tick_s + periodic_s)));
    if (options_.comm && options_.comm->size() > 1) options_.comm->broadcast(&ticks, sizeof ticks, 0);  // rank 0's
    if (ticks < 1) {
      char m[256];
      std::snprintf(m, sizeof m, "the budget of %g min leaves no tick: a tick takes %.3g s here (%lld-tick probe, "
                    "%.3g s so far); give more minutes or --set %s=N", g.minutes, tick_s, (long long)kProbeTicks,
                    seconds_since(created_), param.c_str());
      throw RunError({g.file, "", "run", "budget_too_small", m}, "plan");
    }
    sized = {{"param", param},          {"ticks", ticks},         {"minutes", g.minutes},
             {"tick_seconds", tick_s},  {"probe_ticks", kProbeTicks}, {"probe_seconds", seconds_since(created_)},
             {"plan_seconds", plan_s},  {"sink_seconds", sinks}};
  }
  Options o = options_;
  o.params[param] = ticks;
  graph::Graph sized_graph = load(path_, text_, o);
  sized_graph.sized = sized;
  sized_graph.resolved["run"]["sized"] = sized;
  *graph_ = std::move(sized_graph);  // in place: references to graph() stay valid
  options_ = std::move(o);
  plan_.reset();
}

void Pipeline::resume(runtime::Executor& ex) {
  const std::string path = resume_path(*graph_);
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
