// tests/nodes/core/test_scale.cpp — tensor.scale: y = a x + b, its gradient by central differences and in
// closed form, and its gradient case.
#include <doctest/doctest.h>

#include <cstdint>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

constexpr UniformTensors uniform{0x7e50};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("tensor.scale a=-1.5 b=0.3", "tensor.scale", R"({"a": -1.5, "b": 0.3})", {"x", {2, 5}});

TEST_CASE("tensor.scale y = a x + b and its gradient") {
  Tensor x = uniform({2, 3, 4}, 4);
  NodeHarness h("tensor.scale", {{"a", 2.0}, {"b", -1.0}}, {{"x", x}});
  h.forward();
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(h.output("y")[i] == doctest::Approx(2.0 * x[i] - 1.0).epsilon(1e-6));
  const Tensor r = uniform({2, 3, 4}, 5);
  CHECK(fd_error(h, "x", "y", r) < 1e-3);
  h.backward({{"y", r}});
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(h.grad_input("x")[i] == doctest::Approx(2.0 * r[i]).epsilon(1e-6));
  h.grad_input("x").fill(99.f);
  h.node().backward(h.ctx());
  CHECK(h.grad_input("x")[0] == doctest::Approx(2.0 * r[0]).epsilon(1e-6));

  NodeHarness id("tensor.scale", {}, {{"x", x}});
  id.forward();
  CHECK(same_bytes(id.output("y"), x));
  NodeHarness zero("tensor.scale", {{"a", 0.0}, {"b", 0.5}}, {{"x", x}});
  CHECK(fd_error(zero, "x", "y", r) < 1e-3);
}
