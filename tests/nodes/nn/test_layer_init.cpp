// tests/nodes/nn/test_layer_init.cpp — the weight and bias initialisation nn.conv2d and nn.linear share:
// PyTorch's bounds, deterministic per seed, and zero_init.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::Shape;

TEST_CASE("conv2d and linear initialise like PyTorch, deterministically") {
  struct Case {
    std::string op;
    nlohmann::json attrs;
    Shape x;
    int64_t fan_in;
  };
  for (const Case& c : std::vector<Case>{{"nn.conv2d", {{"out_channels", 64}}, {1, 32, 5, 5}, 32 * 9},
                                         {"nn.conv2d", {{"out_channels", 32}, {"kernel", 1}}, {1, 3, 4, 4}, 3},
                                         {"nn.linear", {{"out_features", 128}}, {2, 32}, 32}}) {
    CAPTURE(c.op);
    CAPTURE(c.attrs.dump());
    const Tensor x(c.x);
    NodeHarness h(c.op, c.attrs, {{"x", x}}, 7), same(c.op, c.attrs, {{"x", x}}, 7), other(c.op, c.attrs, {{"x", x}}, 8);
    const double bound = 1.0 / std::sqrt(double(c.fan_in));
    for (const char* name : {"weight", "bias"}) {
      CAPTURE(name);
      const Tensor& v = h.param(name).value;
      double lo = 1e9, hi = -1e9, mean = 0;
      for (int64_t i = 0; i < v.numel(); ++i) {
        lo = std::min(lo, double(v[i]));
        hi = std::max(hi, double(v[i]));
        mean += v[i];
      }
      mean /= double(v.numel());
      CHECK(lo >= -bound);
      CHECK(hi <= bound);
      CHECK(hi > lo);  // not all equal
      // Uniform over the whole range: the extremes come near the bounds, the mean near 0.
      CHECK(hi - lo > (v.numel() >= 256 ? 1.9 : v.numel() >= 32 ? 1.5 : 1.0) * bound);
      CHECK(std::fabs(mean) < 4 * bound / std::sqrt(3.0 * double(v.numel())) + 1e-6);
      CHECK(v.to_vector() == same.param(name).value.to_vector());
      CHECK(v.to_vector() != other.param(name).value.to_vector());
    }
    const Shape ws = h.param("weight").value.shape();
    CHECK(ws[0] == h.output().dim(1));
    CHECK(noiseflow::graph::numel(ws) / ws[0] == c.fan_in);

    auto zattrs = c.attrs;
    zattrs["zero_init"] = true;
    NodeHarness z(c.op, zattrs, {{"x", x}}, 7);
    for (const char* name : {"weight", "bias"})
      for (float v : z.param(name).value.to_vector()) CHECK(v == 0.f);
    z.forward();
    for (float v : z.output().to_vector()) CHECK(v == 0.f);  // zero-initialised layers output exactly 0
  }
}
