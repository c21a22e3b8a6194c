// runtime/run_state.hpp — what a run shares across its nodes: the files it
// wrote, scalars it logged, its run folder. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace noiseflow::runtime {

class Tensor;

class RunState {
 public:
  /// Records a file the run wrote ("image", "checkpoint", ...) and the node that wrote it; the CLI prints
  /// them. Calls on_artifact (outside the lock) the first time a path is recorded.
  void artifact(const std::string& kind, const std::string& path, const std::string& node = {});
  std::vector<std::pair<std::string, std::string>> artifacts() const;

  /// Records a scalar (e.g. "loss") at a tick.
  void scalar(const std::string& name, int64_t tick, double value);
  /// The latest value of a scalar, if any (and the tick it was recorded at).
  bool latest(const std::string& name, double& value, int64_t* tick = nullptr) const;

  /// The run's folder (runs/NAME), empty when the pipeline has none.
  std::string run_dir;

  /// Called by io.checkpoint at tick k just before it writes: whoever logs the run's ticks (the CLI's
  /// log.csv) writes tick k's row now, so that a run killed after the checkpoint and before the end of
  /// the tick has every row the checkpoint covers. Set it before the run starts.
  std::function<void(int64_t tick)> before_checkpoint;

  /// Watchers of a run (noiseflow serve), set before it starts; empty: nobody watches. on_artifact is
  /// called with (kind, path, node) when a node records a file, on the node's thread.
  std::function<void(const std::string& kind, const std::string& path, const std::string& node)> on_artifact;
  /// Sampler steps hand it the x0 prediction of every evaluation when set: (node, tick, x0) with x0 a plain
  /// [N, ...] tensor shaped like the sample, valid during the call only.
  std::function<void(const std::string& node, int64_t tick, const Tensor& x0)> on_x0;

 private:
  mutable std::mutex m_;
  std::vector<std::pair<std::string, std::string>> artifacts_;
  std::map<std::string, std::pair<int64_t, double>> latest_;
};

}  // namespace noiseflow::runtime
