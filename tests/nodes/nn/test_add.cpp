// tests/nodes/nn/test_add.cpp — nn.add: trailing (numpy) and leading broadcasts against a naive loop, shape
// errors, nChw16c against plain, and its gradient cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using noiseflow::graph::Shape;
using noiseflow::graph::shape_str;

namespace {

constexpr UniformTensors uniform{12345};  // this suite's inputs, under its own key

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

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("add same shape", "nn.add", "{}", {"a", {2, 3, 5}}, {"b", {2, 3, 5}});
NOISEFLOW_GRAD_CASE("add trailing bias", "nn.add", "{}", {"a", {3, 4, 5}}, {"b", {5}});
NOISEFLOW_GRAD_CASE("add trailing both ways", "nn.add", "{}", {"a", {3, 1, 5}}, {"b", {4, 1}});
NOISEFLOW_GRAD_CASE("add trailing scalar", "nn.add", "{}", {"a", {2, 3, 4}}, {"b", {1}});
NOISEFLOW_GRAD_CASE("add leading [N,C] onto NCHW", "nn.add", R"({"align": "leading"})", {"a", {3, 4, 5, 7}},
                    {"b", {3, 4}});
NOISEFLOW_GRAD_CASE("add leading [N] batch 1", "nn.add", R"({"align": "leading"})", {"a", {1, 2, 3}}, {"b", {1}});
NOISEFLOW_GRAD_CASE("add leading [1,C,1] onto [N,C,H]", "nn.add", R"({"align": "leading"})", {"a", {3, 2, 5}},
                    {"b", {1, 2, 1}});

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
