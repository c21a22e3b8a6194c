// nodes/nn/group_norm.cpp — group normalization (PyTorch nn.GroupNorm) with a per-channel affine.
//
// oneDNN 2.6 has no group normalization. This is a hand-written kernel on the plain layout: one task per
// (sample, group), two passes for mean and variance, one fused normalise+affine pass; backward is two
// passes (per-channel sums, then dx as a per-channel affine function of dy and x). Statistics are
// accumulated in double over float SIMD chunks. Measured at 64x64x28x28, 8 groups, 1 thread (loaded
// machine, best of 15): forward 2.0 ms vs 2.1 ms for oneDNN layer normalization over [N*G, C/G*H*W] plus
// an affine pass; backward 2.2 ms vs 7-15 ms for layer-norm backward plus the dgamma/dbeta and dy*gamma
// passes.
//
// On nChw16c (layouts uniform) the same math runs over channel blocks: a task is one sample's run of
// lcm(C/groups, 16) channels — whole blocks holding whole groups, contiguous in memory like a plain
// group — and each pass is a 16-wide loop over a block's pixels, with per-channel sums combined into
// their groups' statistics.
//
// activation "silu" fuses y = silu(gn(x)) into the normalise pass (no separate SiLU node, no extra pass over
// memory, no normalised tensor kept for backward). Backward recomputes z = gn(x) from x and the saved
// statistics, forms dz = dy * silu'(z) in the first pass (stored in dx, where the second pass reads it back
// from cache) and runs the group-norm backward on dz. exp is a polynomial that GCC vectorises (std::exp
// does not vectorise without -ffast-math); the loops that evaluate it are also built for AVX2 and AVX-512.
//
// dropout p (improved-diffusion's ResBlock: norm, SiLU, dropout, conv) multiplies y by a mask of 0 or
// 1 / (1 - p) while training (Context::training: gradients flow through the node); sampling runs it as the
// identity. The mask is drawn per element by its logical [N, C, H*W] index from Philox keyed by (seed,
// node id), stream = tick, so it is the same on either layout, on any thread count and after a resume;
// backward multiplies dy by the saved mask first.
#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "nodes/nn/nchw16c.hpp"
#include "nodes/nn/onnx_ops.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

using nchw16c::kLanes;
using nchw16c::kPixelChunk;

// Sums over a plain run of m floats (of p[i], or of (p[i] - shift) * q[i] terms, see below): chunks of
// kChunk, each summed in kLanes float partial sums (lane l takes every kLanes-th element) added into
// double, so that long groups keep their precision; a float sums at most kPixelChunk terms, as an nChw16c
// lane does. The lanes are explicit so that the rounding does not depend on the vectoriser: a reduction
// left to it gave each float 1024 / (SIMD width) terms, and all 1024 in a build that does not vectorise
// (the sanitizers'), where plain and nChw16c weight gradients then differed by 1.6e-5.
constexpr int64_t kChunk = kLanes * kPixelChunk;

// Calls body(i, l) for every i in [o, e), with l = (i - o) % kLanes, the lane its terms go into: whole
// rows of kLanes as a SIMD loop over the lanes, then the rest.
template <class Body>
[[gnu::always_inline]] inline void for_lanes(int64_t o, int64_t e, Body&& body) {
  int64_t i = o;
  for (; i + kLanes <= e; i += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) body(i + l, l);
  for (int l = 0; i + l < e; ++l) body(i + l, l);
}

inline double lane_total(const float c[kLanes]) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += c[l];
  return s;
}

inline double sum_of(const float* p, int64_t m) {
  double s = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    float c[kLanes] = {};
    for_lanes(o, std::min(m, o + kChunk), [&](int64_t i, int l) { c[l] += p[i]; });
    s += lane_total(c);
  }
  return s;
}

inline double sum_sq_dev(const float* p, int64_t m, float mean) {
  double s = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    float c[kLanes] = {};
    for_lanes(o, std::min(m, o + kChunk),
              [&](int64_t i, int l) { c[l] += (p[i] - mean) * (p[i] - mean); });
    s += lane_total(c);
  }
  return s;
}

// Both sums of dy[i] and of dy[i] * (x[i] - mean) in one pass.
inline void sum_dy_and_dot(const float* dy, const float* x, int64_t m, float mean, double& sdy, double& sdot) {
  sdy = 0, sdot = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    float a[kLanes] = {}, b[kLanes] = {};
    for_lanes(o, std::min(m, o + kChunk), [&](int64_t i, int l) {
      a[l] += dy[i];
      b[l] += dy[i] * (x[i] - mean);
    });
    sdy += lane_total(a);
    sdot += lane_total(b);
  }
}

// ---- SiLU, vectorisable ----------------------------------------------------------------------------

// e^x for x in [-88, 0] (callers clamp): x = n ln2 + r with |r| <= ln2/2, e^r by the Cephes expf
// polynomial (about 1.5 ulp), 2^n put together in the exponent bits (0 for n = -127, below about -87.7).
// Branch-free and without calls, so that `omp simd` loops around it vectorise.
[[gnu::always_inline]] inline float exp_poly(float x) {
  const float t = x * 1.44269504088896341f + 12582912.f;  // + 1.5 * 2^23 rounds x / ln2 to an integer
  const float n = t - 12582912.f;
  const int32_t k = std::bit_cast<int32_t>(t) - 0x4B400000;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  return p * std::bit_cast<float>((k + 127) << 23);
}

// sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) below, with e = e^-|z| (no overflow; within about
// 3 ulp; exactly 1 or 0 beyond |z| = 88). -min(|z|, 88) is taken on the bit pattern: an integer min
// vectorises, where GCC turns a float clamp into branches that keep the loop scalar.
[[gnu::always_inline]] inline float sigmoid_poly(float z) {
  const int32_t mag = std::min(std::bit_cast<int32_t>(z) & INT32_MAX, std::bit_cast<int32_t>(88.f));
  const float e = exp_poly(std::bit_cast<float>(mag | INT32_MIN));
  return (z >= 0.f ? 1.f : e) / (1.f + e);
}

// d silu(z) / dz = s * (1 + z * (1 - s)), s = sigmoid(z).
[[gnu::always_inline]] inline float silu_grad(float z) {
  const float s = sigmoid_poly(z);
  return s * (1.f + z * (1.f - s));
}

// s[l] = sum over the hw pixels of nChw16c block p of (p - mean[l])^2 for channel l.
inline void block_sq_dev(const float* p, int64_t hw, const float mean[kLanes], double s[kLanes]) {
  std::fill(s, s + kLanes, 0.0);
  for (int64_t o = 0; o < hw; o += kPixelChunk) {
    const int64_t e = std::min(hw, o + kPixelChunk);
    float c[kLanes] = {};
    for (int64_t i = o; i < e; ++i)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) c[l] += (p[i * kLanes + l] - mean[l]) * (p[i * kLanes + l] - mean[l]);
    for (int l = 0; l < kLanes; ++l) s[l] += c[l];
  }
}

// Per channel of an nChw16c block: sums of dy and of dy * (x - mean[l]) in one pass.
inline void block_dy_and_dot(const float* dy, const float* x, int64_t hw, const float mean[kLanes],
                             double sdy[kLanes], double sdot[kLanes]) {
  std::fill(sdy, sdy + kLanes, 0.0);
  std::fill(sdot, sdot + kLanes, 0.0);
  for (int64_t o = 0; o < hw; o += kPixelChunk) {
    const int64_t e = std::min(hw, o + kPixelChunk);
    float a[kLanes] = {}, b[kLanes] = {};
    for (int64_t i = o; i < e; ++i)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        a[l] += dy[i * kLanes + l];
        b[l] += dy[i * kLanes + l] * (x[i * kLanes + l] - mean[l]);
      }
    for (int l = 0; l < kLanes; ++l) sdy[l] += a[l], sdot[l] += b[l];
  }
}

// ---- the fused SiLU loops -------------------------------------------------------------------------
//
// The polynomial costs ~25 float operations per element, which at the default x86-64 target (4-wide SSE)
// made the fused node slower than group norm plus oneDNN's AVX-512 SiLU. These loops are therefore built
// for x86-64-v4 (AVX-512) and x86-64-v3 (AVX2, FMA) as well, picked once at load time (GCC target_clones);
// one call covers a channel (plain) or a channel block (nChw16c).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NOISEFLOW_SIMD_CLONES [[gnu::target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), gnu::noinline]]
#else
#define NOISEFLOW_SIMD_CLONES
#endif

// y[i] = silu(x[i] * scale + shift) over one plain channel of n pixels.
NOISEFLOW_SIMD_CLONES void silu_affine(const float* x, float* y, int64_t n, float scale, float shift) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float z = x[i] * scale + shift;
    y[i] = z * sigmoid_poly(z);
  }
}

// The same over one nChw16c block of hw pixels, with per-lane scale and shift.
NOISEFLOW_SIMD_CLONES void block_silu_affine(const float* x, float* y, int64_t hw, const float* scale,
                                             const float* shift) {
  for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const float z = x[i * kLanes + l] * scale[l] + shift[l];
      y[i * kLanes + l] = z * sigmoid_poly(z);
    }
}

// Fused first backward pass of one plain channel: dz = dy * silu'(x * scale + shift) (written to dz when
// kStore), and the sums of dz and of dz * (x - mean), as sum_dy_and_dot.
template <bool kStore>
[[gnu::always_inline]] inline void silu_dz_and_dot_body(const float* dy, const float* x, int64_t m, float mean,
                                                        float scale, float shift, float* dz, double& sdy,
                                                        double& sdot) {
  sdy = 0, sdot = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    float a[kLanes] = {}, b[kLanes] = {};
    for_lanes(o, std::min(m, o + kChunk), [&](int64_t i, int l) {
      const float d = dy[i] * silu_grad(x[i] * scale + shift);
      if constexpr (kStore) dz[i] = d;
      a[l] += d;
      b[l] += d * (x[i] - mean);
    });
    sdy += lane_total(a);
    sdot += lane_total(b);
  }
}

// dz may be null (not stored).
NOISEFLOW_SIMD_CLONES void silu_dz_and_dot(const float* dy, const float* x, int64_t m, float mean, float scale,
                                           float shift, float* dz, double& sdy, double& sdot) {
  if (dz) silu_dz_and_dot_body<true>(dy, x, m, mean, scale, shift, dz, sdy, sdot);
  else silu_dz_and_dot_body<false>(dy, x, m, mean, scale, shift, nullptr, sdy, sdot);
}

// block_dy_and_dot of dz = dy * silu'(x * scale[l] + shift[l]), written to dz when kStore.
template <bool kStore>
[[gnu::always_inline]] inline void block_silu_dz_and_dot_body(const float* dy, const float* x, int64_t hw,
                                                              const float* mean, const float* scale,
                                                              const float* shift, float* dz, double* sdy,
                                                              double* sdot) {
  std::fill(sdy, sdy + kLanes, 0.0);
  std::fill(sdot, sdot + kLanes, 0.0);
  for (int64_t o = 0; o < hw; o += kPixelChunk) {
    const int64_t e = std::min(hw, o + kPixelChunk);
    float a[kLanes] = {}, b[kLanes] = {};
    for (int64_t i = o; i < e; ++i)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const float xv = x[i * kLanes + l];
        const float d = dy[i * kLanes + l] * silu_grad(xv * scale[l] + shift[l]);
        if constexpr (kStore) dz[i * kLanes + l] = d;
        a[l] += d;
        b[l] += d * (xv - mean[l]);
      }
    for (int l = 0; l < kLanes; ++l) sdy[l] += a[l], sdot[l] += b[l];
  }
}

// dz may be null (not stored); mean, scale, shift, sdy and sdot have kLanes entries.
NOISEFLOW_SIMD_CLONES void block_silu_dz_and_dot(const float* dy, const float* x, int64_t hw, const float* mean,
                                                 const float* scale, const float* shift, float* dz, double* sdy,
                                                 double* sdot) {
  if (dz) block_silu_dz_and_dot_body<true>(dy, x, hw, mean, scale, shift, dz, sdy, sdot);
  else block_silu_dz_and_dot_body<false>(dy, x, hw, mean, scale, shift, nullptr, sdy, sdot);
}

struct GroupNorm final : Node {
  static Schema schema() {
    return Schema("nn.group_norm",
                  "Group normalization: normalise each group of C/groups channels per sample, then scale and shift "
                  "per channel (PyTorch GroupNorm)")
        .input("x", "[N, C, H, W] (or [N, C], or [N, C, ...])")
        .output("y", "same shape as x")
        .attr_int("groups", 8, 1, 1 << 16, "number of channel groups; must divide C")
        .attr_float("eps", 1e-5, 0.0, 1.0, "added to the variance")
        .attr_bool("affine", true, "learn a per-channel scale (weight, starts at 1) and shift (bias, starts at 0)")
        .attr_string("activation", "none", {"none", "silu"},
                     "applied to the normalised output in the same pass: none, or silu (y = z * sigmoid(z))")
        .attr_float("dropout", 0.0, 0.0, 0.99,
                    "after the activation, while training: zero each element with this probability and scale the "
                    "rest by 1 / (1 - dropout); sampling pipelines run it as the identity (0: off)")
        .differentiable({"x"})
        .backward_reads({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input("x");
          if (x.size() < 2) c.fail("x", "expected [N, C, ...] (rank 2 or more), got shape " + graph::shape_str(x));
          const int64_t g = c.attr_int("groups");
          if (x[1] % g != 0)
            c.fail("groups", "the " + std::to_string(x[1]) + " channels of x " + graph::shape_str(x) +
                                 " are not divisible by groups = " + std::to_string(g));
          c.set_output("y", x);
          if (c.attr_bool("affine")) {
            c.param("weight", {x[1]}, graph::Init::ones());
            c.param("bias", {x[1]}, graph::Init::zeros());
          }
        });
  }

  // Reshape [N, G, -1] - InstanceNormalization (scale 1, shift 0) - Reshape back - Mul weight [C, 1, 1]
  // - Add bias [C, 1, 1] (nodes/nn/onnx_ops.hpp), then Sigmoid and Mul for activation silu.
  static void onnx(onnx::OpContext& c) {
    const graph::Shape& x = c.input_shape("x");
    // [C] seen as [C, 1, ...] to broadcast over the spatial dimensions.
    std::vector<int64_t> per_channel{x[1]};
    per_channel.resize(x.size() < 2 ? 1 : x.size() - 1, 1);
    const bool affine = c.attr_bool("affine"), act = c.attr_string("activation") == "silu";
    const std::string w = affine ? c.param("weight", per_channel) : std::string();
    const std::string b = affine ? c.param("bias", per_channel) : std::string();
    const std::string out = act ? c.temp("norm") : c.output();
    onnx_ops::group_norm(c, c.input("x"), x, c.attr_int("groups"), c.attr_float("eps"), w, b, out, "norm");
    if (act) onnx_ops::silu(c, out, c.output(), "silu");
  }

  void plan(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    n_ = x.dim(0);
    c_ = x.dim(1);
    hw_ = x.numel() / std::max<int64_t>(n_ * c_, 1);
    g_ = ctx.attr_int("groups");
    eps_ = ctx.attr_float("eps");
    affine_ = ctx.attr_bool("affine");
    silu_ = ctx.attr_string("activation") == "silu";
    mean_.assign(size_t(n_ * g_), 0.0);
    rstd_.assign(size_t(n_ * g_), 0.0);
    dsum_.assign(size_t(n_ * c_), 0.0);
    dxsum_.assign(size_t(n_ * c_), 0.0);
    ones_.assign(size_t(c_), 1.f);
    zeros_.assign(size_t(c_), 0.f);
    dropout_ = ctx.training() ? ctx.attr_float("dropout") : 0.0;
    if (dropout_ > 0) {
      key_ = ctx.random_key();
      mask_.assign(size_t(x.numel()), 0.f);
      scratch_.assign(size_t(x.numel()), 0.f);
    }
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    float* y = ctx.output("y").data();
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const float* beta = affine_ ? ctx.param("bias").data() : zeros_.data();
    if (x.blocked()) {
      if (silu_) forward_blocked<true>(x.data(), y, gamma, beta);
      else forward_blocked<false>(x.data(), y, gamma, beta);
    } else {
      if (silu_) forward_plain<true>(x.data(), y, gamma, beta);
      else forward_plain<false>(x.data(), y, gamma, beta);
    }
    if (dropout_ > 0) apply_dropout(ctx.tick(), y, x.blocked());
  }

  void backward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    const float* dy = ctx.grad_output("y").data();
    if (dropout_ > 0) {
      const int64_t total = int64_t(mask_.size());
      for (int64_t i = 0; i < total; ++i) scratch_[size_t(i)] = dy[i] * mask_[size_t(i)];
      dy = scratch_.data();
    }
    float* dx = ctx.wants_grad("x") ? ctx.grad_input("x").data() : nullptr;
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const float* beta = affine_ ? ctx.param("bias").data() : zeros_.data();
    if (x.blocked()) {
      if (silu_) backward_blocked<true>(x.data(), dy, dx, gamma, beta);
      else backward_blocked<false>(x.data(), dy, dx, gamma, beta);
    } else {
      if (silu_) backward_plain<true>(x.data(), dy, dx, gamma, beta);
      else backward_plain<false>(x.data(), dy, dx, gamma, beta);
    }

    if (affine_) {
      float* dgamma = ctx.param_grad("weight").data();
      float* dbeta = ctx.param_grad("bias").data();
      for (int64_t c = 0; c < c_; ++c) {
        double sg = 0, sb = 0;
        for (int64_t n = 0; n < n_; ++n) {
          sg += dxsum_[n * c_ + c];
          sb += dsum_[n * c_ + c];
        }
        dgamma[c] = float(sg);
        dbeta[c] = float(sb);
      }
    }
  }

 private:
  // y *= mask, the mask drawn for this tick by logical index and kept (in y's layout) for backward.
  void apply_dropout(int64_t tick, float* y, bool blocked) {
    const int64_t total = int64_t(mask_.size());
    random::fill_uniform(scratch_.data(), total, key_, uint64_t(tick), 0.f, 1.f);
    const float keep = float(1.0 / (1.0 - dropout_)), p = float(dropout_);
    for (int64_t n = 0; n < n_; ++n)
      for (int64_t c = 0; c < c_; ++c)
        for (int64_t i = 0; i < hw_; ++i) {
          const int64_t logical = (n * c_ + c) * hw_ + i;
          const int64_t at = blocked ? ((n * (c_ / kLanes) + c / kLanes) * hw_ + i) * kLanes + c % kLanes : logical;
          mask_[size_t(at)] = scratch_[size_t(logical)] >= p ? keep : 0.f;
        }
    for (int64_t i = 0; i < total; ++i) y[i] *= mask_[size_t(i)];
  }

  // Plain layout: one task per (sample, group), a contiguous run of C/groups * H*W floats.
  template <bool kSilu>
  void forward_plain(const float* x, float* y, const float* gamma, const float* beta) {
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, ng = n_ * g_, groups = g_;
    const double eps = eps_;
    double* mean_out = mean_.data();
    double* rstd_out = rstd_.data();

#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < ng; ++k) {
      const float* xp = x + k * m;
      float* yp = y + k * m;
      const double mean = sum_of(xp, m) / double(m);
      const double var = sum_sq_dev(xp, m, float(mean)) / double(m);
      const double rstd = 1.0 / std::sqrt(var + eps);
      mean_out[k] = mean;
      rstd_out[k] = rstd;
      const int64_t c0 = (k % groups) * cpg;
      for (int64_t j = 0; j < cpg; ++j) {
        const float scale = float(rstd * gamma[c0 + j]);
        const float shift = float(beta[c0 + j] - mean * rstd * gamma[c0 + j]);
        const float* xc = xp + j * hw;
        float* yc = yp + j * hw;
        if constexpr (kSilu) {
          silu_affine(xc, yc, hw, scale, shift);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < hw; ++i) yc[i] = xc[i] * scale + shift;
        }
      }
    }
  }

  // nChw16c: one task per (sample, span of lcm(C/groups, 16) channels); a span holds span/cpg <= 16
  // groups, and channel j of the span (block j/16, lane j%16) belongs to its group (j / cpg).
  template <bool kSilu>
  void forward_blocked(const float* x, float* y, const float* gamma, const float* beta) {
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, span = std::lcm(cpg, int64_t(kLanes));
    const int64_t spans = c_ / span, tasks = n_ * spans, groups = g_, channels = c_;
    const double eps = eps_;
    double* mean_out = mean_.data();
    double* rstd_out = rstd_.data();

#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t n = t / spans, c0 = (t % spans) * span;
      const float* xs = x + (n * channels + c0) * hw;
      float* ys = y + (n * channels + c0) * hw;
      double* mean = mean_out + n * groups + c0 / cpg;
      double* rstd = rstd_out + n * groups + c0 / cpg;
      double gsum[kLanes] = {}, s[kLanes];
      float lane_mean[kLanes];
      for (int64_t j = 0; j < span; j += kLanes) {
        nchw16c::block_sums(xs + j * hw, hw, s);
        for (int l = 0; l < kLanes; ++l) gsum[(j + l) / cpg] += s[l];
      }
      for (int64_t q = 0; q < span / cpg; ++q) mean[q] = gsum[q] / double(m), gsum[q] = 0;
      for (int64_t j = 0; j < span; j += kLanes) {
        for (int l = 0; l < kLanes; ++l) lane_mean[l] = float(mean[(j + l) / cpg]);
        block_sq_dev(xs + j * hw, hw, lane_mean, s);
        for (int l = 0; l < kLanes; ++l) gsum[(j + l) / cpg] += s[l];
      }
      for (int64_t q = 0; q < span / cpg; ++q) rstd[q] = 1.0 / std::sqrt(gsum[q] / double(m) + eps);
      for (int64_t j = 0; j < span; j += kLanes) {
        float scale[kLanes], shift[kLanes];
        for (int l = 0; l < kLanes; ++l) {
          const int64_t q = (j + l) / cpg, c = c0 + j + l;
          scale[l] = float(rstd[q] * gamma[c]);
          shift[l] = float(beta[c] - mean[q] * rstd[q] * gamma[c]);
        }
        const float* xb = xs + j * hw;
        float* yb = ys + j * hw;
        if constexpr (kSilu) {
          block_silu_affine(xb, yb, hw, scale, shift);
        } else {
          for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
            for (int l = 0; l < kLanes; ++l) yb[i * kLanes + l] = xb[i * kLanes + l] * scale[l] + shift[l];
        }
      }
    }
  }

  // Fills dsum_ and dxsum_ and, when dx is given, dx; tasks as in forward_plain. With kSilu, dy is the
  // gradient of silu(z) and pass 1 turns it into dz (kept in dx for pass 2).
  template <bool kSilu>
  void backward_plain(const float* x, const float* dy, float* dx, const float* gamma, const float* beta) {
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, ng = n_ * g_, groups = g_, channels = c_;
    const double* mean_in = mean_.data();
    const double* rstd_in = rstd_.data();
    double* dsum = dsum_.data();    // [N, C]: sum of dy
    double* dxsum = dxsum_.data();  // [N, C]: sum of dy * xhat

#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < ng; ++k) {
      const int64_t n = k / groups, c0 = (k % groups) * cpg;
      const float* xp = x + k * m;
      const float* dyp = dy + k * m;
      const double mean = mean_in[k], rstd = rstd_in[k];
      // Pass 1: per-channel sums of dy and dy * xhat; their gamma-weighted sums over the group.
      double sum1 = 0, sum2 = 0;
      for (int64_t j = 0; j < cpg; ++j) {
        double a, b;
        if constexpr (kSilu) {
          // z as forward_plain computed it.
          const float scale = float(rstd * gamma[c0 + j]);
          const float shift = float(beta[c0 + j] - mean * rstd * gamma[c0 + j]);
          const float* dyc = dyp + j * hw;
          const float* xc = xp + j * hw;
          silu_dz_and_dot(dyc, xc, hw, float(mean), scale, shift, dx ? dx + k * m + j * hw : nullptr, a, b);
        } else {
          sum_dy_and_dot(dyp + j * hw, xp + j * hw, hw, float(mean), a, b);
        }
        b *= rstd;
        dsum[n * channels + c0 + j] = a;
        dxsum[n * channels + c0 + j] = b;
        sum1 += gamma[c0 + j] * a;
        sum2 += gamma[c0 + j] * b;
      }
      if (!dx) continue;
      // Pass 2: dx = rstd * (gamma*dy - sum1/m - xhat*sum2/m), an affine function of dy and x per channel
      // (dz, already in dx, in place of dy with kSilu).
      const float bx = float(-rstd * rstd * sum2 / double(m));
      const double c_all = rstd * (mean * rstd * sum2 - sum1) / double(m);
      float* dxp = dx + k * m;
      const float* dsrc = kSilu ? dxp : dyp;
      for (int64_t j = 0; j < cpg; ++j) {
        const float a = float(rstd * gamma[c0 + j]);
        const float cst = float(c_all);
        const float* dyc = dsrc + j * hw;
        const float* xc = xp + j * hw;
        float* dxc = dxp + j * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; ++i) dxc[i] = dyc[i] * a + xc[i] * bx + cst;
      }
    }
  }

  // backward_plain's two passes over nChw16c, tasks and groups as in forward_blocked.
  template <bool kSilu>
  void backward_blocked(const float* x, const float* dy, float* dx, const float* gamma, const float* beta) {
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, span = std::lcm(cpg, int64_t(kLanes));
    const int64_t spans = c_ / span, tasks = n_ * spans, groups = g_, channels = c_;
    double* dsum = dsum_.data();
    double* dxsum = dxsum_.data();

#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t n = t / spans, c0 = (t % spans) * span, base = (n * channels + c0) * hw;
      const double* mean = mean_.data() + n * groups + c0 / cpg;
      const double* rstd = rstd_.data() + n * groups + c0 / cpg;
      double sum1[kLanes] = {}, sum2[kLanes] = {}, a[kLanes], b[kLanes];
      float lane_mean[kLanes];
      for (int64_t j = 0; j < span; j += kLanes) {
        for (int l = 0; l < kLanes; ++l) lane_mean[l] = float(mean[(j + l) / cpg]);
        if constexpr (kSilu) {
          // z as forward_blocked computed it.
          float scale[kLanes], shift[kLanes];
          for (int l = 0; l < kLanes; ++l) {
            const int64_t q = (j + l) / cpg, c = c0 + j + l;
            scale[l] = float(rstd[q] * gamma[c]);
            shift[l] = float(beta[c] - mean[q] * rstd[q] * gamma[c]);
          }
          block_silu_dz_and_dot(dy + base + j * hw, x + base + j * hw, hw, lane_mean, scale, shift,
                                dx ? dx + base + j * hw : nullptr, a, b);
        } else {
          block_dy_and_dot(dy + base + j * hw, x + base + j * hw, hw, lane_mean, a, b);
        }
        for (int l = 0; l < kLanes; ++l) {
          const int64_t q = (j + l) / cpg, c = c0 + j + l;
          b[l] *= rstd[q];
          dsum[n * channels + c] = a[l];
          dxsum[n * channels + c] = b[l];
          sum1[q] += gamma[c] * a[l];
          sum2[q] += gamma[c] * b[l];
        }
      }
      if (!dx) continue;
      for (int64_t j = 0; j < span; j += kLanes) {
        float ca[kLanes], cx[kLanes], cst[kLanes];
        for (int l = 0; l < kLanes; ++l) {
          const int64_t q = (j + l) / cpg, c = c0 + j + l;
          ca[l] = float(rstd[q] * gamma[c]);
          cx[l] = float(-rstd[q] * rstd[q] * sum2[q] / double(m));
          cst[l] = float(rstd[q] * (mean[q] * rstd[q] * sum2[q] - sum1[q]) / double(m));
        }
        const float* dyb = (kSilu ? dx : dy) + base + j * hw;  // dz, in dx, with kSilu
        const float* xb = x + base + j * hw;
        float* dxb = dx + base + j * hw;
        for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
          for (int l = 0; l < kLanes; ++l)
            dxb[i * kLanes + l] = dyb[i * kLanes + l] * ca[l] + xb[i * kLanes + l] * cx[l] + cst[l];
      }
    }
  }

  int64_t n_ = 0, c_ = 0, hw_ = 1, g_ = 1;
  double eps_ = 1e-5;
  bool affine_ = true;
  bool silu_ = false;  // activation "silu"
  std::vector<double> mean_, rstd_;   // [N, G], saved by forward for backward
  std::vector<double> dsum_, dxsum_;  // [N, C] backward scratch
  std::vector<float> ones_, zeros_;   // gamma and beta without affine
  double dropout_ = 0;                // while training; 0 otherwise
  uint64_t key_ = 0;
  std::vector<float> mask_, scratch_;  // the tick's mask in y's layout; uniforms, then the masked dy
};

NOISEFLOW_REGISTER_NODE(GroupNorm);

}  // namespace
}  // namespace noiseflow::nodes
