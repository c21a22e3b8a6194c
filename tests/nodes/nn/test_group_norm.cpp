// tests/nodes/nn/test_group_norm.cpp — nn.group_norm: forward against a naive group normalization,
// shape errors, nChw16c against plain, activation "silu" against nn.group_norm followed by nn.silu
// (forward and backward, plain and nChw16c) and in the tails of the SiLU, dropout (its mask's statistics,
// the same mask on either layout, off when sampling), and its gradient cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "graph/schema.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::shape_str;

namespace {

constexpr UniformTensors uniform{12345};  // this suite's inputs, under its own key

// max |a - b| / max |b|: gradients are compared relative to their tensor's scale.
double rel_to_max(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double d = 0, m = 1e-12;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::abs(double(a[i]) - b[i]));
    m = std::max(m, std::abs(double(b[i])));
  }
  return d / m;
}

struct Case {
  Shape x;
  int64_t groups;
  bool affine;
};

}  // namespace

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("group_norm 8 groups 16x5x7", "nn.group_norm", "{}", {"x", {2, 16, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm groups=1 batch 3", "nn.group_norm", R"({"groups": 1})", {"x", {3, 3, 4, 5}});
NOISEFLOW_GRAD_CASE("group_norm groups=C", "nn.group_norm", R"({"groups": 6})", {"x", {1, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm no affine", "nn.group_norm", R"({"groups": 2, "affine": false})",
                    {"x", {2, 4, 3, 3}});
NOISEFLOW_GRAD_CASE("group_norm [N, C]", "nn.group_norm", R"({"groups": 2})", {"x", {3, 12}});
NOISEFLOW_GRAD_CASE("group_norm activation silu", "nn.group_norm", R"({"activation": "silu"})", {"x", {2, 16, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm activation silu, dropout 0.3", "nn.group_norm",
                    R"({"activation": "silu", "dropout": 0.3})", {"x", {2, 16, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm activation silu, no affine", "nn.group_norm",
                    R"({"groups": 2, "affine": false, "activation": "silu"})", {"x", {2, 4, 3, 3}});

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

TEST_CASE("nn.group_norm on nChw16c matches plain, with and without the fused silu") {
  struct Case {
    Shape x;
    int64_t groups;
    bool affine;
  };
  for (const char* activation : {"none", "silu"})
    for (const Case& c : std::vector<Case>{{{2, 32, 6, 5}, 8, true},     // 4 channels per group
                                           {{2, 128, 4, 4}, 8, true},    // 16: one block per group
                                           {{2, 64, 4, 4}, 2, true},     // 32: two blocks per group
                                           {{2, 48, 5, 3}, 16, true},    // 3: groups straddle blocks
                                           {{2, 32, 20, 20}, 8, true},   // more pixels than one float chunk
                                           {{3, 16, 6, 5}, 1, false}}) {
      CAPTURE(activation);
      CAPTURE(shape_str(c.x));
      CAPTURE(c.groups);
      // Off-centre values, so that a wrong mean shows.
      const int n = check_layouts_agree("nn.group_norm",
                                        {{"groups", c.groups}, {"affine", c.affine}, {"activation", activation}},
                                        {{"x", random_tensor(c.x, 1, 2.f, 5.f)}});
      CHECK(n == 2);
    }
}

TEST_CASE("nn.group_norm activation silu equals nn.group_norm followed by nn.silu, forward and backward") {
  for (Layout layout : {Layout::plain, Layout::nChw16c}) {
    for (const Case& c : std::vector<Case>{{{2, 32, 7, 5}, 8, true},      // 4 channels per group
                                           {{2, 64, 14, 14}, 8, true},    // 8 channels, 196 pixels
                                           {{2, 48, 5, 3}, 16, true},     // groups straddle nChw16c blocks
                                           {{2, 32, 28, 28}, 8, true},    // more pixels than one float chunk
                                           {{3, 16, 6, 5}, 1, false},     // no affine
                                           {{4, 12}, 3, true}}) {         // [N, C]
      CAPTURE(layout == Layout::nChw16c);
      CAPTURE(shape_str(c.x));
      CAPTURE(c.groups);
      // Off-centre and wide, so that the normalised values reach far into both tails of the SiLU.
      const Tensor x = random_tensor(c.x, 1, -3.f, 9.f);
      const Json attrs = {{"groups", c.groups}, {"affine", c.affine}};
      Json fused_attrs = attrs;
      fused_attrs["activation"] = "silu";
      NodeHarness fused("nn.group_norm", fused_attrs, {{"x", x}}, 7, 1, layout);
      NodeHarness norm("nn.group_norm", attrs, {{"x", x}}, 7, 1, layout);
      REQUIRE(fused.params().size() == norm.params().size());
      uint64_t stream = 10;
      for (size_t i = 0; i < norm.params().size(); ++i) {
        // Scales of both signs and shifts up to +-3 spread z = gn(x) over [-6, 6] and beyond.
        Tensor v = random_tensor(norm.params()[i].value.shape(), stream++, i == 0 ? -2.f : -3.f, i == 0 ? 2.f : 3.f);
        norm.params()[i].value.copy_from(v);
        fused.params()[i].value.copy_from(v);
      }

      // Forward.
      fused.forward();
      norm.forward();
      const Tensor z = norm.output().to_plain();
      NodeHarness act("nn.silu", Json::object(), {{"x", z}}, 7, 1, layout);
      act.forward();
      CHECK(fused.output().blocked() == (layout == Layout::nChw16c && Tensor::can_block(c.x)));
      CHECK(act.output().blocked() == fused.output().blocked());
      const Tensor y = act.output().to_plain();
      CHECK(max_rel_diff(fused.output().to_plain(), y) <= 1e-6);

      // Backward: the chain silu -> group norm against the fused node.
      const Tensor dy = random_tensor(c.x, 2);
      fused.backward({{"y", dy}});
      act.backward({{"y", dy}});
      norm.backward({{"y", act.grad_input("x").to_plain()}});
      CHECK(rel_to_max(fused.grad_input("x").to_plain(), norm.grad_input("x").to_plain()) <= 1e-5);
      for (size_t i = 0; i < norm.params().size(); ++i) {
        CAPTURE(norm.params()[i].name);
        CHECK(rel_to_max(fused.params()[i].grad, norm.params()[i].grad) <= 1e-5);
      }
    }
  }
}

TEST_CASE("nn.group_norm activation silu: silu of large and small normalised values") {
  // One group of 4 values per sample: x = (-a, -a, a, a) normalises to (-1, -1, 1, 1) and gamma, beta
  // move z far into the tails, where sigmoid(z) saturates to 0 or 1.
  for (float shift : {-95.f, -30.f, -1.f, 0.f, 2.f, 30.f, 95.f}) {
    CAPTURE(shift);
    Tensor x({1, 1, 2, 2}, {-1.f, -1.f, 1.f, 1.f});
    NodeHarness h("nn.group_norm", {{"groups", 1}, {"eps", 0.0}, {"activation", "silu"}}, {{"x", x}});
    h.param("weight").value[0] = 2.f;
    h.param("bias").value[0] = shift;
    h.forward();
    for (int i = 0; i < 4; ++i) {
      const double z = (i < 2 ? -2.0 : 2.0) + shift;
      const double want = z / (1.0 + std::exp(-z));
      CHECK(double(h.output()[i]) == doctest::Approx(want).epsilon(1e-6).scale(1.0));
      CHECK(std::isfinite(h.output()[i]));
    }
    const Tensor dy({1, 1, 2, 2}, {1.f, 1.f, 1.f, 1.f});
    h.backward({{"y", dy}});
    // dbeta = sum of silu'(z) over the four values.
    double dbeta = 0;
    for (int i = 0; i < 4; ++i) {
      const double z = (i < 2 ? -2.0 : 2.0) + shift, s = 1.0 / (1.0 + std::exp(-z));
      dbeta += s * (1.0 + z * (1.0 - s));
    }
    CHECK(double(h.param("bias").grad[0]) == doctest::Approx(dbeta).epsilon(1e-5).scale(1.0));
    for (int i = 0; i < 4; ++i) CHECK(std::isfinite(h.grad_input("x")[i]));
  }
}

TEST_CASE("nn.group_norm dropout: a fraction p zeroed, the rest scaled by 1 / (1 - p), a new mask each tick") {
  const double p = 0.3;
  const Tensor x = random_tensor({4, 32, 9, 9}, 21, -2.f, 2.f);
  NodeHarness off("nn.group_norm", {{"activation", "silu"}}, {{"x", x}});
  NodeHarness on("nn.group_norm", {{"activation", "silu"}, {"dropout", p}}, {{"x", x}});
  REQUIRE(on.ctx().training());
  off.forward();
  const Tensor y = off.output().to_plain();
  std::vector<char> first;
  for (int64_t tick : {0, 1}) {
    on.forward(tick);
    const Tensor yd = on.output().to_plain();
    int64_t zeros = 0;
    double worst = 0;
    std::vector<char> kept;
    for (int64_t i = 0; i < y.numel(); ++i) {
      const bool zero = yd.data()[i] == 0.f && y.data()[i] != 0.f;
      zeros += zero;
      kept.push_back(!zero);
      if (!zero) worst = std::max(worst, std::abs(double(yd.data()[i]) - y.data()[i] / (1 - p)));
    }
    // 10,368 elements: the share of zeros within 5 standard deviations of p.
    const double n = double(y.numel()), sd = std::sqrt(p * (1 - p) / n);
    CHECK(std::abs(double(zeros) / n - p) < 5 * sd);
    CHECK(worst < 1e-5);
    if (tick == 0) first = kept;
    else CHECK(kept != first);
  }
  // The same tick draws the same mask again (finite differences and resumes rely on it).
  on.forward(1);
  const Tensor again = on.output().to_plain();
  on.forward(1);
  CHECK(same_bytes(again, on.output().to_plain()));
}

TEST_CASE("nn.group_norm dropout: the same mask and gradients on nChw16c as on plain") {
  for (const char* activation : {"none", "silu"}) {
    CAPTURE(activation);
    CHECK(check_layouts_agree("nn.group_norm", {{"groups", 8}, {"activation", activation}, {"dropout", 0.4}},
                              {{"x", random_tensor({2, 32, 6, 5}, 3, -1.f, 2.f)}}) == 2);
  }
}

TEST_CASE("nn.group_norm dropout is off where no gradient flows (a sampling pipeline)") {
  auto run = [](double dropout) {
    const std::string text = R"({ "noiseflow": 1, "nodes": {
      "x":    { "op": "random.normal", "attrs": { "shape": [2, 16, 4, 4] } },
      "norm": { "op": "nn.group_norm", "inputs": { "x": "x" }, "attrs": { "activation": "silu", "dropout": )" +
                             std::to_string(dropout) + R"( } } }, "run": { "ticks": 1 } })";
    auto g = noiseflow::graph::load_pipeline_text(text, "dropout.json", load_options());
    Executor ex(g, ExecutorOptions{1});
    ex.run();
    return ex.output("norm").to_plain();
  };
  CHECK(same_bytes(run(0.5), run(0.0)));
}
