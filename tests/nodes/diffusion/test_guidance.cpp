// tests/nodes/diffusion/test_guidance.cpp — classifier-free guidance: the combination and its rescale against
// hand computations, that it is the same step for eps, x0 and v predictions, label dropout's rate and
// determinism, the guided batch's labels, and on the 8-mode toy mixture that guided conditional samples land on
// the mode asked for.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "noiseflow/noiseflow.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::Shape;

namespace {
Tensor guide(const Tensor& pred, double scale, double rescale = 0) {
  NodeHarness h("diffusion.guidance", {{"scale", scale}, {"rescale", rescale}}, {{"pred", pred}});
  h.forward();
  return h.output().clone();
}
}  // namespace

TEST_CASE("diffusion.guidance: uncond + w (cond - uncond), conditional half first") {
  // N = 2 samples of 3 values: rows 0, 1 conditional, rows 2, 3 unconditional.
  const Tensor pred({4, 3}, {1.f, 2.f, 3.f, -1.f, 0.f, 1.f, 0.5f, 0.5f, 0.5f, 2.f, 2.f, 2.f});
  const Tensor g = guide(pred, 2.0);
  REQUIRE(g.shape() == Shape{2, 3});
  // by hand: 0.5 + 2 (1 - 0.5) = 1.5, 0.5 + 2 (2 - 0.5) = 3.5, 0.5 + 2 (3 - 0.5) = 5.5; 2 + 2 (-1 - 2) = -4, ...
  const std::vector<float> want{1.5f, 3.5f, 5.5f, -4.f, -2.f, 0.f};
  for (int i = 0; i < 6; ++i) CHECK(g[i] == doctest::Approx(want[size_t(i)]));
  // w = 0: the unconditional prediction; w = 1: the conditional one.
  const Tensor g0 = guide(pred, 0.0), g1 = guide(pred, 1.0);
  for (int i = 0; i < 6; ++i) {
    CHECK(g0[i] == pred[6 + i]);
    CHECK(g1[i] == doctest::Approx(pred[i]));
  }
}

TEST_CASE("diffusion.guidance: the rescale of Lin et al. 2023 against a hand computation") {
  const Tensor pred({2, 4}, {1.f, -1.f, 2.f, 0.f, 0.f, 0.5f, 0.5f, 1.f});
  const double w = 3.0, phi = 0.7;
  // g = u + w (c - u) = (3, -4, 5, -2); std (population) of c = (1, -1, 2, 0) and of g.
  const std::vector<double> c{1, -1, 2, 0}, gg{3, -4, 5, -2};
  auto sd = [](const std::vector<double>& v) {
    const double m = std::accumulate(v.begin(), v.end(), 0.0) / 4;
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / 4);
  };
  const double f = phi * sd(c) / sd(gg) + (1 - phi);
  const Tensor g = guide(pred, w, phi);
  for (int i = 0; i < 4; ++i) CHECK(g[i] == doctest::Approx(gg[size_t(i)] * f).epsilon(1e-6));
  // phi = 1: the guided prediction has exactly the conditional one's standard deviation.
  const Tensor g1 = guide(pred, w, 1.0);
  std::vector<double> v(4);
  for (int i = 0; i < 4; ++i) v[size_t(i)] = g1[i];
  CHECK(sd(v) == doctest::Approx(sd(c)).epsilon(1e-6));
}

TEST_CASE("diffusion.guidance: eps, x0 and v predictions give the same guided step") {
  // At x_t and abar, x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) and v = sqrt(abar) eps - sqrt(1 - abar) x0 are
  // affine in eps with the same coefficients for both halves; guidance weights sum to one, so guiding x0 or v and
  // converting back to eps equals guiding eps. Checked on the node's output for several abar and scales.
  const int n = 3, d = 5;
  const Tensor xt = noiseflow::test::UniformTensors{5}({n, d}, 0);
  const Tensor eps_c = noiseflow::test::UniformTensors{5}({n, d}, 1), eps_u = noiseflow::test::UniformTensors{5}({n, d}, 2);
  for (double abar : {0.999, 0.5, 0.02})
    for (double w : {0.0, 1.5, 4.0}) {
      CAPTURE(abar);
      CAPTURE(w);
      const double sa = std::sqrt(abar), so = std::sqrt(1 - abar);
      auto to_x0 = [&](float e, float x) { return float((x - so * e) / sa); };
      auto to_v = [&](float e, float x) { return float(sa * e - so * (x - so * e) / sa); };
      Tensor pe({2 * n, d}), px({2 * n, d}), pv({2 * n, d});
      for (int i = 0; i < n * d; ++i) {
        const float x = xt[i];
        pe[i] = eps_c[i], pe[n * d + i] = eps_u[i];
        px[i] = to_x0(eps_c[i], x), px[n * d + i] = to_x0(eps_u[i], x);
        pv[i] = to_v(eps_c[i], x), pv[n * d + i] = to_v(eps_u[i], x);
      }
      const Tensor ge = guide(pe, w), gx = guide(px, w), gv = guide(pv, w);
      for (int i = 0; i < n * d; ++i) {
        const double x = xt[i];
        const double from_x0 = (x - sa * gx[i]) / so;  // eps from x0
        // eps from v: eps = sqrt(abar) v + sqrt(1 - abar) x_t
        const double from_v = sa * gv[i] + so * x;
        CHECK(from_x0 == doctest::Approx(ge[i]).epsilon(1e-4));
        CHECK(from_v == doctest::Approx(ge[i]).epsilon(1e-4));
      }
    }
}

TEST_CASE("diffusion.guidance: pred must hold two halves") {
  CHECK(noiseflow::test::shape_error_field("diffusion.guidance", {{"scale", 2.0}}, {{"pred", Tensor({3, 4})}}) == "pred");
}

TEST_CASE("diffusion.label_dropout: rate p, the null class, the same draws for the same tick and sample") {
  const int64_t n = 20000;
  Tensor labels({n});
  for (int64_t i = 0; i < n; ++i) labels[i] = float(i % 10);
  NodeHarness h("diffusion.label_dropout", {{"num_classes", 10}, {"p", 0.3}}, {{"labels", labels}}, 7);
  h.forward(3);
  const Tensor a = h.output().clone();
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (a[i] == 10.f) ++dropped;
    else CHECK(a[i] == labels[i]);
  }
  // Binomial(20000, 0.3): sd 65; 5 sd either side.
  CHECK(dropped > 6000 - 325);
  CHECK(dropped < 6000 + 325);
  h.forward(3);
  CHECK(h.output().to_vector() == a.to_vector());
  h.forward(4);
  CHECK(h.output().to_vector() != a.to_vector());
  // A smaller batch draws what the first samples of the larger one drew (per sample index).
  Tensor few({100});
  for (int64_t i = 0; i < 100; ++i) few[i] = labels[i];
  NodeHarness h2("diffusion.label_dropout", {{"num_classes", 10}, {"p", 0.3}}, {{"labels", few}}, 7);
  h2.forward(3);
  for (int64_t i = 0; i < 100; ++i) CHECK(h2.output()[i] == a[i]);
  // p = 0 and p = 1.
  NodeHarness none("diffusion.label_dropout", {{"num_classes", 10}, {"p", 0.0}}, {{"labels", few}});
  none.forward();
  CHECK(none.output().to_vector() == few.to_vector());
  NodeHarness all("diffusion.label_dropout", {{"num_classes", 10}, {"p", 1.0}}, {{"labels", few}});
  all.forward();
  for (int64_t i = 0; i < 100; ++i) CHECK(all.output()[i] == 10.f);
}

TEST_CASE("diffusion.cfg_labels and data.class_labels") {
  NodeHarness h("diffusion.cfg_labels", {{"num_classes", 10}}, {{"labels", Tensor({3}, {4.f, 0.f, 9.f})}});
  h.forward();
  CHECK(h.output().to_vector() == std::vector<float>{4.f, 0.f, 9.f, 10.f, 10.f, 10.f});
  NodeHarness grid("data.class_labels", {{"n", 80}, {"num_classes", 10}}, {});
  grid.forward();
  for (int64_t i = 0; i < 80; ++i) CHECK(grid.output()[i] == float(i / 8));
  NodeHarness one("data.class_labels", {{"n", 5}, {"num_classes", 10}, {"class", 7}}, {});
  one.forward();
  CHECK(one.output().to_vector() == std::vector<float>(5, 7.f));
  CHECK(noiseflow::test::shape_error_field("data.class_labels", {{"n", 5}, {"num_classes", 10}, {"class", 10}}, {}) ==
        "class");
}

TEST_CASE("toy 2-D classifier-free guidance: guided samples land on the mode asked for") {
  const noiseflow::test::TempDir dir;
  const std::string ckpt = dir / "checkpoint.safetensors";
  noiseflow::Options train;
  train.params = {{"steps", 3000}, {"checkpoint", ckpt}};
  noiseflow::Pipeline p(std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/toy2d_cond_train.json", train);
  p.run();
  for (double w : {2.0, 0.0}) {
    noiseflow::Options sample;
    sample.params = {{"checkpoint", ckpt}, {"n", 1024}, {"guidance", w}};
    noiseflow::Pipeline s(std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/toy2d_cond_sample.json", sample);
    s.run();
    const noiseflow::Tensor x = s.output("x"), labels = s.output("labels");
    REQUIRE(x.shape() == Shape{1024, 2});
    int hit = 0;
    for (int64_t i = 0; i < 1024; ++i) {
      // data.toy2d's modes: 8 centres at angles 2 pi m / 8 on a circle of radius 0.8, std 0.05
      const double a = 2 * M_PI * labels[i] / 8;
      if (std::hypot(x[2 * i] - 0.8 * std::cos(a), x[2 * i + 1] - 0.8 * std::sin(a)) < 0.2) ++hit;
    }
    MESSAGE("guidance " << w << ": " << hit << " of 1024 samples within 0.2 of the mode asked for");
    if (w == 2.0) CHECK(hit >= 0.9 * 1024);
    else CHECK(hit < 0.5 * 1024);  // unconditional: about one in eight lands on the mode asked for
  }
}
