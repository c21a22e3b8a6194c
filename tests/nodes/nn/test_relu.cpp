// tests/nodes/nn/test_relu.cpp — nn.relu: forward against max(x, 0), plain and nChw16c; gradients by central
// differences.
#include <doctest/doctest.h>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"

using namespace noiseflow;
using runtime::NodeHarness;
using runtime::Tensor;

NOISEFLOW_GRAD_CASE("relu 2x3", "nn.relu", "{}", {"x", {2, 3}});
NOISEFLOW_GRAD_CASE("relu 2x16x3x5", "nn.relu", "{}", {"x", {2, 16, 3, 5}});

TEST_CASE("nn.relu: y = max(x, 0) and dy/dx = [x > 0], plain and nChw16c") {
  for (auto layout : {runtime::Layout::plain, runtime::Layout::nChw16c}) {
    Tensor x({2, 16, 2, 3});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i % 7) - 3.f;  // -3..3, zeros included
    NodeHarness h("nn.relu", {}, {{"x", x}}, 1, 1, layout);
    h.forward();
    const Tensor y = h.output().blocked() ? h.output().to_plain() : h.output();
    Tensor g(x.shape());
    for (int64_t i = 0; i < g.numel(); ++i) g[i] = float(i + 1);
    h.backward({{"y", g}});
    const Tensor dx = h.grad_input("x").blocked() ? h.grad_input("x").to_plain() : h.grad_input("x");
    for (int64_t i = 0; i < x.numel(); ++i) {
      CHECK(y[i] == std::max(x[i], 0.f));
      CHECK(dx[i] == (x[i] > 0 ? g[i] : 0.f));
    }
  }
}
