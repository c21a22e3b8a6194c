// tests/nodes/nn/test_class_embedding.cpp — nn.class_embedding: the rows it picks (the null class included),
// its weight gradient against central differences, and the errors for labels that are no class.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("nn.class_embedding: y[n] = weight[label n], the null class is the last row") {
  const Tensor labels({5}, {3.f, 0.f, 3.f, 10.f, 9.f});
  NodeHarness h("nn.class_embedding", {{"num_classes", 10}, {"dim", 6}}, {{"labels", labels}});
  const Tensor& w = h.param("weight").value;
  REQUIRE(w.shape() == noiseflow::graph::Shape{11, 6});
  h.forward();
  const Tensor& y = h.output();
  REQUIRE(y.shape() == noiseflow::graph::Shape{5, 6});
  for (int64_t n = 0; n < 5; ++n)
    for (int64_t j = 0; j < 6; ++j) CHECK(y[n * 6 + j] == w[int64_t(labels[n]) * 6 + j]);
  // The initial vectors are N(0, 1) (PyTorch's nn.Embedding): mean near 0, sd near 1 over 66 values.
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s += w[i], s2 += double(w[i]) * w[i];
  const double m = s / double(w.numel()), sd = std::sqrt(s2 / double(w.numel()) - m * m);
  CHECK(std::abs(m) < 0.4);
  CHECK(sd > 0.7);
  CHECK(sd < 1.3);
}

TEST_CASE("nn.class_embedding: the weight gradient matches central differences") {
  const Tensor labels({6}, {1.f, 4.f, 1.f, 0.f, 4.f, 4.f});  // rows 1 and 4 used more than once, 2 and 3 never
  NodeHarness h("nn.class_embedding", {{"num_classes", 4}, {"dim", 3}}, {{"labels", labels}});
  const Tensor r = UniformTensors{77}({6, 3}, 0);
  h.forward();
  h.backward({{"y", r}});
  const Tensor analytic = h.param("weight").grad.clone();
  Tensor& w = h.param("weight").value;
  double worst = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float w0 = w[i];
    w[i] = w0 + 1e-2f;
    h.forward();
    const double lp = project(r, h.output());
    w[i] = w0 - 1e-2f;
    h.forward();
    const double lm = project(r, h.output());
    w[i] = w0;
    worst = std::max(worst, std::abs((lp - lm) / 2e-2 - analytic[i]));
  }
  CHECK(worst < 1e-3);
  // Rows 2 and 3 got no gradient; row 4 the sum of three.
  for (int64_t j = 0; j < 3; ++j) {
    CHECK(analytic[2 * 3 + j] == 0.f);
    CHECK(analytic[3 * 3 + j] == 0.f);
    CHECK(analytic[4 * 3 + j] == doctest::Approx(r[1 * 3 + j] + r[4 * 3 + j] + r[5 * 3 + j]));
  }
}

TEST_CASE("nn.class_embedding: a label that is no class is an error naming the sample") {
  for (float bad : {11.f, -1.f, 2.5f, std::nanf("")}) {
    NodeHarness h("nn.class_embedding", {{"num_classes", 10}, {"dim", 4}}, {{"labels", Tensor({3}, {1.f, bad, 2.f})}});
    try {
      h.forward();
      FAIL("no error for label " << bad);
    } catch (const NodeError& e) {
      CHECK(e.field == "labels");
      CHECK(std::string(e.what()).find("sample 1 has label") == 0);
      CHECK(std::string(e.what()).find("expected an integer in 0 .. 10 (10: the null class)") != std::string::npos);
    }
  }
  CHECK(shape_error_field("nn.class_embedding", {{"num_classes", 10}, {"dim", 4}}, {{"labels", Tensor({3, 2})}}) ==
        "labels");
}
