// tests/nodes/nn/test_conv2d.cpp — nn.conv2d: forward against a naive convolution, shape errors, and its
// gradient cases. (Its initialisation: test_layer_init.cpp.)
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::Shape;

namespace {

constexpr UniformTensors uniform{12345};  // this suite's inputs, under its own key

std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t stride, int64_t pad,
                               const Shape& y_shape) {
  const int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t cout = w.dim(0), k = w.dim(2), ho = y_shape[2], wo = y_shape[3];
  std::vector<double> y(size_t(n * cout * ho * wo));
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < cin; ++c)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += double(x[((in * cin + c) * h + iy) * wd + ix]) * w[((o * cin + c) * k + ky) * k + kx];
              }
          y[size_t(((in * cout + o) * ho + oy) * wo + ox)] = s;
        }
  return y;
}

}  // namespace

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("conv2d 3x3 Cin=3 5x7", "nn.conv2d", R"({"out_channels": 4})", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d 3x3 batch 3", "nn.conv2d", R"({"out_channels": 2})", {"x", {3, 2, 4, 5}});
NOISEFLOW_GRAD_CASE("conv2d stride 2", "nn.conv2d", R"({"out_channels": 3, "stride": 2})", {"x", {2, 3, 7, 6}});
NOISEFLOW_GRAD_CASE("conv2d 1x1", "nn.conv2d", R"({"out_channels": 5, "kernel": 1})", {"x", {2, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d no bias", "nn.conv2d", R"({"out_channels": 4, "bias": false})", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d 5x5 no padding", "nn.conv2d", R"({"out_channels": 2, "kernel": 5, "padding": 0})",
                    {"x", {1, 2, 7, 6}});
NOISEFLOW_GRAD_CASE("conv2d 16->16 blocked", "nn.conv2d", R"({"out_channels": 16})", {"x", {2, 16, 6, 5}});
NOISEFLOW_GRAD_CASE("conv2d zero init", "nn.conv2d", R"({"out_channels": 3, "zero_init": true})",
                    {"x", {1, 2, 4, 4}});
NOISEFLOW_GRAD_CASE("conv2d add and channel_add", "nn.conv2d", R"({"out_channels": 4})", {"x", {2, 3, 5, 7}},
                    {"add", {2, 4, 5, 7}}, {"channel_add", {2, 4}});
NOISEFLOW_GRAD_CASE("conv2d noiseflow winograd 16->32", "nn.conv2d",
                    R"({"out_channels": 32, "algorithm": "winograd_noiseflow"})", {"x", {2, 16, 7, 9}});
NOISEFLOW_GRAD_CASE("conv2d noiseflow winograd add and channel_add", "nn.conv2d",
                    R"({"out_channels": 16, "algorithm": "winograd_noiseflow"})", {"x", {2, 16, 6, 5}},
                    {"add", {2, 16, 6, 5}}, {"channel_add", {2, 16}});

TEST_CASE("nn.conv2d forward matches a naive convolution") {
  struct Case {
    Shape x;
    int64_t cout, k, stride, pad;  // pad -1: default kernel / 2
    bool bias;
    Shape y;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 7}, 4, 3, 1, -1, true, {2, 4, 5, 7}},     // odd sizes, Cin = 3
      {{1, 1, 28, 28}, 8, 3, 1, -1, true, {1, 8, 28, 28}},  // the stem
      {{3, 4, 7, 6}, 5, 3, 2, -1, true, {3, 5, 4, 3}},      // stride 2
      {{2, 32, 14, 14}, 32, 3, 2, 1, true, {2, 32, 7, 7}},  // the unet downsample
      {{2, 3, 5, 7}, 6, 1, 1, -1, true, {2, 6, 5, 7}},      // 1x1
      {{1, 3, 7, 6}, 2, 5, 1, 0, true, {1, 2, 3, 2}},       // 5x5, no padding
      {{2, 16, 6, 5}, 16, 3, 1, 2, true, {2, 16, 8, 7}},    // padding 2 > kernel / 2
      {{2, 3, 5, 7}, 4, 3, 1, -1, false, {2, 4, 5, 7}},     // no bias
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const auto& c = cases[ci];
    nlohmann::json attrs{{"out_channels", c.cout}, {"kernel", c.k}, {"stride", c.stride}, {"padding", c.pad},
                         {"bias", c.bias}};
    CAPTURE(ci);
    CAPTURE(attrs.dump());
    Tensor x = uniform(c.x, ci);
    NodeHarness h("nn.conv2d", attrs, {{"x", x}});
    REQUIRE(h.output().shape() == c.y);
    h.forward();
    const int64_t pad = c.pad < 0 ? c.k / 2 : c.pad;
    Tensor* b = c.bias ? &h.param("bias").value : nullptr;
    CHECK(h.params().size() == (c.bias ? 2u : 1u));
    auto ref = naive_conv(x, h.param("weight").value, b, c.stride, pad, c.y);
    CHECK(rel_diff(h.output(), ref) < 1e-5);
    // A second tick on other values reuses the planned primitives.
    Tensor x2 = uniform(c.x, 100 + ci);
    h.set_input("x", x2);
    h.forward(1);
    CHECK(rel_diff(h.output(), naive_conv(x2, h.param("weight").value, b, c.stride, pad, c.y)) < 1e-5);
  }
}

TEST_CASE("nn.conv2d add and channel_add: y = conv(x) + b + channel_add[n, c] + add, on every kernel") {
  const Shape xs{2, 16, 9, 7}, ys{2, 32, 9, 7};
  const Tensor x = uniform(xs, 1), add = uniform(ys, 2), chan = uniform({2, 32}, 3);
  for (const char* alg : {"direct", "winograd_noiseflow", "auto"}) {
    CAPTURE(alg);
    NodeHarness h("nn.conv2d", {{"out_channels", 32}, {"algorithm", alg}},
                  {{"x", x}, {"add", add}, {"channel_add", chan}});
    h.forward();
    auto ref = naive_conv(x, h.param("weight").value, &h.param("bias").value, 1, 1, ys);
    for (int64_t i = 0; i < add.numel(); ++i) ref[size_t(i)] += add[i] + chan[i / (9 * 7)];
    CHECK(rel_diff(h.output(), ref) < 1e-5);
  }
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 32}}, {{"x", x}, {"add", Tensor({2, 16, 9, 7})}}) == "add");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 32}}, {{"x", x}, {"channel_add", Tensor({2, 16})}}) ==
        "channel_add");
}

TEST_CASE("nn.conv2d algorithm errors name the field") {
  auto plan_error = [](const Json& attrs, const Shape& x) {
    try {
      NodeHarness h("nn.conv2d", attrs, {{"x", Tensor(x)}});
    } catch (const NodeError& e) {
      return e.field + ": " + e.what();
    }
    return std::string();
  };
  CHECK(plan_error({{"out_channels", 4}, {"algorithm", "winograd_noiseflow"}}, {1, 16, 8, 8}) ==
        "algorithm: winograd_noiseflow needs input and output channels that are multiples of 16 (got 16 and 4)");
  CHECK(plan_error({{"out_channels", 16}, {"algorithm", "winograd"}, {"stride", 2}}, {1, 16, 8, 8}) ==
        "algorithm: winograd needs kernel 3, stride 1, padding 1 (got kernel 3, stride 2, padding 1)");
  CHECK(plan_error({{"out_channels", 16}, {"algorithm", "winograd_noiseflow"}}, {1, 16, 8, 8}).empty());
}

TEST_CASE("nn.conv2d shape errors name the field") {
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 4}}, {{"x", Tensor({3, 5, 7})}}) == "x");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 4}, {"kernel", 5}, {"padding", 0}},
                          {{"x", Tensor({1, 1, 3, 8})}}) == "x");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 0}}, {{"x", Tensor({1, 1, 4, 4})}}) == "out_channels");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 2}, {"kernel", 3}, {"padding", 3}},
                          {{"x", Tensor({1, 1, 4, 4})}}) == "padding");
}
