// nodes/kernels/winograd.hpp — noiseflow's own Winograd F(4x4, 3x3) convolution for 3x3, stride-1, padding-1
// layers: forward, backward-data and backward-weights, on nChw16c tensors. Support code for nn.conv2d (the
// kernels of nodes/kernels/), not a node type.
//
// oneDNN 2.6 has Winograd kernels only for AVX-512; on AVX2 CPUs its direct kernels are all there is.
// These kernels fill that gap (and run on AVX-512 too, where they can be compared with oneDNN's):
//   forward           Y = A^T [ sum_ci (G g G^T) . (B^T d B) ] A          per 4x4 output tile
//   backward-data     the forward of dY with the kernel rotated 180 degrees and its channels swapped
//   backward-weights  dg = G^T [ sum_tiles (A dY A^T) . (B^T d B) ] G      (the transpose of the forward)
// with the matrices of Lavin & Gray (2016), interpolation points 0, +-1, +-2, infinity. The 36 products of
// each tile run as small matrix products over channels (forward) or tiles (backward-weights) on a
// register-blocked micro-kernel; a block of tiles is transformed, multiplied and transformed back while it is
// in cache. Code is generated for AVX-512, AVX2+FMA and baseline x86-64 and chosen by nodes/kernels/isa.hpp's
// current_isa() (oneDNN's effective ISA), so ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA restrict these kernels as
// they restrict oneDNN's.
//
// Work is split over OpenMP threads by blocks of tiles in a fixed order, and the per-thread partial weight
// gradients are summed in thread order: results are bitwise repeatable for a given thread count.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nodes/kernels/isa.hpp"

namespace noiseflow::nodes::kernels::winograd {

struct Geometry {
  int64_t n = 0, cin = 0, cout = 0, h = 0, w = 0;
};

/// Whether these kernels handle the layer: both channel counts multiples of 16 (nChw16c without padding).
inline bool supports(int64_t cin, int64_t cout) { return cin > 0 && cout > 0 && cin % 16 == 0 && cout % 16 == 0; }

/// One 3x3 / stride 1 / padding 1 convolution layer. Tensors: src [n, cin, h, w] and dst [n, cout, h, w] in
/// nChw16c, weights [cout, cin, 3, 3] (oihw), bias [cout]. The working memory comes from the calling
/// threads' staging buffers (nodes/kernels/dnnl_util.hpp): shared_bytes() on the caller, thread_bytes() on each.
class Conv3x3 {
 public:
  Conv3x3() = default;
  Conv3x3(const Geometry& g, Isa isa);

  const Geometry& geometry() const { return g_; }
  Isa isa() const { return isa_; }
  size_t shared_bytes() const;
  size_t thread_bytes() const;

  /// dst = conv(src, wei) + bias [+ chan] [+ add], in the output pass: bias [cout], chan [n, cout] (per image
  /// and channel, e.g. a time embedding's projection) and add (a residual, nChw16c like dst) may be null.
  void forward(const float* src, const float* wei, const float* bias, float* dst, const float* chan = nullptr,
               const float* add = nullptr) const;
  /// dsrc = the gradient of the forward's src for the output gradient ddst (overwritten).
  void backward_data(const float* ddst, const float* wei, float* dsrc) const;
  /// dwei (and dbias, when not null) = the gradients of the forward's weights and bias (overwritten).
  void backward_weights(const float* src, const float* ddst, float* dwei, float* dbias) const;

 private:
  Geometry g_{};
  Isa isa_ = Isa::generic;
  int64_t tiles_y_ = 0, tiles_x_ = 0, tiles_ = 0;
  int64_t block_fwd_ = 0, block_bwd_ = 0, block_wgt_ = 0;  // tiles per block
};

}  // namespace noiseflow::nodes::kernels::winograd
