// tests/runtime/test_tensor.cpp — Tensor buffers and views, the oneDNN wrap, read-only const tensors,
// plain <-> nChw16c conversions (oneDNN reorders) and the blocked tensor's element addressing
// (Tensor::offset()).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/tensor.hpp"

using namespace noiseflow;
using graph::Shape;
using runtime::Layout;
using runtime::Tensor;

TEST_CASE("tensors are zero-filled on 64-byte-aligned buffers") {
  for (Shape s : {Shape{1}, Shape{3}, Shape{17}, Shape{2, 3, 5}, Shape{64, 1, 28, 28}, Shape{}}) {
    Tensor t(s);
    CAPTURE(graph::shape_str(s));
    CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
    CHECK(t.numel() == graph::numel(s));
    CHECK_FALSE(t.empty());
    for (int64_t i = 0; i < t.numel(); ++i) REQUIRE(t[i] == 0.f);
  }
  CHECK(Tensor().empty());
  CHECK(Tensor(Shape{2, 3}).dim(-1) == 3);
  CHECK(Tensor(Shape{2, 3}).rank() == 2);
  CHECK_THROWS_WITH_AS(Tensor(Shape{2, -1}), "Tensor: negative dimension in [2, -1]", std::invalid_argument);
  CHECK_THROWS_WITH_AS(Tensor(Shape{2, 2}, {1.f, 2.f, 3.f}), "Tensor: 3 values for shape [2, 2]", std::invalid_argument);
}

TEST_CASE("copies and views share the buffer and clone copies it") {
  Tensor a(Shape{2, 3}, {0, 1, 2, 3, 4, 5});

  Tensor handle = a;  // a handle, like shared_ptr
  CHECK(handle.same_buffer(a));
  handle[0] = 10.f;
  CHECK(a[0] == 10.f);

  Tensor v = a.view({3, 2});
  CHECK(v.shape() == Shape{3, 2});
  CHECK(v.same_buffer(a));
  CHECK(v.data() == a.data());
  v[5] = 50.f;
  CHECK(a[5] == 50.f);
  CHECK(a.shape() == Shape{2, 3});
  CHECK_THROWS_WITH_AS(a.view({5}), "Tensor::view: [5] does not fit [2, 3]", std::invalid_argument);

  Tensor c = a.clone();
  CHECK_FALSE(c.same_buffer(a));
  CHECK(c.data() != a.data());
  CHECK(reinterpret_cast<uintptr_t>(c.data()) % 64 == 0);
  CHECK(c.to_vector() == a.to_vector());
  c[1] = -1.f;
  CHECK(a[1] == 1.f);

  Tensor d(Shape{6});
  d.copy_from(a);  // same element count, other shape
  CHECK(d.to_vector() == std::vector<float>{10, 1, 2, 3, 4, 50});
  CHECK_FALSE(d.same_buffer(a));
  CHECK_THROWS_WITH_AS(d.copy_from(Tensor(Shape{5})), "Tensor::copy_from: [5] into [6]", std::invalid_argument);

  d.fill(2.5f);
  CHECK(d.to_vector() == std::vector<float>(6, 2.5f));
  d.zero();
  CHECK(d.to_vector() == std::vector<float>(6, 0.f));
}

TEST_CASE("dnnl_memory wraps the buffer without copying") {
  const auto& eng = runtime::Engine::get().engine;
  Tensor t(Shape{2, 3, 4, 5});
  dnnl::memory m = t.dnnl_memory(eng);
  CHECK(m.get_data_handle() == static_cast<void*>(t.data()));
  CHECK(m.get_desc() == t.plain_desc());
  CHECK(m.get_desc().dims() == dnnl::memory::dims{2, 3, 4, 5});
  CHECK(m.get_desc().get_size() == t.numel() * sizeof(float));
  // Writes through the memory are the tensor's values.
  static_cast<float*>(m.get_data_handle())[7] = 3.f;
  CHECK(t[7] == 3.f);
  // A view with other dims over the same buffer.
  dnnl::memory m2 = t.dnnl_memory(eng, t.plain_desc({6, 20}));
  CHECK(m2.get_data_handle() == static_cast<void*>(t.data()));
  CHECK_THROWS_AS(t.dnnl_memory(eng, t.plain_desc({6, 40})), std::invalid_argument);
  CHECK(runtime::plain_tag(4) == dnnl::memory::format_tag::abcd);
  // A const tensor wraps the same buffer for oneDNN to read.
  const Tensor& ct = t;
  CHECK(ct.dnnl_read_memory(eng).get_data_handle() == static_cast<void*>(t.data()));
  CHECK(ct.dnnl_read_memory(eng).get_desc() == t.desc());
  CHECK_THROWS_AS(ct.dnnl_read_memory(eng, t.plain_desc({6, 40})), std::invalid_argument);
}

namespace {
template <class T>
concept writable_memory = requires(T& t, const dnnl::engine& e) { t.dnnl_memory(e); };
}  // namespace

// A const tensor hands out no writable access to its buffer.
static_assert(writable_memory<Tensor> && !writable_memory<const Tensor>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().data()), const float*>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>().span()), std::span<const float>>);
static_assert(std::is_same_v<decltype(std::declval<const Tensor&>()[0]), float>);

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
