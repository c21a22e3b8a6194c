// runtime/errors.hpp — the run-time error type, built from graph::Diagnostic.
//
// Nodes throw NodeError (a field and a message, optionally a code); the executor, the planners and the
// embedding API turn it, and anything else a node body throws (std::bad_alloc, dnnl::error, ...), into one
// RunError: `FILE: node "ID", FIELD: message` with a stable code and the phase it happened in.
#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "graph/diagnostics.hpp"
#include "graph/pipeline.hpp"

namespace noiseflow::runtime {

/// An error raised by a node while planning or running; the executor adds the pipeline file and node id.
/// `field` is an input, attribute or output name (or empty); `code` a stable snake_case id.
struct NodeError : std::runtime_error {
  std::string field;
  std::string code = "node_failed";
  NodeError(std::string field_, const std::string& msg, std::string code_ = "node_failed")
      : std::runtime_error(msg), field(std::move(field_)), code(std::move(code_)) {}
};

/// Raised to stop a run early on purpose (cancel()).
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

/// An error while planning or running a pipeline: what() is diagnostic.str(), `FILE: node "ID", FIELD:
/// message`. Stable codes: node_failed (a node's own error, or its NodeError code), shape_error,
/// out_of_memory, dnnl_error, unknown_op, two_optimizers, missing_loss, nothing_to_optimise,
/// not_differentiable; from the embedding API no_checkpoint_node, nothing_to_resume, checkpoint_past_run,
/// plugin_failed, plugin_no_nodes, plugin_duplicate_node, plugin_registration_failed. Phases: load, plan,
/// forward, backward, end of tick.
struct RunError : std::runtime_error {
  graph::Diagnostic diagnostic;
  std::string node;   ///< the node id (diagnostic.node)
  std::string phase;  ///< plan, forward, backward, end of tick
  RunError(graph::Diagnostic d, std::string phase_);
  const std::string& code() const { return diagnostic.code; }
};

/// The RunError for an exception `e` thrown by node `gn` in `phase`: NodeError and graph::ShapeError name
/// their field, std::bad_alloc (OutOfMemory: with the tensor and its bytes) and dnnl::error get codes of
/// their own, anything else is node_failed with the phase as its field.
RunError as_run_error(const std::exception& e, const graph::GraphNode& gn, const std::string& phase);

/// A RunError about node `gn` raised by the planner or executor itself.
RunError plan_error(const graph::GraphNode& gn, std::string field, std::string code, std::string message);

}  // namespace noiseflow::runtime
