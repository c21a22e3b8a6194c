// tests/nodes/sampler/test_timesteps.cpp — sampler.timesteps: each spacing's grid against its
// definition (diffusers' leading / trailing / linspace, Karras et al.'s rho schedule, the
// exponential one), the tick -> evaluation map, and sampler.ddpm over all T steps against
// diffusion.ddpm_step.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
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

TEST_CASE("sampler.ddpm over all T steps is diffusion.ddpm_step (same noise, both variances, clipped or not)") {
  const runtime::Tensor table = schedule_table();
  const Grid all = grid("leading", 1000, "ddpm");
  runtime::NodeHarness ts("sampler.timesteps", {{"sampler", "ddpm"}, {"steps", 1000}},
                          {{"like", runtime::Tensor({4, 1, 2, 2})}, {"schedule", table}});
  ts.forward(0);
  for (const char* variance : {"beta", "posterior"}) {
    for (bool clip : {false, true}) {
      for (int64_t tick : {0, 1, 500, 998, 999}) {
        CAPTURE(std::string(variance));
        CAPTURE(clip);
        CAPTURE(tick);
        const runtime::Tensor x = random_tensor({4, 1, 2, 2}, 1, -2.f, 2.f), pred = random_tensor({4, 1, 2, 2}, 2);
        const float t = float(999 - tick);
        runtime::NodeHarness old("diffusion.ddpm_step", {{"variance", variance}, {"clip_x0", clip}},
                                 {{"x", x}, {"pred", pred}, {"t", timesteps({t, t, t, t})}, {"schedule", table}}, 5, 1000);
        runtime::NodeHarness now("sampler.ddpm", {{"variance", variance}, {"clip_x0", clip}},
                                 {{"x", x}, {"pred", pred}, {"t", timesteps({t, t, t, t})},
                                  {"points", ts.output("points")}, {"history", ts.output("history")}},
                                 5, 1000);
        old.forward(tick);
        now.forward(tick);
        CHECK(max_rel_diff(now.output("x_next"), old.output("x_prev")) < 2e-5);
      }
    }
  }
  CHECK(all.t[0] == 999.0);
}
