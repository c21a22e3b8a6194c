// runtime/plan/buffers.hpp — memory by lifetime.
//
//   schedule:   0    1    2    3    4    5
//   tensor a    [=========]                  slot 0
//   tensor b         [==============]        slot 1
//   tensor c                   [=========]   slot 0 again (a is dead by 3)
//
// One interval allocator serves activations (pipelines without an optimizer: outputs of heavy nodes,
// from their producer's forward to their last consumer's) and gradients (training: from the backward
// of the consumer that writes one to the backward of the producer that reads it).
#pragma once

#include <vector>

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

/// Slots for requests that come in order of their start: each takes the smallest free slot that fits
/// (free: its last tenant's lifetime ended before this one starts), else a new slot of exactly its size.
class IntervalAllocator {
 public:
  explicit IntervalAllocator(Slot::Pool pool, std::vector<Slot>& slots) : pool_(pool), slots_(slots) {}
  /// The slot for `bytes` over `life`; throws std::logic_error when requests come out of order.
  int take(int64_t bytes, Lifetime life);
  /// Bytes of the slots this allocator made.
  int64_t bytes() const { return bytes_; }

 private:
  Slot::Pool pool_;
  std::vector<Slot>& slots_;
  std::vector<std::pair<int, int>> mine_;  // (slot, busy until)
  int last_from_ = -1;
  int64_t bytes_ = 0;
};

/// Gives every node output and every gradient its lifetime on plan.schedule, and shared slots where the
/// plan allows it (optimised path: activations without an optimizer, gradients with one). Sets
/// serial_forward / serial_backward when the shared slots need the schedule's order.
void plan_buffers(const graph::Graph& g, ExecutionPlan& plan);

}  // namespace noiseflow::runtime::plan
