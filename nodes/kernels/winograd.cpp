// nodes/kernels/winograd.cpp — Winograd F(4x4, 3x3) kernels (see winograd.hpp for the algorithm).
//
// Layouts. Tensors are nChw16c: [n][c/16][h][w][16]. Per block of `tb` tiles the working memory holds
//   V[36][tb][cin]   the transformed input tiles (B^T d B), channels contiguous
//   M[36][tb][cout]  the products (forward), or D[36][tb][cout] the transformed output gradient (A dY A^T)
// and the transformed weights are U[36][cout/16][cin][16] (forward; the backward-data job uses the same
// layout for the rotated, channel-swapped kernel). The backward-weights job keeps one partial sum
// S[36][cin][cout] per thread.
//
// A 16-channel block is handled as GCC vector extensions of the target's native width: one zmm under
// AVX-512, two ymm under AVX2, four xmm on baseline x86-64. Every kernel body is an always-inline template
// instantiated inside a function compiled for each ISA (NF_KERNELS below, through isa.hpp's
// NOISEFLOW_FOR_EACH_ISA), so one source gives three code paths; this file is built with
// -ffp-contract=fast so that `s += a * b` becomes a fused multiply-add.
#include "nodes/kernels/winograd.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nodes/kernels/dnnl_util.hpp"

namespace noiseflow::nodes::kernels::winograd {
namespace {

#define NF_INLINE inline __attribute__((always_inline))

// Native vectors of each target: 4 floats (SSE), 8 (AVX2), 16 (AVX-512). A 16-channel block is 16 / L of them.
typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

template <class V>
constexpr int kL = int(sizeof(V) / sizeof(float));

template <class V>
NF_INLINE V ld(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
NF_INLINE void st(float* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

constexpr int kAlpha = 6;        // input tile edge: 4 outputs + 3 - 1
constexpr int kXi = 36;          // points of the 6x6 transformed tile
constexpr int kWsSlot = 6;       // per-thread staging slot of the working memory (Staged uses 0..5, scratch 7)
constexpr int kSharedSlot = 5;   // the caller's slot for the transformed weights

// ---- 1-D transforms on six (or four, or three) vectors ----

// r = B^T d (6 -> 6)
template <class V>
NF_INLINE void bt(const V* d, V* r) {
  r[0] = 4.f * d[0] - 5.f * d[2] + d[4];
  r[1] = -4.f * (d[1] + d[2]) + d[3] + d[4];
  r[2] = 4.f * (d[1] - d[2]) - d[3] + d[4];
  r[3] = 2.f * (d[3] - d[1]) - d[2] + d[4];
  r[4] = 2.f * (d[1] - d[3]) - d[2] + d[4];
  r[5] = 4.f * d[1] - 5.f * d[3] + d[5];
}
// o = A^T m (6 -> 4)
template <class V>
NF_INLINE void at(const V* m, V* o) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  o[0] = m[0] + s12 + s34;
  o[1] = d12 + 2.f * d34;
  o[2] = s12 + 4.f * s34;
  o[3] = d12 + 8.f * d34 + m[5];
}
// z = A y (4 -> 6)
template <class V>
NF_INLINE void a_(const V* y, V* z) {
  const V s02 = y[0] + y[2], s13 = y[1] + y[3], t02 = y[0] + 4.f * y[2], t13 = 2.f * y[1] + 8.f * y[3];
  z[0] = y[0];
  z[1] = s02 + s13;
  z[2] = s02 - s13;
  z[3] = t02 + t13;
  z[4] = t02 - t13;
  z[5] = y[3];
}
// u = G g (3 -> 6)
template <class V>
NF_INLINE void g_(const V* g, V* u) {
  const V s02 = g[0] + g[2];
  u[0] = 0.25f * g[0];
  u[1] = (-1.f / 6) * (s02 + g[1]);
  u[2] = (-1.f / 6) * (s02 - g[1]);
  const V p = (1.f / 24) * g[0] + (1.f / 6) * g[2], q = (1.f / 12) * g[1];
  u[3] = p + q;
  u[4] = p - q;
  u[5] = g[2];
}
// w = G^T m (6 -> 3)
template <class V>
NF_INLINE void gt(const V* m, V* w) {
  const V s12 = m[1] + m[2], s34 = m[3] + m[4];
  w[0] = 0.25f * m[0] - (1.f / 6) * s12 + (1.f / 24) * s34;
  w[1] = (1.f / 6) * (m[2] - m[1]) + (1.f / 12) * (m[3] - m[4]);
  w[2] = (1.f / 6) * (s34 - s12) + m[5];
}

// ---- tile transforms (each over the 16 channels of a block, L at a time) ----

/// The 6x6 input tile at (y0 - 1, x0 - 1) of one image's channel block `img` ([h][w][16], zero outside),
/// as B^T d B, to out[xi * stride].
template <class V>
NF_INLINE void input_tile(const float* img, int64_t h, int64_t w, int64_t y0, int64_t x0, float* out,
                          int64_t stride) {
  const bool interior = y0 >= 1 && x0 >= 1 && y0 + 4 < h && x0 + 4 < w;
  for (int s = 0; s < 16; s += kL<V>) {
    V t[kAlpha][kAlpha];
    for (int j = 0; j < kAlpha; ++j) {
      V c[kAlpha];
      const int64_t x = x0 - 1 + j;
      for (int i = 0; i < kAlpha; ++i) {
        const int64_t y = y0 - 1 + i;
        c[i] = interior || (y >= 0 && y < h && x >= 0 && x < w) ? ld<V>(img + (y * w + x) * 16 + s) : V{};
      }
      V r[kAlpha];
      bt(c, r);
      for (int i = 0; i < kAlpha; ++i) t[i][j] = r[i];
    }
    for (int i = 0; i < kAlpha; ++i) {
      V r[kAlpha];
      bt(t[i], r);
      for (int j = 0; j < kAlpha; ++j) st(out + (i * kAlpha + j) * stride + s, r[j]);
    }
  }
}

/// Y = A^T m A (+ bias, + the image's channel values `chan`, + the residual `add` laid out like `img`) of one
/// tile's 36 products m[xi * stride], written to the valid part of the 4x4 output tile at (y0, x0) of `img`
/// ([h][w][16]).
template <class V>
NF_INLINE void output_tile(const float* m, int64_t stride, const float* bias, const float* chan, const float* add,
                           float* img, int64_t h, int64_t w, int64_t y0, int64_t x0) {
  for (int s = 0; s < 16; s += kL<V>) {
    V b = bias ? ld<V>(bias + s) : V{};
    if (chan) b += ld<V>(chan + s);
    V t[4][kAlpha];
    for (int j = 0; j < kAlpha; ++j) {
      V c[kAlpha], r[4];
      for (int i = 0; i < kAlpha; ++i) c[i] = ld<V>(m + (i * kAlpha + j) * stride + s);
      at(c, r);
      for (int i = 0; i < 4; ++i) t[i][j] = r[i];
    }
    for (int i = 0; i < 4; ++i) {
      if (y0 + i >= h) break;
      V o[4];
      at(t[i], o);
      for (int j = 0; j < 4 && x0 + j < w; ++j) {
        const int64_t at = ((y0 + i) * w + x0 + j) * 16 + s;
        st(img + at, add ? o[j] + b + ld<V>(add + at) : o[j] + b);
      }
    }
  }
}

/// A dY A^T of the 4x4 output-gradient tile at (y0, x0) of `img` (zero outside), to out[xi * stride];
/// adds the tile's values to sum[0..15] (the bias gradient).
template <class V>
NF_INLINE void grad_tile(const float* img, int64_t h, int64_t w, int64_t y0, int64_t x0, float* out,
                         int64_t stride, float* sum) {
  for (int s = 0; s < 16; s += kL<V>) {
    V acc = ld<V>(sum + s);
    V t[kAlpha][4];
    for (int j = 0; j < 4; ++j) {
      V c[4], r[kAlpha];
      const int64_t x = x0 + j;
      for (int i = 0; i < 4; ++i) {
        const int64_t y = y0 + i;
        c[i] = y < h && x < w ? ld<V>(img + (y * w + x) * 16 + s) : V{};
        acc += c[i];
      }
      a_(c, r);
      for (int i = 0; i < kAlpha; ++i) t[i][j] = r[i];
    }
    for (int i = 0; i < kAlpha; ++i) {
      V r[kAlpha];
      a_(t[i], r);
      for (int j = 0; j < kAlpha; ++j) st(out + (i * kAlpha + j) * stride + s, r[j]);
    }
    st(sum + s, acc);
  }
}

// ---- the micro-kernel: c[r][0..15] (+)= sum_k a[r * a_r + k * a_k] * b[k * b_k + 0..15], r < R ----

template <class V, int R>
NF_INLINE void kern(int64_t k_n, const float* a, int64_t a_r, int64_t a_k, const float* b, int64_t b_k, float* c,
                    int64_t c_r, bool accumulate) {
  constexpr int nv = 16 / kL<V>;
  V s[R][nv];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < nv; ++v) s[r][v] = accumulate ? ld<V>(c + r * c_r + v * kL<V>) : V{};
  for (int64_t k = 0; k < k_n; ++k) {
    V bv[nv];
#pragma GCC unroll 4
    for (int v = 0; v < nv; ++v) bv[v] = ld<V>(b + k * b_k + v * kL<V>);
    const float* ak = a + k * a_k;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float ar = ak[r * a_r];
#pragma GCC unroll 4
      for (int v = 0; v < nv; ++v) s[r][v] += ar * bv[v];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < nv; ++v) st(c + r * c_r + v * kL<V>, s[r][v]);
}

template <class V, int R>
NF_INLINE void kern_tail(int64_t rows, int64_t k_n, const float* a, int64_t a_r, int64_t a_k, const float* b,
                         int64_t b_k, float* c, int64_t c_r, bool accumulate) {
  if constexpr (R > 0) {
    if (rows == R) return kern<V, R>(k_n, a, a_r, a_k, b, b_k, c, c_r, accumulate);
    kern_tail<V, R - 1>(rows, k_n, a, a_r, a_k, b, b_k, c, c_r, accumulate);
  }
}

/// `rows` rows of c, R at a time.
template <class V, int R>
NF_INLINE void kern_rows(int64_t rows, int64_t k_n, const float* a, int64_t a_r, int64_t a_k, const float* b,
                         int64_t b_k, float* c, int64_t c_r, bool accumulate) {
  int64_t r = 0;
  for (; r + R <= rows; r += R) kern<V, R>(k_n, a + r * a_r, a_r, a_k, b, b_k, c + r * c_r, c_r, accumulate);
  if (r < rows) kern_tail<V, R - 1>(rows - r, k_n, a + r * a_r, a_r, a_k, b, b_k, c + r * c_r, c_r, accumulate);
}

// ---- jobs ----

/// A forward-shaped job: dst = conv(src, U) (+ bias). The backward-data pass is one too.
struct FwdJob {
  const float* src;   // [n][ci/16][h][w][16]
  const float* u;     // [36][co/16][ci][16]
  const float* bias;  // [co] or null
  const float* chan;  // [n][co] added per image and channel, or null
  const float* add;   // [n][co/16][h][w][16] added (a residual), or null
  float* dst;         // [n][co/16][h][w][16]
  int64_t ci, co, h, w, tx, tiles_per_image, cap;  // cap: tiles a block's buffers hold
};

struct WgtJob {
  const float* src;   // [n][ci/16][h][w][16]
  const float* ddst;  // [n][co/16][h][w][16]
  int64_t ci, co, h, w, tx, tiles_per_image, cap;
};

NF_INLINE void tile_origin(int64_t t, int64_t per_image, int64_t tx, int64_t& img, int64_t& y0, int64_t& x0) {
  img = t / per_image;
  const int64_t r = t % per_image;
  y0 = 4 * (r / tx);
  x0 = 4 * (r % tx);
}

template <class V, int R>
NF_INLINE void fwd_block(const FwdJob& j, int64_t t0, int64_t nt, float* ws) {
  float* v = ws;                       // [36][cap][ci]
  float* m = ws + kXi * j.cap * j.ci;  // [36][cap][co]
  const int64_t cib = j.ci / 16, cob = j.co / 16, hw = j.h * j.w;
  for (int64_t l = 0; l < nt; ++l) {
    int64_t img, y0, x0;
    tile_origin(t0 + l, j.tiles_per_image, j.tx, img, y0, x0);
    for (int64_t b = 0; b < cib; ++b)
      input_tile<V>(j.src + (img * cib + b) * hw * 16, j.h, j.w, y0, x0, v + l * j.ci + b * 16, j.cap * j.ci);
  }
  for (int xi = 0; xi < kXi; ++xi)
    for (int64_t b = 0; b < cob; ++b)
      kern_rows<V, R>(nt, j.ci, v + xi * j.cap * j.ci, j.ci, 1, j.u + (xi * cob + b) * j.ci * 16, 16,
                      m + xi * j.cap * j.co + b * 16, j.co, false);
  for (int64_t l = 0; l < nt; ++l) {
    int64_t img, y0, x0;
    tile_origin(t0 + l, j.tiles_per_image, j.tx, img, y0, x0);
    for (int64_t b = 0; b < cob; ++b)
      output_tile<V>(m + l * j.co + b * 16, j.cap * j.co, j.bias ? j.bias + b * 16 : nullptr,
                     j.chan ? j.chan + img * j.co + b * 16 : nullptr, j.add ? j.add + (img * cob + b) * hw * 16 : nullptr,
                     j.dst + (img * cob + b) * hw * 16, j.h, j.w, y0, x0);
  }
}

template <class V, int R>
NF_INLINE void wgt_block(const WgtJob& j, int64_t t0, int64_t nt, float* ws, float* sum, float* bsum) {
  float* v = ws;                       // [36][cap][ci]
  float* d = ws + kXi * j.cap * j.ci;  // [36][cap][co]
  const int64_t cib = j.ci / 16, cob = j.co / 16, hw = j.h * j.w;
  for (int64_t l = 0; l < nt; ++l) {
    int64_t img, y0, x0;
    tile_origin(t0 + l, j.tiles_per_image, j.tx, img, y0, x0);
    for (int64_t b = 0; b < cib; ++b)
      input_tile<V>(j.src + (img * cib + b) * hw * 16, j.h, j.w, y0, x0, v + l * j.ci + b * 16, j.cap * j.ci);
    for (int64_t b = 0; b < cob; ++b)
      grad_tile<V>(j.ddst + (img * cob + b) * hw * 16, j.h, j.w, y0, x0, d + l * j.co + b * 16, j.cap * j.co,
                   bsum + b * 16);
  }
  // sum[xi][ci][co] += sum over the block's tiles of v[xi][t][ci] d[xi][t][co]
  for (int xi = 0; xi < kXi; ++xi)
    for (int64_t b = 0; b < cob; ++b)
      kern_rows<V, R>(j.ci, nt, v + xi * j.cap * j.ci, 1, j.ci, d + xi * j.cap * j.co + b * 16, j.co,
                      sum + xi * j.ci * j.co + b * 16, j.co, true);
}

/// Transformed weights for pairs [p0, p1) of (output block, input channel) of a forward-shaped job with
/// `ji` inputs and `jo` outputs. Swap = false: the layer's own kernel w[jo][ji][3][3]; Swap = true: the
/// backward-data kernel, w[ji][jo] rotated by 180 degrees.
template <class V, bool Swap>
NF_INLINE void weight_tiles(const float* w, int64_t ji, int64_t jo, float* u, int64_t p0, int64_t p1) {
  const int64_t job = jo / 16;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t ob = p / ji, i = p % ji;
    for (int s = 0; s < 16; s += kL<V>) {
      V g[9];
      for (int k = 0; k < 9; ++k) {
        alignas(64) float lane[16];
        for (int l = 0; l < kL<V>; ++l) {
          const int64_t o = ob * 16 + s + l;
          lane[l] = Swap ? w[(i * jo + o) * 9 + (8 - k)] : w[(o * ji + i) * 9 + k];
        }
        g[k] = ld<V>(lane);
      }
      V t[kAlpha][3];
      for (int x = 0; x < 3; ++x) {
        const V c[3] = {g[x], g[3 + x], g[6 + x]};
        V r[kAlpha];
        g_(c, r);
        for (int y = 0; y < kAlpha; ++y) t[y][x] = r[y];
      }
      for (int y = 0; y < kAlpha; ++y) {
        V r[kAlpha];
        g_(t[y], r);
        for (int x = 0; x < kAlpha; ++x) st(u + (((y * kAlpha + x) * job + ob) * ji + i) * 16 + s, r[x]);
      }
    }
  }
}

/// dw[co][ci][3][3] = G^T s G for pairs [p0, p1) of (output block, input channel); s is [36][ci][co].
template <class V>
NF_INLINE void weight_grads(const float* sm, int64_t ci, int64_t co, float* dw, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t ob = p / ci, i = p % ci;
    for (int s = 0; s < 16; s += kL<V>) {
      V t[kAlpha][3];
      for (int y = 0; y < kAlpha; ++y) {
        V c[kAlpha], r[3];
        for (int x = 0; x < kAlpha; ++x) c[x] = ld<V>(sm + ((y * kAlpha + x) * ci + i) * co + ob * 16 + s);
        gt(c, r);
        for (int x = 0; x < 3; ++x) t[y][x] = r[x];
      }
      for (int x = 0; x < 3; ++x) {
        V c[kAlpha], r[3];
        for (int y = 0; y < kAlpha; ++y) c[y] = t[y][x];
        gt(c, r);
        for (int y = 0; y < 3; ++y) {
          alignas(64) float lane[16];
          st(lane, r[y]);
          for (int l = 0; l < kL<V>; ++l) dw[((ob * 16 + s + l) * ci + i) * 9 + y * 3 + x] = lane[l];
        }
      }
    }
  }
}

template <class V>
NF_INLINE void add_into(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + kL<V> <= n; i += kL<V>) st(dst + i, ld<V>(dst + i) + ld<V>(src + i));
  for (; i < n; ++i) dst[i] += src[i];
}

struct Kernels {
  void (*fwd)(const FwdJob&, int64_t, int64_t, float*);
  void (*wgt)(const WgtJob&, int64_t, int64_t, float*, float*, float*);
  void (*wtiles)(const float*, int64_t, int64_t, float*, int64_t, int64_t);
  void (*wtiles_swapped)(const float*, int64_t, int64_t, float*, int64_t, int64_t);
  void (*wgrads)(const float*, int64_t, int64_t, float*, int64_t, int64_t);
  void (*add)(float*, const float*, int64_t);
};

// Each ISA's native vector V and the micro-kernel's rows R (R * 16 / L accumulator registers: 12 ymm under
// AVX2, 12 zmm under AVX-512, 12 xmm on baseline x86-64).
template <Isa>
struct Native;
template <>
struct Native<Isa::avx512> {
  using V = v16;
  static constexpr int kRows = 12;
};
template <>
struct Native<Isa::avx2> {
  using V = v8;
  static constexpr int kRows = 6;
};
template <>
struct Native<Isa::generic> {
  using V = v4;
  static constexpr int kRows = 3;
};

// One set of entry points per ISA.
#define NF_KERNELS(ISA, TARGET)                                                                                 \
  using V_##ISA = Native<Isa::ISA>::V;                                                                          \
  constexpr int kRows_##ISA = Native<Isa::ISA>::kRows;                                                          \
  TARGET void fwd_##ISA(const FwdJob& j, int64_t t0, int64_t nt, float* ws) {                                   \
    fwd_block<V_##ISA, kRows_##ISA>(j, t0, nt, ws);                                                             \
  }                                                                                                             \
  TARGET void wgt_##ISA(const WgtJob& j, int64_t t0, int64_t nt, float* ws, float* s, float* b) {               \
    wgt_block<V_##ISA, kRows_##ISA>(j, t0, nt, ws, s, b);                                                       \
  }                                                                                                             \
  TARGET void wtiles_##ISA(const float* w, int64_t ji, int64_t jo, float* u, int64_t p0, int64_t p1) {          \
    weight_tiles<V_##ISA, false>(w, ji, jo, u, p0, p1);                                                         \
  }                                                                                                             \
  TARGET void wtiles_swapped_##ISA(const float* w, int64_t ji, int64_t jo, float* u, int64_t p0, int64_t p1) {  \
    weight_tiles<V_##ISA, true>(w, ji, jo, u, p0, p1);                                                          \
  }                                                                                                             \
  TARGET void wgrads_##ISA(const float* s, int64_t ci, int64_t co, float* dw, int64_t p0, int64_t p1) {         \
    weight_grads<V_##ISA>(s, ci, co, dw, p0, p1);                                                               \
  }                                                                                                             \
  TARGET void add_##ISA(float* d, const float* s, int64_t n) { add_into<V_##ISA>(d, s, n); }                    \
  constexpr Kernels kernels_##ISA{fwd_##ISA,           wgt_##ISA,    wtiles_##ISA,                              \
                                  wtiles_swapped_##ISA, wgrads_##ISA, add_##ISA};

NOISEFLOW_FOR_EACH_ISA(NF_KERNELS)

const Kernels& kernels(Isa isa) { return pick(isa, kernels_generic, kernels_avx2, kernels_avx512); }

/// Tiles per block so that a block's two buffers take about `bytes` (NOISEFLOW_WINOGRAD_BLOCK_KB overrides).
int64_t block_tiles(int64_t ci, int64_t co, int64_t bytes) {
  if (const char* e = std::getenv("NOISEFLOW_WINOGRAD_BLOCK_KB")) bytes = std::max(16L, std::atol(e)) * 1024;
  return std::clamp<int64_t>(bytes / (kXi * (ci + co) * int64_t(sizeof(float))), 4, 512);
}

/// Splits `total` tiles into a multiple of `threads` blocks of at most `cap`; returns the block size.
int64_t block_size(int64_t total, int64_t cap, int threads) {
  const int64_t per_thread = (total + threads - 1) / threads;
  const int64_t blocks_per_thread = (per_thread + cap - 1) / cap;
  return std::max<int64_t>(1, (per_thread + blocks_per_thread - 1) / blocks_per_thread);
}

/// Runs fn(t0, nt) over blocks of `tb` tiles, thread k taking a contiguous range of blocks.
template <class F>
void for_blocks(int64_t total, int64_t tb, F&& fn) {
  const int threads = omp_get_num_threads(), k = omp_get_thread_num();
  const int64_t nb = (total + tb - 1) / tb;
  for (int64_t b = nb * k / threads; b < nb * (k + 1) / threads; ++b) fn(b * tb, std::min(tb, total - b * tb));
}

/// This thread's share [p0, p1) of `n` items.
void share(int64_t n, int64_t& p0, int64_t& p1) {
  const int threads = omp_get_num_threads(), k = omp_get_thread_num();
  p0 = n * k / threads;
  p1 = n * (k + 1) / threads;
}

void run_forward(const Kernels& kn, const FwdJob& job0, const float* w, bool swapped, int64_t tiles) {
  FwdJob job = job0;
  float* u = static_cast<float*>(dnnl_util::staging_buffer(kSharedSlot, kXi * job.ci * job.co * sizeof(float)));
  job.u = u;
  const size_t ws_bytes = kXi * job.cap * (job.ci + job.co) * sizeof(float);
#pragma omp parallel
  {
    int64_t p0, p1;
    share(job.co / 16 * job.ci, p0, p1);
    (swapped ? kn.wtiles_swapped : kn.wtiles)(w, job.ci, job.co, u, p0, p1);
#pragma omp barrier
    float* ws = static_cast<float*>(dnnl_util::staging_buffer(kWsSlot, ws_bytes));
    const int64_t tb = block_size(tiles, job.cap, omp_get_num_threads());
    for_blocks(tiles, tb, [&](int64_t t0, int64_t nt) { kn.fwd(job, t0, nt, ws); });
  }
}

}  // namespace

Conv3x3::Conv3x3(const Geometry& g, Isa isa) : g_(g), isa_(isa) {
  tiles_y_ = (g.h + 3) / 4;
  tiles_x_ = (g.w + 3) / 4;
  tiles_ = g.n * tiles_y_ * tiles_x_;
  block_fwd_ = block_tiles(g.cin, g.cout, 512 * 1024);
  block_bwd_ = block_tiles(g.cout, g.cin, 512 * 1024);
  block_wgt_ = block_tiles(g.cin, g.cout, 512 * 1024);
}

size_t Conv3x3::shared_bytes() const { return kXi * g_.cin * g_.cout * sizeof(float); }

size_t Conv3x3::thread_bytes() const {
  const int64_t fwd = kXi * std::max(block_fwd_, block_bwd_) * (g_.cin + g_.cout);
  const int64_t wgt = kXi * block_wgt_ * (g_.cin + g_.cout) + kXi * g_.cin * g_.cout + g_.cout;
  return size_t(std::max(fwd, wgt)) * sizeof(float);
}

void Conv3x3::forward(const float* src, const float* wei, const float* bias, float* dst, const float* chan,
                      const float* add) const {
  const FwdJob job{src,    nullptr, bias, chan, add, dst, g_.cin, g_.cout, g_.h, g_.w, tiles_x_, tiles_y_ * tiles_x_,
                   block_fwd_};
  run_forward(kernels(isa_), job, wei, false, tiles_);
}

void Conv3x3::backward_data(const float* ddst, const float* wei, float* dsrc) const {
  const FwdJob job{ddst, nullptr, nullptr, nullptr, nullptr, dsrc, g_.cout, g_.cin, g_.h, g_.w, tiles_x_,
                   tiles_y_ * tiles_x_, block_bwd_};
  run_forward(kernels(isa_), job, wei, true, tiles_);
}

void Conv3x3::backward_weights(const float* src, const float* ddst, float* dwei, float* dbias) const {
  const Kernels& kn = kernels(isa_);
  const WgtJob job{src, ddst, g_.cin, g_.cout, g_.h, g_.w, tiles_x_, tiles_y_ * tiles_x_, block_wgt_};
  const int64_t sum_n = kXi * g_.cin * g_.cout;
  const size_t ws_n = size_t(kXi * block_wgt_ * (g_.cin + g_.cout));
  std::vector<float*> sums(size_t(std::max(1, omp_get_max_threads())));
#pragma omp parallel
  {
    const int threads = omp_get_num_threads(), k = omp_get_thread_num();
#pragma omp single
    sums.assign(size_t(threads), nullptr);
    float* ws = static_cast<float*>(dnnl_util::staging_buffer(kWsSlot, (ws_n + sum_n + g_.cout) * sizeof(float)));
    float* sum = ws + ws_n;
    float* bsum = sum + sum_n;
    sums[size_t(k)] = sum;
    std::memset(sum, 0, (sum_n + g_.cout) * sizeof(float));
    const int64_t tb = block_size(tiles_, block_wgt_, threads);
    for_blocks(tiles_, tb, [&](int64_t t0, int64_t nt) { kn.wgt(job, t0, nt, ws, sum, bsum); });
#pragma omp barrier
    // Thread 0's partial sums (and bias sums) += the others', in thread order, each thread a slice.
    int64_t p0, p1;
    share((sum_n + g_.cout + 15) / 16, p0, p1);
    p0 = std::min(p0 * 16, sum_n + g_.cout);
    p1 = std::min(p1 * 16, sum_n + g_.cout);
    for (int o = 1; o < threads; ++o) kn.add(sums[0] + p0, sums[size_t(o)] + p0, p1 - p0);
#pragma omp barrier
    share(g_.cout / 16 * g_.cin, p0, p1);
    kn.wgrads(sums[0], g_.cin, g_.cout, dwei, p0, p1);
  }
  if (dbias) std::memcpy(dbias, sums[0] + sum_n, size_t(g_.cout) * sizeof(float));
}

}  // namespace noiseflow::nodes::kernels::winograd
