// The element-wise and glue nodes (layouts uniform) give the same forward outputs, input gradients and
// parameter gradients on nChw16c tensors as on plain ones.
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

// Runs `op` forward and backward twice on the same inputs, parameters and output gradient — once plain,
// once with every blockable rank-4 tensor nChw16c — and checks that the results agree. Parameters are set
// to random values (not their init) so that affine terms are exercised. Returns how many of the blocked
// run's inputs and outputs were really blocked.
int check_layouts_agree(const std::string& op, const Json& attrs, const NamedTensors& inputs, double tol = 1e-5) {
  NodeHarness plain(op, attrs, inputs, 7, 1, Layout::plain);
  NodeHarness blocked(op, attrs, inputs, 7, 1, Layout::nChw16c);
  int n_blocked = 0;
  for (auto& [name, t] : inputs) {
    CAPTURE(name);
    CHECK(blocked.input(name).blocked() == Tensor::can_block(t.shape()));
    n_blocked += blocked.input(name).blocked();
  }
  Tensor& y = blocked.output();
  CHECK(y.blocked() == Tensor::can_block(y.shape()));
  n_blocked += y.blocked();

  uint64_t stream = 100;
  for (size_t i = 0; i < plain.params().size(); ++i) {
    Tensor v = random_tensor(plain.params()[i].value.shape(), stream++, 0.5f, 1.5f);
    plain.params()[i].value.copy_from(v);
    blocked.params()[i].value.copy_from(v);
  }

  plain.forward();
  blocked.forward();
  CHECK(max_rel_diff(y.to_plain(), plain.output()) <= tol);

  const Tensor dy = random_tensor(plain.output().shape(), stream++);
  plain.backward({{"y", dy}});
  blocked.backward({{"y", dy}});
  for (auto& [name, t] : inputs) {
    CAPTURE(name);
    CHECK(blocked.grad_input(name).blocked() == blocked.input(name).blocked());
    CHECK(max_rel_diff(blocked.grad_input(name).to_plain(), plain.grad_input(name)) <= tol);
  }
  for (size_t i = 0; i < plain.params().size(); ++i) {
    CAPTURE(plain.params()[i].name);
    CHECK(max_rel_diff(blocked.params()[i].grad, plain.params()[i].grad) <= tol);
  }
  return n_blocked;
}

}  // namespace

TEST_CASE("nn.silu on nChw16c matches plain") {
  for (const Shape& s : {Shape{2, 32, 6, 5}, Shape{2, 64, 4, 4}}) {
    CAPTURE(shape_str(s));
    CHECK(check_layouts_agree("nn.silu", {}, {{"x", random_tensor(s, 1, -4.f, 4.f)}}) == 2);
  }
}

TEST_CASE("nn.add on nChw16c matches plain for same shapes and per-channel biases") {
  struct Case {
    Shape a, b;
    std::string align;
    int blocked;  // tensors stored nChw16c in the blocked run
  };
  for (const Case& c : std::vector<Case>{
           {{2, 32, 6, 5}, {2, 32, 6, 5}, "trailing", 3},  // residual add: flat
           {{2, 64, 4, 4}, {2, 64}, "leading", 2},         // time embedding per (n, c)
           {{2, 32, 6, 5}, {32, 1, 1}, "trailing", 2},     // per channel
           {{2, 32, 6, 5}, {2}, "leading", 2},             // per sample
           {{2, 32, 6, 5}, {1}, "trailing", 2},            // scalar
           {{32, 1, 1}, {2, 32, 6, 5}, "trailing", 2},     // the bias is a
           {{2, 32, 1, 1}, {2, 32, 6, 5}, "trailing", 3},  // a blocked with H = W = 1
           {{2, 32, 6, 5}, {6, 5}, "trailing", 2},         // varies over H, W: through plain copies
           {{2, 32, 6, 5}, {1, 32, 6, 5}, "trailing", 3},  // broadcast over N: through plain copies
           {{2, 32, 6, 5}, {3, 1, 1, 1, 1}, "trailing", 1},  // y of rank 5 stays plain
       }) {
    CAPTURE(shape_str(c.a));
    CAPTURE(shape_str(c.b));
    CAPTURE(c.align);
    const int n = check_layouts_agree("nn.add", {{"align", c.align}},
                                      {{"a", random_tensor(c.a, 1)}, {"b", random_tensor(c.b, 2)}});
    CHECK(n == c.blocked);
  }
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

TEST_CASE("nn.concat on nChw16c matches plain") {
  struct Case {
    std::vector<Shape> shapes;
    int axis;
    int blocked;
  };
  for (const Case& c : std::vector<Case>{
           {{{2, 32, 6, 5}, {2, 16, 6, 5}}, 1, 3},                   // 48 channels
           {{{2, 16, 4, 4}, {2, 32, 4, 4}, {2, 16, 4, 4}}, 1, 4},    // three inputs
           {{{2, 16, 4, 3}, {2, 16, 4, 2}}, 3, 3},                   // along W
           {{{2, 16, 4, 4}, {2, 8, 4, 4}}, 1, 1},                    // y of 24 channels stays plain
           {{{2, 8, 4, 4}, {2, 8, 4, 4}}, 1, 1},                     // blocked y of plain inputs
       }) {
    CAPTURE(c.axis);
    NamedTensors inputs;
    const char* names[] = {"a", "b", "c"};
    for (size_t i = 0; i < c.shapes.size(); ++i) inputs.push_back({names[i], random_tensor(c.shapes[i], i)});
    CHECK(check_layouts_agree("nn.concat", {{"axis", c.axis}}, inputs) == c.blocked);
  }
}

TEST_CASE("nn.upsample on nChw16c matches plain") {
  struct Case {
    Shape x;
    int64_t scale;
  };
  for (const Case& c : std::vector<Case>{{{2, 32, 6, 5}, 2}, {{2, 16, 3, 4}, 3}, {{1, 64, 4, 4}, 1}}) {
    CAPTURE(shape_str(c.x));
    CAPTURE(c.scale);
    CHECK(check_layouts_agree("nn.upsample", {{"scale", c.scale}}, {{"x", random_tensor(c.x, 1)}}) == 2);
  }
}
