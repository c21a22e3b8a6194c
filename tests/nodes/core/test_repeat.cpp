// tests/nodes/core/test_repeat.cpp — tensor.repeat: tile and interleave along dimension 0, attribute
// errors, its gradient (the sum over the copies) by central differences, and its gradient cases.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

constexpr UniformTensors uniform{0x7e50};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("tensor.repeat tile x3", "tensor.repeat", R"({"times": 3})", {"x", {2, 3, 2}});
NOISEFLOW_GRAD_CASE("tensor.repeat interleave x2", "tensor.repeat", R"({"times": 2, "mode": "interleave"})",
                    {"x", {3, 1, 4}});

TEST_CASE("tensor.repeat tile and interleave along dimension 0") {
  // x[n, j] = 10 n + j, N = 3 rows of 2.
  Tensor x({3, 2}, {0, 1, 10, 11, 20, 21});
  NodeHarness tile("tensor.repeat", {{"times", 2}}, {{"x", x}});
  tile.forward();
  CHECK(tile.output("y").shape() == Shape{6, 2});
  CHECK(tile.output("y").to_vector() == std::vector<float>{0, 1, 10, 11, 20, 21, 0, 1, 10, 11, 20, 21});

  NodeHarness inter("tensor.repeat", {{"times", 2}, {"mode", "interleave"}}, {{"x", x}});
  inter.forward();
  CHECK(inter.output("y").to_vector() == std::vector<float>{0, 1, 0, 1, 10, 11, 10, 11, 20, 21, 20, 21});

  // General rule: row r of y is x[r mod N] (tile) or x[r / times] (interleave).
  Tensor big = uniform({4, 3, 5}, 1);
  for (std::string mode : {"tile", "interleave"}) {
    CAPTURE(mode);
    NodeHarness h("tensor.repeat", {{"times", 3}, {"mode", mode}}, {{"x", big}});
    h.forward();
    const Tensor& y = h.output("y");
    REQUIRE(y.shape() == Shape{12, 3, 5});
    bool ok = true;
    for (int64_t r = 0; r < 12; ++r) {
      const int64_t src = mode == "tile" ? r % 4 : r / 3;
      for (int64_t j = 0; j < 15; ++j) ok = ok && y[r * 15 + j] == big[src * 15 + j];
    }
    CHECK(ok);
  }

  NodeHarness once("tensor.repeat", {{"times", 1}}, {{"x", big}});
  once.forward();
  CHECK(same_bytes(once.output("y"), big));
  CHECK(shape_error_field("tensor.repeat", {{"times", 0}}, {{"x", big}}) == "times");
  CHECK(shape_error_field("tensor.repeat", {{"times", 2}, {"mode", "stack"}}, {{"x", big}}) == "mode");
}

TEST_CASE("tensor.repeat gradient sums the copies (central differences, overwrite)") {
  Tensor x = uniform({3, 2, 2}, 2);
  for (std::string mode : {"tile", "interleave"}) {
    CAPTURE(mode);
    NodeHarness h("tensor.repeat", {{"times", 4}, {"mode", mode}}, {{"x", x}});
    const Tensor r = uniform({12, 2, 2}, 3);
    CHECK(fd_error(h, "x", "y", r) < 1e-3);
    // Closed form: dL/dx[n] = sum over the copies of r.
    h.backward({{"y", r}});
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < 4; ++j) {
        double s = 0;
        for (int64_t k = 0; k < 4; ++k) s += r[(mode == "tile" ? k * 3 + n : n * 4 + k) * 4 + j];
        CHECK(h.grad_input("x")[n * 4 + j] == doctest::Approx(s).epsilon(1e-6));
      }
    const auto g = h.grad_input("x").to_vector();
    h.grad_input("x").fill(99.f);
    h.node().backward(h.ctx());
    CHECK(h.grad_input("x").to_vector() == g);
  }
}
