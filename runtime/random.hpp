// runtime/random.hpp — counter-based randomness (Philox4x32-10).
//
// Every draw is a pure function of (key, stream, element index), so results
// do not depend on thread count or schedule. Nodes use
// key = ctx.random_key() (seed x node id) and stream = the tick.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace noiseflow::runtime::random {

/// FNV-1a 64-bit hash of a string.
uint64_t hash(std::string_view s);
/// Mixes two 64-bit values (splitmix64 finaliser).
uint64_t mix(uint64_t a, uint64_t b);
/// One Philox4x32-10 block for counter (stream, index) under key.
std::array<uint32_t, 4> philox(uint64_t key, uint64_t stream, uint64_t index);
/// Uniform in (0, 1) from the top 23 random bits; never exactly 0 or 1 (exact in float).
inline float to_unit(uint32_t x) { return (float(x >> 9) + 0.5f) * (1.0f / 8388608.0f); }

/// out[i] ~ N(mean, std^2), i in [0, n): elements [first, first + n) of the stream (key, stream), so a
/// slice of a larger tensor (a rank's share of a batch) draws what the whole tensor draws there.
void fill_normal(float* out, int64_t n, uint64_t key, uint64_t stream, float mean = 0.f, float std = 1.f,
                 int64_t first = 0);
/// out[i] ~ U(lo, hi).
void fill_uniform(float* out, int64_t n, uint64_t key, uint64_t stream, float lo, float hi);
/// One uniform 64-bit integer for (key, stream, index).
uint64_t bits64(uint64_t key, uint64_t stream, uint64_t index);
/// Uniform integer in [0, n) (unbiased enough for n << 2^64).
inline uint64_t below(uint64_t n, uint64_t key, uint64_t stream, uint64_t index) {
  return n ? bits64(key, stream, index) % n : 0;
}

}  // namespace noiseflow::runtime::random
