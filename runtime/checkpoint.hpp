// runtime/checkpoint.hpp — checkpoints of a run: an executor's parameters, node state (optimizer moments,
// EMA weights), step and recipe (runtime/recipe.hpp) in a safetensors file (runtime/safetensors.hpp), and
// loading them back for resuming, sampling or evaluation.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/safetensors.hpp"

namespace noiseflow::runtime {

class Executor;

/// What a checkpoint restores.
enum class LoadMode {
  Resume,   ///< every parameter and every node state tensor (optimizer moments, EMA), and the step
  Weights,  ///< parameters only (extra tensors ignored)
  Ema,      ///< parameters from the EMA copies ("ema.<name>", or "<ema_prefix>.<name>")
};

/// How load_checkpoint reads a file into an executor.
struct LoadCheckpointOptions {
  LoadMode mode = LoadMode::Weights;
  /// A name prefix to drop when the file's names lack it (e.g. "net.").
  std::string prefix = {};
  /// When set, only the parameters whose names start with it are loaded, looked up in the file with `scope`
  /// replaced by `file_scope` (a classifier instance "cls." loading a checkpoint whose names start with "net.").
  std::string scope = {};
  std::string file_scope = {};
  /// LoadMode::Ema reads the copies named "<ema_prefix>.<name>" (optim.ema's `prefix`).
  std::string ema_prefix = "ema";
  /// A tensor holding NaN or Inf is an error naming it unless this is set (to inspect a diverged run).
  bool allow_nonfinite = false;
};

/// Every tensor a checkpoint of this executor holds: parameters, then node
/// state tensors (optimizer moments, EMA weights), by name.
NamedTensorList checkpoint_tensors(Executor& ex);
/// Writes a checkpoint of the executor at `step` (ticks completed).
void save_checkpoint(Executor& ex, const std::string& path, int64_t step);
/// Loads a checkpoint into the executor; returns the step it was written at. Checks every tensor (names,
/// shapes, finite values) and, unless resuming or scoped, the recorded recipe against the pipeline before
/// writing anything. Throws CheckpointError naming the file and the problem.
int64_t load_checkpoint(Executor& ex, const std::string& path, const LoadCheckpointOptions& options = {});

}  // namespace noiseflow::runtime
