// nodes/kernels/group_norm.cpp — the group normalization kernels (see group_norm.hpp), compiled for each
// ISA of isa.hpp.
#include "nodes/kernels/group_norm.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <numeric>

#include "nodes/kernels/nchw16c.hpp"

namespace noiseflow::nodes::kernels::group_norm {
namespace {

#define NF_INLINE [[gnu::always_inline]] inline

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
NF_INLINE void for_lanes(int64_t o, int64_t e, Body&& body) {
  int64_t i = o;
  for (; i + kLanes <= e; i += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) body(i + l, l);
  for (int l = 0; i + l < e; ++l) body(i + l, l);
}

NF_INLINE double lane_total(const float c[kLanes]) {
  double s = 0;
  for (int l = 0; l < kLanes; ++l) s += c[l];
  return s;
}

NF_INLINE double sum_of(const float* p, int64_t m) {
  double s = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    float c[kLanes] = {};
    for_lanes(o, std::min(m, o + kChunk), [&](int64_t i, int l) { c[l] += p[i]; });
    s += lane_total(c);
  }
  return s;
}

NF_INLINE double sum_sq_dev(const float* p, int64_t m, float mean) {
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
NF_INLINE void sum_dy_and_dot(const float* dy, const float* x, int64_t m, float mean, double& sdy, double& sdot) {
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
NF_INLINE float exp_poly(float x) {
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
NF_INLINE float sigmoid_poly(float z) {
  const int32_t mag = std::min(std::bit_cast<int32_t>(z) & INT32_MAX, std::bit_cast<int32_t>(88.f));
  const float e = exp_poly(std::bit_cast<float>(mag | INT32_MIN));
  return (z >= 0.f ? 1.f : e) / (1.f + e);
}

// d silu(z) / dz = s * (1 + z * (1 - s)), s = sigmoid(z).
NF_INLINE float silu_grad(float z) {
  const float s = sigmoid_poly(z);
  return s * (1.f + z * (1.f - s));
}

// y[i] = silu(x[i] * scale + shift) over one plain channel of n pixels.
NF_INLINE void silu_affine(const float* x, float* y, int64_t n, float scale, float shift) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float z = x[i] * scale + shift;
    y[i] = z * sigmoid_poly(z);
  }
}

// The same over one nChw16c block of hw pixels, with per-lane scale and shift.
NF_INLINE void block_silu_affine(const float* x, float* y, int64_t hw, const float* scale, const float* shift) {
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
NF_INLINE void silu_dz_and_dot_body(const float* dy, const float* x, int64_t m, float mean, float scale, float shift,
                                    float* dz, double& sdy, double& sdot) {
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
NF_INLINE void silu_dz_and_dot(const float* dy, const float* x, int64_t m, float mean, float scale, float shift,
                               float* dz, double& sdy, double& sdot) {
  if (dz) silu_dz_and_dot_body<true>(dy, x, m, mean, scale, shift, dz, sdy, sdot);
  else silu_dz_and_dot_body<false>(dy, x, m, mean, scale, shift, nullptr, sdy, sdot);
}

// ---- nChw16c blocks --------------------------------------------------------------------------------

// s[l] = sum over the hw pixels of nChw16c block p of (p - mean[l])^2 for channel l.
NF_INLINE void block_sq_dev(const float* p, int64_t hw, const float mean[kLanes], double s[kLanes]) {
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
NF_INLINE void block_dy_and_dot(const float* dy, const float* x, int64_t hw, const float mean[kLanes],
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

// block_dy_and_dot of dz = dy * silu'(x * scale[l] + shift[l]), written to dz when kStore.
template <bool kStore>
NF_INLINE void block_silu_dz_and_dot_body(const float* dy, const float* x, int64_t hw, const float* mean,
                                          const float* scale, const float* shift, float* dz, double* sdy,
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
NF_INLINE void block_silu_dz_and_dot(const float* dy, const float* x, int64_t hw, const float* mean,
                                     const float* scale, const float* shift, float* dz, double* sdy, double* sdot) {
  if (dz) block_silu_dz_and_dot_body<true>(dy, x, hw, mean, scale, shift, dz, sdy, sdot);
  else block_silu_dz_and_dot_body<false>(dy, x, hw, mean, scale, shift, nullptr, sdy, sdot);
}

// ---- the tasks -------------------------------------------------------------------------------------

// Everything one forward or backward call reads and writes.
struct Job {
  Geometry g;
  const float *x = nullptr, *gamma = nullptr, *beta = nullptr;
  float* y = nullptr;  // forward
  Strides ys;
  const float* dy = nullptr;  // backward
  Strides ds;
  float* dx = nullptr;
  const float* add = nullptr;
  double *mean = nullptr, *rstd = nullptr;    // [N, groups]
  double *dsum = nullptr, *dxsum = nullptr;  // [N, C]
};

// Channels per task on nChw16c: whole blocks holding whole groups.
int64_t span_of(const Geometry& g) { return std::lcm(g.c / g.groups, int64_t(kLanes)); }

// Plain layout: task k is (sample, group) k, a contiguous run of C/groups * H*W floats of x.
template <bool kSilu>
NF_INLINE void forward_plain(const Job& j, int64_t k) {
  const int64_t cpg = j.g.c / j.g.groups, hw = j.g.hw, m = cpg * hw;
  const int64_t n = k / j.g.groups, c0 = (k % j.g.groups) * cpg;
  const float* xp = j.x + k * m;
  const double mean = sum_of(xp, m) / double(m);
  const double var = sum_sq_dev(xp, m, float(mean)) / double(m);
  const double rstd = 1.0 / std::sqrt(var + j.g.eps);
  j.mean[k] = mean;
  j.rstd[k] = rstd;
  for (int64_t q = 0; q < cpg; ++q) {
    const int64_t c = c0 + q;
    const float scale = float(rstd * j.gamma[c]);
    const float shift = float(j.beta[c] - mean * rstd * j.gamma[c]);
    const float* xc = xp + q * hw;
    float* yc = j.y + n * j.ys.sample + c * j.ys.channel;
    if constexpr (kSilu) {
      silu_affine(xc, yc, hw, scale, shift);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) yc[i] = xc[i] * scale + shift;
    }
  }
}

// nChw16c: task t is (sample, span of lcm(C/groups, 16) channels); a span holds span/cpg <= 16 groups, and
// channel q of the span (block q/16, lane q%16) belongs to its group (q / cpg).
template <bool kSilu>
NF_INLINE void forward_blocked(const Job& j, int64_t t) {
  const int64_t cpg = j.g.c / j.g.groups, hw = j.g.hw, m = cpg * hw, span = span_of(j.g), spans = j.g.c / span;
  const int64_t n = t / spans, c0 = (t % spans) * span;
  const float* xs = j.x + (n * j.g.c + c0) * hw;
  float* ys = j.y + (n * j.g.c + c0) * hw;
  double* mean = j.mean + n * j.g.groups + c0 / cpg;
  double* rstd = j.rstd + n * j.g.groups + c0 / cpg;
  double gsum[kLanes] = {}, s[kLanes];
  float lane_mean[kLanes];
  for (int64_t q = 0; q < span; q += kLanes) {
    nchw16c::block_sums(xs + q * hw, hw, s);
    for (int l = 0; l < kLanes; ++l) gsum[(q + l) / cpg] += s[l];
  }
  for (int64_t r = 0; r < span / cpg; ++r) mean[r] = gsum[r] / double(m), gsum[r] = 0;
  for (int64_t q = 0; q < span; q += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_mean[l] = float(mean[(q + l) / cpg]);
    block_sq_dev(xs + q * hw, hw, lane_mean, s);
    for (int l = 0; l < kLanes; ++l) gsum[(q + l) / cpg] += s[l];
  }
  for (int64_t r = 0; r < span / cpg; ++r) rstd[r] = 1.0 / std::sqrt(gsum[r] / double(m) + j.g.eps);
  for (int64_t q = 0; q < span; q += kLanes) {
    float scale[kLanes], shift[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int64_t r = (q + l) / cpg, c = c0 + q + l;
      scale[l] = float(rstd[r] * j.gamma[c]);
      shift[l] = float(j.beta[c] - mean[r] * rstd[r] * j.gamma[c]);
    }
    const float* xb = xs + q * hw;
    float* yb = ys + q * hw;
    if constexpr (kSilu) {
      block_silu_affine(xb, yb, hw, scale, shift);
    } else {
      for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l) yb[i * kLanes + l] = xb[i * kLanes + l] * scale[l] + shift[l];
    }
  }
}

// Fills dsum and dxsum and, when dx is given, dx (+ add); tasks as in forward_plain. With kSilu, dy is the
// gradient of silu(z) and pass 1 turns it into dz (kept in dx for pass 2).
template <bool kSilu, bool kAdd>
NF_INLINE void backward_plain(const Job& j, int64_t k) {
  const int64_t cpg = j.g.c / j.g.groups, hw = j.g.hw, m = cpg * hw;
  const int64_t n = k / j.g.groups, c0 = (k % j.g.groups) * cpg;
  const float* xp = j.x + k * m;
  const double mean = j.mean[k], rstd = j.rstd[k];
  // Pass 1: per-channel sums of dy and dy * xhat; their gamma-weighted sums over the group.
  double sum1 = 0, sum2 = 0;
  for (int64_t q = 0; q < cpg; ++q) {
    const int64_t c = c0 + q;
    const float* dyc = j.dy + n * j.ds.sample + c * j.ds.channel;
    const float* xc = xp + q * hw;
    double a, b;
    if constexpr (kSilu) {
      // z as forward_plain computed it.
      const float scale = float(rstd * j.gamma[c]);
      const float shift = float(j.beta[c] - mean * rstd * j.gamma[c]);
      silu_dz_and_dot(dyc, xc, hw, float(mean), scale, shift, j.dx ? j.dx + k * m + q * hw : nullptr, a, b);
    } else {
      sum_dy_and_dot(dyc, xc, hw, float(mean), a, b);
    }
    b *= rstd;
    j.dsum[n * j.g.c + c] = a;
    j.dxsum[n * j.g.c + c] = b;
    sum1 += j.gamma[c] * a;
    sum2 += j.gamma[c] * b;
  }
  if (!j.dx) return;
  // Pass 2: dx = rstd * (gamma*dy - sum1/m - xhat*sum2/m), an affine function of dy and x per channel
  // (dz, already in dx, in place of dy with kSilu).
  const float bx = float(-rstd * rstd * sum2 / double(m));
  const double c_all = rstd * (mean * rstd * sum2 - sum1) / double(m);
  float* dxp = j.dx + k * m;
  for (int64_t q = 0; q < cpg; ++q) {
    const int64_t c = c0 + q;
    const float a = float(rstd * j.gamma[c]);
    const float cst = float(c_all);
    const float* dyc = kSilu ? dxp + q * hw : j.dy + n * j.ds.sample + c * j.ds.channel;
    const float* xc = xp + q * hw;
    float* dxc = dxp + q * hw;
    if constexpr (kAdd) {
      const float* ac = j.add + k * m + q * hw;
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) dxc[i] = dyc[i] * a + xc[i] * bx + cst + ac[i];
    } else {
#pragma omp simd
      for (int64_t i = 0; i < hw; ++i) dxc[i] = dyc[i] * a + xc[i] * bx + cst;
    }
  }
}

// backward_plain's two passes over nChw16c, tasks and groups as in forward_blocked.
template <bool kSilu, bool kAdd>
NF_INLINE void backward_blocked(const Job& j, int64_t t) {
  const int64_t cpg = j.g.c / j.g.groups, hw = j.g.hw, m = cpg * hw, span = span_of(j.g), spans = j.g.c / span;
  const int64_t n = t / spans, c0 = (t % spans) * span, base = (n * j.g.c + c0) * hw;
  const double* mean = j.mean + n * j.g.groups + c0 / cpg;
  const double* rstd = j.rstd + n * j.g.groups + c0 / cpg;
  double sum1[kLanes] = {}, sum2[kLanes] = {}, a[kLanes], b[kLanes];
  float lane_mean[kLanes];
  for (int64_t q = 0; q < span; q += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_mean[l] = float(mean[(q + l) / cpg]);
    if constexpr (kSilu) {
      // z as forward_blocked computed it.
      float scale[kLanes], shift[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        const int64_t r = (q + l) / cpg, c = c0 + q + l;
        scale[l] = float(rstd[r] * j.gamma[c]);
        shift[l] = float(j.beta[c] - mean[r] * rstd[r] * j.gamma[c]);
      }
      block_silu_dz_and_dot(j.dy + base + q * hw, j.x + base + q * hw, hw, lane_mean, scale, shift,
                            j.dx ? j.dx + base + q * hw : nullptr, a, b);
    } else {
      block_dy_and_dot(j.dy + base + q * hw, j.x + base + q * hw, hw, lane_mean, a, b);
    }
    for (int l = 0; l < kLanes; ++l) {
      const int64_t r = (q + l) / cpg, c = c0 + q + l;
      b[l] *= rstd[r];
      j.dsum[n * j.g.c + c] = a[l];
      j.dxsum[n * j.g.c + c] = b[l];
      sum1[r] += j.gamma[c] * a[l];
      sum2[r] += j.gamma[c] * b[l];
    }
  }
  if (!j.dx) return;
  for (int64_t q = 0; q < span; q += kLanes) {
    float ca[kLanes], cx[kLanes], cst[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int64_t r = (q + l) / cpg, c = c0 + q + l;
      ca[l] = float(rstd[r] * j.gamma[c]);
      cx[l] = float(-rstd[r] * rstd[r] * sum2[r] / double(m));
      cst[l] = float(rstd[r] * (mean[r] * rstd[r] * sum2[r] - sum1[r]) / double(m));
    }
    const float* dyb = (kSilu ? j.dx : j.dy) + base + q * hw;  // dz, in dx, with kSilu
    const float* xb = j.x + base + q * hw;
    float* dxb = j.dx + base + q * hw;
    if constexpr (kAdd) {
      const float* ab = j.add + base + q * hw;
      for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          dxb[i * kLanes + l] =
              dyb[i * kLanes + l] * ca[l] + xb[i * kLanes + l] * cx[l] + cst[l] + ab[i * kLanes + l];
    } else {
      for (int64_t i = 0; i < hw; ++i)
#pragma omp simd
        for (int l = 0; l < kLanes; ++l)
          dxb[i * kLanes + l] = dyb[i * kLanes + l] * ca[l] + xb[i * kLanes + l] * cx[l] + cst[l];
    }
  }
}

// One task of each kind, compiled per ISA (NOISEFLOW_FOR_EACH_ISA below).
struct Kernels {
  void (*forward_plain)(const Job&, int64_t);
  void (*forward_blocked)(const Job&, int64_t);
  void (*backward_plain)(const Job&, int64_t);
  void (*backward_blocked)(const Job&, int64_t);
};

// Picks the instantiation of TASK for the job's activation (and, for backward, whether it adds).
#define NF_FORWARD(TASK) (j.g.silu ? TASK<true>(j, t) : TASK<false>(j, t))
#define NF_BACKWARD(TASK)                                                                                     \
  (j.g.silu ? (j.add ? TASK<true, true>(j, t) : TASK<true, false>(j, t))                                      \
            : (j.add ? TASK<false, true>(j, t) : TASK<false, false>(j, t)))

#define NF_GROUP_NORM_KERNELS(ISA, TARGET)                                                                  \
  TARGET void forward_plain_##ISA(const Job& j, int64_t t) { NF_FORWARD(forward_plain); }                 \
  TARGET void forward_blocked_##ISA(const Job& j, int64_t t) { NF_FORWARD(forward_blocked); }             \
  TARGET void backward_plain_##ISA(const Job& j, int64_t t) { NF_BACKWARD(backward_plain); }              \
  TARGET void backward_blocked_##ISA(const Job& j, int64_t t) { NF_BACKWARD(backward_blocked); }          \
  constexpr Kernels kernels_##ISA{forward_plain_##ISA, forward_blocked_##ISA, backward_plain_##ISA,       \
                                  backward_blocked_##ISA};

NOISEFLOW_FOR_EACH_ISA(NF_GROUP_NORM_KERNELS)

// Runs task(job, t) for every task t, spread over the OpenMP threads.
void run_tasks(void (*task)(const Job&, int64_t), const Job& job, int64_t tasks) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tasks; ++t) task(job, t);
}

}  // namespace

GroupNorm::GroupNorm(const Geometry& g, Isa isa) : g_(g), isa_(isa) {
  mean_.assign(size_t(g.n * g.groups), 0.0);
  rstd_.assign(size_t(g.n * g.groups), 0.0);
  dsum_.assign(size_t(g.n * g.c), 0.0);
  dxsum_.assign(size_t(g.n * g.c), 0.0);
}

void GroupNorm::forward(const float* x, const float* gamma, const float* beta, float* y, bool blocked) {
  run_forward(x, gamma, beta, y, blocked, plain(g_));
}

void GroupNorm::forward(const float* x, const float* gamma, const float* beta, float* y, Strides y_strides) {
  run_forward(x, gamma, beta, y, false, y_strides);
}

void GroupNorm::backward(const float* x, const float* dy, const float* gamma, const float* beta, float* dx,
                         bool blocked, const float* dx_add) {
  run_backward(x, dy, plain(g_), gamma, beta, dx, blocked, dx_add);
}

void GroupNorm::backward(const float* x, const float* dy, Strides dy_strides, const float* gamma, const float* beta,
                         float* dx, const float* dx_add) {
  run_backward(x, dy, dy_strides, gamma, beta, dx, false, dx_add);
}

void GroupNorm::run_forward(const float* x, const float* gamma, const float* beta, float* y, bool blocked,
                            Strides ys) {
  Job j;
  j.g = g_, j.x = x, j.gamma = gamma, j.beta = beta, j.y = y, j.ys = ys, j.mean = mean_.data(), j.rstd = rstd_.data();
  const Kernels& kn = pick(isa_, kernels_generic, kernels_avx2, kernels_avx512);
  if (blocked) run_tasks(kn.forward_blocked, j, g_.n * (g_.c / span_of(g_)));
  else run_tasks(kn.forward_plain, j, g_.n * g_.groups);
}

void GroupNorm::run_backward(const float* x, const float* dy, Strides ds, const float* gamma, const float* beta,
                             float* dx, bool blocked, const float* dx_add) {
  Job j;
  j.g = g_, j.x = x, j.gamma = gamma, j.beta = beta, j.dy = dy, j.ds = ds, j.dx = dx, j.add = dx ? dx_add : nullptr;
  j.mean = mean_.data(), j.rstd = rstd_.data(), j.dsum = dsum_.data(), j.dxsum = dxsum_.data();
  const Kernels& kn = pick(isa_, kernels_generic, kernels_avx2, kernels_avx512);
  if (blocked) run_tasks(kn.backward_blocked, j, g_.n * (g_.c / span_of(g_)));
  else run_tasks(kn.backward_plain, j, g_.n * g_.groups);
}

void GroupNorm::param_grads(float* dgamma, float* dbeta) const {
  for (int64_t c = 0; c < g_.c; ++c) {
    double sg = 0, sb = 0;
    for (int64_t n = 0; n < g_.n; ++n) {
      sg += dxsum_[size_t(n * g_.c + c)];
      sb += dsum_[size_t(n * g_.c + c)];
    }
    dgamma[c] = float(sg);
    dbeta[c] = float(sb);
  }
}

}  // namespace noiseflow::nodes::kernels::group_norm
