// tests/nodes/nn/test_silu.cpp — nn.silu: y = x * sigmoid(x), the same on nChw16c as on plain tensors,
// and its gradient cases.
#include <doctest/doctest.h>

#include <cmath>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::shape_str;

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("silu 2x3", "nn.silu", "{}", {"x", {2, 3}});
NOISEFLOW_GRAD_CASE("silu 3x5x7", "nn.silu", "{}", {"x", {1, 3, 5, 7}});

TEST_CASE("nn.silu forward matches x*sigmoid(x)") {
  Tensor x({2, 3}, {-3.f, -1.f, 0.f, 0.5f, 2.f, 7.f});
  NodeHarness h("nn.silu", {}, {{"x", x}});
  h.forward();
  for (int i = 0; i < 6; ++i) CHECK(h.output()[i] == doctest::Approx(x[i] / (1 + std::exp(-x[i]))).epsilon(1e-5));
}

TEST_CASE("nn.silu on nChw16c matches plain") {
  for (const Shape& s : {Shape{2, 32, 6, 5}, Shape{2, 64, 4, 4}}) {
    CAPTURE(shape_str(s));
    CHECK(check_layouts_agree("nn.silu", {}, {{"x", random_tensor(s, 1, -4.f, 4.f)}}) == 2);
  }
}
