#include "runtime/memory.hpp"

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "runtime/errors.hpp"

namespace noiseflow::runtime {

namespace {

// A number from a one-line file (cgroup files); nullopt for "max", a missing file or garbage.
std::optional<int64_t> read_number(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return std::nullopt;
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used != s.size() || v < 0) return std::nullopt;
    return int64_t(v);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string gb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", double(bytes) / 1e9);
  return buf;
}

}  // namespace

int64_t available_memory() {
  std::ifstream f("/proc/meminfo");
  if (!f) return -1;
  int64_t available = -1, swap_free = 0;
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") available = kb * 1024;
    else if (key == "SwapFree:") swap_free = kb * 1024;
  }
  if (available < 0) return -1;
  int64_t total = available + swap_free;
  // cgroup v2, then v1: a container's limit below the machine's memory.
  const std::optional<int64_t> v2_max = read_number("/sys/fs/cgroup/memory.max");
  if (v2_max) total = std::min(total, *v2_max - read_number("/sys/fs/cgroup/memory.current").value_or(0));
  const std::optional<int64_t> v1_max = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  if (v1_max && *v1_max < (int64_t(1) << 60))
    total = std::min(total, *v1_max - read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes").value_or(0));
  return std::max<int64_t>(total, 0);
}

void check_plan_memory(const graph::Graph& g, const plan::ExecutionPlan& plan, int64_t limit) {
  if (limit < 0 || g.nodes.empty()) return;
  const bool machine = limit == 0;
  if (machine) limit = available_memory();
  if (limit < 0) return;  // no /proc/meminfo: nothing to compare with
  const plan::MemoryReport& m = plan.memory;
  const int64_t need = m.peak();
  if (need <= limit) return;
  // The largest node output names where the memory goes.
  const plan::TensorPlan* largest = nullptr;
  for (const auto& outputs : plan.tensors)
    for (const plan::TensorPlan& t : outputs)
      if (!largest || t.storage.bytes > largest->storage.bytes) largest = &t;
  const graph::GraphNode& gn = g.nodes[size_t(largest ? largest->value.node : g.order.front())];
  std::string message = "out of memory: the plan needs " + gb(need) + " (activations " + gb(m.activations) +
                        ", gradients " + gb(m.gradients) + ", parameters and their gradients " +
                        gb(m.parameters + m.parameter_gradients) + ", optimizer state " + gb(m.optimizer_state) +
                        ", data and tables " + gb(m.node_memory) + ", scratch " + gb(m.scratch) + ") and " +
                        (machine ? "this process can use " + gb(limit) + " (free memory and swap)"
                                 : "the limit is " + gb(limit));
  std::string field = "plan";
  if (largest) {
    const std::string& out = gn.schema->outputs()[size_t(largest->value.output)].name;
    field = "output \"" + out + "\"";
    message += "; its largest tensor is this " + graph::shape_str(largest->shape) + " output (" +
               std::to_string(largest->storage.bytes) + " bytes)";
  }
  if (g.params.is_object() && g.params.contains("batch")) message += "; a smaller batch needs less (--set batch=N)";
  throw plan_error(gn, field, "out_of_memory", message);
}

}  // namespace noiseflow::runtime
