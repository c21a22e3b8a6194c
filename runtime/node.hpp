// runtime/node.hpp — the node interface, its run context, and the registry.
//
// A node type is one C++ file: a static schema(), optional plan(), forward()
// and, when differentiable, backward(); optionally a static onnx() that
// writes it as ONNX ops (runtime/export/onnx.hpp); NOISEFLOW_REGISTER_NODE(Type)
// makes it known. Nodes write into the output tensors the plan allocated for
// them (never reassign them), and backward() overwrites grad_input(...) for
// every input where wants_grad(...) and param_grad(...) for every parameter.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "graph/schema.hpp"
#include "runtime/errors.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::runtime {

using graph::Json;
using graph::Schema;

/// The process-wide oneDNN CPU engine and stream.
struct Engine {
  dnnl::engine engine;
  dnnl::stream stream;
  static Engine& get();
};

/// A trainable (or loaded) parameter, qualified by its node id: "net.stem.weight".
struct Param {
  std::string name;
  Tensor value, grad;
  graph::Init init;
};

class RunState;
class Executor;
namespace onnx {
class OpContext;
}

/// Everything a node sees while it plans and runs.
class Context {
 public:
  const std::string& id() const { return id_; }
  const std::string& op() const { return schema_->op(); }
  const Schema& schema() const { return *schema_; }

  /// Attributes with defaults filled and params substituted.
  const Json& attrs() const { return attrs_; }
  const Json& attr(const std::string& name) const;
  int64_t attr_int(const std::string& name) const { return attr(name).get<int64_t>(); }
  double attr_float(const std::string& name) const { return attr(name).get<double>(); }
  bool attr_bool(const std::string& name) const { return attr(name).get<bool>(); }
  std::string attr_string(const std::string& name) const { return attr(name).get<std::string>(); }
  std::vector<int64_t> attr_ints(const std::string& name) const { return attr(name).get<std::vector<int64_t>>(); }

  bool has_input(const std::string& name) const;
  const Tensor& input(const std::string& name) const;
  Tensor& output(const std::string& name);
  Tensor& output(size_t i = 0) { return outputs_.at(i); }
  Param& param_ref(const std::string& name);
  Tensor& param(const std::string& name) { return param_ref(name).value; }
  Tensor& param_grad(const std::string& name) { return param_ref(name).grad; }
  const std::vector<Param*>& params() const { return params_; }

  /// Backward: the gradient of the loss with respect to an output.
  const Tensor& grad_output(const std::string& name) const;
  /// Backward: where to write the gradient with respect to an input.
  Tensor& grad_input(const std::string& name);
  /// Backward: whether the gradient of this input is needed.
  bool wants_grad(const std::string& name) const;

  int64_t tick() const { return tick_; }
  int64_t ticks() const { return ticks_; }
  bool last_tick() const { return tick_ + 1 >= ticks_; }
  uint64_t seed() const { return seed_; }
  /// Key of this node's random stream: hash of (seed, node id).
  uint64_t random_key() const;
  /// Data parallelism: this process's rank and the number of ranks (0 and 1 in a single process).
  int rank() const { return rank_; }
  int ranks() const { return ranks_; }
  /// The global index of this rank's first sample when it holds `local` samples of the batch (rank x
  /// local). Nodes drawing per sample key their draws by global index, so N ranks draw what one process
  /// draws for the whole batch.
  int64_t sample_offset(int64_t local) const { return int64_t(rank_) * local; }
  const dnnl::engine& engine() const { return Engine::get().engine; }
  dnnl::stream& stream() const { return Engine::get().stream; }

  /// Optimizer nodes: every trainable parameter upstream of their loss.
  const std::vector<Param*>& trainable() const { return trainable_; }
  /// Shared run state (loss history, run folder, resume info); may be null in tests.
  RunState* run_state() const { return run_state_; }

  /// The straightforward path (ExecutorOptions::reference): nodes pick their plainest kernels
  /// (e.g. direct instead of Winograd convolutions), to check the optimised path against.
  bool reference() const { return reference_; }

  /// Whether gradients flow back through this node this run (a training plan reaches it backward, or a
  /// NodeHarness of a differentiable type): what training-only behaviour such as dropout keys on.
  bool training() const { return training_; }

  /// The executor running this node (null when run alone, e.g. in NodeHarness).
  Executor* executor() const { return executor_; }

  /// Throws NodeError naming `field` (an input, attribute or output name); `code` is its stable id.
  [[noreturn]] void fail(const std::string& field, const std::string& msg, const std::string& code = "node_failed") const {
    throw NodeError(field, msg, code);
  }

  // ---- filled by the framework ----
  std::string id_;
  const Schema* schema_ = nullptr;
  Json attrs_;
  std::vector<Tensor> inputs_;        ///< indexed like schema inputs; empty() when unconnected
  std::vector<Tensor> outputs_;       ///< indexed like schema outputs
  std::vector<Tensor> grad_outputs_;  ///< indexed like outputs
  std::vector<Tensor> grad_inputs_;   ///< indexed like inputs; empty() when not wanted
  std::vector<Param*> params_;
  std::map<std::string, Param*> param_by_local_;
  std::vector<Param*> trainable_;
  int64_t tick_ = 0, ticks_ = 1;
  uint64_t seed_ = 0;
  int rank_ = 0, ranks_ = 1;
  RunState* run_state_ = nullptr;
  Executor* executor_ = nullptr;
  bool reference_ = false;
  bool training_ = false;
};

/// The base of every node type.
class Node {
 public:
  virtual ~Node() = default;
  /// Once, before the first tick: build primitives, allocate scratch.
  virtual void plan(Context&) {}
  virtual void forward(Context&) = 0;
  /// Vector-Jacobian product; only called for schemas with differentiable inputs or parameters.
  virtual void backward(Context& ctx) { ctx.fail("op", "node type " + ctx.op() + " has no backward"); }
  /// After every tick (state nodes latch their next value here).
  virtual void end_tick(Context&) {}
  /// Extra tensors to save in a checkpoint (optimizer moments, EMA weights), by qualified name.
  virtual std::vector<std::pair<std::string, Tensor>> state_tensors(Context&) { return {}; }
};

/// Emits the ONNX nodes of one noiseflow node (runtime/export/onnx.hpp).
using OnnxMapping = std::function<void(onnx::OpContext&)>;

/// A registered node type.
struct NodeType {
  Schema schema;
  std::function<std::unique_ptr<Node>()> make;
  /// How `noiseflow export onnx` writes the node (T::onnx); empty when the type has no ONNX mapping.
  OnnxMapping onnx;
};

/// The NodeType of T: its schema, a factory, and T::onnx when T declares
/// `static void onnx(runtime::onnx::OpContext&)` (what NOISEFLOW_REGISTER_NODE registers).
template <class T>
NodeType node_type_of() {
  NodeType t;
  t.schema = T::schema();
  t.make = []() -> std::unique_ptr<Node> { return std::make_unique<T>(); };
  if constexpr (requires { &T::onnx; }) {
    // A member named onnx with another signature would otherwise leave the type silently unmapped.
    static_assert(requires(onnx::OpContext& c) { T::onnx(c); },
                  "a node type's ONNX mapping is `static void onnx(runtime::onnx::OpContext&)`");
    t.onnx = [](onnx::OpContext& c) { T::onnx(c); };
  }
  return t;
}

/// All known node types. Nodes register themselves at static-initialisation
/// time; plugins register when loaded (noiseflow::load_plugin, between begin_load and end_load).
class Registry : public graph::SchemaProvider {
 public:
  static Registry& global();
  /// Adds a type; throws std::logic_error if the op name is taken. While a library loads, a taken name is
  /// recorded in its LoadReport instead (an exception must not leave the library's static initialisers).
  bool add(NodeType type);
  /// Adds the type `make_type()` builds (NOISEFLOW_REGISTER_NODE); while a library loads, an exception
  /// from it (a schema that throws) is recorded in the LoadReport instead of ending the process.
  bool add_from(const std::function<NodeType()>& make_type);
  const NodeType* find(const std::string& op) const;
  const graph::Schema* find_schema(const std::string& op) const override;
  std::vector<std::string> ops() const override;
  size_t size() const { return types_.size(); }
  /// The file that registered `op`: a plugin library's path, or empty for the program's own node types.
  std::string origin(const std::string& op) const;

  /// What loading one library registered.
  struct LoadReport {
    std::string origin;                 ///< the library's path
    std::vector<std::string> added;     ///< op names it registered
    /// A failed registration: code plugin_duplicate_node (the op is known already) or
    /// plugin_registration_failed (building the type threw).
    struct Problem {
      std::string code, message;
    };
    std::vector<Problem> problems;
  };
  /// From now on registrations come from the library `origin` (one library at a time).
  void begin_load(std::string origin);
  /// Ends the load begun by begin_load: what it registered.
  LoadReport end_load();
  /// Removes the types a load added (the load failed).
  void remove(const LoadReport& load);

 private:
  std::map<std::string, NodeType> types_;
  std::map<std::string, std::string> origins_;  ///< op -> plugin path (plugin types only)
  std::unique_ptr<LoadReport> loading_;
};

#define NOISEFLOW_CONCAT_INNER(a, b) a##b
#define NOISEFLOW_CONCAT(a, b) NOISEFLOW_CONCAT_INNER(a, b)
/// Registers a node type T (with `static Schema schema()`, and its ONNX mapping when it has a
/// `static void onnx(runtime::onnx::OpContext&)`) in the global registry.
#define NOISEFLOW_REGISTER_NODE(T)                                     \
  static const bool NOISEFLOW_CONCAT(noiseflow_registered_, __LINE__) = \
      ::noiseflow::runtime::Registry::global().add_from([] { return ::noiseflow::runtime::node_type_of<T>(); })

}  // namespace noiseflow::runtime
