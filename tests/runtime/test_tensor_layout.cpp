// tests/runtime/test_tensor_layout.cpp — plain <-> nChw16c conversions (oneDNN reorders) and the
// blocked tensor's element addressing (Tensor::offset()).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/tensor.hpp"

using namespace noiseflow;
using graph::Shape;
using runtime::Layout;
using runtime::Tensor;

namespace {

// A plain tensor whose elements are all distinct and exactly representable.
Tensor numbered(const Shape& s) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = float(i) + 0.25f;
  return t;
}

Tensor blocked(const Shape& s) {
  Tensor t(s);
  t.set_layout(Layout::nChw16c);
  return t;
}

const std::vector<Shape> kShapes = {{1, 16, 1, 1}, {1, 32, 1, 1}, {1, 48, 1, 1}, {2, 16, 3, 5},
                                    {3, 32, 1, 4}, {1, 48, 7, 1}, {2, 48, 2, 3}};

}  // namespace

TEST_CASE("plain -> nChw16c -> plain is exact and offset() addresses the same elements") {
  for (const Shape& s : kShapes) {
    CAPTURE(graph::shape_str(s));
    const Tensor p = numbered(s);
    Tensor b = blocked(s);
    b.assign_plain(p);
    REQUIRE(b.blocked());

    const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
    std::vector<int> hits(size_t(b.numel()), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            const int64_t plain_at = ((n * C + c) * H + h) * W + w;
            const int64_t blocked_at = ((n * (C / 16) + c / 16) * H * W + h * W + w) * 16 + c % 16;
            REQUIRE(p.offset(n, c, h, w) == plain_at);
            REQUIRE(b.offset(n, c, h, w) == blocked_at);
            REQUIRE(b[blocked_at] == p[plain_at]);
            ++hits[size_t(blocked_at)];
          }
    // offset() is a permutation of the buffer.
    CHECK(std::all_of(hits.begin(), hits.end(), [](int k) { return k == 1; }));

    const Tensor back = b.to_plain();
    CHECK_FALSE(back.blocked());
    CHECK(back.to_vector() == p.to_vector());
  }
}

TEST_CASE("assign converts between layouts and copies within one") {
  for (const Shape& s : kShapes) {
    CAPTURE(graph::shape_str(s));
    const Tensor p = numbered(s);
    Tensor b = blocked(s);
    b.assign(p);  // plain -> blocked
    Tensor b2 = blocked(s);
    b2.assign_plain(p);
    CHECK(b.to_vector() == b2.to_vector());

    Tensor q(s);
    q.assign(b);  // blocked -> plain
    CHECK(q.to_vector() == p.to_vector());

    Tensor b3 = blocked(s);
    b3.assign(b);  // blocked -> blocked: a plain copy of the buffer
    CHECK(b3.to_vector() == b.to_vector());

    // A plain tensor's to_plain() and assign_plain() are copies.
    Tensor q2(s);
    q2.assign_plain(p);
    CHECK(q2.to_vector() == p.to_vector());
    CHECK_FALSE(p.to_plain().same_buffer(p));
    CHECK(p.to_plain().to_vector() == p.to_vector());
  }
}

TEST_CASE("layout conversions refuse mismatched tensors") {
  Tensor b = blocked({1, 16, 2, 2});
  CHECK_THROWS_WITH_AS(b.assign_plain(blocked({1, 16, 2, 2})),
                       "Tensor::assign_plain: a plain [1, 16, 2, 2] tensor is needed, got [1, 16, 2, 2] (nChw16c)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(b.assign_plain(Tensor({1, 16, 2, 1})),
                       "Tensor::assign_plain: a plain [1, 16, 2, 2] tensor is needed, got [1, 16, 2, 1]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(b.assign(Tensor({1, 32, 2, 2})), "Tensor::assign: [1, 32, 2, 2] into [1, 16, 2, 2]",
                       std::invalid_argument);
  Tensor t({1, 8, 2, 2});
  CHECK_THROWS_WITH_AS(t.set_layout(Layout::nChw16c),
                       "Tensor::set_layout: nChw16c needs [N, C, H, W] with C a multiple of 16, got [1, 8, 2, 2]",
                       std::invalid_argument);
}
