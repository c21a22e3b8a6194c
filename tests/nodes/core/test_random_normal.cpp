// tests/nodes/core/test_random_normal.cpp — random.normal: moments, KS and chi-square against N(mean, std^2),
// determinism across threads, seeds and ticks, and where its shape comes from.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <tbb/global_control.h>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

TEST_CASE("random.normal: moments, KS and chi-square against N(mean, std^2)") {
  const int64_t n = 1 << 17;
  for (auto [mean, sd] : std::vector<std::pair<double, double>>{{0.0, 1.0}, {3.0, 2.0}, {-1.0, 0.25}}) {
    CAPTURE(mean);
    CAPTURE(sd);
    NodeHarness h("random.normal", {{"shape", Json::array({n})}, {"mean", mean}, {"std", sd}}, {}, 5);
    h.forward(2);
    const Tensor& y = h.output("y");
    REQUIRE(y.shape() == Shape{n});
    // Standardise, then test against N(0, 1).
    std::vector<double> z(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) z[i] = (y[i] - mean) / sd;
    double m = 0, m2 = 0, lag1 = 0;
    for (int64_t i = 0; i < n; ++i) {
      m += z[i];
      m2 += z[i] * z[i];
      if (i) lag1 += z[i] * z[i - 1];
    }
    m /= n;
    const double var = m2 / n - m * m;
    // 5-sigma bounds: se(mean) = 1/sqrt(n); se(variance) = sqrt(2/(n-1)); se(lag-1 correlation) = 1/sqrt(n).
    CHECK(std::fabs(m) < 5 / std::sqrt(double(n)));
    CHECK(std::fabs(var - 1) < 5 * std::sqrt(2.0 / (n - 1)));
    CHECK(std::fabs(lag1 / (n - 1)) < 5 / std::sqrt(double(n)));

    // Kolmogorov-Smirnov: P[sqrt(n) D > 2.3] ~ 2 exp(-2 * 2.3^2) ~ 5e-5.
    std::vector<double> s = z;
    std::sort(s.begin(), s.end());
    double d = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double f = normal_cdf(s[i]);
      d = std::max({d, double(i + 1) / n - f, f - double(i) / n});
    }
    INFO("KS sqrt(n) D = ", std::sqrt(double(n)) * d);
    CHECK(std::sqrt(double(n)) * d < 2.3);

    // Chi-square over K = 64 equiprobable bins (by the normal CDF), 63 degrees of
    // freedom: mean 63, sd sqrt(126); mean + 5 sd ~ 119 (P ~ 1e-5), catches tails
    // and shape that the moments miss.
    const int K = 64;
    std::vector<double> count(K, 0.0);
    for (double v : z) count[std::min(K - 1, int(normal_cdf(v) * K))] += 1;
    double chi2 = 0, expected = double(n) / K;
    for (double c : count) chi2 += (c - expected) * (c - expected) / expected;
    INFO("chi2 = ", chi2);
    CHECK(chi2 < 63 + 5 * std::sqrt(126.0));
  }
}

TEST_CASE("random.normal is identical at 1 and 2 threads and for the same seed, differs by seed and tick") {
  const int64_t n = 1 << 18;  // many 4096-block chunks, so two threads really split the work
  auto draw = [&](int threads, uint64_t seed, int64_t tick) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
    NodeHarness h("random.normal", {{"shape", {4, n / 4}}}, {}, seed);
    h.forward(tick);
    return h.output("y").clone();
  };
  const Tensor one = draw(1, 42, 3), two = draw(2, 42, 3);
  CHECK(same_bytes(one, two));
  CHECK(same_bytes(one, draw(2, 42, 3)));
  CHECK(!same_bytes(one, draw(2, 43, 3)));
  CHECK(!same_bytes(one, draw(2, 42, 4)));
  // Not just a shift: a different tick agrees in (almost) no element.
  const Tensor other = draw(2, 42, 4);
  int64_t equal = 0;
  for (int64_t i = 0; i < n; ++i) equal += one[i] == other[i];
  CHECK(equal < 10);
}

TEST_CASE("random.normal takes its shape from `like` or `shape`, exactly one of them") {
  NodeHarness h("random.normal", {}, {{"like", Tensor({2, 3, 4})}});
  CHECK(h.output("y").shape() == Shape{2, 3, 4});
  CHECK(shape_error_field("random.normal", {{"shape", {2, 3}}}, {{"like", Tensor({2, 3})}}) == "shape");
  CHECK(shape_error_field("random.normal", {}, {}) == "shape");
  CHECK(shape_error_field("random.normal", {{"shape", {2, 0}}}, {}) == "shape");
  CHECK(shape_error_field("random.normal", {{"shape", Json::array({2})}, {"std", -1.0}}, {}) == "std");
  CHECK(shape_error_field("random.normal", {{"shape", {5, 1}}}, {}) == "(no error)");
}

TEST_CASE("random.normal offset: one extra N(0, offset^2) per sample and channel, the rest unchanged") {
  const int64_t N = 1500, C = 4, HW = 64;
  const double offset = 0.5;
  NodeHarness plain("random.normal", {{"shape", Json::array({N, C, 8, 8})}}, {}, 9);
  NodeHarness off("random.normal", {{"shape", Json::array({N, C, 8, 8})}, {"offset", offset}}, {}, 9);
  plain.forward(4);
  off.forward(4);
  const Tensor &y0 = plain.output("y"), &y = off.output("y");
  // y - y0 is constant over each (n, c) plane: the per-channel draw u[n, c].
  std::vector<double> u(size_t(N * C));
  bool constant = true;
  for (int64_t k = 0; k < N * C; ++k) {
    u[size_t(k)] = double(y[k * HW]) - double(y0[k * HW]);
    for (int64_t i = 1; i < HW; ++i)
      constant = constant && std::fabs((double(y[k * HW + i]) - double(y0[k * HW + i])) - u[size_t(k)]) < 1e-5;
  }
  CHECK(constant);
  // u ~ N(0, offset^2): mean and variance of 6000 draws (standard errors 0.0065 and 0.0046).
  double m = 0, v = 0;
  for (double e : u) m += e;
  m /= double(u.size());
  for (double e : u) v += (e - m) * (e - m);
  v /= double(u.size() - 1);
  CHECK(std::fabs(m) < 0.03);
  CHECK(v == doctest::Approx(offset * offset).epsilon(0.05));
  // Different (n, c) get different draws, and the next tick draws afresh.
  CHECK(u[0] != u[1]);
  off.forward(5);
  CHECK(off.output("y")[0] - plain.output("y")[0] != doctest::Approx(u[0]));
  // A tensor without a channel dimension cannot take it.
  CHECK(shape_error_field("random.normal", {{"shape", Json::array({16})}, {"offset", 0.1}}, {}) == "offset");
}

TEST_CASE("random.normal batch: y is [batch, shape...], a rank's slice draws what the whole batch draws there") {
  // One process: the same bits as the whole shape in `shape`.
  NodeHarness whole("random.normal", {{"shape", Json::array({4, 2, 3})}, {"offset", 0.1}}, {}, 11);
  NodeHarness batched("random.normal", {{"batch", 4}, {"shape", Json::array({2, 3})}, {"offset", 0.1}}, {}, 11);
  CHECK(batched.output("y").shape() == Shape{4, 2, 3});
  whole.forward(3);
  batched.forward(3);
  CHECK(same_bytes(whole.output("y"), batched.output("y")));
  // Rank r of 2 holds batch 2 (the loader divides the batch attribute): samples [2r, 2r + 2) of the four.
  for (int rank : {0, 1}) {
    NodeHarness slice("random.normal", {{"batch", 2}, {"shape", Json::array({2, 3})}, {"offset", 0.1}}, {}, 11);
    slice.ctx().rank_ = rank;
    slice.ctx().ranks_ = 2;
    slice.forward(3);
    const Tensor& y = slice.output("y");
    CHECK(std::equal(y.data(), y.data() + 12, whole.output("y").data() + rank * 12));
  }
  // A batch with `like` (which sets the whole shape) is an error.
  CHECK(shape_error_field("random.normal", {{"batch", 2}}, {{"like", Tensor({2, 3})}}) == "batch");
  CHECK(shape_error_field("random.normal", {{"batch", 2}}, {}) == "(no error)");  // y [2]
}
