// runtime/checkpoint.hpp — safetensors files, and checkpoints of a run.
//
// A safetensors file: 8-byte little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes. Files are
// written to PATH.tmp, fsynced and renamed, so a crash never leaves a
// half-written checkpoint in place; reading validates everything.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph/pipeline.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::runtime {

class Executor;

/// A problem with a safetensors file; what() starts with the file's path.
struct CheckpointError : std::runtime_error {
  explicit CheckpointError(const std::string& msg) : std::runtime_error(msg) {}
};

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

/// The contents of a safetensors file (F32 tensors; F16/BF16/F64 are converted).
struct SafeTensors {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;
};

/// Writes atomically (PATH.tmp, fsync, rename). Throws CheckpointError.
void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata);
/// Reads and validates. Throws CheckpointError naming the file and the problem.
SafeTensors read_safetensors(const std::string& path);

/// What a checkpoint restores.
enum class LoadMode {
  Resume,   ///< every parameter and every node state tensor (optimizer moments, EMA), and the step
  Weights,  ///< parameters only (extra tensors ignored)
  Ema,      ///< parameters from the EMA copies ("ema.<name>", or "<ema_prefix>.<name>")
};

/// Every tensor a checkpoint of this executor holds: parameters, then node
/// state tensors (optimizer moments, EMA weights), by name.
NamedTensorList checkpoint_tensors(Executor& ex);
/// Writes a checkpoint of the executor at `step` (ticks completed).
void save_checkpoint(Executor& ex, const std::string& path, int64_t step);
/// Loads a checkpoint into the executor; returns the step it was written at.
/// `prefix` is a name prefix to drop when the file's names lack it (e.g. "net."). With a `scope`, only
/// the parameters whose names start with it are loaded, looked up in the file with `scope` replaced by
/// `file_scope` (a classifier instance "cls." loading a checkpoint whose names start with "net.").
/// LoadMode::Ema reads the copies named "<ema_prefix>.<name>" (optim.ema's `prefix`). A tensor holding NaN
/// or Inf is an error naming it unless `allow_nonfinite` (to inspect a diverged run).
int64_t load_checkpoint(Executor& ex, const std::string& path, LoadMode mode, const std::string& prefix = {},
                        const std::string& scope = {}, const std::string& file_scope = {},
                        const std::string& ema_prefix = "ema", bool allow_nonfinite = false);

/// How a training pipeline trains its model, from its nodes' Schema::recipe declarations (the defining
/// ones: schedule kind, T, betas, zero-SNR, objective, class count): {key: value}. A key two nodes give
/// different values is left out (ambiguous). Saved as the checkpoint metadata "recipe".
nlohmann::json recipe_of(const graph::Graph& g);

/// The problems of loading a checkpoint trained with `recorded` (recipe_of) into pipeline `g`: every
/// node attribute declared as a recipe entry (defining or expecting) whose value differs, each naming
/// both values and the fix (`--set PARAM=VALUE` when the attribute is a top-level param). Empty: none.
std::vector<std::string> recipe_mismatches(const graph::Graph& g, const nlohmann::json& recorded);

}  // namespace noiseflow::runtime
