// tests/nodes/loss/test_pseudo_huber.cpp — loss.pseudo_huber: the closed form per sample with weights, its
// limits (a scaled MSE near 0, the L2 norm at c = 0), iCT's default c, and its gradient case.
#include <doctest/doctest.h>

#include <cmath>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

NOISEFLOW_GRAD_CASE("pseudo_huber c=0.3", "loss.pseudo_huber", R"({"c": 0.3})", {"pred", {3, 2, 4}}, {"target", {3, 2, 4}});
NOISEFLOW_GRAD_CASE("pseudo_huber weighted, default c", "loss.pseudo_huber", "{}", {"pred", {3, 5}}, {"target", {3, 5}}, {"weights", {3}});
NOISEFLOW_GRAD_CASE("pseudo_huber c=0 (L2 norm)", "loss.pseudo_huber", R"({"c": 0.0})", {"pred", {2, 6}}, {"target", {2, 6}});

TEST_CASE("loss.pseudo_huber: mean over samples of w_n (sqrt(||d_n||^2 + c^2) - c)") {
  const Tensor p({2, 2}, {1.f, 2.f, 0.f, 0.f}), t({2, 2}, {0.f, 0.f, 3.f, 4.f}), w({2}, {2.f, 0.5f});
  NodeHarness h("loss.pseudo_huber", {{"c", 1.0}}, {{"pred", p}, {"target", t}, {"weights", w}});
  h.forward();
  const double want = (2.0 * (std::sqrt(5.0 + 1.0) - 1.0) + 0.5 * (std::sqrt(25.0 + 1.0) - 1.0)) / 2.0;
  CHECK(h.output("loss")[0] == doctest::Approx(want).epsilon(1e-6));
  // c = 0: the L2 norm per sample.
  NodeHarness l2("loss.pseudo_huber", {{"c", 0.0}}, {{"pred", p}, {"target", t}});
  l2.forward();
  CHECK(l2.output("loss")[0] == doctest::Approx((std::sqrt(5.0) + 5.0) / 2.0).epsilon(1e-6));
  // Small differences: ||d||^2 / (2c), an MSE scaled by elements / (2c).
  const Tensor q({1, 2}, {1e-3f, -2e-3f}), z({1, 2}, {0.f, 0.f});
  NodeHarness small("loss.pseudo_huber", {{"c", 1.0}}, {{"pred", q}, {"target", z}});
  small.forward();
  CHECK(small.output("loss")[0] == doctest::Approx(5e-6 / 2.0).epsilon(1e-3));
  // c < 0: iCT's 0.00054 sqrt(d), d = 784 for a digit: c = 0.01512.
  Tensor a2({1, 784}), b({1, 784});
  a2.zero(), b.zero();
  a2[0] = 1.f;
  NodeHarness ict("loss.pseudo_huber", {}, {{"pred", a2}, {"target", b}});
  ict.forward();
  const double c = 0.00054 * 28.0;
  CHECK(ict.output("loss")[0] == doctest::Approx(std::sqrt(1.0 + c * c) - c).epsilon(1e-6));
}

TEST_CASE("loss.pseudo_huber: gradients by central differences at fixed inputs") {
  const Tensor p = UniformTensors{0x4b}({3, 4}, 1), t = UniformTensors{0x4b}({3, 4}, 2), w({3}, {1.f, 0.5f, 2.f});
  NodeHarness h("loss.pseudo_huber", {{"c", 0.2}}, {{"pred", p}, {"target", t}, {"weights", w}});
  const Tensor r({1}, {1.f});
  CHECK(fd_error(h, "pred", "loss", r, 1e-3) < 1e-2);
  CHECK(fd_error(h, "target", "loss", r, 1e-3) < 1e-2);
}
