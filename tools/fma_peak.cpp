// tools/fma_peak.cpp — the fp32 fused-multiply-add peak of this machine, measured: a loop of independent FMA
// chains (enough to cover the FMA latency on every current x86 core) in registers, for AVX2 (8-wide ymm) and,
// where the CPU has it, AVX-512 (16-wide zmm); one thread and all threads (OpenMP). docs/PERFORMANCE.md
// divides the convolutions' FLOP rate by these figures.
//
//   build/tools/fma_peak            # prints one line per ISA and thread count, GFLOP/s
#include <omp.h>

#include <chrono>
#include <cstdio>

namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

constexpr long kIters = 20'000'000;
constexpr int kChains = 12;  // 12 accumulators + 2 operands fit the 16 ymm registers of AVX2

// 2 FLOP x lanes x chains per iteration. Without -ffast-math the compiler may not fold the recurrences, so
// every iteration runs; the result is returned so that nothing is dead.
template <class V>
inline __attribute__((always_inline)) float chains(long iters) {
  V acc[kChains];
  const V a = V{} + 0.999999f, b = V{} + 1e-7f;
  for (int c = 0; c < kChains; ++c) acc[c] = V{} + float(c);
  for (long i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;
  }
  V s = V{};
  for (int c = 0; c < kChains; ++c) s += acc[c];
  return s[0];
}

__attribute__((target("avx2,fma"))) float run_avx2(long iters) { return chains<v8>(iters); }
__attribute__((target("avx512f,avx2,fma"))) float run_avx512(long iters) { return chains<v16>(iters); }

double gflops(bool avx512, int threads) {
  const int lanes = avx512 ? 16 : 8;
  float sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
  {
    const float r = avx512 ? run_avx512(kIters) : run_avx2(kIters);
#pragma omp atomic
    sink += r;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink == 12345.f) std::printf(" ");  // keeps the results alive
  return 2.0 * lanes * kChains * double(kIters) * threads / s / 1e9;
}

}  // namespace

int main() {
  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "fma_peak: this CPU has no AVX2+FMA\n");
    return 1;
  }
  const int all = omp_get_num_procs();
  for (bool wide : {false, true}) {
    if (wide && !has512) continue;
    for (int t : {1, all}) {
      double best = 0;
      for (int r = 0; r < 3; ++r) best = std::max(best, gflops(wide, t));  // best of 3: the least disturbed run
      std::printf("fma_peak %s threads=%d gflops=%.1f\n", wide ? "avx512" : "avx2", t, best);
      if (all == 1) break;
    }
  }
}
