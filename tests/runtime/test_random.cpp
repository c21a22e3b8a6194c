// tests/runtime/test_random.cpp — the Philox4x32-10 generator behind every random node: known answers,
// unit, normal and uniform draws, independence from threads and fill length, node keys, FNV-1a 64.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

using namespace noiseflow;
namespace rnd = noiseflow::runtime::random;

// Known-answer tests of Philox4x32-10 (Random123's kat_vectors, from Salmon et
// al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011). philox() maps
// counter words (c0, c1) = index (low, high), (c2, c3) = stream (low, high),
// and key words (k0, k1) = key (low, high).
TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
  using Block = std::array<uint32_t, 4>;
  CHECK(rnd::philox(0, 0, 0) == Block{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(rnd::philox(~0ull, ~0ull, ~0ull) == Block{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  // ctr = 243f6a88 85a308d3 13198a2e 03707344, key = a4093822 299f31d0 (digits of pi).
  CHECK(rnd::philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull) ==
        Block{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
  // bits64 is the first two words.
  CHECK(rnd::bits64(0, 0, 0) == 0x6627e8d5e169c58dull);
}

TEST_CASE("to_unit maps 32 bits into the open unit interval") {
  CHECK(rnd::to_unit(0) > 0.f);
  CHECK(rnd::to_unit(0x80000000u) == doctest::Approx(0.5).epsilon(1e-6));
  CHECK(rnd::to_unit(0xfffffe00u) < 1.f);
  // Monotone in the high bits.
  CHECK(rnd::to_unit(0x12345600u) < rnd::to_unit(0x12345800u));
}

// 24 bits plus a half would round to 2^24 (exactly 1.0) for the top inputs;
// to_unit keeps 23 bits so every value is exact and below 1.
TEST_CASE("to_unit never returns 1") {
  CHECK(rnd::to_unit(0xffffffffu) < 1.f);
  CHECK(rnd::to_unit(0xffffff00u) < 1.f);
}

TEST_CASE("normal draws: mean and variance within 5 sigma") {
  const int64_t n = 1 << 20;
  std::vector<float> z(static_cast<size_t>(n));
  struct Case {
    float mean, std;
  };
  for (Case c : {Case{0.f, 1.f}, Case{3.f, 2.f}, Case{-1.f, 0.25f}}) {
    CAPTURE(c.mean);
    CAPTURE(c.std);
    rnd::fill_normal(z.data(), n, 1234, 7, c.mean, c.std);
    double s = 0, s2 = 0;
    for (float v : z) s += v;
    const double mean = s / double(n);
    for (float v : z) s2 += (v - mean) * (v - mean);
    const double var = s2 / double(n - 1), want_var = double(c.std) * c.std;
    // Standard error of the mean: std / sqrt(n); of the variance: var * sqrt(2 / (n - 1)).
    CHECK(std::abs(mean - c.mean) < 5.0 * c.std / std::sqrt(double(n)));
    CHECK(std::abs(var - want_var) < 5.0 * want_var * std::sqrt(2.0 / double(n - 1)));
    // Tails: P(|z| > 3) = 0.0027.
    int64_t tail = 0;
    for (float v : z) tail += std::abs(v - c.mean) > 3.f * c.std;
    const double p = 0.0026998, se = std::sqrt(p * (1 - p) / double(n));
    CHECK(std::abs(double(tail) / double(n) - p) < 5 * se);
  }
}

TEST_CASE("uniform draws cover lo..hi with the right mean") {
  const int64_t n = 1 << 18;
  std::vector<float> u(static_cast<size_t>(n));
  rnd::fill_uniform(u.data(), n, 99, 0, -2.f, 6.f);
  double s = 0;
  float lo = 1e9f, hi = -1e9f;
  for (float v : u) s += v, lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -2.f);
  CHECK(hi <= 6.f);
  CHECK(lo < -1.99f);
  CHECK(hi > 5.99f);
  // U(-2, 6): mean 2, std 8 / sqrt(12).
  CHECK(std::abs(s / double(n) - 2.0) < 5.0 * (8.0 / std::sqrt(12.0)) / std::sqrt(double(n)));
  CHECK(rnd::below(10, 1, 2, 3) < 10);
  CHECK(rnd::below(0, 1, 2, 3) == 0);
}

TEST_CASE("draws depend on key and stream and index only - not on threads or length") {
  const int64_t n = 100003;  // several parallel chunks, and a partial last block
  auto draw = [&](int threads, int64_t count, uint64_t key, uint64_t stream) {
    std::vector<float> v(static_cast<size_t>(count));
    tbb::task_arena arena(threads);
    arena.execute([&] { rnd::fill_normal(v.data(), count, key, stream); });
    return v;
  };
  auto one = draw(1, n, 5, 11);
  CHECK(draw(2, n, 5, 11) == one);
  // Element i is the same whatever the length of the fill.
  auto shorter = draw(2, 10, 5, 11);
  CHECK(std::equal(shorter.begin(), shorter.end(), one.begin()));
  // Other keys and streams give other numbers.
  CHECK(draw(1, n, 6, 11) != one);
  CHECK(draw(1, n, 5, 12) != one);
  // Same for uniforms.
  std::vector<float> u1(static_cast<size_t>(n)), u2(static_cast<size_t>(n));
  tbb::task_arena(1).execute([&] { rnd::fill_uniform(u1.data(), n, 5, 11, 0.f, 1.f); });
  tbb::task_arena(2).execute([&] { rnd::fill_uniform(u2.data(), n, 5, 11, 0.f, 1.f); });
  CHECK(u1 == u2);
}

TEST_CASE("node random keys: seed x node id") {
  runtime::Context a, b;
  a.id_ = "eps";
  b.id_ = "eps";
  a.seed_ = b.seed_ = 3;
  CHECK(a.random_key() == b.random_key());
  b.id_ = "noise";
  CHECK(a.random_key() != b.random_key());
  b.id_ = "eps";
  b.seed_ = 4;
  CHECK(a.random_key() != b.random_key());
  CHECK(rnd::hash("eps") == rnd::hash(std::string("eps")));
  CHECK(rnd::hash("eps") != rnd::hash("eps2"));
  CHECK(rnd::mix(1, 2) != rnd::mix(2, 1));
}

// The standard FNV-1a 64 test vectors.
TEST_CASE("random::hash is the standard FNV-1a 64") {
  CHECK(rnd::hash("") == 0xcbf29ce484222325ull);
  CHECK(rnd::hash("a") == 0xaf63dc4c8601ec8cull);
}
