// tests/nodes/loss/test_mse.cpp — loss.mse: the (weighted) mean of squared differences, the loss it records
// in the run state, shape errors, and its gradient cases.
#include <doctest/doctest.h>

#include <cstdint>

#include "runtime/harness.hpp"
#include "runtime/run_state.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::Shape;
using noiseflow::test::shape_error_field;

constexpr noiseflow::test::UniformTensors uniform{12345};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("mse", "loss.mse", "{}", {"pred", {3, 2, 5, 7}}, {"target", {3, 2, 5, 7}});
NOISEFLOW_GRAD_CASE("mse weighted", "loss.mse", "{}", {"pred", {3, 4}}, {"target", {3, 4}}, {"weights", {3}});
NOISEFLOW_GRAD_CASE("mse batch 1", "loss.mse", "{}", {"pred", {1, 6}}, {"target", {1, 6}});

TEST_CASE("loss.mse is the (weighted) mean of squared differences and records the run's loss") {
  const Shape s{3, 2, 5, 7};
  Tensor p = uniform(s, 1), t = uniform(s, 2), w({3}, {0.5f, 2.f, 0.f});
  for (bool weighted : {false, true}) {
    CAPTURE(weighted);
    NamedTensors in{{"pred", p}, {"target", t}};
    if (weighted) in.emplace_back("weights", w);
    NodeHarness h("loss.mse", {}, in);
    REQUIRE(h.output().shape() == Shape{1});
    RunState rs;
    h.ctx().run_state_ = &rs;
    h.forward(4);
    double ref = 0;
    const int64_t per = p.numel() / 3;
    for (int64_t i = 0; i < p.numel(); ++i)
      ref += (weighted ? w[i / per] : 1.0) * (double(p[i]) - t[i]) * (double(p[i]) - t[i]);
    ref /= double(p.numel());
    CHECK(h.output()[0] == doctest::Approx(ref).epsilon(1e-6));
    double logged = -1;
    REQUIRE(rs.latest("loss", logged));
    CHECK(logged == doctest::Approx(ref).epsilon(1e-6));
  }
  CHECK(shape_error_field("loss.mse", {}, {{"pred", Tensor({2, 3})}, {"target", Tensor({3, 2})}}) == "target");
  CHECK(shape_error_field("loss.mse", {}, {{"pred", Tensor({2, 3})}, {"target", Tensor({2, 3})}, {"weights", Tensor({3})}}) ==
        "weights");
}
