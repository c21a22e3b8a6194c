// tests/nodes/eval/test_frechet_distance.cpp — eval.frechet_distance against closed forms: 0 for the
// same set; for samples = s X + b (X the reference) the covariances commute and
// FD = |mu_X (1 - s) - b|^2 + (1 - s)^2 tr(C_X); the histogram and entropy of given logits.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

TEST_CASE("eval.frechet_distance: 0 for equal sets, the closed form for a scaled and shifted copy") {
  const int64_t n = 300, d = 6;
  const runtime::Tensor X = random_tensor({n, d}, 4, -1.f, 2.f);
  // Sample mean and covariance trace of X in double.
  std::vector<double> mean(d, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[size_t(j)] += X[i * d + j] / double(n);
  double tr = 0;
  for (int64_t j = 0; j < d; ++j) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += (X[i * d + j] - mean[size_t(j)]) * (X[i * d + j] - mean[size_t(j)]);
    tr += ss / double(n - 1);
  }
  {
    runtime::NodeHarness h("eval.frechet_distance", {}, {{"features", X}, {"reference", X}});
    h.forward();
    CHECK(std::fabs(h.output("fd")[0]) < 1e-4);
  }
  const double s = 0.6;
  const std::vector<double> b = {0.5, -0.25, 0, 1, 0, 0.1};
  runtime::Tensor Y({n, d});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) Y[i * d + j] = float(s * X[i * d + j] + b[size_t(j)]);
  double shift = 0;
  for (int64_t j = 0; j < d; ++j) {
    const double dm = mean[size_t(j)] * (1 - s) - b[size_t(j)];
    shift += dm * dm;
  }
  runtime::NodeHarness h("eval.frechet_distance", {}, {{"features", Y}, {"reference", X}});
  h.forward();
  CHECK(h.output("fd")[0] == doctest::Approx(shift + (1 - s) * (1 - s) * tr).epsilon(1e-4));
  CHECK(h.output("histogram").shape() == runtime::Shape{1});
}

TEST_CASE("eval.frechet_distance: predicted-class histogram and its entropy from the logits") {
  const runtime::Tensor f = random_tensor({4, 3}, 1), r = random_tensor({5, 3}, 2);
  // argmax: 2, 0, 2, 1
  const runtime::Tensor logits({4, 3}, {0, 1, 5, 9, 1, 2, -1, -2, 0, 0, 3, 1});
  runtime::NodeHarness h("eval.frechet_distance", {}, {{"features", f}, {"reference", r}, {"logits", logits}});
  h.forward();
  CHECK(h.output("histogram")[0] == doctest::Approx(0.25));
  CHECK(h.output("histogram")[1] == doctest::Approx(0.25));
  CHECK(h.output("histogram")[2] == doctest::Approx(0.5));
  CHECK(h.output("entropy")[0] == doctest::Approx(-(0.25 * std::log(0.25) * 2 + 0.5 * std::log(0.5))));
}

TEST_CASE("eval.frechet_distance: mismatched widths and NaN features are errors naming the input") {
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("eval.frechet_distance", {},
                                            {{"features", runtime::Tensor({4, 3})}, {"reference", runtime::Tensor({4, 2})}}),
                       doctest::Contains("reference features have 2 dimensions"), graph::ShapeError);
  runtime::Tensor f = random_tensor({4, 3}, 1);
  f[5] = NAN;
  runtime::NodeHarness h("eval.frechet_distance", {}, {{"features", f}, {"reference", random_tensor({4, 3}, 2)}});
  CHECK_THROWS_WITH_AS(h.forward(), doctest::Contains("feature 5 is not finite"), runtime::NodeError);
}

TEST_CASE("eval.frechet_distance: per class FD and the share classified as asked, for conditional samples") {
  // Reference: class 0 = X0, class 1 = X1 (interleaved); samples: class 0 an exact copy of X0, class 1 = X1 + 2.
  const int64_t m = 100, d = 3;
  const runtime::Tensor X0 = random_tensor({m, d}, 5), X1 = random_tensor({m, d}, 6);
  runtime::Tensor ref({2 * m, d}), ref_labels({2 * m}), f({2 * m, d}), labels({2 * m}), logits({2 * m, 2});
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      ref[(2 * i) * d + j] = X0[i * d + j];
      ref[(2 * i + 1) * d + j] = X1[i * d + j];
      f[i * d + j] = X0[i * d + j];             // samples 0 .. m-1 asked to be class 0
      f[(m + i) * d + j] = X1[i * d + j] + 2.f;  // samples m .. 2m-1 asked to be class 1
    }
    ref_labels[2 * i] = 0.f, ref_labels[2 * i + 1] = 1.f;
    labels[i] = 0.f, labels[m + i] = 1.f;
    // classified as asked: all of class 0, the first 30 of class 1
    logits[i * 2] = 1.f, logits[i * 2 + 1] = 0.f;
    logits[(m + i) * 2] = i < 30 ? 0.f : 1.f, logits[(m + i) * 2 + 1] = i < 30 ? 1.f : 0.f;
  }
  const TempDir dir;
  const std::string report = dir / "fd.json";
  runtime::NodeHarness h("eval.frechet_distance", {{"path", report}},
                         {{"features", f}, {"reference", ref}, {"logits", logits}, {"labels", labels},
                          {"reference_labels", ref_labels}});
  h.forward();
  const auto j = nlohmann::json::parse(read_bytes(report));
  REQUIRE(j["per_class"].size() == 2);
  CHECK(j["per_class"][0]["class"] == 0);
  CHECK(j["per_class"][0]["n"] == m);
  CHECK(j["per_class"][0]["reference_n"] == m);
  CHECK(std::fabs(j["per_class"][0]["fd"].get<double>()) < 1e-6);                // the same set
  CHECK(j["per_class"][1]["fd"].get<double>() == doctest::Approx(3 * 4.0).epsilon(1e-4));  // shifted by 2 in 3 dims
  CHECK(j["per_class"][0]["accuracy"] == doctest::Approx(1.0));
  CHECK(j["per_class"][1]["accuracy"] == doctest::Approx(0.3));
  CHECK(j["accuracy"] == doctest::Approx(0.65));
  // Labels without reference labels (or the other way round) are an error naming the missing one.
  CHECK(shape_error_field("eval.frechet_distance", {}, {{"features", f}, {"reference", ref}, {"labels", labels}}) ==
        "reference_labels");
  CHECK(shape_error_field("eval.frechet_distance", {},
                          {{"features", f}, {"reference", ref}, {"labels", runtime::Tensor({3})},
                           {"reference_labels", ref_labels}}) == "labels");
}
