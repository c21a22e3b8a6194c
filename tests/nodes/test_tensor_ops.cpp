// random.normal (moments, KS, chi-square, determinism across threads, seeds and
// ticks), tensor.constant, tensor.repeat and tensor.scale (closed forms and
// gradients by central differences).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <tbb/global_control.h>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/test_util.hpp"

using noiseflow::test::fd_error;
using noiseflow::test::shape_error_field;
using namespace noiseflow::runtime;

namespace {

constexpr noiseflow::test::UniformTensors uniform{0x7e50};

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

}  // namespace

// ---- random.normal ---------------------------------------------------------

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

// ---- tensor.constant -------------------------------------------------------

TEST_CASE("tensor.constant from values, with a shape, or filled") {
  NodeHarness a("tensor.constant", {{"values", {1.5, -2, 3}}}, {});
  a.forward();
  CHECK(a.output("y").shape() == Shape{3});
  CHECK(a.output("y").to_vector() == std::vector<float>{1.5f, -2.f, 3.f});

  NodeHarness b("tensor.constant", {{"values", {1, 2, 3, 4, 5, 6}}, {"shape", {2, 3}}}, {});
  b.forward();
  CHECK(b.output("y").shape() == Shape{2, 3});
  CHECK(b.output("y")[4] == 5.f);

  NodeHarness c("tensor.constant", {{"shape", {2, 2}}, {"fill", 0.25}}, {});
  c.forward();
  CHECK(c.output("y").to_vector() == std::vector<float>(4, 0.25f));

  NodeHarness scalar("tensor.constant", {{"values", Json::array({7})}}, {});
  scalar.forward();
  CHECK(scalar.output("y").shape() == Shape{1});
  CHECK(scalar.output("y")[0] == 7.f);

  CHECK(shape_error_field("tensor.constant", {{"values", {1, 2, 3}}, {"shape", {2, 2}}}, {}) == "values");
  CHECK(shape_error_field("tensor.constant", {}, {}) == "shape");
  CHECK(shape_error_field("tensor.constant", {{"shape", {0}}}, {}) == "shape");
}

// ---- tensor.repeat ---------------------------------------------------------

TEST_CASE("tensor.repeat tile and interleave along dimension 0") {
  // x[n, j] = 10 n + j, N = 3 rows of 2.
  Tensor x({3, 2}, {0, 1, 10, 11, 20, 21});
  NodeHarness tile("tensor.repeat", {{"times", 2}}, {{"x", x}});
  tile.forward();
  CHECK(tile.output("y").shape() == Shape{6, 2});
  CHECK(tile.output("y").to_vector() == std::vector<float>{0, 1, 10, 11, 20, 21, 0, 1, 10, 11, 20, 21});

  NodeHarness inter("tensor.repeat", {{"times", 2}, {"mode", "interleave"}}, {{"x", x}});
  inter.forward();
  CHECK(inter.output("y").to_vector() == std::vector<float>{0, 1, 0, 1, 10, 11, 10, 11, 20, 21, 20, 21});

  // General rule: row r of y is x[r mod N] (tile) or x[r / times] (interleave).
  Tensor big = uniform({4, 3, 5}, 1);
  for (std::string mode : {"tile", "interleave"}) {
    CAPTURE(mode);
    NodeHarness h("tensor.repeat", {{"times", 3}, {"mode", mode}}, {{"x", big}});
    h.forward();
    const Tensor& y = h.output("y");
    REQUIRE(y.shape() == Shape{12, 3, 5});
    bool ok = true;
    for (int64_t r = 0; r < 12; ++r) {
      const int64_t src = mode == "tile" ? r % 4 : r / 3;
      for (int64_t j = 0; j < 15; ++j) ok = ok && y[r * 15 + j] == big[src * 15 + j];
    }
    CHECK(ok);
  }

  NodeHarness once("tensor.repeat", {{"times", 1}}, {{"x", big}});
  once.forward();
  CHECK(same_bytes(once.output("y"), big));
  CHECK(shape_error_field("tensor.repeat", {{"times", 0}}, {{"x", big}}) == "times");
  CHECK(shape_error_field("tensor.repeat", {{"times", 2}, {"mode", "stack"}}, {{"x", big}}) == "mode");
}

TEST_CASE("tensor.repeat gradient sums the copies (central differences, overwrite)") {
  Tensor x = uniform({3, 2, 2}, 2);
  for (std::string mode : {"tile", "interleave"}) {
    CAPTURE(mode);
    NodeHarness h("tensor.repeat", {{"times", 4}, {"mode", mode}}, {{"x", x}});
    const Tensor r = uniform({12, 2, 2}, 3);
    CHECK(fd_error(h, "x", "y", r) < 1e-3);
    // Closed form: dL/dx[n] = sum over the copies of r.
    h.backward({{"y", r}});
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < 4; ++j) {
        double s = 0;
        for (int64_t k = 0; k < 4; ++k) s += r[(mode == "tile" ? k * 3 + n : n * 4 + k) * 4 + j];
        CHECK(h.grad_input("x")[n * 4 + j] == doctest::Approx(s).epsilon(1e-6));
      }
    const auto g = h.grad_input("x").to_vector();
    h.grad_input("x").fill(99.f);
    h.node().backward(h.ctx());
    CHECK(h.grad_input("x").to_vector() == g);
  }
}

// ---- tensor.scale ----------------------------------------------------------

TEST_CASE("tensor.scale y = a x + b and its gradient") {
  Tensor x = uniform({2, 3, 4}, 4);
  NodeHarness h("tensor.scale", {{"a", 2.0}, {"b", -1.0}}, {{"x", x}});
  h.forward();
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(h.output("y")[i] == doctest::Approx(2.0 * x[i] - 1.0).epsilon(1e-6));
  const Tensor r = uniform({2, 3, 4}, 5);
  CHECK(fd_error(h, "x", "y", r) < 1e-3);
  h.backward({{"y", r}});
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(h.grad_input("x")[i] == doctest::Approx(2.0 * r[i]).epsilon(1e-6));
  h.grad_input("x").fill(99.f);
  h.node().backward(h.ctx());
  CHECK(h.grad_input("x")[0] == doctest::Approx(2.0 * r[0]).epsilon(1e-6));

  NodeHarness id("tensor.scale", {}, {{"x", x}});
  id.forward();
  CHECK(same_bytes(id.output("y"), x));
  NodeHarness zero("tensor.scale", {{"a", 0.0}, {"b", 0.5}}, {{"x", x}});
  CHECK(fd_error(zero, "x", "y", r) < 1e-3);
}
