// tools/studio/comfy_prompt.hpp — ComfyUI's API-format prompt as a noiseflow pipeline document, for
// `POST /prompt` (docs/API.md, "ComfyUI's API format"): {ID: {"class_type": op, "inputs": {...}}} with
// [id, slot] inputs as references to outputs and the other inputs as attributes; run settings in a node of
// class noiseflow.run. Also the ComfyUI node_errors a bad prompt is answered with. No server code: the
// fuzz target (tests/fuzz/targets.cpp) runs it too.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/diagnostics.hpp"
#include "graph/schema.hpp"

namespace noiseflow::studio {

using Json = nlohmann::json;

/// The class_type of the node that carries an API-format prompt's run settings (ticks, seed, name, minutes).
inline const std::string kRunClass = "noiseflow.run";

/// True when a POST /prompt body's "prompt" is in ComfyUI's API format, not a noiseflow document (which
/// has "nodes").
bool is_api_format(const Json& prompt);

/// An API-format prompt translated.
struct ApiPrompt {
  Json doc = nullptr;                ///< the pipeline document; null when node_errors is not empty
  Json node_errors = Json::object();  ///< ComfyUI's node_errors of what could not be translated
  Json error = nullptr;              ///< the first problem as ComfyUI's top-level error, when any
  std::vector<std::string> outputs;  ///< ids of the output nodes (node types without outputs), in id order
};

/// Translates `prompt` ({ID: {"class_type", "inputs"}}) with the node types of `schemas`. Never throws
/// for any JSON value; problems are in node_errors (or error, for a prompt that is no object).
ApiPrompt translate_api_prompt(const Json& prompt, const graph::SchemaProvider& schemas);

/// ComfyUI's node_errors for diagnostics of a document: {ID: {"errors": [{"type", "message", "details",
/// "extra_info"}], "dependent_outputs": [], "class_type": op or null}}; file-level diagnostics (no node)
/// are left out. `doc` gives the class_type of the nodes it declares.
Json node_errors(const std::vector<graph::Diagnostic>& diags, const Json& doc);

/// One node error entry: {"type", "message", "details", "extra_info"}.
Json node_error(const std::string& type, const std::string& message, const std::string& details,
                Json extra_info = Json::object());

}  // namespace noiseflow::studio
