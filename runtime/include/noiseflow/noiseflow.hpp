// noiseflow/noiseflow.hpp — the public embedding API.
//
//   #include <noiseflow/noiseflow.hpp>
//   noiseflow::Pipeline p("pipelines/train.json", {{"steps", 200}});
//   p.run([](const noiseflow::TickInfo& t) { /* progress */ });
//   noiseflow::Tensor x = p.output("net.out");
//
// Link noiseflow::nodes for the built-in node library; add your own node
// types with NOISEFLOW_REGISTER_NODE in your program or a plugin library. runtime::onnx::export_onnx writes
// a pipeline's net with a checkpoint's weights as an ONNX model (runtime/export/onnx.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/diagnostics.hpp"
#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/plan/print.hpp"
#include "runtime/node.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow {

/// A float32 tensor: shape(), dim(i), numel(); values() below reads its elements.
using runtime::Tensor;
/// A tensor's shape, outermost dimension first; shape_str(s) is "[64, 2]".
using graph::Shape;
using graph::shape_str;
using runtime::TickInfo;
/// Raised for an invalid pipeline; what() lists every problem, one per line.
using graph::GraphError;
/// Raised when a node fails while planning or running.
using runtime::RunError;
using runtime::Cancelled;

/// Settings of a pipeline run.
struct Options {
  std::map<std::string, nlohmann::json> params;  ///< overrides of the pipeline's params
  std::optional<uint64_t> seed;                  ///< overrides run.seed
  std::optional<int64_t> ticks;                  ///< overrides run.ticks
  int threads = 0;                               ///< compute threads; 0: all cores
  int flow_threads = 0;                          ///< threads running nodes beside the compute lane; 0: one
  bool resume = false;  ///< continue from the checkpoint the pipeline's io.checkpoint node writes
  /// The straightforward path (direct convolutions, one buffer per gradient), to check the optimised one.
  bool reference = false;
  /// Data-parallel training (runtime/distributed.hpp; the CLI passes runtime::world()): each rank trains on
  /// its slice of the pipeline's batch, which stays the global batch. Null: one process.
  std::shared_ptr<runtime::Communicator> comm;
  /// Shown every included file's path before it is read: a non-empty answer refuses the include with that
  /// message (graph::LoadOptions::check_include; the studio keeps includes inside its project folder).
  std::function<std::string(const std::string& file)> check_include;
};

/// A pipeline file, validated, planned and run.
class Pipeline {
 public:
  /// Loads and validates; throws GraphError listing every problem.
  explicit Pipeline(std::string path, Options options = {});
  /// The same from a document's text (the studio's edited or submitted pipeline); `path` names it in
  /// messages and anchors its relative includes (it need not exist).
  static Pipeline from_text(std::string text, std::string path, Options options = {});
  ~Pipeline();
  Pipeline(Pipeline&&) noexcept;
  Pipeline& operator=(Pipeline&&) noexcept;

  /// Overrides a param (before the first run; re-validates).
  void set_param(const std::string& name, const nlohmann::json& value);
  /// The validated graph (nodes, shapes, order).
  const graph::Graph& graph() const;
  /// Plans (if not yet) and runs every remaining tick; on_tick after each.
  void run(const std::function<void(const TickInfo&)>& on_tick = {});
  /// Plans (if not yet) and runs one tick.
  void step();
  /// Asks a running run() to stop; run() then throws Cancelled. Thread-safe.
  void cancel();
  /// The current value of "node" or "node.output" (after a run or step).
  Tensor output(const std::string& ref);
  /// Files the run wrote, as (kind, path).
  std::vector<std::pair<std::string, std::string>> artifacts() const;
  /// The planned executor (plans it if needed). A run sized by its budget (run.fit with the fitted param 0
  /// and run.minutes set) is sized first: a probe of a few ticks times the machine, the param gets the
  /// tick count the budget allows (or, with Options::resume, the count the checkpoint recorded), and
  /// graph() is loaded again with it (graph().sized says how).
  runtime::Executor& executor();
  /// The execution plan (layouts, tasks, gradients, buffers, memory report) without binding or running
  /// anything; throws RunError when the graph cannot be planned.
  const runtime::plan::ExecutionPlan& plan();

 private:
  Pipeline(std::string path, std::optional<std::string> text, Options options);
  void resume(runtime::Executor& ex);
  void size_to_budget();
  std::string path_;
  std::optional<std::string> text_;  ///< the document's text, for a pipeline made from_text
  Options options_;
  std::unique_ptr<graph::Graph> graph_;
  std::unique_ptr<runtime::Executor> exec_;
  std::unique_ptr<runtime::plan::ExecutionPlan> plan_;
  std::chrono::steady_clock::time_point created_;  ///< where a budget's minutes start
};

/// A tensor's elements in plain row-major order, whatever layout the plan gave it (Pipeline::output may
/// return a tensor the plan keeps blocked, nChw16c, whose raw buffer is in another order).
std::vector<float> values(const Tensor& t);

/// Every registered node type's op name.
std::vector<std::string> node_types();
/// Loads a plugin: a shared library (a file path) whose node types register themselves with
/// NOISEFLOW_REGISTER_NODE when it is loaded. Its references to noiseflow resolve against this program,
/// which must export its symbols (CMake ENABLE_EXPORTS). Loading the same file again does nothing. Throws
/// RunError naming the file, with code plugin_failed (no such file, or dlopen's error), plugin_no_nodes
/// (it registered nothing), plugin_duplicate_node (an op known already; the message names the op and both
/// files) or plugin_registration_failed (a schema threw); a library that fails adds no node type.
void load_plugin(const std::string& path);

}  // namespace noiseflow
