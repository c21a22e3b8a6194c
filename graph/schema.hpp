// graph/schema.hpp — the declarative description of a node type.
//
// A Schema names an op, documents it, lists its typed inputs, outputs and
// attributes (with defaults and ranges) and carries the shape-inference rule
// that also declares the node's trainable parameters. graph/ validates and
// shape-checks pipelines from schemas alone; it never sees oneDNN or TBB.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/diagnostics.hpp"

namespace noiseflow::graph {

using Json = nlohmann::json;
/// Logical tensor shape, outermost dimension first (NCHW for images).
using Shape = std::vector<int64_t>;

/// "[64, 1, 28, 28]".
std::string shape_str(const Shape& s);
/// Product of the dimensions (1 for a scalar shape []).
int64_t numel(const Shape& s);

/// The type of an attribute value, checked during validation.
enum class AttrType { Int, Float, Bool, String, IntList, FloatList, Any };
std::string attr_type_name(AttrType t);

/// One attribute of a node type.
struct AttrSpec {
  std::string name;
  AttrType type = AttrType::Float;
  Json default_value;  ///< null: the attribute is required
  std::optional<double> min, max;
  std::vector<std::string> choices;  ///< for strings: the allowed values
  std::string doc;
  bool required() const { return default_value.is_null(); }
};

/// One input or output port.
struct PortSpec {
  std::string name;
  std::string doc;
  bool optional = false;        ///< inputs only
  bool differentiable = false;  ///< inputs only: backward yields its gradient
  bool read_by_backward = true;  ///< backward() reads its value (see Schema::backward_reads)
};

/// How a trainable parameter starts.
struct Init {
  enum Kind { Zeros, Ones, KaimingUniform, UniformFanIn, Normal } kind = Zeros;
  int64_t fan_in = 1;
  double scale = 1.0;  ///< Normal: standard deviation
  static Init zeros() { return {Zeros, 1, 1.0}; }
  static Init ones() { return {Ones, 1, 1.0}; }
  /// PyTorch's default for conv/linear weights: U(-b, b), b = 1/sqrt(fan_in) (kaiming_uniform, a = sqrt(5)).
  static Init kaiming_uniform(int64_t fan_in) { return {KaimingUniform, fan_in, 1.0}; }
  /// PyTorch's default for biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  static Init uniform_fan_in(int64_t fan_in) { return {UniformFanIn, fan_in, 1.0}; }
  static Init normal(double stddev) { return {Normal, 1, stddev}; }
};

/// A trainable parameter declared by shape inference.
struct ParamDecl {
  std::string name;  ///< local name ("weight"); qualified with the node id at plan time
  Shape shape;
  Init init;
};

/// Thrown by shape inference; `field` names the offending input or attribute.
struct ShapeError : std::runtime_error {
  std::string field;
  ShapeError(std::string field_, const std::string& msg) : std::runtime_error(msg), field(std::move(field_)) {}
};

/// Layouts a node handles for its rank-4 tensors (runtime::Layout: plain or nChw16c). The executor
/// stores a tensor blocked when its producer and consumers allow it, and converts at the edges to
/// `plain` nodes.
enum class LayoutSupport {
  plain,    ///< plain tensors only (the default; blocked inputs arrive converted)
  uniform,  ///< nChw16c too, when all its rank-4 inputs and outputs share one layout (element-wise ops)
  any,      ///< each rank-4 input and output independently plain or nChw16c (the node reads Tensor::desc())
};

class Schema;

/// What a shape-inference rule sees and declares.
class ShapeContext {
 public:
  ShapeContext(const Schema& schema, const Json& attrs, std::vector<std::optional<Shape>> inputs);

  /// Shape of an input; throws ShapeError when a required input has none.
  const Shape& input(const std::string& name) const;
  bool has_input(const std::string& name) const;
  const Json& attr(const std::string& name) const;
  int64_t attr_int(const std::string& name) const { return attr(name).get<int64_t>(); }
  double attr_float(const std::string& name) const { return attr(name).get<double>(); }
  bool attr_bool(const std::string& name) const { return attr(name).get<bool>(); }
  std::string attr_string(const std::string& name) const { return attr(name).get<std::string>(); }
  std::vector<int64_t> attr_ints(const std::string& name) const { return attr(name).get<std::vector<int64_t>>(); }

  void set_output(const std::string& name, Shape s);
  void param(const std::string& name, Shape s, Init init);
  /// Declares that the pipeline must run exactly `n` ticks (a sampler's model evaluations); `why` says
  /// where the count comes from ("heun with steps = 10: 2 x 10 - 1 model evaluations"). The loader
  /// fails when run.ticks differs and takes the count when run.ticks is "auto". `field` names the
  /// attribute that sets it.
  void require_ticks(int64_t n, std::string field, std::string why);

  /// Throws ShapeError naming `field` (an input or attribute name).
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const;
  /// Fails unless input `name` has rank `rank`.
  const Shape& input_rank(const std::string& name, size_t rank) const;

  std::vector<Shape> outputs;  ///< indexed like Schema::outputs
  std::vector<ParamDecl> params;
  /// Set by require_ticks.
  struct TickDemand {
    int64_t ticks;
    std::string field, why;
  };
  std::optional<TickDemand> ticks;

 private:
  const Schema& schema_;
  const Json& attrs_;
  std::vector<std::optional<Shape>> inputs_;
};

using ShapeFn = std::function<void(ShapeContext&)>;

/// What a memory rule sees: the node's attributes, the shapes of its inputs (empty when unconnected) and
/// outputs, and for optimizers and the nodes they feed, the bytes of the parameters they update.
struct MemoryContext {
  const Json& attrs;
  const std::vector<std::optional<Shape>>& inputs;
  const std::vector<Shape>& outputs;
  int64_t trainable_bytes = 0;
  bool reference = false;  ///< the straightforward path (plainest kernels)
};

/// Bytes a node holds beyond its output tensors and parameters, for the plan's memory report.
struct NodeMemory {
  int64_t optimizer_state = 0;  ///< moments, EMA weights: per trainable parameter
  int64_t other = 0;            ///< data sets, tables, buffers of its own
  /// Working memory of one call on the calling thread's buffers shared by all nodes (oneDNN scratchpads,
  /// reorder staging): the plan counts the largest, as a thread runs one node at a time.
  int64_t scratch = 0;
};
using MemoryFn = std::function<NodeMemory(const MemoryContext&)>;

/// Declarative node-type description with a builder interface.
class Schema {
 public:
  Schema() = default;
  Schema(std::string op, std::string doc) : op_(std::move(op)), doc_(std::move(doc)) {}

  Schema& input(std::string name, std::string doc = {});
  Schema& optional_input(std::string name, std::string doc = {});
  Schema& output(std::string name, std::string doc = {});
  Schema& attr_int(std::string name, std::optional<int64_t> def, std::optional<int64_t> min = {},
                   std::optional<int64_t> max = {}, std::string doc = {});
  Schema& attr_float(std::string name, std::optional<double> def, std::optional<double> min = {},
                     std::optional<double> max = {}, std::string doc = {});
  Schema& attr_bool(std::string name, std::optional<bool> def, std::string doc = {});
  Schema& attr_string(std::string name, std::optional<std::string> def, std::vector<std::string> choices = {},
                      std::string doc = {});
  Schema& attr_ints(std::string name, std::optional<std::vector<int64_t>> def, std::string doc = {});
  Schema& attr_floats(std::string name, std::optional<std::vector<double>> def, std::string doc = {});
  /// Inputs whose gradients backward() computes.
  Schema& differentiable(std::vector<std::string> inputs);
  /// The values backward() reads besides the output gradients: these inputs, and the outputs when
  /// `outputs` is true. Undeclared, backward may read every input and output. When training, the plan frees
  /// (and reuses) an activation's buffer once nothing that reads it is left in the tick.
  Schema& backward_reads(std::vector<std::string> inputs, bool outputs = false);
  Schema& shape(ShapeFn fn) { shape_fn_ = std::move(fn); return *this; }
  /// Runs on the serial compute lane (oneDNN primitives using all cores).
  Schema& heavy() { heavy_ = true; return *this; }
  /// Which physical layouts the node's rank-4 tensors (inputs, outputs and their gradients) may have.
  Schema& layouts(LayoutSupport l) { layouts_ = l; return *this; }
  /// A sink: may carry `every` and `at_end`, runs after the tick's compute.
  Schema& sink() { sink_ = true; return *this; }
  /// Inputs that are not ordering edges (the `next` of a state node).
  Schema& back_edge(std::string input) { back_edges_.push_back(std::move(input)); return *this; }
  /// An optimizer: the runtime derives the backward pass from its `loss` input.
  Schema& optimizer() { optimizer_ = true; return *this; }
  /// A gradient barrier (tensor.stop_gradient): its inputs are not differentiable by design, so the
  /// planner sends no gradient through it and does not report the cut as a dropped gradient. What feeds
  /// the loss only through such nodes gets no gradient and no optimizer state (a frozen net).
  Schema& stops_gradient() { stops_gradient_ = true; return *this; }
  /// Carries a value from one tick to the next (a `state` node): it runs every tick, whether or not a
  /// consumer is due.
  Schema& stateful() { stateful_ = true; return *this; }
  /// A sink that a budget probe may run (it writes nothing outside the run folder it is given): the probe
  /// that sizes a run to its budget (run.fit) times one of its firings, so the sized run counts its cost.
  /// Other sinks are skipped in the probe.
  Schema& timed_in_probe() { timed_in_probe_ = true; return *this; }
  /// Writes the run's checkpoint to the file its string attribute `path_attr` names: `--resume` reads the
  /// checkpoint to continue from there.
  Schema& checkpoint_writer(std::string path_attr) { checkpoint_path_attr_ = std::move(path_attr); return *this; }
  /// Integer attribute `attr` is the global batch of a data source. Loading for data parallelism over N
  /// ranks (LoadOptions::ranks) divides it by N before shapes are inferred: each rank draws its slice.
  Schema& batch_attr(std::string attr) { batch_attr_ = std::move(attr); return *this; }
  /// What the node holds beyond its outputs and parameters (the plan's memory report; none by default).
  Schema& memory(MemoryFn fn) { memory_fn_ = std::move(fn); return *this; }
  /// Attribute `attr` is part of how a model is trained: recipe entry `key` ("schedule", "T",
  /// "objective", "classes", ...). A checkpoint records the entries of the training pipeline's
  /// defining nodes (`defines`: the schedule, the training target, the class embedding); a pipeline
  /// loading the checkpoint has every declared attribute (defining or expecting: a sampler's prediction)
  /// checked against the record (runtime/checkpoint.hpp, recipe_of).
  Schema& recipe(std::string attr, std::string key, bool defines = true) {
    recipe_.push_back({std::move(attr), std::move(key), defines});
    return *this;
  }
  struct RecipeAttr {
    std::string attr, key;
    bool defines = true;
  };
  const std::vector<RecipeAttr>& recipe_attrs() const { return recipe_; }

  const std::string& op() const { return op_; }
  const std::string& doc() const { return doc_; }
  const std::vector<PortSpec>& inputs() const { return inputs_; }
  const std::vector<PortSpec>& outputs() const { return outputs_; }
  const std::vector<AttrSpec>& attrs() const { return attrs_; }
  const std::vector<std::string>& back_edges() const { return back_edges_; }
  bool is_heavy() const { return heavy_; }
  LayoutSupport layout_support() const { return layouts_; }
  bool is_sink() const { return sink_; }
  bool is_optimizer() const { return optimizer_; }
  bool is_gradient_barrier() const { return stops_gradient_; }
  bool is_stateful() const { return stateful_; }
  bool is_timed_in_probe() const { return timed_in_probe_; }
  /// The attribute naming the checkpoint file of a checkpoint_writer, empty for other nodes.
  const std::string& checkpoint_path_attr() const { return checkpoint_path_attr_; }
  /// The attribute holding a data source's global batch (batch_attr), empty for other nodes.
  const std::string& batch_attr_name() const { return batch_attr_; }
  const MemoryFn& memory_fn() const { return memory_fn_; }
  bool is_differentiable() const;
  /// Whether backward() reads input `p` / the node's outputs (see backward_reads).
  bool backward_reads_input(size_t p) const { return inputs_.at(p).read_by_backward; }
  bool backward_reads_outputs() const { return backward_reads_outputs_; }
  const ShapeFn& shape_fn() const { return shape_fn_; }

  const PortSpec* find_input(const std::string& name) const;
  int input_index(const std::string& name) const;
  int output_index(const std::string& name) const;
  const AttrSpec* find_attr(const std::string& name) const;
  bool is_back_edge(const std::string& input) const;

  /// `attrs` with every missing attribute set to its default (no validation).
  Json with_defaults(const Json& attrs) const;
  /// Checks `attrs` (an object, defaults already filled) against the declared attributes: type,
  /// range, choices, required. One Diagnostic per problem, in declaration order, each naming
  /// `file`, `node` and `attr "NAME"` (codes wrong_type, value_below_min, value_above_max,
  /// bad_choice, missing_attr). Attributes the schema does not declare are not its concern.
  std::vector<Diagnostic> check_attrs(const Json& attrs, const std::string& file, const std::string& node) const;
  /// Runs shape inference; throws ShapeError.
  ShapeContext infer(const Json& attrs_with_defaults, std::vector<std::optional<Shape>> inputs) const;

  /// The schema as JSON (for `noiseflow nodes --json` and docs).
  Json to_json() const;

 private:
  std::string op_, doc_;
  std::vector<PortSpec> inputs_, outputs_;
  std::vector<AttrSpec> attrs_;
  std::vector<std::string> back_edges_;
  bool backward_reads_outputs_ = true;
  ShapeFn shape_fn_;
  MemoryFn memory_fn_;
  bool heavy_ = false, sink_ = false, optimizer_ = false, stateful_ = false, timed_in_probe_ = false,
       stops_gradient_ = false;
  LayoutSupport layouts_ = LayoutSupport::plain;
  std::vector<RecipeAttr> recipe_;
  std::string batch_attr_;
  std::string checkpoint_path_attr_;
};

/// How graph/ looks node types up; the runtime's registry implements it.
class SchemaProvider {
 public:
  virtual ~SchemaProvider() = default;
  virtual const Schema* find_schema(const std::string& op) const = 0;
  virtual std::vector<std::string> ops() const = 0;
};

}  // namespace noiseflow::graph
