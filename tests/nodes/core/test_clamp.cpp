// tests/nodes/core/test_clamp.cpp — tensor.clamp: y = min(max(x, min), max), its gradient (passed inside
// the bounds, zero outside) in closed form and by central differences, its gradient cases, the bounds' check
// and its ONNX mapping (Clip).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/export/onnx.hpp"
#include "runtime/harness.hpp"
#include "tests/nodes/gradcheck.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

constexpr UniformTensors uniform{0xc1a3};  // this suite's inputs, under its own key

// Finite-difference gradient cases (tests/nodes/gradcheck.hpp), run by tests/nodes/test_gradients.cpp: inputs on
// both sides of the bounds, and all inside them.
NOISEFLOW_GRAD_CASE("tensor.clamp min=-0.5 max=0.5", "tensor.clamp", R"({"min": -0.5, "max": 0.5})", {"x", {2, 5}});
static const bool clamp_inside = noiseflow::testing::register_grad_case([] {
  noiseflow::testing::GradCase c;
  c.name = "tensor.clamp inside the bounds";
  c.op = "tensor.clamp";
  c.attrs = {{"min", -2.0}, {"max", 2.0}};
  c.inputs = {{"x", {3, 4}}};
  c.lo = -1.5f, c.hi = 1.5f;
  return c;
}());

TEST_CASE("tensor.clamp y = min(max(x, min), max), the gradient passes inside the bounds only") {
  // Below, at and above each bound, and inside.
  const std::vector<float> v{-3.f, -1.f, -0.75f, -0.2f, 0.f, 0.4f, 0.5f, 0.9f, 2.5f, -0.5f, 0.3f, 7.f};
  Tensor x({3, 4});
  std::memcpy(x.data(), v.data(), v.size() * sizeof(float));
  NodeHarness h("tensor.clamp", {{"min", -0.5}, {"max", 0.5}}, {{"x", x}});
  h.forward();
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(h.output("y")[i] == std::min(std::max(x[i], -0.5f), 0.5f));
  const Tensor r = uniform({3, 4}, 1);
  h.backward({{"y", r}});
  for (int64_t i = 0; i < x.numel(); ++i) {
    CAPTURE(x[i]);
    CHECK(h.grad_input("x")[i] == (x[i] > -0.5f && x[i] < 0.5f ? r[i] : 0.f));
  }
  // Over stale values: overwritten, not accumulated.
  h.grad_input("x").fill(99.f);
  h.node().backward(h.ctx());
  CHECK(h.grad_input("x")[0] == 0.f);
  CHECK(h.grad_input("x")[3] == r[3]);

  // Away from the kinks the gradient is the derivative (the values at the bounds moved off them).
  Tensor smooth = x.clone();
  smooth[6] = 0.6f;
  smooth[9] = -0.6f;
  NodeHarness fd("tensor.clamp", {{"min", -0.5}, {"max", 0.5}}, {{"x", smooth}});
  CHECK(fd_error(fd, "x", "y", r, 1e-3) < 1e-3);
  // The defaults are [-1, 1].
  NodeHarness def("tensor.clamp", {}, {{"x", x}});
  def.forward();
  CHECK(def.output("y")[0] == -1.f);
  CHECK(def.output("y")[8] == 1.f);
  CHECK(def.output("y")[2] == -0.75f);
}

TEST_CASE("tensor.clamp: max below min is refused naming max") {
  try {
    NodeHarness h("tensor.clamp", {{"min", 1.0}, {"max", 0.0}}, {{"x", uniform({2}, 2)}});
    FAIL("no error");
  } catch (const noiseflow::graph::ShapeError& e) {
    CHECK(e.field == "max");
    CHECK(std::string(e.what()) == "must be >= min, got max 0.0 < min 1.0");
  }
}

TEST_CASE("tensor.clamp exports to ONNX as Clip with its bounds") {
  TempDir dir;
  const std::string file = dir.write("clamp_net.json", R"({
    "noiseflow": 1,
    "inputs": { "x": { "shape": [2, 3] } },
    "outputs": { "out": "clip" },
    "nodes": { "clip": { "op": "tensor.clamp", "inputs": { "x": "x" }, "attrs": { "min": -0.25, "max": 2 } } }
  })");
  const auto g = noiseflow::graph::load_pipeline(file, load_options());
  const auto net = onnx::select_net(g);
  const onnx::Model m = onnx::build_model(g, net, {});
  REQUIRE(m.nodes.size() == 1);
  const onnx::OpNode& clip = m.nodes[0];
  CHECK(clip.op_type == "Clip");
  CHECK(clip.name == "clip");
  CHECK(clip.outputs == std::vector<std::string>{"eps"});
  REQUIRE(clip.inputs.size() == 3);
  CHECK(clip.inputs[0] == "x");
  auto scalar = [&](const std::string& name) {
    for (auto& t : m.initializers)
      if (t.name == name) {
        REQUIRE(t.dims.empty());
        REQUIRE(t.raw.size() == 4);
        float f;
        std::memcpy(&f, t.raw.data(), 4);
        return f;
      }
    FAIL("no initializer ", name);
    return 0.f;
  };
  CHECK(scalar(clip.inputs[1]) == -0.25f);
  CHECK(scalar(clip.inputs[2]) == 2.f);
  CHECK(!m.serialize().empty());
}
