#include "runtime/run_state.hpp"

#include <algorithm>

namespace noiseflow::runtime {

void RunState::artifact(const std::string& kind, const std::string& path, const std::string& node) {
  {
    std::lock_guard lock(m_);
    auto e = std::make_pair(kind, path);
    if (std::find(artifacts_.begin(), artifacts_.end(), e) != artifacts_.end()) return;
    artifacts_.push_back(e);
  }
  if (on_artifact) on_artifact(kind, path, node);
}

std::vector<std::pair<std::string, std::string>> RunState::artifacts() const {
  std::lock_guard lock(m_);
  return artifacts_;
}

void RunState::scalar(const std::string& name, int64_t tick, double value) {
  std::lock_guard lock(m_);
  latest_[name] = {tick, value};
}

bool RunState::latest(const std::string& name, double& value, int64_t* tick) const {
  std::lock_guard lock(m_);
  auto it = latest_.find(name);
  if (it == latest_.end()) return false;
  value = it->second.second;
  if (tick) *tick = it->second.first;
  return true;
}

}  // namespace noiseflow::runtime
