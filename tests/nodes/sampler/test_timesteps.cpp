// tests/nodes/sampler/test_timesteps.cpp — sampler.timesteps: each spacing's grid against its
// definition (diffusers' leading / trailing / linspace, Karras et al.'s rho schedule, the
// exponential one), DDIM's leading and trailing sequences one per tick, and the tick -> evaluation map.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

namespace {

struct Grid {
  std::vector<double> t, a, b;
};

Grid grid(const std::string& spacing, int64_t K, const std::string& sampler = "euler", int64_t tick = 0,
          std::vector<float>* t_out = nullptr) {
  runtime::NodeHarness h("sampler.timesteps", {{"sampler", sampler}, {"steps", K}, {"spacing", spacing}},
                         {{"like", runtime::Tensor({3, 1})}, {"schedule", schedule_table()}});
  h.forward(tick);
  const runtime::Tensor& p = h.output("points");
  REQUIRE(p.shape() == runtime::Shape{3, K + 1});
  Grid g;
  for (int64_t k = 0; k <= K; ++k) {
    g.t.push_back(p[k]);
    g.a.push_back(p[(K + 1) + k]);
    g.b.push_back(p[2 * (K + 1) + k]);
  }
  if (t_out) *t_out = {h.output("t").data(), h.output("t").data() + 3};
  return g;
}

}  // namespace

TEST_CASE("sampler.timesteps: leading, trailing and linspace pick diffusers' timesteps, then the data") {
  const LinearSchedule S;
  const Grid lead = grid("leading", 10), trail = grid("trailing", 10), lin = grid("linspace", 10);
  for (int64_t i = 0; i < 10; ++i) {
    CHECK(lead.t[size_t(i)] == double((9 - i) * 100));
    CHECK(trail.t[size_t(i)] == double(999 - i * 100));
    CHECK(lin.t[size_t(i)] == double(std::llround(999.0 * double(9 - i) / 9.0)));
    const int64_t t = int64_t(lin.t[size_t(i)]);
    CHECK(lin.a[size_t(i)] == doctest::Approx(S.a(t)).epsilon(1e-6));
    CHECK(lin.b[size_t(i)] == doctest::Approx(S.b(t)).epsilon(1e-6));
  }
  for (const Grid* g : {&lead, &trail, &lin}) {
    CHECK(g->t.back() == -1.0);
    CHECK(g->a.back() == 1.0);
    CHECK(g->b.back() == 0.0);
  }
  // All T steps: every timestep once, largest first.
  const Grid all = grid("leading", 1000);
  for (int64_t i = 0; i < 1000; ++i) CHECK(all.t[size_t(i)] == double(999 - i));
}

TEST_CASE("sampler.timesteps: karras and exponential sigmas between the schedule's smallest and largest") {
  const LinearSchedule S;
  const double smin = S.b(0) / S.a(0), smax = S.b(999) / S.a(999), rho = 7.0;
  const int64_t K = 12;
  const Grid kar = grid("karras", K), ex = grid("exponential", K);
  const runtime::Tensor table = schedule_table();
  const nodes::diffusion::ScheduleTable sched(table);
  for (int64_t i = 0; i < K; ++i) {
    const double f = double(i) / double(K - 1);
    const double want_k = std::pow(std::pow(smax, 1 / rho) + f * (std::pow(smin, 1 / rho) - std::pow(smax, 1 / rho)), rho);
    const double want_e = std::exp(std::log(smax) + f * (std::log(smin) - std::log(smax)));
    CHECK(kar.b[size_t(i)] / kar.a[size_t(i)] == doctest::Approx(want_k).epsilon(1e-5));
    CHECK(ex.b[size_t(i)] / ex.a[size_t(i)] == doctest::Approx(want_e).epsilon(1e-5));
    CHECK(kar.a[size_t(i)] * kar.a[size_t(i)] + kar.b[size_t(i)] * kar.b[size_t(i)] == doctest::Approx(1.0));
    // The net's fractional t maps back to the same noise level (log sigma interpolated in the table).
    const nodes::diffusion::NoiseLevel l = nodes::diffusion::level_at(sched, kar.t[size_t(i)]);
    CHECK(l.b / l.a == doctest::Approx(want_k).epsilon(1e-4));
  }
  CHECK(kar.t.front() == 999.0);
  CHECK(kar.t[size_t(K - 1)] == 0.0);
  CHECK(kar.t[5] != std::floor(kar.t[5]));  // fractional in between
}

TEST_CASE("sampler.timesteps: heun evaluates each step's start, then its end, 2K - 1 ticks") {
  std::vector<float> t;
  const Grid g = grid("karras", 5, "heun", 0, &t);
  CHECK(t[0] == float(g.t[0]));
  grid("karras", 5, "heun", 1, &t);
  CHECK(t[0] == float(g.t[1]));  // the corrector at the Euler point
  grid("karras", 5, "heun", 2, &t);
  CHECK(t[2] == float(g.t[1]));
  grid("karras", 5, "heun", 8, &t);  // tick 2K - 2: the last step's single evaluation
  CHECK(t[1] == float(g.t[4]));
  runtime::NodeHarness h("sampler.timesteps", {{"sampler", "heun"}, {"steps", 5}, {"spacing", "karras"}},
                         {{"like", runtime::Tensor({3, 1})}, {"schedule", schedule_table()}});
  CHECK_THROWS_WITH_AS(h.forward(9), doctest::Contains("past the last of the 9 model evaluations"), runtime::NodeError);
}

TEST_CASE("sampler.timesteps: steps beyond T on a discrete spacing is an error naming steps") {
  runtime::Json attrs{{"steps", 1001}, {"spacing", "trailing"}};
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("sampler.timesteps", attrs,
                                            {{"like", runtime::Tensor({3, 1})}, {"schedule", schedule_table()}}),
                       doctest::Contains("at most T"), graph::ShapeError);
  // The sigma spacings take any count.
  CHECK_NOTHROW(runtime::NodeHarness("sampler.timesteps", {{"steps", 1500}, {"spacing", "karras"}},
                                     {{"like", runtime::Tensor({3, 1})}, {"schedule", schedule_table()}}));
}

TEST_CASE("sampler.timesteps for ddim: leading and trailing sequences, one per tick, largest first, then the data") {
  auto sequence = [](int64_t T, int64_t K, const char* spacing) {
    runtime::NodeHarness h("sampler.timesteps", {{"sampler", "ddim"}, {"steps", K}, {"spacing", spacing}},
                           {{"like", runtime::Tensor({3, 2})}, {"schedule", schedule_table(T)}}, 1, K);
    // Tick k evaluates t = the grid's k-th point and steps to the next one (-1: the data).
    std::vector<std::pair<float, float>> out;
    for (int64_t k = 0; k < K; ++k) {
      h.forward(k);
      const runtime::Tensor& t = h.output("t");
      const runtime::Tensor& p = h.output("points");
      REQUIRE(t.shape() == runtime::Shape{3});
      REQUIRE(p.shape() == runtime::Shape{3, K + 1});
      CHECK(t[0] == t[2]);
      CHECK(t[0] == p[k]);
      out.push_back({t[0], p[k + 1]});
    }
    // Past the last step: an error naming `steps`.
    try {
      h.forward(K);
      FAIL("expected a NodeError");
    } catch (const runtime::NodeError& e) {
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
  SUBCASE("K = 50, T = 1000: leading 980, 960, ..., 0, trailing 999, 979, ..., 19") {
    std::vector<int64_t> leading, trailing;
    for (int64_t k = 0; k < 50; ++k) leading.push_back(980 - 20 * k), trailing.push_back(999 - 20 * k);
    check_seq(sequence(1000, 50, "leading"), leading);
    check_seq(sequence(1000, 50, "trailing"), trailing);
  }
  SUBCASE("the formulas: leading (K-1-i) floor(T / K), trailing round(T - i T / K) - 1 (half to even, like numpy)") {
    for (auto [T, K] : std::vector<std::pair<int64_t, int64_t>>{{1000, 3}, {1000, 7}, {10, 10}, {1000, 1}, {37, 5}}) {
      CAPTURE(T);
      CAPTURE(K);
      std::vector<int64_t> leading, trailing;
      for (int64_t i = K - 1; i >= 0; --i) leading.push_back(i * (T / K));
      for (int64_t i = 0; i < K; ++i)
        trailing.push_back(int64_t(std::nearbyint(double(T) - double(i) * double(T) / double(K))) - 1);
      check_seq(sequence(T, K, "leading"), leading);
      check_seq(sequence(T, K, "trailing"), trailing);
    }
    // numpy: np.round(np.arange(1000, 0, -62.5)) - 1, with ties 937.5 -> 938, 812.5 -> 812, 687.5 -> 688, ...
    check_seq(sequence(1000, 16, "trailing"),
              {999, 937, 874, 811, 749, 687, 624, 561, 499, 437, 374, 311, 249, 187, 124, 61});
    check_seq(sequence(1000, 3, "leading"), {666, 333, 0});
    check_seq(sequence(1000, 3, "trailing"), {999, 666, 332});
  }
}

TEST_CASE("sampler.timesteps: t_max lays the grid over [0, t_max]") {
  auto points = [](const std::string& spacing, int64_t K, int64_t t_max) {
    runtime::NodeHarness h("sampler.timesteps", {{"sampler", "consistency"}, {"steps", K}, {"spacing", spacing}, {"t_max", t_max}},
                           {{"like", runtime::Tensor({1, 1})}, {"schedule", schedule_table()}});
    h.forward(0);
    std::vector<double> t;
    for (int64_t k = 0; k <= K; ++k) t.push_back(h.output("points")[k]);
    return t;
  };
  CHECK(points("trailing", 2, 499) == std::vector<double>{499, 249, -1});
  CHECK(points("trailing", 1, 300) == std::vector<double>{300, -1});
  CHECK(points("leading", 2, 399) == std::vector<double>{200, 0, -1});
  CHECK(points("linspace", 3, 600) == std::vector<double>{600, 300, 0, -1});
  CHECK(points("trailing", 4, -1) == std::vector<double>{999, 749, 499, 249, -1});  // -1: all T
  const std::vector<double> k = points("karras", 3, 499);
  CHECK(k[0] == doctest::Approx(499.0).epsilon(1e-4));  // starts at sigma_499
  CHECK(k[2] == doctest::Approx(0.0).epsilon(1e-4));
  // Past the schedule: an error naming t_max.
  try {
    runtime::NodeHarness bad("sampler.timesteps", {{"sampler", "ddim"}, {"steps", 2}, {"t_max", 1000}},
                             {{"like", runtime::Tensor({1, 1})}, {"schedule", schedule_table()}});
    FAIL("expected an error");
  } catch (const graph::ShapeError& e) {
    CHECK(e.field == "t_max");
  }
}
