// tests/nodes/loss/test_cross_entropy.cpp — loss.cross_entropy against a hand computation with labels and
// with soft targets, its accuracy output, bad labels; gradients by central differences.
#include <doctest/doctest.h>

#include <cmath>

#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"

using namespace noiseflow;
using runtime::NodeHarness;
using runtime::NodeError;
using runtime::Tensor;

NOISEFLOW_GRAD_CASE("cross_entropy soft target 3x4", "loss.cross_entropy", "{}", {"logits", {3, 4}},
                    {"target", {3, 4}});
NOISEFLOW_GRAD_CASE("cross_entropy soft target 1x10", "loss.cross_entropy", "{}", {"logits", {1, 10}},
                    {"target", {1, 10}});

TEST_CASE("loss.cross_entropy with labels: -mean log softmax, accuracy, and (p - onehot) / N") {
  const Tensor z({2, 3}, {1.f, 2.f, 0.5f, -1.f, 0.f, 3.f});
  const Tensor labels({2}, {1.f, 0.f});  // row 0 right (argmax 1), row 1 wrong (argmax 2)
  NodeHarness h("loss.cross_entropy", {}, {{"logits", z}, {"labels", labels}});
  h.forward();
  auto logsumexp = [&](int n) {
    double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(double(z[n * 3 + j]));
    return std::log(s);
  };
  const double want = ((logsumexp(0) - 2.0) + (logsumexp(1) - -1.0)) / 2;
  CHECK(h.output("loss")[0] == doctest::Approx(want).epsilon(1e-6));
  CHECK(h.output("accuracy")[0] == 0.5f);
  h.backward({{"loss", Tensor({1}, {1.f})}});
  for (int n = 0; n < 2; ++n)
    for (int j = 0; j < 3; ++j) {
      const double p = std::exp(double(z[n * 3 + j]) - logsumexp(n));
      const double onehot = j == int(labels[n]) ? 1.0 : 0.0;
      CHECK(h.grad_input("logits")[n * 3 + j] == doctest::Approx((p - onehot) / 2).epsilon(1e-6));
    }
}

TEST_CASE("loss.cross_entropy: one-hot targets give what labels give") {
  const Tensor z({3, 4}, {0.1f, 0.2f, -0.3f, 1.f, 2.f, -1.f, 0.f, 0.5f, -0.2f, 0.3f, 0.9f, -0.4f});
  const Tensor labels({3}, {3.f, 1.f, 2.f});
  Tensor onehot({3, 4});
  for (int n = 0; n < 3; ++n) onehot[n * 4 + int(labels[n])] = 1.f;
  NodeHarness a("loss.cross_entropy", {}, {{"logits", z}, {"labels", labels}});
  NodeHarness b("loss.cross_entropy", {}, {{"logits", z}, {"target", onehot}});
  a.forward();
  b.forward();
  CHECK(a.output("loss")[0] == doctest::Approx(b.output("loss")[0]).epsilon(1e-6));
  CHECK(a.output("accuracy")[0] == b.output("accuracy")[0]);
  CHECK(a.output("accuracy")[0] == doctest::Approx(2.0 / 3));  // rows 0 and 2 right
}

TEST_CASE("loss.cross_entropy: a label that is not a class index is a clear error") {
  const Tensor z({2, 3});
  for (float bad : {3.f, -1.f, 0.5f}) {
    CAPTURE(bad);
    NodeHarness h("loss.cross_entropy", {}, {{"logits", z}, {"labels", Tensor({2}, {0.f, bad})}});
    try {
      h.forward();
      FAIL("no error");
    } catch (const NodeError& e) {
      CHECK(e.field == "labels");
      CHECK(std::string(e.what()).find("of row 1 is not a class index in [0, 3)") != std::string::npos);
    }
  }
  auto field = [](const runtime::NamedTensors& in) {
    try {
      NodeHarness h("loss.cross_entropy", {}, in);
    } catch (const graph::ShapeError& e) {
      return e.field;
    }
    return std::string("no error");
  };
  CHECK(field({{"logits", Tensor({2, 3})}}) == "labels");  // neither
  CHECK(field({{"logits", Tensor({2, 3})}, {"labels", Tensor({2})}, {"target", Tensor({2, 3})}}) == "labels");
  CHECK(field({{"logits", Tensor({2, 3})}, {"labels", Tensor({3})}}) == "labels");
  CHECK(field({{"logits", Tensor({2, 3})}, {"target", Tensor({2, 4})}}) == "target");
  CHECK(field({{"logits", Tensor({2, 1})}, {"labels", Tensor({2})}}) == "logits");
}
