// tests/nodes/nn/test_linear.cpp — nn.linear: forward against x W^T + b, a shape error, and its gradient
// cases. (Its initialisation: test_layer_init.cpp.)
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::Shape;

constexpr UniformTensors uniform{12345};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("linear 3x5->4", "nn.linear", R"({"out_features": 4})", {"x", {3, 5}});
NOISEFLOW_GRAD_CASE("linear batch 1", "nn.linear", R"({"out_features": 7})", {"x", {1, 6}});
NOISEFLOW_GRAD_CASE("linear no bias", "nn.linear", R"({"out_features": 3, "bias": false})", {"x", {2, 32}});

TEST_CASE("nn.linear forward matches x W^T + b") {
  for (bool bias : {true, false})
    for (Shape xs : {Shape{1, 32}, Shape{3, 5}, Shape{64, 128}}) {
      const int64_t out = xs[1] == 5 ? 7 : 128;
      CAPTURE(bias);
      CAPTURE(noiseflow::graph::shape_str(xs));
      Tensor x = uniform(xs, 7);
      NodeHarness h("nn.linear", {{"out_features", out}, {"bias", bias}}, {{"x", x}});
      REQUIRE(h.output().shape() == Shape{xs[0], out});
      h.forward();
      const Tensor& w = h.param("weight").value;
      std::vector<double> ref(size_t(xs[0] * out));
      for (int64_t n = 0; n < xs[0]; ++n)
        for (int64_t o = 0; o < out; ++o) {
          double s = bias ? h.param("bias").value[o] : 0.0;
          for (int64_t i = 0; i < xs[1]; ++i) s += double(x[n * xs[1] + i]) * w[o * xs[1] + i];
          ref[size_t(n * out + o)] = s;
        }
      CHECK(rel_diff(h.output(), ref) < 1e-5);
    }
  CHECK(shape_error_field("nn.linear", {{"out_features", 4}}, {{"x", Tensor({2, 3, 4})}}) == "x");
}
