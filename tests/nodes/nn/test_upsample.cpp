// tests/nodes/nn/test_upsample.cpp — nn.upsample: forward and backward against naive nearest neighbour, a
// shape error, nChw16c against plain, and its gradient cases.
#include <doctest/doctest.h>

#include <cstdint>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::shape_str;

constexpr UniformTensors uniform{0x5eed};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("upsample x2 5x7", "nn.upsample", "{}", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("upsample x3 batch 2", "nn.upsample", R"({"scale": 3})", {"x", {2, 2, 3, 4}});
NOISEFLOW_GRAD_CASE("upsample x1", "nn.upsample", R"({"scale": 1})", {"x", {2, 3, 2, 2}});

TEST_CASE("nn.upsample forward and backward match naive nearest neighbour") {
  struct Case {
    Shape x;
    int scale;
  };
  for (auto cs : {Case{{1, 6, 5, 7}, 2}, Case{{3, 2, 5, 7}, 3}, Case{{2, 3, 1, 1}, 4}, Case{{2, 3, 4, 5}, 1}}) {
    CAPTURE(cs.scale);
    Tensor x = uniform(cs.x, 7);
    NodeHarness h("nn.upsample", {{"scale", cs.scale}}, {{"x", x}});
    h.forward();
    const int64_t N = cs.x[0], C = cs.x[1], H = cs.x[2], W = cs.x[3], s = cs.scale;
    Tensor& y = h.output();
    REQUIRE(y.shape() == Shape{N, C, H * s, W * s});
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < H * s; ++i)
          for (int64_t j = 0; j < W * s; ++j)
            REQUIRE(y[((n * C + c) * H * s + i) * W * s + j] == x[((n * C + c) * H + i / s) * W + j / s]);

    Tensor dy = uniform(y.shape(), 8);
    h.backward({{"y", dy}});
    const Tensor& dx = h.grad_input("x");
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < H; ++i)
          for (int64_t j = 0; j < W; ++j) {
            double ref = 0;
            for (int64_t a = 0; a < s; ++a)
              for (int64_t b = 0; b < s; ++b) ref += dy[((n * C + c) * H * s + i * s + a) * W * s + j * s + b];
            REQUIRE(dx[((n * C + c) * H + i) * W + j] == doctest::Approx(ref).epsilon(1e-5));
          }
  }
}

TEST_CASE("nn.upsample rejects non-image inputs") {
  try {
    NodeHarness h("nn.upsample", {}, {{"x", Tensor({2, 3, 4})}});
    FAIL("no error");
  } catch (const noiseflow::graph::ShapeError& e) {
    CHECK(e.field == "x");
  }
}

TEST_CASE("nn.upsample on nChw16c matches plain") {
  struct Case {
    Shape x;
    int64_t scale;
  };
  for (const Case& c : std::vector<Case>{{{2, 32, 6, 5}, 2}, {{2, 16, 3, 4}, 3}, {{1, 64, 4, 4}, 1}}) {
    CAPTURE(shape_str(c.x));
    CAPTURE(c.scale);
    CHECK(check_layouts_agree("nn.upsample", {{"scale", c.scale}}, {{"x", random_tensor(c.x, 1)}}) == 2);
  }
}
