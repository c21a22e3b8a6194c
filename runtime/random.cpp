#include "runtime/random.hpp"

#include <cmath>

#include <tbb/parallel_for.h>

namespace noiseflow::runtime::random {

uint64_t hash(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::array<uint32_t, 4> philox(uint64_t key, uint64_t stream, uint64_t index) {
  uint32_t c0 = uint32_t(index), c1 = uint32_t(index >> 32), c2 = uint32_t(stream), c3 = uint32_t(stream >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = uint32_t(p1);
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = uint32_t(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

uint64_t bits64(uint64_t key, uint64_t stream, uint64_t index) {
  auto b = philox(key, stream, index);
  return (uint64_t(b[0]) << 32) | b[1];
}

namespace {
constexpr int64_t kGrain = 4096;

// Block j of 4 elements (two Box-Muller pairs from one Philox block), written where it falls in
// elements [first, first + n) of the stream.
inline void normal_block(float* out, int64_t j, int64_t first, int64_t n, uint64_t key, uint64_t stream, float mean,
                         float std) {
  auto b = philox(key, stream, uint64_t(j));
  float z[4];
  for (int p = 0; p < 2; ++p) {
    float u1 = to_unit(b[2 * p]), u2 = to_unit(b[2 * p + 1]);
    float r = std::sqrt(-2.f * std::log(u1));
    float a = 6.2831853071795864f * u2;
    z[2 * p] = r * std::cos(a);
    z[2 * p + 1] = r * std::sin(a);
  }
  for (int k = 0; k < 4; ++k) {
    const int64_t e = 4 * j + k - first;
    if (e >= 0 && e < n) out[e] = mean + std * z[k];
  }
}
}  // namespace

void fill_normal(float* out, int64_t n, uint64_t key, uint64_t stream, float mean, float std, int64_t first) {
  if (n <= 0) return;
  const int64_t b0 = first / 4, b1 = (first + n + 3) / 4;
  tbb::parallel_for(tbb::blocked_range<int64_t>(b0, b1, kGrain), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t j = r.begin(); j != r.end(); ++j) normal_block(out, j, first, n, key, stream, mean, std);
  });
}

void fill_uniform(float* out, int64_t n, uint64_t key, uint64_t stream, float lo, float hi) {
  int64_t blocks = (n + 3) / 4;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, blocks, kGrain), [&](const tbb::blocked_range<int64_t>& r) {
    for (int64_t j = r.begin(); j != r.end(); ++j) {
      auto b = philox(key, stream, uint64_t(j));
      for (int k = 0; k < 4 && 4 * j + k < n; ++k) out[4 * j + k] = lo + (hi - lo) * to_unit(b[k]);
    }
  });
}

}  // namespace noiseflow::runtime::random
