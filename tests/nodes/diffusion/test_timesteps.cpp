// tests/nodes/diffusion/test_timesteps.cpp — diffusion.timesteps: range, uniformity (chi-square), per-tick draws, fixed values.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("diffusion.timesteps draws integers in 0..T-1, uniformly (chi-square)") {
  for (int64_t T : {10, 1000}) {
    CAPTURE(T);
    const int64_t N = 100000;
    NodeHarness h("diffusion.timesteps", {}, {{"like", Tensor({N, 1})}, {"schedule", schedule_table(T)}}, /*seed=*/3);
    h.forward(0);
    const Tensor& t = h.output("t");
    REQUIRE(t.shape() == Shape{N});
    // Chi-square over K bins of equal probability (K = 10: for T = 1000, bins of 100 steps).
    const int K = 10;
    std::vector<double> count(K, 0.0);
    bool integers = true, in_range = true;
    for (int64_t i = 0; i < N; ++i) {
      integers = integers && t[i] == std::floor(t[i]);
      in_range = in_range && t[i] >= 0.f && t[i] < float(T);
      if (t[i] >= 0.f && t[i] < float(T)) count[int64_t(t[i]) * K / T] += 1;
    }
    CHECK(integers);
    CHECK(in_range);
    double chi2 = 0, expected = double(N) / K;
    for (double c : count) chi2 += (c - expected) * (c - expected) / expected;
    // chi2 with K-1 = 9 degrees of freedom: mean 9, sd sqrt(18); mean + 5 sd = 30.2
    // (P[chi2_9 > 30.2] ~ 4e-4, and a biased generator lands far beyond).
    INFO("chi2 = ", chi2);
    CHECK(chi2 < 9 + 5 * std::sqrt(18.0));
  }
}

TEST_CASE("diffusion.timesteps: both ends of 0..T-1 are reached, fresh draw per tick, reproducible per tick") {
  const int64_t T = 5, N = 2000;
  const Tensor table = schedule_table(T);
  NodeHarness h("diffusion.timesteps", {}, {{"like", Tensor({N, 3, 2})}, {"schedule", table}}, 11);
  h.forward(0);
  auto a = h.output("t").to_vector();
  CHECK(*std::min_element(a.begin(), a.end()) == 0.f);
  CHECK(*std::max_element(a.begin(), a.end()) == float(T - 1));
  h.forward(1);
  auto b = h.output("t").to_vector();
  CHECK(a != b);
  h.forward(0);
  CHECK(h.output("t").to_vector() == a);
  // Same seed in a fresh instance: the same draws; another seed: different ones.
  NodeHarness same("diffusion.timesteps", {}, {{"like", Tensor({N, 3, 2})}, {"schedule", table}}, 11);
  same.forward(0);
  CHECK(same.output("t").to_vector() == a);
  NodeHarness other("diffusion.timesteps", {}, {{"like", Tensor({N, 3, 2})}, {"schedule", table}}, 12);
  other.forward(0);
  CHECK(other.output("t").to_vector() != a);
  // The fraction of draws at each value is near 1/T (5 sigma, sigma = sqrt(p (1 - p) / N)).
  for (int v = 0; v < T; ++v) {
    double frac = double(std::count(a.begin(), a.end(), float(v))) / N;
    CHECK(std::fabs(frac - 0.2) < 5 * std::sqrt(0.2 * 0.8 / N));
  }
}

TEST_CASE("diffusion.timesteps with fixed values tiles them to the batch") {
  NodeHarness h("diffusion.timesteps", {{"values", {3, 0, 9}}}, {{"like", Tensor({7, 2})}, {"schedule", schedule_table(10)}});
  for (int64_t tick : {0, 1, 5}) {
    h.forward(tick);
    CHECK(h.output("t").to_vector() == std::vector<float>{3, 0, 9, 3, 0, 9, 3});
  }
  NodeHarness one("diffusion.timesteps", {{"values", Json::array({0})}}, {{"like", Tensor({1})}, {"schedule", schedule_table(1)}});
  one.forward();
  CHECK(one.output("t")[0] == 0.f);
}

TEST_CASE("diffusion.timesteps shape errors") {
  auto field_of = [](const Json& attrs, const NamedTensors& in) {
    return shape_error_field("diffusion.timesteps", attrs, in);
  };
  CHECK(field_of({{"values", {3, 10}}}, {{"like", Tensor({4})}, {"schedule", schedule_table(10)}}) == "values");
  CHECK(field_of({{"values", Json::array({-1})}}, {{"like", Tensor({4})}, {"schedule", schedule_table(10)}}) == "values");
  CHECK(field_of({}, {{"like", Tensor({4})}, {"schedule", Tensor({10})}}) == "schedule");
  CHECK(field_of({}, {{"like", Tensor({4})}, {"schedule", Tensor({8, 10, 1})}}) == "schedule");
  CHECK(field_of({}, {{"like", Tensor({4})}, {"schedule", schedule_table(10)}}) == "(no error)");
}

TEST_CASE("diffusion.timesteps lognormal: log sigma of the drawn t follows N(mean, std^2)") {
  const int64_t T = 1000, N = 100000;
  const auto abar = cumprod_alpha(linear_betas(T));
  for (auto [mean, sd] : std::vector<std::pair<double, double>>{{-1.2, 1.2}, {0.5, 0.6}}) {
    CAPTURE(mean);
    NodeHarness h("diffusion.timesteps", {{"sampling", "lognormal"}, {"log_sigma_mean", mean}, {"log_sigma_std", sd}},
                  {{"like", Tensor({N, 1})}, {"schedule", schedule_table(T)}}, 5);
    h.forward(0);
    const Tensor& t = h.output("t");
    double m = 0, m2 = 0;
    bool ok = true;
    for (int64_t i = 0; i < N; ++i) {
      ok = ok && t[i] == std::floor(t[i]) && t[i] >= 0.f && t[i] < float(T);
      const double a = abar[size_t(t[i])], ls = 0.5 * std::log((1.0 - a) / a);
      m += ls;
      m2 += ls * ls;
    }
    CHECK(ok);
    m /= double(N);
    const double s = std::sqrt(m2 / double(N) - m * m);
    // Sampling error ~0.004; rounding to the nearest of 1000 timesteps moves log sigma by < 0.02 here.
    CHECK(std::fabs(m - mean) < 0.03);
    CHECK(std::fabs(s - sd) < 0.03);
  }
  // A narrow distribution lands on the one timestep nearest to exp(mean).
  NodeHarness h("diffusion.timesteps", {{"sampling", "lognormal"}, {"log_sigma_mean", 0.0}, {"log_sigma_std", 1e-6}},
                {{"like", Tensor({64, 1})}, {"schedule", schedule_table(T)}}, 5);
  h.forward(0);
  int64_t best = 0;
  for (int64_t k = 0; k < T; ++k)
    if (std::fabs(std::log((1.0 - abar[size_t(k)]) / abar[size_t(k)])) <
        std::fabs(std::log((1.0 - abar[size_t(best)]) / abar[size_t(best)])))
      best = k;
  for (int64_t i = 0; i < 64; ++i) CHECK(h.output("t")[i] == float(best));
  CHECK_THROWS_WITH_AS(NodeHarness("diffusion.timesteps", {{"sampling", "lognormal"}, {"values", Json::array({1})}},
                                   {{"like", Tensor({4, 1})}, {"schedule", schedule_table(10)}}),
                       doctest::Contains("no fixed `values`"), NodeError);
}
