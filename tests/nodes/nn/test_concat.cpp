// tests/nodes/nn/test_concat.cpp — nn.concat: forward and backward against naive slicing, shape and axis
// errors, nChw16c against plain, and its gradient cases.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

constexpr UniformTensors uniform{0x5eed};  // this suite's inputs, under its own key

// Row-major flat index of `idx` in `shape`.
int64_t flat(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t f = 0;
  for (size_t i = 0; i < shape.size(); ++i) f = f * shape[i] + idx[i];
  return f;
}

// Calls fn(idx) for every multi-index of shape.
template <class F>
void for_each_index(const Shape& shape, F fn) {
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t n = 0; n < noiseflow::graph::numel(shape); ++n) {
    fn(idx);
    for (int d = int(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Naive concatenation along axis.
Tensor naive_concat(const std::vector<Tensor>& xs, int axis) {
  Shape out = xs[0].shape();
  for (size_t i = 1; i < xs.size(); ++i) out[axis] += xs[i].dim(axis);
  Tensor y(out);
  int64_t off = 0;
  for (auto& x : xs) {
    for_each_index(x.shape(), [&](const std::vector<int64_t>& idx) {
      auto o = idx;
      o[axis] += off;
      y[flat(out, o)] = x[flat(x.shape(), idx)];
    });
    off += x.dim(axis);
  }
  return y;
}

}  // namespace

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp.
NOISEFLOW_GRAD_CASE("concat channels a,b", "nn.concat", "{}", {"a", {1, 2, 5, 7}}, {"b", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("concat channels a,b,c,d batch 3", "nn.concat", "{}", {"a", {3, 1, 2, 3}}, {"b", {3, 2, 2, 3}},
                    {"c", {3, 1, 2, 3}}, {"d", {3, 3, 2, 3}});
NOISEFLOW_GRAD_CASE("concat axis 0", "nn.concat", R"({"axis": 0})", {"a", {2, 3, 4}}, {"b", {1, 3, 4}},
                    {"c", {3, 3, 4}});
NOISEFLOW_GRAD_CASE("concat axis -1", "nn.concat", R"({"axis": -1})", {"a", {2, 3, 4}}, {"b", {2, 3, 5}});

TEST_CASE("nn.concat forward and backward match naive slicing") {
  struct Case {
    std::vector<Shape> shapes;
    int axis;
  };
  std::vector<Case> cases = {
      {{{1, 2, 5, 7}, {1, 3, 5, 7}}, 1},
      {{{3, 6, 5, 7}, {3, 1, 5, 7}, {3, 4, 5, 7}}, 1},
      {{{2, 3, 5, 7}, {2, 3, 5, 7}, {2, 3, 5, 7}, {2, 3, 5, 7}}, 1},
      {{{2, 3, 5, 7}, {1, 3, 5, 7}}, 0},
      {{{2, 3, 5, 7}, {2, 3, 5, 2}, {2, 3, 5, 1}}, -1},
      {{{4, 3}, {4, 5}}, 1},
      {{{2, 3, 4, 5}, {2, 3, 1, 5}}, 2},
  };
  const char* names[] = {"a", "b", "c", "d"};
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    auto& cs = cases[ci];
    CAPTURE(ci);
    NamedTensors inputs;
    std::vector<Tensor> xs;
    for (size_t i = 0; i < cs.shapes.size(); ++i) {
      xs.push_back(uniform(cs.shapes[i], 10 * ci + i));
      inputs.push_back({names[i], xs.back()});
    }
    int rank = int(cs.shapes[0].size());
    int axis = cs.axis < 0 ? cs.axis + rank : cs.axis;
    NodeHarness h("nn.concat", {{"axis", cs.axis}}, inputs);
    h.forward();
    Tensor ref = naive_concat(xs, axis);
    REQUIRE(h.output().shape() == ref.shape());
    for (int64_t i = 0; i < ref.numel(); ++i) REQUIRE(h.output()[i] == ref[i]);

    // Backward: the gradient of each input is its slice of dy.
    Tensor dy = uniform(ref.shape(), 1000 + ci);
    h.backward({{"y", dy}});
    int64_t off = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const Tensor& dx = h.grad_input(names[i]);
      REQUIRE(dx.shape() == xs[i].shape());
      for_each_index(xs[i].shape(), [&](const std::vector<int64_t>& idx) {
        auto o = idx;
        o[axis] += off;
        REQUIRE(dx[flat(xs[i].shape(), idx)] == dy[flat(ref.shape(), o)]);
      });
      off += xs[i].dim(axis);
    }
  }
}

TEST_CASE("nn.concat rejects mismatched shapes and bad axes") {
  auto expect_fail = [](const Json& attrs, const NamedTensors& in, const std::string& field) {
    try {
      NodeHarness h("nn.concat", attrs, in);
      FAIL("no error for field " << field);
    } catch (const noiseflow::graph::ShapeError& e) {
      CHECK(e.field == field);
      CHECK(std::string(e.what()).size() > 10);
    }
  };
  Tensor a({2, 3, 4, 5}), b({2, 3, 4, 6}), c({2, 1, 4, 5}), r3({2, 3, 4});
  expect_fail({}, {{"a", a}, {"b", b}}, "b");               // W differs outside axis 1
  expect_fail({}, {{"a", a}, {"b", c}, {"c", b}}, "c");
  expect_fail({}, {{"a", a}, {"b", r3}}, "b");              // rank differs
  expect_fail({{"axis", 4}}, {{"a", a}, {"b", a}}, "axis");  // out of range for rank 4
  expect_fail({{"axis", -5}}, {{"a", a}, {"b", a}}, "axis");
  expect_fail({}, {{"a", a}, {"b", c}, {"d", c}}, "d");     // d without c
  // The shape error names both shapes.
  try {
    NodeHarness h("nn.concat", {}, {{"a", a}, {"b", b}});
  } catch (const noiseflow::graph::ShapeError& e) {
    CHECK(std::string(e.what()).find("[2, 3, 4, 6]") != std::string::npos);
    CHECK(std::string(e.what()).find("[2, 3, 4, 5]") != std::string::npos);
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
