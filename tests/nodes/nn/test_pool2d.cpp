// tests/nodes/nn/test_pool2d.cpp — nn.pool2d: max and average pooling against loops, the backward routing
// to the argmax / spreading over the window, shape errors; gradients by central differences.
#include <doctest/doctest.h>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"

using namespace noiseflow;
using graph::Json;
using runtime::NodeHarness;
using runtime::Tensor;

NOISEFLOW_GRAD_CASE("pool2d avg 2x2", "nn.pool2d", R"({"mode": "avg"})", {"x", {2, 3, 4, 6}});
NOISEFLOW_GRAD_CASE("pool2d avg 3x3 stride 2 padding 1", "nn.pool2d",
                    R"({"mode": "avg", "kernel": 3, "stride": 2, "padding": 1})", {"x", {1, 2, 5, 5}});
// Max pooling is piecewise linear: a central difference whose step moves a window's argmax is wrong, so the
// max cases take a step (1e-3) far below the typical gap between a window's values.
static const bool pool_max_cases = [] {
  for (auto [name, shape] : {std::pair{"pool2d max 2x2", graph::Shape{2, 3, 4, 6}},
                             std::pair{"pool2d max 16 channels", graph::Shape{1, 16, 4, 4}}}) {
    noiseflow::testing::GradCase c;
    c.name = name;
    c.op = "nn.pool2d";
    c.attrs = graph::Json::object();
    c.inputs = {{"x", shape}};
    c.step = 1e-3;
    noiseflow::testing::register_grad_case(c);
  }
  return true;
}();

namespace {
Tensor ramp(const graph::Shape& s) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = float((i * 37) % 101) / 10.f;  // distinct-ish values
  return t;
}
}  // namespace

TEST_CASE("nn.pool2d max: each output is its window's largest value, backward routes to the argmax") {
  const Tensor x = ramp({2, 3, 4, 6});
  NodeHarness h("nn.pool2d", {}, {{"x", x}});
  h.forward();
  const Tensor& y = h.output();
  REQUIRE(y.shape() == graph::Shape{2, 3, 2, 3});
  Tensor g(y.shape());
  for (int64_t i = 0; i < g.numel(); ++i) g[i] = float(i + 1);
  h.backward({{"y", g}});
  Tensor want_dx(x.shape());
  for (int64_t nc = 0; nc < 6; ++nc)
    for (int64_t oh = 0; oh < 2; ++oh)
      for (int64_t ow = 0; ow < 3; ++ow) {
        int64_t best = -1;
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 2; ++j) {
            const int64_t at = (nc * 4 + oh * 2 + i) * 6 + ow * 2 + j;
            if (best < 0 || x[at] > x[best]) best = at;
          }
        const int64_t o = (nc * 2 + oh) * 3 + ow;
        CHECK(y[o] == x[best]);
        want_dx[best] += g[o];
      }
  CHECK(h.grad_input("x").to_vector() == want_dx.to_vector());
}

TEST_CASE("nn.pool2d avg: padding is not counted, backward spreads the gradient over the window") {
  const Tensor x = ramp({1, 1, 3, 3});
  NodeHarness h("nn.pool2d", {{"mode", "avg"}, {"kernel", 2}, {"stride", 1}, {"padding", 1}}, {{"x", x}});
  h.forward();
  const Tensor& y = h.output();
  REQUIRE(y.shape() == graph::Shape{1, 1, 4, 4});
  // The corner output sees x[0, 0] alone; an edge one two values; an inner one four.
  CHECK(y[0] == doctest::Approx(x[0]));
  CHECK(y[1] == doctest::Approx((x[0] + x[1]) / 2));
  CHECK(y[5] == doctest::Approx((x[0] + x[1] + x[3] + x[4]) / 4));
  Tensor g(y.shape());
  g.fill(1.f);
  h.backward({{"y", g}});
  // x[0, 0] is in 4 windows: the corner (1 value), two edges (2 each) and one inner (4).
  CHECK(h.grad_input("x")[0] == doctest::Approx(1.0 + 0.5 + 0.5 + 0.25));
}

TEST_CASE("nn.pool2d: shape errors name the attribute or input") {
  auto field = [](const Json& attrs, const graph::Shape& x) {
    try {
      NodeHarness h("nn.pool2d", attrs, {{"x", Tensor(x)}});
    } catch (const graph::ShapeError& e) {
      return e.field;
    }
    return std::string("no error");
  };
  CHECK(field({{"kernel", 2}, {"padding", 2}}, {1, 1, 4, 4}) == "padding");
  CHECK(field({{"kernel", 5}}, {1, 1, 4, 4}) == "x");
  CHECK(field({}, {1, 4, 4}) == "x");
  CHECK(field({{"mode", "min"}}, {1, 1, 4, 4}) == "mode");
}
