// tests/nodes/sampler/test_img2img.cpp — image to image (SDEdit): sampler.timesteps' `strength` keeps the
// last steps of the grid, sampler.start noises the images to its first point, and with the exact denoiser
// of N(mu, s^2) data the outputs follow the closed forms of sampler_chain.hpp started from that point:
// the probability-flow ODE map for the deterministic samplers, the chain's own moments for DDPM.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow;
using namespace noiseflow::test;
using runtime::NodeHarness;
using runtime::Tensor;

namespace {

struct Img2Img {
  std::string sampler = "ddim", spacing = "leading";
  int64_t steps = 100;
  double strength = 0.5, mu = 0.5, s = 0.5;
  runtime::Json attrs = runtime::Json::object();
};

struct Img2ImgResult {
  Tensor start, x, points;
};

// sampler.start from `images`, then the sampler with the exact denoiser, tick by tick.
Img2ImgResult run_img2img(const Img2Img& c, const Tensor& images, uint64_t seed = 3) {
  const Tensor sched = schedule_table();
  NodeHarness ts("sampler.timesteps",
                 {{"sampler", c.sampler}, {"steps", c.steps}, {"spacing", c.spacing}, {"strength", c.strength}},
                 {{"like", images}, {"schedule", sched}}, seed);
  ts.forward(0);
  const int64_t K = ts.output("points").dim(1) - 1;
  const Tensor noise = normal(images.shape(), seed + 100);
  NodeHarness st("sampler.start", {}, {{"images", images}, {"noise", noise}, {"points", ts.output("points")}});
  st.forward(0);
  Tensor x = st.output("x").clone(), hist = ts.output("history").clone();
  const Tensor start = x.clone();
  NodeHarness den("diffusion.gaussian_denoiser", {{"mu", c.mu}, {"sigma", c.s}},
                  {{"x", x}, {"t", ts.output("t")}, {"schedule", sched}}, seed, K);
  NodeHarness step("sampler." + c.sampler, c.attrs,
                   {{"x", x}, {"pred", x}, {"t", ts.output("t")}, {"points", ts.output("points")}, {"history", hist}},
                   seed, K);
  for (int64_t k = 0; k < K; ++k) {
    ts.forward(k);
    den.set_input("x", x);
    den.set_input("t", ts.output("t"));
    den.forward(k);
    step.set_input("x", x);
    step.set_input("pred", den.output("pred"));
    step.set_input("t", ts.output("t"));
    step.set_input("history", hist);
    step.forward(k);
    x = step.output("x_next").clone();
    hist = step.output("history").clone();
  }
  return {start, x, ts.output("points").clone()};
}

}  // namespace

TEST_CASE("sampler.timesteps strength keeps the last max(1, round(strength K)) points of the grid") {
  const Tensor sched = schedule_table();
  for (const char* spacing : {"leading", "trailing", "karras"}) {
    CAPTURE(std::string(spacing));
    const Tensor full = timesteps_points(sched, "ddim", 50, spacing);
    for (double strength : {1.0, 0.5, 0.31, 0.0}) {
      CAPTURE(strength);
      NodeHarness h("sampler.timesteps", {{"sampler", "ddim"}, {"steps", 50}, {"spacing", spacing}, {"strength", strength}},
                    {{"like", Tensor({1, 1})}, {"schedule", sched}});
      h.forward(0);
      const Tensor& p = h.output("points");
      const int64_t kept = std::max<int64_t>(1, int64_t(std::nearbyint(strength * 50)));
      REQUIRE(p.dim(1) == kept + 1);
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t k = 0; k <= kept; ++k) CHECK(p[r * (kept + 1) + k] == full[r * 51 + 50 - kept + k]);
      CHECK(h.output("t")[0] == p[0]);
    }
  }
  // Leading spacing at strength 0.5 of 100 steps starts at t = 49 x 10 = 490.
  NodeHarness h("sampler.timesteps", {{"sampler", "ddpm"}, {"steps", 100}, {"strength", 0.5}},
                {{"like", Tensor({1, 1})}, {"schedule", sched}});
  h.forward(0);
  CHECK(h.output("t")[0] == 490.f);
  CHECK(h.output("points").dim(1) == 51);
}

TEST_CASE("sampler.start is the images noised to the grid's first point and the run is deterministic given the seed") {
  const Tensor sched = schedule_table();
  const Tensor images = normal({4, 1, 3, 3}, 5, 0.f, 0.5f), noise = normal({4, 1, 3, 3}, 6);
  const Tensor pts = points_of(sched, {400, 200, 0});
  NodeHarness st("sampler.start", {}, {{"images", images}, {"noise", noise}, {"points", pts}});
  st.forward(0);
  const float a = pts[4], b = pts[8];
  for (int64_t i = 0; i < images.numel(); ++i) CHECK(st.output("x")[i] == a * images[i] + b * noise[i]);
  Img2Img c;
  c.sampler = "euler_a";
  const Tensor x1 = run_img2img(c, images, 7).x, x2 = run_img2img(c, images, 7).x, x3 = run_img2img(c, images, 8).x;
  CHECK(same_bytes(x1, x2));
  CHECK_FALSE(same_bytes(x1, x3));
}

TEST_CASE("img2img at strength 0 takes one step from t = 0: the exact posterior mean of the barely noised input") {
  const Tensor sched = schedule_table();
  const LinearSchedule S;
  const Tensor images = normal({2, 1, 4, 4}, 9, 0.f, 0.7f);
  Img2Img c;
  c.sampler = "ddpm";
  c.strength = 0.0;
  const Img2ImgResult r = run_img2img(c, images);
  REQUIRE(r.points.dim(1) == 2);
  CHECK(r.points[0] == 0.f);  // leading: the last grid point is t = 0
  const double a = S.a(0), b = S.b(0), D = a * a * c.s * c.s + b * b;
  for (int64_t i = 0; i < images.numel(); ++i) {
    const double want = c.mu + a * c.s * c.s * (r.start[i] - a * c.mu) / D;  // E[x0 | x_0]
    CHECK(r.x[i] == doctest::Approx(want).epsilon(1e-5));
    CHECK(std::fabs(r.x[i] - images[i]) < 0.05);  // b_0 = 0.01: the input, up to the noise of t = 0
  }
}

TEST_CASE("img2img with DDIM and the exact denoiser is the probability-flow ODE map from the start point") {
  // DDIM is a first-order solver of the ODE: its error against the exact map falls as 1 / K. Measured
  // (max over 256 inputs of N(0.2, 0.8^2)): 0.025-0.030 on 200-step grids, 0.005-0.006 on 1000 (all T)
  // at every strength, a factor of 5 for 5 times the steps.
  const Tensor images = normal({4, 1, 8, 8}, 12, 0.2f, 0.8f);
  for (double strength : {0.2, 0.5, 0.8, 1.0}) {
    CAPTURE(strength);
    std::vector<double> errs;
    for (int64_t steps : {200, 1000}) {
      Img2Img c;
      c.steps = steps;
      c.strength = strength;
      const Img2ImgResult r = run_img2img(c, images);
      const int64_t n = r.points.dim(1), K = n - 1;
      const double a0 = r.points[n], b0 = r.points[2 * n], aL = r.points[n + K - 1], bL = r.points[2 * n + K - 1];
      double err = 0;
      for (int64_t i = 0; i < images.numel(); ++i)
        err = std::max(err, std::fabs(r.x[i] - exact_ode(r.start[i], c.mu, c.s, a0, b0, aL, bL)));
      MESSAGE("strength " << strength << ": " << K << " steps from t = " << r.points[0] << ", max |x - ODE| = " << err);
      errs.push_back(err);
    }
    CHECK(errs[0] < 0.04);
    CHECK(errs[1] < 0.008);
    CHECK(errs[1] < errs[0] / 4);  // first order: 5 x the steps, 1/5 the error
  }
}

TEST_CASE("img2img with DDPM and the exact denoiser: output moments from a fixed input are the chain's closed form") {
  // Every element starts from the same input value c: x_start ~ N(a_0 c, b_0^2), then the DDPM chain
  // x <- A x + B + sigma z (sampler_chain.hpp's formulas) carries the mean and the variance exactly.
  const int64_t M = 65536;
  const double cval = -0.6;
  Tensor images({M, 1, 1, 1});
  images.fill(float(cval));
  for (const char* variance : {"beta", "posterior"}) {
    for (double strength : {0.3, 0.7}) {
      CAPTURE(std::string(variance));
      CAPTURE(strength);
      Img2Img c;
      c.sampler = "ddpm";
      c.steps = 50;
      c.strength = strength;
      c.attrs = {{"variance", variance}};
      const Img2ImgResult r = run_img2img(c, images);
      const int64_t n = r.points.dim(1), K = n - 1;
      double m = r.points[n] * cval, v = r.points[2 * n] * r.points[2 * n];
      for (int64_t i = 0; i < K; ++i) {
        const double a = r.points[n + i], b = r.points[2 * n + i], a2 = r.points[n + i + 1], b2 = r.points[2 * n + i + 1];
        double k, o;
        x0_of_scaled(c.mu, c.s, b / a, k, o);
        const double kx = k / a;
        if (b2 == 0) {
          m = kx * m + o, v = kx * kx * v;
          continue;
        }
        const double abar = a * a, abar2 = a2 * a2, beta = 1 - abar / abar2;
        const double c0 = std::sqrt(abar2) * beta / (1 - abar), cx = std::sqrt(1 - beta) * (1 - abar2) / (1 - abar);
        const double q = std::string(variance) == "posterior" ? beta * (1 - abar2) / (1 - abar) : beta;
        m = (c0 * kx + cx) * m + c0 * o;
        v = (c0 * kx + cx) * (c0 * kx + cx) * v + q;
      }
      double sum = 0, ss = 0;
      for (int64_t i = 0; i < M; ++i) sum += r.x[i];
      const double mean = sum / double(M);
      for (int64_t i = 0; i < M; ++i) ss += (r.x[i] - mean) * (r.x[i] - mean);
      const double var = ss / double(M - 1);
      MESSAGE(variance << " strength " << strength << ": mean " << mean << " (closed form " << m << "), var " << var
                       << " (" << v << ")");
      CHECK(std::fabs(mean - m) < 5 * std::sqrt(v / double(M)));
      CHECK(std::fabs(var - v) < 5 * v * std::sqrt(2.0 / double(M - 1)));
    }
  }
}
