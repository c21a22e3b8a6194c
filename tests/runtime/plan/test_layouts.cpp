// tests/runtime/plan/test_layouts.cpp — which tensors the layout planner blocks, and where it converts.
#include <doctest/doctest.h>

#include "runtime/plan/layouts.hpp"
#include "tests/runtime/plan/plan_graphs.hpp"

using namespace noiseflow;
using runtime::Layout;
using runtime::plan::plan_layouts;
using test::node_index;

TEST_CASE("layouts: the diamond's conv region is nChw16c, the plain-only loss reads a converted copy") {
  const auto g = test::load_graph(test::kDiamond);
  const auto lp = plan_layouts(g, false);
  for (const char* id : {"a", "l", "r", "m", "c"}) {
    CAPTURE(id);
    CHECK(lp.layouts[size_t(node_index(g, id))][0] == Layout::nChw16c);
  }
  // random.normal is plain-only: its tensors stay plain, the convolution reads them as they are.
  CHECK(lp.layouts[size_t(node_index(g, "x"))][0] == Layout::plain);
  CHECK(lp.layouts[size_t(node_index(g, "eps"))][0] == Layout::plain);
  // loss.mse handles plain tensors only: one conversion, for its `pred` port.
  REQUIRE(lp.conversions.size() == 1);
  CHECK(lp.conversions[0].value.node == node_index(g, "c"));
  CHECK(lp.conversions[0].node == node_index(g, "loss"));
  CHECK(g.nodes[size_t(node_index(g, "loss"))].schema->inputs()[size_t(lp.conversions[0].port)].name == "pred");
}

TEST_CASE("layouts: a region with one tensor that cannot be blocked stays plain") {
  // 24 channels: not a multiple of 16, so the whole uniform region (conv a -> silu -> conv b input) is plain.
  const auto g = test::load_graph(R"({ "noiseflow": 1, "nodes": {
      "x": { "op": "random.normal", "attrs": { "shape": [1, 16, 4, 4] } },
      "a": { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 24 } },
      "s": { "op": "nn.silu", "inputs": { "x": "a" } },
      "b": { "op": "nn.conv2d", "inputs": { "x": "s" }, "attrs": { "out_channels": 16 } } } })");
  const auto lp = plan_layouts(g, false);
  CHECK(lp.layouts[size_t(node_index(g, "a"))][0] == Layout::plain);
  CHECK(lp.layouts[size_t(node_index(g, "s"))][0] == Layout::plain);
  CHECK(lp.layouts[size_t(node_index(g, "b"))][0] == Layout::nChw16c);  // an `any` output alone: blocked
  CHECK(lp.conversions.empty());
}

TEST_CASE("layouts: the straightforward path keeps everything plain") {
  const auto g = test::load_graph(test::kDiamond);
  const auto lp = plan_layouts(g, true);
  for (const auto& outs : lp.layouts)
    for (Layout l : outs) CHECK(l == Layout::plain);
  CHECK(lp.conversions.empty());
}
