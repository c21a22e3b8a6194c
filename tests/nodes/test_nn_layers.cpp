// tests/nodes/test_nn_layers.cpp — forward passes of the core layers against naive reference loops,
// shape errors, parameter initialisation, and the unet-small golden time embedding.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "runtime/run_state.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::Shape;
using noiseflow::test::shape_error_field;

namespace {

constexpr noiseflow::test::UniformTensors uniform{12345};

// max |a - b| / max(1, max |b|)
double rel_diff(const Tensor& a, const std::vector<double>& b) {
  REQUIRE(a.numel() == int64_t(b.size()));
  double d = 0, m = 1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
    m = std::max(m, std::fabs(b[i]));
  }
  return d / m;
}

}  // namespace

// ---- nn.conv2d -----------------------------------------------------------------------------------

namespace {
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t stride, int64_t pad,
                               const Shape& y_shape) {
  const int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), wd = x.dim(3);
  const int64_t cout = w.dim(0), k = w.dim(2), ho = y_shape[2], wo = y_shape[3];
  std::vector<double> y(size_t(n * cout * ho * wo));
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t oy = 0; oy < ho; ++oy)
        for (int64_t ox = 0; ox < wo; ++ox) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < cin; ++c)
            for (int64_t ky = 0; ky < k; ++ky)
              for (int64_t kx = 0; kx < k; ++kx) {
                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += double(x[((in * cin + c) * h + iy) * wd + ix]) * w[((o * cin + c) * k + ky) * k + kx];
              }
          y[size_t(((in * cout + o) * ho + oy) * wo + ox)] = s;
        }
  return y;
}
}  // namespace

TEST_CASE("nn.conv2d forward matches a naive convolution") {
  struct Case {
    Shape x;
    int64_t cout, k, stride, pad;  // pad -1: default kernel / 2
    bool bias;
    Shape y;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 7}, 4, 3, 1, -1, true, {2, 4, 5, 7}},     // odd sizes, Cin = 3
      {{1, 1, 28, 28}, 8, 3, 1, -1, true, {1, 8, 28, 28}},  // the stem
      {{3, 4, 7, 6}, 5, 3, 2, -1, true, {3, 5, 4, 3}},      // stride 2
      {{2, 32, 14, 14}, 32, 3, 2, 1, true, {2, 32, 7, 7}},  // the unet downsample
      {{2, 3, 5, 7}, 6, 1, 1, -1, true, {2, 6, 5, 7}},      // 1x1
      {{1, 3, 7, 6}, 2, 5, 1, 0, true, {1, 2, 3, 2}},       // 5x5, no padding
      {{2, 16, 6, 5}, 16, 3, 1, 2, true, {2, 16, 8, 7}},    // padding 2 > kernel / 2
      {{2, 3, 5, 7}, 4, 3, 1, -1, false, {2, 4, 5, 7}},     // no bias
  };
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const auto& c = cases[ci];
    nlohmann::json attrs{{"out_channels", c.cout}, {"kernel", c.k}, {"stride", c.stride}, {"padding", c.pad},
                         {"bias", c.bias}};
    CAPTURE(ci);
    CAPTURE(attrs.dump());
    Tensor x = uniform(c.x, ci);
    NodeHarness h("nn.conv2d", attrs, {{"x", x}});
    REQUIRE(h.output().shape() == c.y);
    h.forward();
    const int64_t pad = c.pad < 0 ? c.k / 2 : c.pad;
    Tensor* b = c.bias ? &h.param("bias").value : nullptr;
    CHECK(h.params().size() == (c.bias ? 2u : 1u));
    auto ref = naive_conv(x, h.param("weight").value, b, c.stride, pad, c.y);
    CHECK(rel_diff(h.output(), ref) < 1e-5);
    // A second tick on other values reuses the planned primitives.
    Tensor x2 = uniform(c.x, 100 + ci);
    h.set_input("x", x2);
    h.forward(1);
    CHECK(rel_diff(h.output(), naive_conv(x2, h.param("weight").value, b, c.stride, pad, c.y)) < 1e-5);
  }
}

TEST_CASE("nn.conv2d shape errors name the field") {
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 4}}, {{"x", Tensor({3, 5, 7})}}) == "x");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 4}, {"kernel", 5}, {"padding", 0}},
                          {{"x", Tensor({1, 1, 3, 8})}}) == "x");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 0}}, {{"x", Tensor({1, 1, 4, 4})}}) == "out_channels");
  CHECK(shape_error_field("nn.conv2d", {{"out_channels", 2}, {"kernel", 3}, {"padding", 3}},
                          {{"x", Tensor({1, 1, 4, 4})}}) == "padding");
}

// ---- nn.linear -------------------------------------------------------------------------------------

TEST_CASE("nn.linear forward matches x W^T + b") {
  for (bool bias : {true, false})
    for (Shape xs : {Shape{1, 32}, Shape{3, 5}, Shape{64, 128}}) {
      const int64_t out = xs[1] == 5 ? 7 : 128;
      CAPTURE(bias);
      CAPTURE(noiseflow::graph::shape_str(xs));
      Tensor x = uniform(xs, 7);
      NodeHarness h("nn.linear", {{"out_features", out}, {"bias", bias}}, {{"x", x}});
      REQUIRE(h.output().shape() == Shape{xs[0], out});
      h.forward();
      const Tensor& w = h.param("weight").value;
      std::vector<double> ref(size_t(xs[0] * out));
      for (int64_t n = 0; n < xs[0]; ++n)
        for (int64_t o = 0; o < out; ++o) {
          double s = bias ? h.param("bias").value[o] : 0.0;
          for (int64_t i = 0; i < xs[1]; ++i) s += double(x[n * xs[1] + i]) * w[o * xs[1] + i];
          ref[size_t(n * out + o)] = s;
        }
      CHECK(rel_diff(h.output(), ref) < 1e-5);
    }
  CHECK(shape_error_field("nn.linear", {{"out_features", 4}}, {{"x", Tensor({2, 3, 4})}}) == "x");
}

// ---- nn.group_norm ---------------------------------------------------------------------------------

TEST_CASE("nn.group_norm forward matches a naive group normalization") {
  struct Case {
    Shape x;
    int64_t groups;
    bool affine;
  };
  for (const Case& c : std::vector<Case>{{{2, 32, 7, 5}, 8, true},
                                         {{3, 6, 5, 7}, 1, true},
                                         {{1, 6, 5, 7}, 6, true},
                                         {{2, 4, 3, 3}, 2, false},
                                         {{4, 12}, 3, true},
                                         {{2, 64, 14, 14}, 8, true}}) {
    CAPTURE(noiseflow::graph::shape_str(c.x));
    CAPTURE(c.groups);
    // Values off-centre, so a wrong mean shows.
    Tensor x = uniform(c.x, 3, 2.f, 5.f);
    NodeHarness h("nn.group_norm", {{"groups", c.groups}, {"affine", c.affine}}, {{"x", x}});
    const int64_t n = c.x[0], ch = c.x[1], hw = x.numel() / (n * ch), cpg = ch / c.groups;
    std::vector<float> gamma(size_t(ch), 1.f), beta(size_t(ch), 0.f);
    if (c.affine) {
      CHECK(h.params().size() == 2);
      for (int64_t i = 0; i < ch; ++i) {
        CHECK(h.param("weight").value[i] == 1.f);  // PyTorch init: scale 1, shift 0
        CHECK(h.param("bias").value[i] == 0.f);
      }
      random::fill_uniform(gamma.data(), ch, 99, 0, 0.5f, 1.5f);
      random::fill_uniform(beta.data(), ch, 99, 1, -1.f, 1.f);
      std::copy(gamma.begin(), gamma.end(), h.param("weight").value.data());
      std::copy(beta.begin(), beta.end(), h.param("bias").value.data());
    } else {
      CHECK(h.params().empty());
    }
    h.forward();
    std::vector<double> ref(size_t(x.numel()));
    for (int64_t in = 0; in < n; ++in)
      for (int64_t g = 0; g < c.groups; ++g) {
        const int64_t off = (in * ch + g * cpg) * hw, m = cpg * hw;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < m; ++i) mean += x[off + i];
        mean /= double(m);
        for (int64_t i = 0; i < m; ++i) var += (x[off + i] - mean) * (x[off + i] - mean);
        var /= double(m);  // biased, as PyTorch
        for (int64_t i = 0; i < m; ++i) {
          const int64_t chan = g * cpg + i / hw;
          ref[size_t(off + i)] = (x[off + i] - mean) / std::sqrt(var + 1e-5) * gamma[chan] + beta[chan];
        }
      }
    CHECK(rel_diff(h.output(), ref) < 2e-5);
  }
}

TEST_CASE("nn.group_norm rejects channels not divisible by groups") {
  CHECK(shape_error_field("nn.group_norm", {{"groups", 8}}, {{"x", Tensor({2, 12, 4, 4})}}) == "groups");
  CHECK(shape_error_field("nn.group_norm", {}, {{"x", Tensor({12})}}) == "x");
}

// ---- nn.add ----------------------------------------------------------------------------------------

namespace {
// Naive broadcast: pads shapes as the alignment says and reads a and b by clamped coordinates.
std::vector<double> naive_add(const Tensor& a, const Tensor& b, bool leading, Shape& y) {
  const size_t r = std::max(a.shape().size(), b.shape().size());
  Shape pa = a.shape(), pb = b.shape();
  if (leading) {
    pb.resize(r, 1);
  } else {
    pa.insert(pa.begin(), r - pa.size(), 1);
    pb.insert(pb.begin(), r - pb.size(), 1);
  }
  y.assign(r, 1);
  for (size_t i = 0; i < r; ++i) y[i] = std::max(pa[i], pb[i]);
  std::vector<double> out(size_t(noiseflow::graph::numel(y)));
  std::vector<int64_t> idx(r, 0);
  for (size_t flat = 0; flat < out.size(); ++flat) {
    int64_t rest = int64_t(flat), ia = 0, ib = 0;
    for (size_t k = r; k-- > 0;) {
      idx[k] = rest % y[k];
      rest /= y[k];
    }
    for (size_t k = 0; k < r; ++k) {
      ia = ia * pa[k] + (pa[k] == 1 ? 0 : idx[k]);
      ib = ib * pb[k] + (pb[k] == 1 ? 0 : idx[k]);
    }
    out[flat] = double(a[ia]) + double(b[ib]);
  }
  return out;
}
}  // namespace

TEST_CASE("nn.add broadcasts like numpy (trailing) and per leading dimension (leading)") {
  struct Case {
    Shape a, b;
    bool leading;
  };
  for (const Case& c : std::vector<Case>{{{2, 3, 5}, {2, 3, 5}, false},
                                         {{3, 4, 5}, {5}, false},
                                         {{3, 1, 5}, {4, 1}, false},
                                         {{4}, {3, 1}, false},
                                         {{2, 3, 4}, {1}, false},
                                         {{2, 1, 4, 1}, {3, 1, 5}, false},
                                         {{3, 4, 5, 7}, {3, 4}, true},
                                         {{64, 128, 7, 7}, {64, 128}, true},
                                         {{2, 3, 4}, {2}, true},
                                         {{3, 2, 5}, {1, 2, 1}, true},
                                         {{2, 3}, {2, 3}, true}}) {
    CAPTURE(noiseflow::graph::shape_str(c.a));
    CAPTURE(noiseflow::graph::shape_str(c.b));
    CAPTURE(c.leading);
    Tensor a = uniform(c.a, 1), b = uniform(c.b, 2);
    NodeHarness h("nn.add", {{"align", c.leading ? "leading" : "trailing"}}, {{"a", a}, {"b", b}});
    Shape y;
    auto ref = naive_add(a, b, c.leading, y);
    REQUIRE(h.output().shape() == y);
    h.forward();
    CHECK(rel_diff(h.output(), ref) < 1e-7);
  }
  CHECK(shape_error_field("nn.add", {}, {{"a", Tensor({2, 3})}, {"b", Tensor({2})}}) == "b");
  CHECK(shape_error_field("nn.add", {{"align", "leading"}}, {{"a", Tensor({2, 3})}, {"b", Tensor({3})}}) == "b");
  CHECK(shape_error_field("nn.add", {{"align", "leading"}}, {{"a", Tensor({2})}, {"b", Tensor({2, 3})}}) == "b");
}

// ---- nn.timestep_embedding ---------------------------------------------------------------------------

TEST_CASE("nn.timestep_embedding follows the DDPM formula") {
  Tensor t({5}, {0.f, 1.f, 7.f, 42.f, 999.f});
  for (int64_t dim : {4, 32, 128}) {
    NodeHarness h("nn.timestep_embedding", {{"dim", dim}}, {{"t", t}});
    REQUIRE(h.output().shape() == Shape{5, dim});
    h.forward();
    const int64_t half = dim / 2;
    for (int64_t n = 0; n < 5; ++n)
      for (int64_t i = 0; i < half; ++i) {
        const double f = std::exp(-std::log(10000.0) * double(i) / double(half - 1));
        // float32 rounding of t*f (as the PyTorch reference) costs up to ~t * 6e-8 in the angle
        const double tol = 1e-6 + 1.2e-7 * t[n];
        CHECK(std::fabs(h.output()[n * dim + i] - std::sin(t[n] * f)) < tol);
        CHECK(std::fabs(h.output()[n * dim + half + i] - std::cos(t[n] * f)) < tol);
      }
    CHECK(!h.ctx().schema().is_differentiable());
  }
  NodeHarness h("nn.timestep_embedding", {{"dim", 6}, {"max_period", 100.0}}, {{"t", Tensor({1}, {3.f})}});
  h.forward();
  for (int i = 0; i < 3; ++i) CHECK(h.output()[i] == doctest::Approx(std::sin(3.0 * std::pow(100.0, -i / 2.0))).epsilon(1e-6));
  CHECK(shape_error_field("nn.timestep_embedding", {{"dim", 7}}, {{"t", Tensor({3})}}) == "dim");
  CHECK(shape_error_field("nn.timestep_embedding", {{"dim", 8}}, {{"t", Tensor({3, 2})}}) == "t");
}

TEST_CASE("nn.timestep_embedding matches the unet-small golden values (dim 32, t = 999)") {
  std::ifstream f(NOISEFLOW_SOURCE_DIR "/../shared/golden_unet_small.json");
  if (!f) {
    MESSAGE("shared/golden_unet_small.json not found: skipped");
    return;
  }
  auto golden = nlohmann::json::parse(f);
  auto first4 = golden.at("temb_sinusoid_t999_first4").get<std::vector<double>>();
  auto last4 = golden.at("temb_sinusoid_t999_last4").get<std::vector<double>>();
  NodeHarness h("nn.timestep_embedding", {{"dim", 32}}, {{"t", Tensor({1}, {999.f})}});
  h.forward();
  for (int i = 0; i < 4; ++i) {
    CHECK(std::fabs(h.output()[i] - first4[i]) < 1e-5);
    CHECK(std::fabs(h.output()[28 + i] - last4[i]) < 1e-5);
  }
}

// ---- loss.mse --------------------------------------------------------------------------------------

TEST_CASE("loss.mse is the (weighted) mean of squared differences and records the run's loss") {
  const Shape s{3, 2, 5, 7};
  Tensor p = uniform(s, 1), t = uniform(s, 2), w({3}, {0.5f, 2.f, 0.f});
  for (bool weighted : {false, true}) {
    CAPTURE(weighted);
    NamedTensors in{{"pred", p}, {"target", t}};
    if (weighted) in.emplace_back("weights", w);
    NodeHarness h("loss.mse", {}, in);
    REQUIRE(h.output().shape() == Shape{1});
    RunState rs;
    h.ctx().run_state_ = &rs;
    h.forward(4);
    double ref = 0;
    const int64_t per = p.numel() / 3;
    for (int64_t i = 0; i < p.numel(); ++i)
      ref += (weighted ? w[i / per] : 1.0) * (double(p[i]) - t[i]) * (double(p[i]) - t[i]);
    ref /= double(p.numel());
    CHECK(h.output()[0] == doctest::Approx(ref).epsilon(1e-6));
    double logged = -1;
    REQUIRE(rs.latest("loss", logged));
    CHECK(logged == doctest::Approx(ref).epsilon(1e-6));
  }
  CHECK(shape_error_field("loss.mse", {}, {{"pred", Tensor({2, 3})}, {"target", Tensor({3, 2})}}) == "target");
  CHECK(shape_error_field("loss.mse", {}, {{"pred", Tensor({2, 3})}, {"target", Tensor({2, 3})}, {"weights", Tensor({3})}}) ==
        "weights");
}

// ---- initialisation --------------------------------------------------------------------------------

TEST_CASE("conv2d and linear initialise like PyTorch, deterministically") {
  struct Case {
    std::string op;
    nlohmann::json attrs;
    Shape x;
    int64_t fan_in;
  };
  for (const Case& c : std::vector<Case>{{"nn.conv2d", {{"out_channels", 64}}, {1, 32, 5, 5}, 32 * 9},
                                         {"nn.conv2d", {{"out_channels", 32}, {"kernel", 1}}, {1, 3, 4, 4}, 3},
                                         {"nn.linear", {{"out_features", 128}}, {2, 32}, 32}}) {
    CAPTURE(c.op);
    CAPTURE(c.attrs.dump());
    const Tensor x(c.x);
    NodeHarness h(c.op, c.attrs, {{"x", x}}, 7), same(c.op, c.attrs, {{"x", x}}, 7), other(c.op, c.attrs, {{"x", x}}, 8);
    const double bound = 1.0 / std::sqrt(double(c.fan_in));
    for (const char* name : {"weight", "bias"}) {
      CAPTURE(name);
      const Tensor& v = h.param(name).value;
      double lo = 1e9, hi = -1e9, mean = 0;
      for (int64_t i = 0; i < v.numel(); ++i) {
        lo = std::min(lo, double(v[i]));
        hi = std::max(hi, double(v[i]));
        mean += v[i];
      }
      mean /= double(v.numel());
      CHECK(lo >= -bound);
      CHECK(hi <= bound);
      CHECK(hi > lo);  // not all equal
      // Uniform over the whole range: the extremes come near the bounds, the mean near 0.
      CHECK(hi - lo > (v.numel() >= 256 ? 1.9 : v.numel() >= 32 ? 1.5 : 1.0) * bound);
      CHECK(std::fabs(mean) < 4 * bound / std::sqrt(3.0 * double(v.numel())) + 1e-6);
      CHECK(v.to_vector() == same.param(name).value.to_vector());
      CHECK(v.to_vector() != other.param(name).value.to_vector());
    }
    const Shape ws = h.param("weight").value.shape();
    CHECK(ws[0] == h.output().dim(1));
    CHECK(noiseflow::graph::numel(ws) / ws[0] == c.fan_in);

    auto zattrs = c.attrs;
    zattrs["zero_init"] = true;
    NodeHarness z(c.op, zattrs, {{"x", x}}, 7);
    for (const char* name : {"weight", "bias"})
      for (float v : z.param(name).value.to_vector()) CHECK(v == 0.f);
    z.forward();
    for (float v : z.output().to_vector()) CHECK(v == 0.f);  // zero-initialised layers output exactly 0
  }
}
