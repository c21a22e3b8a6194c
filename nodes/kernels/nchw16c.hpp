// nodes/kernels/nchw16c.hpp — loop helpers for tensors in the nChw16c layout (runtime::Layout), for the
// nodes that handle it themselves (nn.add, nn.group_norm). Support code (nodes/kernels/), not a node type.
//
// An nChw16c tensor [N, C, H, W] is N * C/16 channel blocks; block k = n * C/16 + c/16 is H*W pixels of
// 16 consecutive channels, contiguous at k * H*W * 16. Loops over a block run a 16-wide inner loop over
// the channels, which the compiler vectorises.
#pragma once

#include <algorithm>
#include <cstdint>

namespace noiseflow::nodes::kernels::nchw16c {

constexpr int kLanes = 16;
/// Pixels summed in float per lane before adding into double: 256 terms, as each of the 16 float lanes of
/// nn.group_norm's plain-layout sums.
constexpr int64_t kPixelChunk = 256;

/// s[l] = sum over the hw pixels of block p of channel l. Always inlined, so that it is vectorised for the
/// ISA its caller is compiled for (nodes/kernels/isa.hpp).
[[gnu::always_inline]] inline void block_sums(const float* p, int64_t hw, double s[kLanes]) {
  std::fill(s, s + kLanes, 0.0);
  for (int64_t o = 0; o < hw; o += kPixelChunk) {
    const int64_t e = std::min(hw, o + kPixelChunk);
    float c[kLanes] = {};
    for (int64_t i = o; i < e; ++i)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) c[l] += p[i * kLanes + l];
    for (int l = 0; l < kLanes; ++l) s[l] += c[l];
  }
}

}  // namespace noiseflow::nodes::kernels::nchw16c
