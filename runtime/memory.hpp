// runtime/memory.hpp — the memory a process can still use, and the check that refuses a plan whose
// tensors cannot fit before anything is allocated. Linux overcommits: without the check, a plan larger
// than the machine allocates piece by piece until the kernel's OOM killer ends the process with no
// message at all.
#pragma once

#include <cstdint>

#include "graph/pipeline.hpp"
#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime {

/// Bytes this process can still allocate without swapping out others or hitting its cgroup's limit:
/// MemAvailable plus free swap from /proc/meminfo, capped by the cgroup (v2 memory.max - memory.current,
/// or v1 memory.limit_in_bytes - memory.usage_in_bytes). -1 when /proc/meminfo cannot be read.
int64_t available_memory();

/// Throws an out_of_memory RunError (phase "plan") when the plan's peak (MemoryReport::peak) exceeds
/// `limit` bytes, naming the largest tensor's node, output, shape and bytes, the report's parts and the
/// batch. limit 0: available_memory(); limit < 0: no check.
void check_plan_memory(const graph::Graph& g, const plan::ExecutionPlan& plan, int64_t limit);

}  // namespace noiseflow::runtime
