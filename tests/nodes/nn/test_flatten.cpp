// tests/nodes/nn/test_flatten.cpp — nn.flatten keeps row-major order both ways; finite differences.
#include <doctest/doctest.h>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"

using namespace noiseflow;
using runtime::NodeHarness;
using runtime::Tensor;

NOISEFLOW_GRAD_CASE("flatten 2x3x2x2", "nn.flatten", "{}", {"x", {2, 3, 2, 2}});

TEST_CASE("nn.flatten: [N, C, H, W] -> [N, C*H*W] in row-major order, gradient copied back") {
  Tensor x({2, 3, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
  NodeHarness h("nn.flatten", {}, {{"x", x}});
  h.forward();
  REQUIRE(h.output().shape() == graph::Shape{2, 12});
  CHECK(h.output().to_vector() == x.to_vector());
  Tensor g({2, 12});
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = float(2 * i);
  h.backward({{"y", g}});
  CHECK(h.grad_input("x").shape() == x.shape());
  CHECK(h.grad_input("x").to_vector() == g.to_vector());
  CHECK_THROWS_AS(NodeHarness("nn.flatten", {}, {{"x", Tensor({5})}}), graph::ShapeError);
}
