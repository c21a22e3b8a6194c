// nodes/optim/param_blocks.hpp — the fixed partition of the trainable parameters into blocks that the
// optimizers and the EMA work on (optim.adam, optim.ema).
//
//   parameter 0: [0, kBlock) [kBlock, 2 kBlock) ... [.., n0)   parameter 1: [0, kBlock) ...   (block order)
//
// The blocks depend on the parameter sizes only, never on the thread count: a reduction summed per block
// and combined in block order, and every element-wise update, give the same bits on any number of
// threads. The nodes are heavy (they run on the compute lane), so the blocks are spread over OpenMP
// threads like the other lane kernels, rather than over TBB workers that would fight OpenMP's.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes::optim {

/// The trainable parameters cut into blocks of at most kBlock elements, in parameter order.
class ParamBlocks {
 public:
  static constexpr int64_t kBlock = 16384;        ///< elements per block (fixed: results must not depend on threads)
  static constexpr int64_t kParallelMin = 65536;  ///< below this many elements in all, one thread is faster

  /// Elements [begin, end) of trainable parameter `param`.
  struct Block {
    size_t param;
    int64_t begin, end;
  };

  ParamBlocks() = default;
  /// The blocks of `params` (Context::trainable()).
  explicit ParamBlocks(const std::vector<runtime::Param*>& params) {
    for (size_t k = 0; k < params.size(); ++k) {
      const int64_t n = params[k]->value.numel();
      for (int64_t b = 0; b < n; b += kBlock) blocks_.push_back({k, b, std::min(n, b + kBlock)});
      total_ += n;
    }
  }

  int64_t size() const { return int64_t(blocks_.size()); }
  /// Elements in all blocks.
  int64_t total() const { return total_; }

  /// Calls fn(b, block) for every block b, spread over the OpenMP threads (static schedule) when there
  /// are at least kParallelMin elements.
  template <class Fn>
  void for_each(Fn&& fn) const {
    const int64_t nb = size();
    const Block* blocks = blocks_.data();
#pragma omp parallel for schedule(static) if (total_ >= kParallelMin)
    for (int64_t b = 0; b < nb; ++b) fn(b, blocks[b]);
  }

 private:
  std::vector<Block> blocks_;
  int64_t total_ = 0;
};

}  // namespace noiseflow::nodes::optim
