// tests/nodes/nn/test_timestep_embedding.cpp — nn.timestep_embedding: the DDPM sinusoid formula, shape
// errors, and the unet-small golden values.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::Shape;
using noiseflow::test::shape_error_field;

TEST_CASE("nn.timestep_embedding follows the DDPM formula") {
  Tensor t({5}, {0.f, 1.f, 7.f, 42.f, 999.f});
  for (int64_t dim : {4, 32, 128}) {
    NodeHarness h("nn.timestep_embedding", {{"dim", dim}}, {{"t", t}});
    REQUIRE(h.output().shape() == Shape{5, dim});
    h.forward();
    const int64_t half = dim / 2;
    for (int64_t n = 0; n < 5; ++n)
      for (int64_t i = 0; i < half; ++i) {
        const double f = std::exp(-std::log(10000.0) * double(i) / double(half - 1));
        // float32 rounding of t*f (as the PyTorch reference) costs up to ~t * 6e-8 in the angle
        const double tol = 1e-6 + 1.2e-7 * t[n];
        CHECK(std::fabs(h.output()[n * dim + i] - std::sin(t[n] * f)) < tol);
        CHECK(std::fabs(h.output()[n * dim + half + i] - std::cos(t[n] * f)) < tol);
      }
    CHECK(!h.ctx().schema().is_differentiable());
  }
  NodeHarness h("nn.timestep_embedding", {{"dim", 6}, {"max_period", 100.0}}, {{"t", Tensor({1}, {3.f})}});
  h.forward();
  for (int i = 0; i < 3; ++i) CHECK(h.output()[i] == doctest::Approx(std::sin(3.0 * std::pow(100.0, -i / 2.0))).epsilon(1e-6));
  CHECK(shape_error_field("nn.timestep_embedding", {{"dim", 7}}, {{"t", Tensor({3})}}) == "dim");
  CHECK(shape_error_field("nn.timestep_embedding", {{"dim", 8}}, {{"t", Tensor({3, 2})}}) == "t");
}

TEST_CASE("nn.timestep_embedding matches the unet-small golden values (dim 32, t = 999)") {
  std::ifstream f(NOISEFLOW_SOURCE_DIR "/../shared/golden_unet_small.json");
  if (!f) {
    MESSAGE("shared/golden_unet_small.json not found: skipped");
    return;
  }
  auto golden = nlohmann::json::parse(f);
  auto first4 = golden.at("temb_sinusoid_t999_first4").get<std::vector<double>>();
  auto last4 = golden.at("temb_sinusoid_t999_last4").get<std::vector<double>>();
  NodeHarness h("nn.timestep_embedding", {{"dim", 32}}, {{"t", Tensor({1}, {999.f})}});
  h.forward();
  for (int i = 0; i < 4; ++i) {
    CHECK(std::fabs(h.output()[i] - first4[i]) < 1e-5);
    CHECK(std::fabs(h.output()[28 + i] - last4[i]) < 1e-5);
  }
}
