// tests/nodes/eval/test_frechet_distance.cpp — eval.frechet_distance against closed forms: 0 for the
// same set; for samples = s X + b (X the reference) the covariances commute and
// FD = |mu_X (1 - s) - b|^2 + (1 - s)^2 tr(C_X); the histogram and entropy of given logits.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
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

namespace {

/// n draws of N(mu, 1) in one dimension, as [n, 1] (std::normal_distribution with a fixed seed).
runtime::Tensor normal_column(int64_t n, double mu, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(mu, 1.0);
  runtime::Tensor t({n, 1});
  for (int64_t i = 0; i < n; ++i) t[i] = float(z(rng));
  return t;
}

}  // namespace

TEST_CASE("eval.frechet_distance: KID against its closed form for 1-d Gaussians, within its standard error") {
  // With k(x, y) = (x y + 1)^3 in one dimension, E k = m3 m3' + 3 m2 m2' + 3 m1 m1' + 1 for independent x ~ P,
  // y ~ Q with raw moments m1, m2, m3, so MMD^2(P, Q) = (m3 - m3')^2 + 3 (m2 - m2')^2 + 3 (m1 - m1')^2.
  // P = N(0, 1): (0, 1, 0); Q = N(mu, 1): (mu, 1 + mu^2, mu^3 + 3 mu).
  const int64_t n = 2000;
  const double mu = 0.5;
  const double exact = std::pow(mu * mu * mu + 3 * mu, 2) + 3 * std::pow(mu, 4) + 3 * mu * mu;  // 3.578125
  const runtime::Json attrs = {{"bootstrap", 0}, {"pr_k", 0}, {"kid_blocks", 10}, {"kid_whiten", false},
                               {"path", "build/test_kid.json"}};
  runtime::NodeHarness h("eval.frechet_distance", attrs, {{"features", normal_column(n, mu, 11)},
                                                           {"reference", normal_column(n, 0.0, 12)}});
  h.forward();
  const nlohmann::json r = nlohmann::json::parse(test::read_bytes("build/test_kid.json"));
  const double kid = r["kid"], se = r["kid_se"];
  CHECK(h.output("kid")[0] == doctest::Approx(kid).epsilon(1e-6));
  CHECK(se > 0.0);
  CHECK(se < 0.2 * exact);
  CHECK(std::fabs(kid - exact) < 4 * se);
  // The same distribution: KID within 4 standard errors of 0.
  runtime::NodeHarness same("eval.frechet_distance", attrs, {{"features", normal_column(n, 0.0, 13)},
                                                              {"reference", normal_column(n, 0.0, 14)}});
  same.forward();
  const nlohmann::json r2 = nlohmann::json::parse(test::read_bytes("build/test_kid.json"));
  CHECK(std::fabs(double(r2["kid"])) < 4 * double(r2["kid_se"]));
  CHECK(double(r2["kid_se"]) < 0.1 * exact);
}

TEST_CASE("eval.frechet_distance: KID over all pairs equals the unbiased estimate summed by hand") {
  const int64_t n = 40, m = 30, d = 5;
  const runtime::Tensor X = random_tensor({n, d}, 21), Y = random_tensor({m, d}, 22, -0.5f, 1.5f);
  auto k = [&](const runtime::Tensor& a, int64_t i, const runtime::Tensor& b, int64_t j) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += double(a[i * d + c]) * double(b[j * d + c]);
    return std::pow(dot / double(d) + 1.0, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) xx += i == j ? 0.0 : k(X, i, X, j);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) yy += i == j ? 0.0 : k(Y, i, Y, j);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) xy += k(X, i, Y, j);
  const double want = xx / double(n * (n - 1)) + yy / double(m * (m - 1)) - 2 * xy / double(n * m);
  runtime::NodeHarness h("eval.frechet_distance", {{"bootstrap", 0}, {"pr_k", 0}, {"kid_blocks", 5}, {"kid_whiten", false}},
                         {{"features", X}, {"reference", Y}});
  h.forward();
  CHECK(h.output("kid")[0] == doctest::Approx(want).epsilon(1e-5));
}

TEST_CASE("eval.frechet_distance: precision and recall of sets whose k-NN balls are known") {
  // Reference: the integers 0..99 on a line. Samples: 0..49 (copies) and 50 points far away (1000 + i).
  // k = 3: a copy is inside its own reference point's ball, a far point in none: precision = 1/2. The samples'
  // balls: the end copy 49 has radius 3 (46, 47, 48), the others 2 or 3, the far points 2 and far away; so the
  // reference points 0..52 are inside a sample's ball and 53..99 are not: recall = 53/100.
  const int64_t m = 100;
  runtime::Tensor R({m, 1}), S({m, 1});
  for (int64_t i = 0; i < m; ++i) R[i] = float(i), S[i] = i < m / 2 ? float(i) : float(1000 + i);
  runtime::NodeHarness h("eval.frechet_distance", {{"bootstrap", 0}, {"kid_blocks", 0}, {"pr_k", 3}},
                         {{"features", S}, {"reference", R}});
  h.forward();
  CHECK(h.output("precision")[0] == doctest::Approx(0.5));
  CHECK(h.output("recall")[0] == doctest::Approx(0.53));
  CHECK(h.output("kid")[0] == 0.f);
  // A set against itself: every point is in its own ball.
  runtime::NodeHarness same("eval.frechet_distance", {{"bootstrap", 0}, {"kid_blocks", 0}}, {{"features", R}, {"reference", R}});
  same.forward();
  CHECK(same.output("precision")[0] == 1.f);
  CHECK(same.output("recall")[0] == 1.f);
}

TEST_CASE("eval.frechet_distance: the bootstrap deviation of FD matches its spread over independent draws") {
  // 40 independent pairs of 200-vector sets from N(0, I) and N(0.3, I) in 4 dimensions: the standard deviation
  // of their FDs, against the bootstrap estimate from one pair (within a factor of 2).
  const int64_t n = 200, d = 4;
  auto draw = [&](double mu, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> z(mu, 1.0);
    runtime::Tensor t({n, d});
    for (int64_t i = 0; i < n * d; ++i) t[i] = float(z(rng));
    return t;
  };
  std::vector<double> fds;
  for (uint64_t s = 0; s < 40; ++s) {
    runtime::NodeHarness h("eval.frechet_distance", {{"bootstrap", 0}, {"kid_blocks", 0}, {"pr_k", 0}},
                           {{"features", draw(0.3, 100 + 2 * s)}, {"reference", draw(0.0, 101 + 2 * s)}});
    h.forward();
    fds.push_back(h.output("fd")[0]);
  }
  double mean = 0, var = 0;
  for (double f : fds) mean += f / double(fds.size());
  for (double f : fds) var += (f - mean) * (f - mean) / double(fds.size() - 1);
  runtime::NodeHarness h("eval.frechet_distance", {{"bootstrap", 50}, {"kid_blocks", 0}, {"pr_k", 0},
                                                    {"path", "build/test_fd_se.json"}},
                         {{"features", draw(0.3, 7)}, {"reference", draw(0.0, 8)}});
  h.forward();
  const double se = nlohmann::json::parse(test::read_bytes("build/test_fd_se.json"))["fd_se"];
  CHECK(se > 0.5 * std::sqrt(var));
  CHECK(se < 2.0 * std::sqrt(var));
}

TEST_CASE("eval.frechet_distance: one KID block is an error, small sets get fewer blocks or no KID, P and R") {
  const runtime::Tensor f = random_tensor({6, 2}, 1), r = random_tensor({8, 2}, 2);
  CHECK(shape_error_field("eval.frechet_distance", {{"kid_blocks", 1}}, {{"features", f}, {"reference", r}}) == "kid_blocks");
  runtime::NodeHarness h("eval.frechet_distance", {{"path", "build/test_fd_small.json"}}, {{"features", f}, {"reference", r}});
  h.forward();
  const nlohmann::json j = nlohmann::json::parse(test::read_bytes("build/test_fd_small.json"));
  CHECK(j["kid_blocks"] == 3);  // 6 vectors: 3 blocks of 2
  CHECK(j["pr_n"] == 6);
  const runtime::Tensor tiny = random_tensor({3, 2}, 3);
  runtime::NodeHarness t("eval.frechet_distance", {{"path", "build/test_fd_small.json"}}, {{"features", tiny}, {"reference", r}});
  t.forward();
  const nlohmann::json k = nlohmann::json::parse(test::read_bytes("build/test_fd_small.json"));
  CHECK_FALSE(k.contains("kid"));        // 3 vectors: 1 block
  CHECK_FALSE(k.contains("precision"));  // k = 3 needs 4
  CHECK(t.output("kid")[0] == 0.f);
}

TEST_CASE("eval.frechet_distance with scale whiten: the same for any invertible linear map, in the reference's units") {
  // Reference N(0, 3^2 I) and samples N(3 e_1, 3^2 I) in 8 dimensions, 2000 each: whitened, the mean shift is
  // one standard deviation, so FD is 1 plus the sampling bias (about d / n each side: ~0.01), where the raw
  // FD is 9. Then both sets through y = x A + c (A stretches some directions 1.5 times as much as others): the raw FD moves, the
  // whitened one does not (up to the eigenvalue floor, 1e-2 of their mean).
  const int64_t n = 2000, d = 8;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> z(0.0, 3.0);
  runtime::Tensor ref({n, d}), smp({n, d});
  for (int64_t i = 0; i < n * d; ++i) ref[i] = float(z(rng)), smp[i] = float(z(rng) + (i % d == 0 ? 3.0 : 0.0));
  auto run = [](const runtime::Tensor& s, const runtime::Tensor& r, const std::string& scale, bool kid_whiten = true) {
    runtime::NodeHarness h("eval.frechet_distance", {{"scale", scale}, {"bootstrap", 0}, {"kid_whiten", kid_whiten}},
                           {{"features", s}, {"reference", r}});
    h.forward();
    return std::pair<double, double>(h.output("fd")[0], h.output("kid")[0]);
  };
  auto fd_of = [&](const runtime::Tensor& s, const runtime::Tensor& r, const std::string& scale) {
    return run(s, r, scale).first;
  };
  const double raw = fd_of(smp, ref, "none"), white = fd_of(smp, ref, "whiten");
  CHECK(raw == doctest::Approx(9.0).epsilon(0.1));
  CHECK(white == doctest::Approx(1.0).epsilon(0.05));
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> A(size_t(d * d));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) A[size_t(i * d + j)] = (i == j ? 1.5 : 0.0) + 0.06 * u(rng);
  auto map = [&](const runtime::Tensor& x) {
    runtime::Tensor y({n, d});
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < d; ++j) {
        double v = 0.25 * double(j);
        for (int64_t i = 0; i < d; ++i) v += x[r * d + i] * A[size_t(i * d + j)] * (j % 2 ? 1.2 : 0.8);
        y[r * d + j] = float(v);
      }
    return y;
  };
  const runtime::Tensor smp2 = map(smp), ref2 = map(ref);
  CHECK(std::fabs(fd_of(smp2, ref2, "none") - raw) > 0.2 * raw);
  CHECK(fd_of(smp2, ref2, "whiten") == doctest::Approx(white).epsilon(0.03));
  // KID is whitened by default (kid_whiten) whatever the scale: unmoved by the map; on raw features it moves.
  const double kid = run(smp, ref, "none").second;
  CHECK(kid > 0.1);
  CHECK(run(smp2, ref2, "none").second == doctest::Approx(kid).epsilon(0.03));
  CHECK(run(smp, ref, "whiten").second == doctest::Approx(kid).epsilon(1e-6));
  CHECK(std::fabs(run(smp2, ref2, "none", false).second - run(smp, ref, "none", false).second) >
        0.2 * run(smp, ref, "none", false).second);
  // KID and precision/recall take the same features: equal sets stay at KID ~0, precision 1.
  runtime::NodeHarness same("eval.frechet_distance", {{"scale", "whiten"}}, {{"features", ref}, {"reference", ref}});
  same.forward();
  CHECK(std::fabs(same.output("fd")[0]) < 1e-4);
  CHECK(same.output("precision")[0] == doctest::Approx(1.0));
}
