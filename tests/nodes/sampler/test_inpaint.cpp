// tests/nodes/sampler/test_inpaint.cpp — inpainting (RePaint): the schedule of resampling jumps, the merge
// of sampler.inpaint, known pixels exactly the input's, and, with the exact denoiser of i.i.d. N(mu, s^2)
// pixels (so that a generated pixel is independent of the known ones), the generated pixels' moments
// against the closed form of the chain with its jumps.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/sampler/sampler.hpp"
#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow;
using namespace noiseflow::test;
using runtime::NodeHarness;
using runtime::Tensor;

namespace {

struct Inpaint {
  std::string sampler = "ddpm", spacing = "leading";
  int64_t steps = 20, jump_length = 3, resample = 3;
  double mu = 0.3, s = 0.6;
  runtime::Json attrs = runtime::Json::object();
};

struct InpaintResult {
  Tensor x;
  std::vector<std::array<float, 4>> levels;
  Tensor grid;  // the plain grid of the K points (repaint_timesteps' with resample = 1)
};

InpaintResult run_inpaint(const Inpaint& c, const Tensor& images, const Tensor& mask, uint64_t seed = 4) {
  const Tensor sched = schedule_table();
  const runtime::Json ta = {{"sampler", c.sampler},   {"steps", c.steps},      {"spacing", c.spacing},
                            {"jump_length", c.jump_length}, {"resample", c.resample}};
  NodeHarness ts("sampler.repaint_timesteps", ta, {{"like", images}, {"schedule", sched}}, seed);
  ts.forward(0);
  const int64_t E = ts.output("points").dim(1) - 1;
  Tensor x = normal(images.shape(), seed + 50), hist = ts.output("history").clone();
  NodeHarness den("diffusion.gaussian_denoiser", {{"mu", c.mu}, {"sigma", c.s}},
                  {{"x", x}, {"t", ts.output("t")}, {"schedule", sched}}, seed, E);
  NodeHarness step("sampler." + c.sampler, c.attrs,
                   {{"x", x}, {"pred", x}, {"t", ts.output("t")}, {"points", ts.output("points")}, {"history", hist}},
                   seed, E);
  NodeHarness merge("sampler.inpaint", {}, {{"x", x}, {"images", images}, {"mask", mask}, {"levels", ts.output("levels")}},
                    seed, E);
  InpaintResult r;
  for (int64_t k = 0; k < E; ++k) {
    ts.forward(k);
    den.set_input("x", x);
    den.set_input("t", ts.output("t"));
    den.forward(k);
    step.set_input("x", x);
    step.set_input("pred", den.output("pred"));
    step.set_input("t", ts.output("t"));
    step.set_input("points", ts.output("points"));
    step.set_input("history", hist);
    step.forward(k);
    merge.set_input("x", step.output("x_next"));
    merge.set_input("levels", ts.output("levels"));
    merge.forward(k);
    x = merge.output("x").clone();
    hist = step.output("history").clone();
    const Tensor& l = ts.output("levels");
    r.levels.push_back({l[0], l[1], l[2], l[3]});
  }
  r.x = x;
  runtime::Json plain = ta;
  plain["resample"] = 1;
  NodeHarness g("sampler.repaint_timesteps", plain, {{"like", images}, {"schedule", sched}});
  g.forward(0);
  r.grid = g.output("points").clone();
  return r;
}

}  // namespace

TEST_CASE("repaint_moves is RePaint's get_schedule_jump in grid indices") {
  using nodes::sampler::repaint_moves;
  // K = 6, j = 2, r = 2: RePaint's times 5 4 3 2 [3 4] 3 2 1 0 [1 2] 1 0 -1 (jumps in brackets).
  const auto m = repaint_moves(6, 2, 2);
  const std::vector<std::array<int64_t, 3>> want{{0, 1, 1}, {1, 2, 2}, {2, 3, 1}, {1, 2, 2}, {2, 3, 3},
                                                 {3, 4, 4}, {4, 5, 3}, {3, 4, 4}, {4, 5, 5}, {5, 6, 6}};
  REQUIRE(m.size() == want.size());
  for (size_t i = 0; i < m.size(); ++i) {
    CAPTURE(i);
    CHECK(m[i].from == want[i][0]);
    CHECK(m[i].to == want[i][1]);
    CHECK(m[i].next == want[i][2]);
  }
  // Without resampling the plain K steps; RePaint's default (250, 10, 10) has 250 + 9 x 10 x 24 evaluations.
  CHECK(repaint_moves(7, 3, 1).size() == 7);
  CHECK(repaint_moves(250, 10, 10).size() == 250 + 9 * 10 * 24);
}

TEST_CASE("repaint_timesteps without jumps is sampler.timesteps' grid and samplers that cannot jump are refused") {
  const Tensor sched = schedule_table();
  NodeHarness a("sampler.repaint_timesteps", {{"sampler", "dpmpp_2m"}, {"steps", 12}, {"resample", 1}, {"spacing", "karras"}},
                {{"like", Tensor({1, 1})}, {"schedule", sched}});
  const Tensor full = timesteps_points(sched, "dpmpp_2m", 12, "karras");
  for (int64_t k = 0; k < 12; ++k) {
    a.forward(k);
    CHECK(same_bytes(a.output("points"), full));
    CHECK(a.output("levels")[0] == full[13 + k + 1]);
    CHECK(a.output("levels")[2] == full[13 + k + 1]);
  }
  const Tensor tab = schedule_table(), like({2, 3});
  CHECK(shape_error_field("sampler.repaint_timesteps", {{"sampler", "dpmpp_2m"}, {"resample", 2}},
                          {{"like", like}, {"schedule", tab}}) == "sampler");
  CHECK(shape_error_field("sampler.repaint_timesteps", {{"sampler", "heun"}}, {{"like", like}, {"schedule", tab}}) == "sampler");
}

TEST_CASE("inpainting keeps the known pixels exactly and built-in masks cover their region") {
  const Tensor images = normal({3, 1, 6, 6}, 21, 0.f, 0.5f);
  NodeHarness mk("diffusion.mask", {{"region", "top"}}, {{"like", images}});
  mk.forward(0);
  const Tensor mask = mk.output("mask").clone();
  REQUIRE(mask.shape() == runtime::Shape{1, 1, 6, 6});
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 6; ++x) CHECK(mask[y * 6 + x] == (y < 3 ? 0.f : 1.f));
  NodeHarness bx("diffusion.mask", {{"region", "box"}, {"box", {1, 2, 3, 5}}, {"invert", true}}, {{"like", images}});
  bx.forward(0);
  CHECK(bx.output("mask")[1 * 6 + 2] == 1.f);
  CHECK(bx.output("mask")[0] == 0.f);
  for (const char* sampler : {"ddpm", "ddim", "euler_a"}) {
    CAPTURE(std::string(sampler));
    Inpaint c;
    c.sampler = sampler;
    const InpaintResult r = run_inpaint(c, images, mask);
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 36; ++k) {
        const int64_t j = i * 36 + k;
        if (mask[k] > 0) CHECK(r.x[j] == images[j]);
        else CHECK(std::isfinite(r.x[j]));
      }
  }
}

TEST_CASE("inpainting with the exact denoiser: generated pixels follow the chain's closed form, with and without jumps") {
  // Pixels are i.i.d. N(mu, s^2), so the exact denoiser treats each alone and a generated pixel never sees
  // the known ones: its law is that of the DDPM chain with RePaint's jumps, x <- A x + B + sigma z at each
  // step and x <- (a'/a) x + sqrt(b'^2 - (a'/a)^2 b^2) z at each jump, from x_T ~ N(0, 1).
  const int64_t N = 2, side = 128;  // half of 2 x 128 x 128 generated: 16384 draws
  const Tensor images = normal({N, 1, side, side}, 31, 0.3f, 0.6f);
  Tensor mask({1, 1, side, side});
  for (int64_t k = 0; k < side * side; ++k) mask[k] = k < side * side / 2 ? 0.f : 1.f;
  for (int64_t resample : {1, 3}) {
    CAPTURE(resample);
    Inpaint c;
    c.resample = resample;
    c.attrs = {{"variance", "posterior"}};
    const InpaintResult r = run_inpaint(c, images, mask);
    const auto moves = nodes::sampler::repaint_moves(c.steps, c.jump_length, c.resample);
    REQUIRE(moves.size() == r.levels.size());
    const int64_t n = r.grid.dim(1);
    auto A = [&](int64_t k) { return double(r.grid[n + k]); };
    auto B = [&](int64_t k) { return double(r.grid[2 * n + k]); };
    double m = 0, v = 1;
    for (const auto& mv : moves) {
      const double a = A(mv.from), b = B(mv.from), a2 = A(mv.to), b2 = B(mv.to);
      double k, o;
      x0_of_scaled(c.mu, c.s, b / a, k, o);
      const double kx = k / a;
      if (b2 == 0) {
        m = kx * m + o, v = kx * kx * v;
        continue;
      }
      const double abar = a * a, abar2 = a2 * a2, beta = 1 - abar / abar2;
      const double c0 = std::sqrt(abar2) * beta / (1 - abar), cx = std::sqrt(1 - beta) * (1 - abar2) / (1 - abar);
      const double q = beta * (1 - abar2) / (1 - abar);
      m = (c0 * kx + cx) * m + c0 * o;
      v = (c0 * kx + cx) * (c0 * kx + cx) * v + q;
      if (mv.next != mv.to) {
        const double ratio = A(mv.next) / a2;
        m = ratio * m;
        v = ratio * ratio * v + B(mv.next) * B(mv.next) - ratio * ratio * b2 * b2;
      }
    }
    double sum = 0, ss = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < side * side / 2; ++k) sum += r.x[i * side * side + k], ++cnt;
    const double mean = sum / double(cnt);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < side * side / 2; ++k) {
        const double d = r.x[i * side * side + k] - mean;
        ss += d * d;
      }
    const double var = ss / double(cnt - 1);
    MESSAGE("resample " << resample << " (" << moves.size() << " evaluations): mean " << mean << " (closed form " << m
                        << ", data " << c.mu << "), var " << var << " (" << v << ", data " << c.s * c.s << ")");
    CHECK(std::fabs(mean - m) < 5 * std::sqrt(v / double(cnt)));
    CHECK(std::fabs(var - v) < 5 * v * std::sqrt(2.0 / double(cnt - 1)));
  }
}
