// tests/nodes/diffusion/test_ddim_timesteps.cpp — diffusion.ddim_timesteps: the uniform and trailing
// sequences (numpy's rounding), one step per tick, and the error past the last step.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::schedule_table;

TEST_CASE("ddim_timesteps: uniform and trailing sequences, one per tick, largest first") {
  auto sequence = [](int64_t T, int64_t K, const char* spacing) {
    NodeHarness h("diffusion.ddim_timesteps", {{"steps", K}, {"spacing", spacing}},
                  {{"like", Tensor({3, 2})}, {"schedule", schedule_table(T)}}, 1, K);
    std::vector<std::pair<float, float>> out;
    for (int64_t k = 0; k < K; ++k) {
      h.forward(k);
      const Tensor& t = h.output("t");
      const Tensor& tp = h.output("t_prev");
      REQUIRE(t.shape() == Shape{3});
      REQUIRE(tp.shape() == Shape{3});
      CHECK(t[0] == t[2]);
      CHECK(tp[0] == tp[2]);
      out.push_back({t[0], tp[0]});
    }
    // Past the last step: an error naming `steps`.
    try {
      h.forward(K);
      FAIL("expected a NodeError");
    } catch (const NodeError& e) {
      CHECK(e.field == "steps");
    }
    return out;
  };
  auto check_seq = [](const std::vector<std::pair<float, float>>& got, const std::vector<int64_t>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      CAPTURE(k);
      CHECK(got[k].first == float(want[k]));
      CHECK(got[k].second == (k + 1 < want.size() ? float(want[k + 1]) : -1.f));
    }
  };
  SUBCASE("K = 50, T = 1000: uniform 980, 960, ..., 0, trailing 999, 979, ..., 19") {
    std::vector<int64_t> uniform, trailing;
    for (int64_t k = 0; k < 50; ++k) uniform.push_back(980 - 20 * k), trailing.push_back(999 - 20 * k);
    check_seq(sequence(1000, 50, "uniform"), uniform);
    check_seq(sequence(1000, 50, "trailing"), trailing);
  }
  SUBCASE("the formulas: uniform floor(i T / K), trailing round(T - i T / K) - 1 (half to even, like numpy)") {
    for (auto [T, K] : std::vector<std::pair<int64_t, int64_t>>{{1000, 3}, {1000, 7}, {10, 10}, {1000, 1}, {37, 5}}) {
      CAPTURE(T);
      CAPTURE(K);
      std::vector<int64_t> uniform, trailing;
      for (int64_t i = K - 1; i >= 0; --i) uniform.push_back(i * T / K);
      for (int64_t i = 0; i < K; ++i)
        trailing.push_back(int64_t(std::nearbyint(double(T) - double(i) * double(T) / double(K))) - 1);
      check_seq(sequence(T, K, "uniform"), uniform);
      check_seq(sequence(T, K, "trailing"), trailing);
    }
    // numpy: np.round(np.arange(1000, 0, -62.5)) - 1, with ties 937.5 -> 938, 812.5 -> 812, 687.5 -> 688, ...
    check_seq(sequence(1000, 16, "trailing"),
              {999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61});
    check_seq(sequence(1000, 3, "uniform"), {666, 333, 0});
    check_seq(sequence(1000, 3, "trailing"), {999, 666, 332});
  }
}
