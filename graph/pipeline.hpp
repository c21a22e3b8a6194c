// graph/pipeline.hpp — pipeline files (format `noiseflow: 1`) to a validated,
// expanded, ordered and shape-checked graph.
//
//   pipeline.json ──parse──> params/$subst ──includes──> flat nodes
//        ──resolve refs──> attrs/inputs checked against schemas
//        ──Boost.Graph──> topological order ──> shapes of every edge
//
// Every problem is collected and reported together (GraphError).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/diagnostics.hpp"
#include "graph/schema.hpp"

namespace noiseflow::graph {

/// The op of the placeholder nodes the loader makes of a subgraph file's declared inputs, so the file can
/// be checked or run on its own: a tensor the caller writes (nodes/core/input.cpp implements it; the
/// embedding API writes into it, the ONNX exporter takes a net file's placeholders as the net's inputs).
inline constexpr const char* kInputOp = "input";

/// Where an input comes from: node index and output index.
struct NodeRef {
  int node = -1;
  int output = 0;
  bool operator==(const NodeRef&) const = default;
};

/// One node of the expanded graph (subgraph instances are inlined; their
/// nodes' ids carry the instance prefix, e.g. "net.down.0.conv1").
struct GraphNode {
  std::string id;
  std::string op;
  const Schema* schema = nullptr;
  Json attrs;                                ///< defaults filled, params substituted
  std::vector<std::optional<NodeRef>> inputs;  ///< indexed like schema inputs
  int64_t every = 0;                         ///< sinks: run every N ticks (0: every tick unless at_end)
  bool at_end = false;                       ///< sinks: run after the last tick
  std::string file;                          ///< the file that declared it
  std::vector<Shape> output_shapes;          ///< indexed like schema outputs
  std::vector<ParamDecl> params;             ///< trainable parameters (local names)
  /// Weight tying ("params_of"): the node whose parameters this one uses instead of its own (resolved to
  /// the first node of the chain, which owns them; empty: its own). One set of tensors, one checkpoint name
  /// per tensor (the owner's); the gradients of every use are summed before the optimizer steps.
  std::string params_of;
  std::optional<ShapeContext::TickDemand> ticks;  ///< the tick count this node requires, if any
};

/// A validated pipeline.
struct Graph {
  std::string file;  ///< the top-level pipeline file
  std::string name;
  Json params;       ///< resolved top-level params
  int64_t ticks = 1;
  bool ticks_auto = false;  ///< run.ticks was "auto": taken from the node that requires a count
  uint64_t seed = 0;
  /// run.minutes: a wall-clock budget; the run ends (at_end sinks and all) at the last tick that fits it.
  /// 0: none. A run sized by it (`fit`) is not cut: it runs the count the probe fixed.
  double minutes = 0;
  /// run.fit: the top-level param (e.g. "steps") that a budget sizes. When its value makes run.ticks 0 and
  /// run.minutes is set, `fit_pending` is true and the graph is not runnable as loaded: noiseflow::Pipeline
  /// measures the machine in a probe of a few ticks, sets the param to the tick count the budget allows and
  /// loads again (docs/NOTES.md, "A budget, not a step count").
  std::string fit;
  bool fit_pending = false;
  /// How a run sized by its budget was sized ({"param", "ticks", "minutes", "tick_seconds", ...}); null
  /// otherwise. Kept in the run folder's pipeline.json and the checkpoint's metadata ("sized").
  Json sized;
  /// Data-parallel ranks the graph is shaped for (LoadOptions::ranks): every data source's batch attribute
  /// (Schema::batch_attr) holds the global batch divided by it; `resolved` keeps the global batch.
  int ranks = 1;
  std::vector<GraphNode> nodes;
  std::vector<int> order;  ///< topological order (producers first)
  Json resolved;           ///< the flattened pipeline, params substituted (itself loadable)
  std::map<std::string, NodeRef> aliases;  ///< subgraph instance outputs ("net", "net.out") -> source

  /// Index of a node id, -1 if none.
  int find(const std::string& id) const;
  /// Resolves "node" or "node.output"; nullopt if none.
  std::optional<NodeRef> resolve(const std::string& ref) const;
  /// Shape of a node output.
  const Shape& shape(NodeRef r) const { return nodes[r.node].output_shapes[r.output]; }
  /// "node.output" name of a ref.
  std::string ref_name(NodeRef r) const;
  /// Total count of trainable parameter elements.
  int64_t param_count() const;  ///< every parameter element once (a tied node counts under its owner)
  /// Graphviz text of the graph (edges labelled with shapes).
  std::string dot() const;
  /// Hash of the resolved pipeline (for checkpoint metadata).
  std::string hash() const;
};

/// Options for loading.
struct LoadOptions {
  const SchemaProvider* schemas = nullptr;
  std::map<std::string, Json> overrides;  ///< param values (from --set or the API)
  std::optional<uint64_t> seed;           ///< overrides run.seed
  std::optional<int64_t> ticks;           ///< overrides run.ticks
  /// Data parallelism over this many processes: the batch attribute of every data source (Schema::batch_attr)
  /// is the global batch, and each rank's graph is shaped for its slice, batch / ranks. A batch that does
  /// not divide by it is an error (code batch_not_divisible).
  int ranks = 1;
  /// When set, every included file's path (the including file's folder joined with the include, normalised)
  /// is shown to it before it is read: a non-empty answer refuses the include with that message (code
  /// path_refused). `noiseflow serve` keeps includes inside its project folder with it.
  std::function<std::string(const std::string& file)> check_include;
};

/// Loads, validates and shape-checks a pipeline file. Throws GraphError.
Graph load_pipeline(const std::string& path, const LoadOptions& options);
/// The same from text; `path` names it in messages and anchors relative includes.
Graph load_pipeline_text(const std::string& text, const std::string& path, const LoadOptions& options);

/// Parses a `--set key=value` argument (value as JSON if it parses, else as a
/// string). Throws GraphError with code bad_set.
std::pair<std::string, Json> parse_set(const std::string& arg);

}  // namespace noiseflow::graph
