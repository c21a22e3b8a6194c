// runtime/export/onnx.hpp — a net of a pipeline, with a checkpoint's weights, as an ONNX model.
//
//   pipeline or net file ──load──> Graph ──select_net──> NetSelection (inputs, output, nodes)
//   checkpoint ──load_net_weights──> Weights (net-local names: "down.0.conv1.weight")
//   Graph + NetSelection + Weights ──build_model──> Model (each node type's own ONNX mapping)
//        ──serialize──> ONNX protobuf bytes ──write_model_file──> FILE (temp file + rename)
//
// The model: ONNX opset 17 (IR version 8), float32 throughout. Inputs are the net's inputs by name (unet-small:
// x [N, 1, 28, 28] and t [N], t as float32 timesteps because noiseflow's samplers feed fractional ones);
// the output is named `eps`. N is the symbolic dimension "N" unless a batch is fixed. Each node type maps to
// standard ops through its own mapping, declared in its file next to its schema:
//
//   struct Relu final : Node {
//     static Schema schema();
//     static void onnx(runtime::onnx::OpContext& c) { c.add("Relu", {c.input("x")}, {c.output()}); }
//     ...
//   };
//   NOISEFLOW_REGISTER_NODE(Relu);  // registers onnx() with the type (runtime::NodeType::onnx)
//
// A plugin's node types do the same. The exporter asks the registry; a node type without a mapping is an
// error naming the node and its type. Group normalization is Reshape-InstanceNormalization-Reshape-Mul-Add
// (opset 18's GroupNormalization was redefined in 21; the decomposition runs everywhere; nodes/nn/onnx_ops.hpp
// holds it for nn.group_norm and nn.attention).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/diagnostics.hpp"
#include "graph/pipeline.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::runtime::onnx {

/// The operator set the exported models import (the default ONNX domain).
inline constexpr int64_t kOpsetVersion = 17;
/// The IR version that goes with opset 17 (ONNX 1.12).
inline constexpr int64_t kIrVersion = 8;

/// A problem exporting: what() is `FILE: node "ID", FIELD: message` (graph::Diagnostic::str()). Stable codes:
/// no_net, unsupported_op, unsupported_attr, bad_weights, missing_weight, weight_shape, bad_batch, bad_name,
/// write_failed.
struct ExportError : std::runtime_error {
  graph::Diagnostic diagnostic;
  explicit ExportError(graph::Diagnostic d) : std::runtime_error(d.str()), diagnostic(std::move(d)) {}
  const std::string& code() const { return diagnostic.code; }
};

// ---- the model ---------------------------------------------------------------------------------------

/// TensorProto.DataType values used here.
enum class DataType : int32_t { Float = 1, Int64 = 7 };

/// One attribute of an ONNX node.
struct Attribute {
  /// AttributeProto.AttributeType values used here.
  enum class Kind : int32_t { Float = 1, Int = 2, String = 3, Floats = 6, Ints = 7 };
  std::string name;
  Kind kind = Kind::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;

  static Attribute of_int(std::string name, int64_t v);
  static Attribute of_float(std::string name, float v);
  static Attribute of_string(std::string name, std::string v);
  static Attribute of_ints(std::string name, std::vector<int64_t> v);
};

/// One ONNX node (NodeProto).
struct OpNode {
  std::string op_type;
  std::string name;  ///< the noiseflow node it comes from ("down.0.conv1", or "down.0.norm1/norm" for a part)
  std::vector<std::string> inputs, outputs;  ///< value names; "" skips an optional input
  std::vector<Attribute> attributes;
};

/// A constant tensor (TensorProto, data in raw_data, little-endian).
struct Initializer {
  std::string name;
  DataType type = DataType::Float;
  std::vector<int64_t> dims;
  std::string raw;  ///< the elements, row-major
};

/// A dimension of a graph input or output: a fixed size, or the symbolic `param` ("N") when it is not empty.
struct Dim {
  int64_t value = 0;
  std::string param;
};

/// A graph input or output (ValueInfoProto with a tensor type).
struct ValueInfo {
  std::string name;
  DataType type = DataType::Float;
  std::vector<Dim> dims;
};

/// An ONNX model: one graph in opset kOpsetVersion.
struct Model {
  std::string graph_name;
  std::string doc;
  std::vector<OpNode> nodes;  ///< in topological order
  std::vector<Initializer> initializers;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<std::pair<std::string, std::string>> metadata;  ///< ModelProto.metadata_props

  /// The ModelProto bytes (the .onnx file).
  std::string serialize() const;
};

// ---- which part of a pipeline is the net -------------------------------------------------------------

/// The net inside a graph: the nodes between its inputs and its output.
struct NetSelection {
  std::string prefix;  ///< what the net's node ids start with: "net." for an instance, "" for a net file
  std::vector<std::pair<std::string, graph::NodeRef>> inputs;  ///< the net's inputs by name ("x", "t")
  graph::NodeRef output;
  std::vector<int> nodes;  ///< graph node indices, producers first
};

/// The net of `g`: with an empty `instance`, a net file (its declared inputs are `input` placeholder nodes,
/// its output the one its "outputs" names; a pipeline without them uses instance "net"); otherwise the
/// subgraph instance of that id. Throws ExportError (no_net).
NetSelection select_net(const graph::Graph& g, const std::string& instance = {});

// ---- weights -----------------------------------------------------------------------------------------

/// The net's parameters by net-local name ("stem.weight", "down.0.conv1.weight", as shared/UNET_SMALL.md).
using Weights = std::map<std::string, Tensor>;

/// Every parameter of the net's nodes: net-local name and shape, in node order.
std::vector<std::pair<std::string, graph::Shape>> net_parameters(const graph::Graph& g, const NetSelection& net);

/// Weights read from a checkpoint, and what the model's metadata records of them.
struct CheckpointWeights {
  Weights weights;
  std::map<std::string, std::string> metadata;  ///< the file's __metadata__ (step, pipeline, ...)
};

/// Reads the net's parameters from a safetensors checkpoint the way io.load_checkpoint maps names: the
/// parameter with net-local name L is the tensor `W` + `prefix` + L, or `W` + L in a file without the prefix
/// (one written for PyTorch users), where W is "" for `weights` = raw, "ema." for ema (optim.ema's copies)
/// and "NAME." for another EMA prefix NAME. `prefix` is the net's instance id and a dot ("net.", the id
/// train.json gives it). Throws ExportError (bad_weights, missing_weight, weight_shape) naming the file and the
/// tensor.
CheckpointWeights load_net_weights(const graph::Graph& g, const NetSelection& net, const std::string& path,
                                   const std::string& weights, const std::string& prefix);

// ---- building the model ------------------------------------------------------------------------------

/// How the model is built.
struct ModelOptions {
  std::optional<int64_t> batch;        ///< fixed batch; none: the symbolic dimension "N"
  std::string output_name = "eps";     ///< the graph output's name
  std::string graph_name;              ///< default: the graph's name
  std::vector<std::pair<std::string, std::string>> metadata;  ///< added to the model's metadata_props
};

/// The model of the net with `weights` (every parameter of the net's nodes, by net-local name). Throws
/// ExportError: unsupported_op for a node type without a mapping (naming the node and its type),
/// missing_weight / weight_shape, bad_batch when the batch cannot be fixed or made symbolic.
Model build_model(const graph::Graph& g, const NetSelection& net, const Weights& weights,
                  const ModelOptions& options = {});

/// Writes `bytes` to `path` atomically (PATH.tmp, fsync, rename; folders created). Throws ExportError
/// (write_failed) naming the file.
void write_model_file(const std::string& path, const std::string& bytes);

// ---- one call: what `noiseflow export onnx` does ---------------------------------------------------

/// What to export.
struct ExportRequest {
  std::string checkpoint;                           ///< safetensors file with the weights
  std::string output;                               ///< the .onnx file to write
  std::string net_file = "pipelines/nets/unet_small.json";  ///< a net file, or a pipeline holding the net
  std::string instance;                             ///< the net's instance id in a pipeline (default "net")
  std::string weights = "ema";                      ///< raw, ema, or an EMA prefix
  std::optional<std::string> prefix;                ///< checkpoint name prefix (default: the instance id + ".", "net.")
  std::optional<int64_t> batch;                     ///< fixed batch (sets the file's `batch` param if it has one)
  std::map<std::string, nlohmann::json> params;     ///< param overrides of the file (--set)
};

/// What was written.
struct ExportSummary {
  std::string output;
  int64_t onnx_nodes = 0, initializers = 0, parameters = 0;  ///< parameters: elements of the net's weights
  std::string signature;  ///< "x [N, 1, 28, 28], t [N] -> eps [N, 1, 28, 28] (float32)"
};

/// Loads the file (with the global node registry), selects the net, reads its weights, builds the model and
/// writes it. Throws graph::GraphError for an invalid file, ExportError otherwise.
ExportSummary export_onnx(const ExportRequest& request);

// ---- op mappings: a node type's static onnx(OpContext&) (runtime::NodeType::onnx) -------------------

/// The op names of the registry's node types that have an ONNX mapping, sorted.
std::vector<std::string> mapped_ops();

/// What a mapping sees of its node and how it adds ONNX nodes. Values are named after the noiseflow node
/// ("down.0.conv1"); the parts of a decomposition after it ("down.0.norm1/norm"). Shapes are the graph's, at
/// the batch it was loaded with: a Reshape must write 0 (copy) for the batch dimension so a symbolic batch
/// stays valid.
class OpContext {
 public:
  OpContext(const graph::Graph& g, const graph::GraphNode& node, std::string local_id,
            std::vector<std::string> input_values, std::vector<std::string> output_values,
            std::function<std::string(const std::string&, const std::vector<int64_t>&)> param_fn,
            std::function<std::string(const Initializer&)> constant_fn, std::vector<OpNode>& nodes);

  const graph::GraphNode& node() const { return node_; }
  /// The node's id inside the net ("down.0.conv1"): the name of its ONNX nodes and values.
  const std::string& id() const { return id_; }
  int64_t attr_int(const std::string& name) const { return node_.attrs.at(name).get<int64_t>(); }
  double attr_float(const std::string& name) const { return node_.attrs.at(name).get<double>(); }
  bool attr_bool(const std::string& name) const { return node_.attrs.at(name).get<bool>(); }
  std::string attr_string(const std::string& name) const { return node_.attrs.at(name).get<std::string>(); }

  bool has_input(const std::string& port) const;
  /// The ONNX value an input port is connected to.
  const std::string& input(const std::string& port) const;
  const graph::Shape& input_shape(const std::string& port) const;
  /// The ONNX value the node's output must be written to (default: its first output).
  const std::string& output(const std::string& port = {}) const;
  const graph::Shape& output_shape(const std::string& port = {}) const;

  /// The initializer holding the node's parameter `local` ("weight"), optionally seen with other `dims` of
  /// the same element count ([C] as [C, 1, 1] to broadcast over H and W).
  std::string param(const std::string& local, const std::vector<int64_t>& dims = {});
  /// A constant int64 tensor (1-D of `values`, or `dims`; {} dims with one value: a scalar). Shared by value.
  std::string ints(const std::vector<int64_t>& values, std::optional<std::vector<int64_t>> dims = std::nullopt);
  /// A constant float tensor of `dims` (a scalar for {}). Shared by value.
  std::string floats(const std::vector<float>& values, const std::vector<int64_t>& dims);
  /// The name of an intermediate value of this node: "ID/what".
  std::string temp(const std::string& what) const { return id_ + "/" + what; }

  /// Adds an ONNX node writing `outputs`; its name is the node's id, or "ID/part" with a part.
  void add(const std::string& op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
           std::vector<Attribute> attributes = {}, const std::string& part = {});
  /// Adds a one-output node writing temp(what) and returns that name.
  std::string add_temp(const std::string& what, const std::string& op_type, std::vector<std::string> inputs,
                       std::vector<Attribute> attributes = {});

  /// Throws ExportError naming the node's file, the node and `field` (an attribute: `attr "mode"`).
  [[noreturn]] void fail(const std::string& field, const std::string& message,
                         const std::string& code = "unsupported_attr") const;

 private:
  int input_index(const std::string& port) const;
  int output_index(const std::string& port) const;

  const graph::Graph& g_;
  const graph::GraphNode& node_;
  std::string id_;
  std::vector<std::string> inputs_, outputs_;
  std::function<std::string(const std::string&, const std::vector<int64_t>&)> param_fn_;
  std::function<std::string(const Initializer&)> constant_fn_;
  std::vector<OpNode>& nodes_;
};

}  // namespace noiseflow::runtime::onnx
