// nn.group_norm with activation "silu" against the two separate nodes it replaces (nn.group_norm, then
// nn.silu): forward outputs, and input and parameter gradients through both nodes' backward, on plain and
// nChw16c tensors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::graph::shape_str;

namespace {

using noiseflow::test::max_rel_diff;
using noiseflow::test::random_tensor;

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
