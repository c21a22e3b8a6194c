// tests/nodes/nn/test_attention.cpp — nn.attention: forward against a naive double-precision reference of
// the DDPM AttentionBlock; schema checks (parameters, init, shape errors); its gradient cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/nodes/gradcheck.hpp"

using namespace noiseflow::runtime;

namespace {

void fill_random(Tensor& t, uint64_t stream, float lo = -1.f, float hi = 1.f) {
  random::fill_uniform(t.data(), t.numel(), 0xa77e, stream, lo, hi);
}

// y = x + Wp (attention(Wqkv GN(x) + bqkv)) + bp, in double, straight from the definition.
std::vector<double> reference_attention(const Tensor& x, NodeHarness& h, int64_t heads, int64_t groups, double eps) {
  const int64_t N = x.dim(0), C = x.dim(1), P = x.dim(2) * x.dim(3), cg = C / groups, D = C / heads;
  const Tensor& gw = h.param("norm.weight").value;
  const Tensor& gb = h.param("norm.bias").value;
  const Tensor& wq = h.param("qkv.weight").value;
  const Tensor& bq = h.param("qkv.bias").value;
  const Tensor& wp = h.param("proj.weight").value;
  const Tensor& bp = h.param("proj.bias").value;
  std::vector<double> y(size_t(x.numel()));
  for (int64_t n = 0; n < N; ++n) {
    auto X = [&](int64_t c, int64_t p) { return double(x[(n * C + c) * P + p]); };
    // Group norm.
    std::vector<double> nrm(size_t(C * P));
    for (int64_t g = 0; g < groups; ++g) {
      double mean = 0, var = 0;
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < P; ++p) mean += X(c, p);
      mean /= double(cg * P);
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < P; ++p) var += (X(c, p) - mean) * (X(c, p) - mean);
      var /= double(cg * P);
      for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
        for (int64_t p = 0; p < P; ++p) nrm[c * P + p] = (X(c, p) - mean) / std::sqrt(var + eps) * gw[c] + gb[c];
    }
    // qkv = 1x1 conv.
    std::vector<double> qkv(size_t(3 * C * P));
    for (int64_t o = 0; o < 3 * C; ++o)
      for (int64_t p = 0; p < P; ++p) {
        double s = bq[o];
        for (int64_t c = 0; c < C; ++c) s += double(wq[o * C + c]) * nrm[c * P + p];
        qkv[o * P + p] = s;
      }
    // Per head: a = softmax_j(q_i . k_j / sqrt(D)); h[d, i] = sum_j v[d, j] a[i, j].
    std::vector<double> hv(size_t(C * P));
    for (int64_t hd = 0; hd < heads; ++hd) {
      auto q = [&](int64_t d, int64_t p) { return qkv[(hd * D + d) * P + p]; };
      auto k = [&](int64_t d, int64_t p) { return qkv[(C + hd * D + d) * P + p]; };
      auto v = [&](int64_t d, int64_t p) { return qkv[(2 * C + hd * D + d) * P + p]; };
      for (int64_t i = 0; i < P; ++i) {
        std::vector<double> a(static_cast<size_t>(P));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < P; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += q(d, i) * k(d, j);
          a[j] = s / std::sqrt(double(D));
          mx = std::max(mx, a[j]);
        }
        for (auto& e : a) sum += (e = std::exp(e - mx));
        for (auto& e : a) e /= sum;
        for (int64_t d = 0; d < D; ++d) {
          double s = 0;
          for (int64_t j = 0; j < P; ++j) s += v(d, j) * a[j];
          hv[(hd * D + d) * P + i] = s;
        }
      }
    }
    // Output projection and residual.
    for (int64_t o = 0; o < C; ++o)
      for (int64_t p = 0; p < P; ++p) {
        double s = bp[o] + X(o, p);
        for (int64_t c = 0; c < C; ++c) s += double(wp[o * C + c]) * hv[c * P + p];
        y[size_t((n * C + o) * P + p)] = s;
      }
  }
  return y;
}

}  // namespace

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
// nn.attention: gradients to x and all six parameters.
NOISEFLOW_GRAD_CASE("attention C=6 groups=2 heads=1 5x7", "nn.attention", R"({"groups": 2})", {"x", {1, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("attention C=6 groups=3 heads=2 batch 3", "nn.attention", R"({"groups": 3, "heads": 2})",
                    {"x", {3, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("attention C=8 heads=4 groups=8 3x3", "nn.attention", R"({"heads": 4})", {"x", {2, 8, 3, 3}});
NOISEFLOW_GRAD_CASE("attention zero_init", "nn.attention", R"({"groups": 2, "zero_init": true})",
                    {"x", {2, 6, 4, 4}});
NOISEFLOW_GRAD_CASE("attention 1x1 image", "nn.attention", R"({"groups": 1, "heads": 2})", {"x", {3, 4, 1, 1}});
// Wider inputs make the softmax peakier (scores further from uniform).
static const bool attention_wide_inputs = noiseflow::testing::register_grad_case([] {
  noiseflow::testing::GradCase c;
  c.name = "attention inputs in [-3, 3] heads=2";
  c.op = "nn.attention";
  c.attrs = {{"groups", 2}, {"heads", 2}};
  c.inputs = {{"x", {2, 4, 3, 5}}};
  c.lo = -3.f, c.hi = 3.f;
  c.step = 3e-3;
  return c;
}());

TEST_CASE("nn.attention forward matches a naive reference") {
  struct Case {
    Shape x;
    int64_t heads, groups;
  };
  const Case cases[] = {
      {{1, 6, 5, 7}, 1, 2}, {{3, 6, 5, 7}, 1, 2}, {{1, 6, 5, 7}, 2, 2},
      {{3, 6, 5, 7}, 2, 3}, {{2, 8, 3, 3}, 4, 8}, {{2, 16, 7, 7}, 1, 8},
  };
  uint64_t stream = 0;
  for (const auto& cs : cases) {
    CAPTURE(noiseflow::graph::shape_str(cs.x));
    CAPTURE(cs.heads);
    CAPTURE(cs.groups);
    Tensor x(cs.x);
    fill_random(x, ++stream, -2.f, 2.f);
    NodeHarness h("nn.attention", {{"heads", cs.heads}, {"groups", cs.groups}}, {{"x", x}});
    // Random GroupNorm affine too (its init is ones / zeros); larger qkv weights for peaky softmaxes.
    fill_random(h.param("norm.weight").value, ++stream, 0.5f, 1.5f);
    fill_random(h.param("norm.bias").value, ++stream, -0.5f, 0.5f);
    fill_random(h.param("qkv.weight").value, ++stream, -0.8f, 0.8f);
    h.forward();
    auto ref = reference_attention(x, h, cs.heads, cs.groups, 1e-5);
    const Tensor& y = h.output("y");
    REQUIRE(y.shape() == cs.x);
    double max_err = 0, max_ref = 0;
    for (int64_t i = 0; i < y.numel(); ++i) {
      max_err = std::max(max_err, std::abs(double(y[i]) - ref[size_t(i)]));
      max_ref = std::max(max_ref, std::abs(ref[size_t(i)]));
    }
    CHECK(max_err < 1e-4 * std::max(1.0, max_ref));
    // A second forward gives the same result (no state leaks between ticks).
    Tensor y1 = y.clone();
    h.forward();
    for (int64_t i = 0; i < y.numel(); ++i) REQUIRE(y[i] == y1[i]);
  }
}

TEST_CASE("nn.attention parameters: names, shapes, init, zero_init") {
  Tensor x({2, 6, 5, 7});
  fill_random(x, 99);
  NodeHarness h("nn.attention", {{"groups", 2}}, {{"x", x}});
  CHECK(h.param("norm.weight").value.shape() == Shape{6});
  CHECK(h.param("norm.bias").value.shape() == Shape{6});
  CHECK(h.param("qkv.weight").value.shape() == Shape{18, 6, 1, 1});
  CHECK(h.param("qkv.bias").value.shape() == Shape{18});
  CHECK(h.param("proj.weight").value.shape() == Shape{6, 6, 1, 1});
  CHECK(h.param("proj.bias").value.shape() == Shape{6});
  CHECK(h.params().size() == 6);
  for (float v : h.param("norm.weight").value.span()) CHECK(v == 1.f);
  for (float v : h.param("norm.bias").value.span()) CHECK(v == 0.f);
  const float bound = 1.f / std::sqrt(6.f);
  float mx = 0;
  for (float v : h.param("qkv.weight").value.span()) {
    CHECK(std::abs(v) <= bound);
    mx = std::max(mx, std::abs(v));
  }
  CHECK(mx > 0.5f * bound);
  for (float v : h.param("qkv.bias").value.span()) CHECK(std::abs(v) <= bound);
  mx = 0;
  for (float v : h.param("proj.weight").value.span()) mx = std::max(mx, std::abs(v));
  CHECK(mx > 0.f);

  // zero_init: the block starts as the identity.
  NodeHarness z("nn.attention", {{"groups", 2}, {"zero_init", true}}, {{"x", x}});
  for (float v : z.param("proj.weight").value.span()) CHECK(v == 0.f);
  for (float v : z.param("proj.bias").value.span()) CHECK(v == 0.f);
  z.forward();
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(z.output()[i] == x[i]);
}

TEST_CASE("nn.attention rejects heads or groups that do not divide C") {
  auto field_of = [](const Json& attrs, Shape s) -> std::string {
    try {
      NodeHarness h("nn.attention", attrs, {{"x", Tensor(std::move(s))}});
    } catch (const noiseflow::graph::ShapeError& e) {
      CHECK(std::string(e.what()).find("[") != std::string::npos);  // names the shape
      return e.field;
    }
    return "";
  };
  CHECK(field_of({{"heads", 4}, {"groups", 2}}, {1, 6, 5, 7}) == "heads");
  CHECK(field_of({{"groups", 4}}, {1, 6, 5, 7}) == "groups");
  CHECK(field_of({}, {1, 6, 5, 7}) == "groups");  // default 8 groups
  CHECK(field_of({{"groups", 2}}, {6, 5, 7}) == "x");
  CHECK(field_of({{"groups", 2}, {"heads", 3}}, {1, 6, 5, 7}).empty());
}
