#include <doctest/doctest.h>

#include <cmath>

#include "runtime/harness.hpp"

using namespace noiseflow::runtime;

TEST_CASE("nn.silu forward matches x*sigmoid(x)") {
  Tensor x({2, 3}, {-3.f, -1.f, 0.f, 0.5f, 2.f, 7.f});
  NodeHarness h("nn.silu", {}, {{"x", x}});
  h.forward();
  for (int i = 0; i < 6; ++i) CHECK(h.output()[i] == doctest::Approx(x[i] / (1 + std::exp(-x[i]))).epsilon(1e-5));
}
