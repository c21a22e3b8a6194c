// nodes/kernels/group_norm.hpp — group normalization kernels (PyTorch nn.GroupNorm with a per-channel
// affine), shared by nn.group_norm and nn.attention's norm: support code for the node library, not a node
// type.
//
// oneDNN 2.6 has no group normalization. On the plain layout a task is one (sample, group): two passes for
// mean and variance over the group's contiguous C/groups * H*W values, one fused normalise+affine pass per
// channel; backward is two passes (per-channel sums of dy and dy * xhat, then dx as a per-channel affine
// function of dy and x). Statistics are accumulated in double over float SIMD chunks. Measured at
// 64x64x28x28, 8 groups, 1 thread (loaded machine, best of 15): forward 2.0 ms vs 2.1 ms for oneDNN layer
// normalization over [N*G, C/G*H*W] plus an affine pass; backward 2.2 ms vs 7-15 ms for layer-norm backward
// plus the dgamma/dbeta and dy*gamma passes.
//
// On nChw16c the same math runs over channel blocks: a task is one sample's run of lcm(C/groups, 16)
// channels — whole blocks holding whole groups, contiguous in memory like a plain group — and each pass is a
// 16-wide loop over a block's pixels, with per-channel sums combined into their groups' statistics.
//
// silu fuses y = silu(gn(x)) into the normalise pass (no separate SiLU pass over memory, no normalised
// tensor kept for backward). Backward recomputes z = gn(x) from x and the saved statistics, forms
// dz = dy * silu'(z) in the first pass (stored in dx, where the second pass reads it back from cache) and
// runs the group-norm backward on dz. exp is a polynomial that GCC vectorises (std::exp does not vectorise
// without -ffast-math).
//
// Plain-layout outputs and output gradients may be laid out per channel elsewhere (Strides): nn.attention
// normalises its plain input straight into its channel-major [C, N, H*W] buffer and reads the gradient
// back from there. Every task is compiled for each ISA of nodes/kernels/isa.hpp (the polynomial's ~25 float
// operations per element made the fused node slower than group norm plus oneDNN's AVX-512 SiLU at the
// baseline 4-wide SSE) and picked by current_isa(), so ONEDNN_MAX_CPU_ISA holds them to what it holds
// oneDNN to. Work is split over OpenMP threads by task, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "nodes/kernels/isa.hpp"


namespace noiseflow::nodes::kernels::group_norm {

/// The size and attributes of one normalization of x [N, C, HW] (HW: everything after the channels).
struct Geometry {
  int64_t n = 0, c = 0, hw = 1, groups = 1;
  double eps = 1e-5;
  bool silu = false;  ///< y = silu(z) with z the normalised, scaled and shifted x
};

/// Where channel c of sample n of a plain-layout [N, C, HW] tensor starts: n * sample + c * channel
/// floats in, its HW values contiguous.
struct Strides {
  int64_t sample = 0, channel = 0;
};
/// [N, C, HW] itself.
inline Strides plain(const Geometry& g) { return {g.c * g.hw, g.hw}; }
/// Channel-major [C, N, HW].
inline Strides channel_major(const Geometry& g) { return {g.hw, g.n * g.hw}; }

/// One normalization: the statistics forward() saves for backward(), and backward()'s per-channel sums.
class GroupNorm {
 public:
  GroupNorm() = default;
  /// `isa`: which compiled kernels run (default: current_isa()).
  explicit GroupNorm(const Geometry& g, Isa isa = current_isa());

  const Geometry& geometry() const { return g_; }

  /// y = act(gn(x) * gamma + beta), gamma and beta [C]; keeps mean and 1 / std per (sample, group). x and
  /// y nChw16c when `blocked` (C a multiple of 16), else plain x and y at `y_strides` (plain(): as x).
  void forward(const float* x, const float* gamma, const float* beta, float* y, bool blocked);
  void forward(const float* x, const float* gamma, const float* beta, float* y, Strides y_strides);

  /// From dy, the gradient of forward()'s y (in y's layout): the sums param_grads() reads, and, when dx is
  /// not null, dx (in x's layout, overwritten) plus `dx_add` (in x's layout) when that is not null.
  void backward(const float* x, const float* dy, const float* gamma, const float* beta, float* dx, bool blocked,
                const float* dx_add = nullptr);
  void backward(const float* x, const float* dy, Strides dy_strides, const float* gamma, const float* beta,
                float* dx, const float* dx_add = nullptr);

  /// The gradients of gamma and beta [C] after backward(): sums over samples of dy * xhat and of dy.
  void param_grads(float* dgamma, float* dbeta) const;

 private:
  void run_forward(const float* x, const float* gamma, const float* beta, float* y, bool blocked, Strides ys);
  void run_backward(const float* x, const float* dy, Strides ds, const float* gamma, const float* beta, float* dx,
                    bool blocked, const float* dx_add);

  Geometry g_{};
  Isa isa_ = Isa::generic;
  std::vector<double> mean_, rstd_;   // [N, groups], saved by forward for backward
  std::vector<double> dsum_, dxsum_;  // [N, C]: sums of dy and of dy * xhat per channel
};

}  // namespace noiseflow::nodes::kernels::group_norm
