// runtime/recipe.hpp — how a model was trained: the recipe a checkpoint records (schedule, T, objective, class
// count, ... from the nodes' Schema::recipe declarations) and the check that a pipeline loading it uses the
// model the same way.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/pipeline.hpp"

namespace noiseflow::runtime {

/// How a training pipeline trains its model, from its nodes' Schema::recipe declarations (the defining
/// ones: schedule kind, T, betas, zero-SNR, objective, class count): {key: value}. A key two nodes give
/// different values is left out (ambiguous). Saved as the checkpoint metadata "recipe".
nlohmann::json recipe_of(const graph::Graph& g);

/// The problems of loading a checkpoint trained with `recorded` (recipe_of) into pipeline `g`: every
/// node attribute declared as a recipe entry (defining or expecting) whose value differs, each naming
/// both values and the fix (`--set PARAM=VALUE` when the attribute is a top-level param). Empty: none.
std::vector<std::string> recipe_mismatches(const graph::Graph& g, const nlohmann::json& recorded);

}  // namespace noiseflow::runtime
