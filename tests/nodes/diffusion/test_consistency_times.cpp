// tests/nodes/diffusion/test_consistency_times.cpp — diffusion.consistency_times (ECT's pairs): log sigma_t
// has the asked mean and spread, sigma_r / sigma_t is ECT's ratio for the tick's stage (recomputed here from
// the outputs' noise levels), the gap shrinks stage by stage, r = 0 where sigma_r falls below the table, and
// the weights are 1/sigma_t^2 + 1/sigma_data^2.
#include <doctest/doctest.h>

#include <cmath>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
namespace d = noiseflow::nodes::diffusion;

namespace {
double sigma_of(const d::ScheduleTable& s, double t) {
  const d::NoiseLevel l = d::level_at(s, t);
  return l.b / l.a;
}
}  // namespace

TEST_CASE("diffusion.consistency_times: ECT's t, r and weights, stage by stage") {
  const Tensor table = schedule_table(1000);
  const d::ScheduleTable s(table);
  const int64_t N = 4000;
  const double q = 4.0, k = 8.0, b = 1.0, sd = 0.5;
  NodeHarness h("diffusion.consistency_times",
                {{"log_sigma_mean", -1.1}, {"log_sigma_std", 0.5}, {"q", q}, {"k", k}, {"b", b}, {"sigma_data", sd},
                 {"stage_ticks", 10}},
                {{"like", Tensor({N, 1})}, {"schedule", table}}, 5, 40);
  double prev_gap = 1e9;
  for (int64_t tick : {0, 10, 25, 39}) {
    CAPTURE(tick);
    h.forward(tick);
    const int64_t stage = tick / 10;
    const double decay = std::pow(q, -double(stage + 1));
    double mean = 0, sq = 0, gap = 0;
    int64_t zeros = 0;
    for (int64_t i = 0; i < N; ++i) {
      const double t = h.output("t")[i], r = h.output("r")[i];
      const double st = sigma_of(s, t), ls = std::log(st);
      mean += ls, sq += ls * ls;
      CHECK(r <= t);
      const double want_r = st * (1.0 - decay * (1.0 + k / (1.0 + std::exp(b * st))));
      if (want_r < sigma_of(s, 0.0)) {
        CHECK(r == 0.f);
        ++zeros;
      } else {
        CHECK(sigma_of(s, r) == doctest::Approx(want_r).epsilon(1e-3));
      }
      CHECK(h.output("weights")[i] == doctest::Approx(1.0 / (st * st) + 1.0 / (sd * sd)).epsilon(1e-4));
      gap += (st - sigma_of(s, r)) / st;
    }
    mean /= double(N);
    const double sdev = std::sqrt(sq / double(N) - mean * mean);
    CHECK(mean == doctest::Approx(-1.1).epsilon(0.03));
    CHECK(sdev == doctest::Approx(0.5).epsilon(0.05));
    gap /= double(N);
    CHECK(gap < prev_gap);  // the relative gap shrinks with the stage
    prev_gap = gap;
    if (stage == 0) CHECK(zeros > 0);  // at stage 0, 1 - (1 + k sigmoid) / q <= 0 for small sigma: r = 0
  }
}

TEST_CASE("diffusion.consistency_times: stages split the run's ticks when stage_ticks is 0") {
  const Tensor table = schedule_table(100);
  NodeHarness h("diffusion.consistency_times", {{"stages", 2}, {"log_sigma_std", 0.0}, {"log_sigma_mean", 0.0}, {"k", 0.0}},
                {{"like", Tensor({1, 1})}, {"schedule", table}}, 1, 10);
  const d::ScheduleTable s(table);
  h.forward(4);  // stage 0: sigma_r = sigma_t (1 - 1/4)
  CHECK(sigma_of(s, h.output("r")[0]) / sigma_of(s, h.output("t")[0]) == doctest::Approx(0.75).epsilon(1e-3));
  h.forward(5);  // stage 1: 1 - 1/16
  CHECK(sigma_of(s, h.output("r")[0]) / sigma_of(s, h.output("t")[0]) == doctest::Approx(1.0 - 1.0 / 16).epsilon(1e-3));
}

TEST_CASE("diffusion.consistency_times: t_max bounds t") {
  const Tensor table = schedule_table(1000);
  NodeHarness h("diffusion.consistency_times", {{"log_sigma_mean", 2.0}, {"log_sigma_std", 2.0}, {"t_max", 600}},
                {{"like", Tensor({2000, 1})}, {"schedule", table}}, 2, 10);
  h.forward(0);
  float top = 0;
  for (int64_t i = 0; i < 2000; ++i) top = std::max(top, h.output("t")[i]);
  CHECK(top <= 600.f + 1e-3f);
  CHECK(top >= 599.f);  // log sigma ~ N(2, 4): many draws above sigma_600 are clamped to it
}

TEST_CASE("diffusion.consistency_times: the eps weighting is sqrt(sigma_t^2 + sigma_data^2) / (sigma_t^2 sigma_data)") {
  const Tensor table = schedule_table(1000);
  const d::ScheduleTable s(table);
  NodeHarness h("diffusion.consistency_times", {{"weighting", "eps"}, {"sigma_data", 0.5}},
                {{"like", Tensor({500, 1})}, {"schedule", table}}, 3, 10);
  h.forward(0);
  for (int64_t i = 0; i < 500; ++i) {
    const double st = sigma_of(s, h.output("t")[i]);
    CHECK(h.output("weights")[i] == doctest::Approx(std::sqrt(st * st + 0.25) / (st * st * 0.5)).epsilon(1e-3));
  }
}
