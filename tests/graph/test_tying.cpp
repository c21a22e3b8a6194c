// tests/graph/test_tying.cpp — "params_of" (weight tying) in pipelines: a node or a whole subgraph instance
// uses another's parameters; the loader resolves chains to the owner, writes the tie into the resolved
// pipeline, and names the file, the node and the field for every tie that cannot hold.
#include <doctest/doctest.h>

#include <string>

#include "graph/pipeline.hpp"
#include "runtime/node.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using graph::GraphError;
using test::load_options;
using test::TempDir;

namespace {

const graph::GraphNode& node(const graph::Graph& g, const std::string& id) {
  const int i = g.find(id);
  REQUIRE(i >= 0);
  return g.nodes[size_t(i)];
}

// The single diagnostic, as its line, of a pipeline that must fail to load.
std::string error_of(const std::string& path) {
  try {
    graph::load_pipeline(path, load_options());
  } catch (const GraphError& e) {
    REQUIRE(e.diagnostics.size() == 1);
    return e.diagnostics[0].code + " " + e.diagnostics[0].str();
  }
  FAIL("the pipeline loaded without errors");
  return {};
}

// A two-layer block: two linears and an activation (which has no parameters).
const std::string kBlock = R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "out": "l2" },
  "nodes": {
    "l1":  { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
    "act": { "op": "nn.silu", "inputs": { "x": "l1" } },
    "l2":  { "op": "nn.linear", "inputs": { "x": "act" }, "attrs": { "out_features": 4 } } } })";

std::string top(const std::string& nodes) {
  return R"({ "noiseflow": 1, "include": { "block": "block.json" }, "nodes": {
    "x":   { "op": "random.normal", "attrs": { "shape": [2, 4] } },)" + nodes + " } }";
}

}  // namespace

TEST_CASE("params_of on a subgraph instance ties each of its nodes to the same node of the other instance") {
  TempDir dir;
  dir.write("block.json", kBlock);
  const std::string path = dir.write("top.json", top(R"(
    "net":    { "op": "block", "inputs": { "x": "x" } },
    "target": { "op": "block", "inputs": { "x": "net" }, "params_of": "net" },
    "third":  { "op": "block", "inputs": { "x": "target" }, "params_of": "target" },
    "lone":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": "net.l1" })"));
  const graph::Graph g = graph::load_pipeline(path, load_options());
  CHECK(node(g, "net.l1").params_of.empty());
  CHECK(node(g, "target.l1").params_of == "net.l1");
  CHECK(node(g, "target.l2").params_of == "net.l2");
  CHECK(node(g, "target.act").params_of.empty());  // nothing to share
  CHECK(node(g, "third.l2").params_of == "net.l2");  // the chain ends at the owner
  CHECK(node(g, "lone").params_of == "net.l1");
  // The resolved pipeline carries the ties and loads to the same graph.
  CHECK(g.resolved["nodes"]["third.l1"]["params_of"] == "net.l1");
  CHECK_FALSE(g.resolved["nodes"]["net.l1"].contains("params_of"));
  const graph::Graph again = graph::load_pipeline_text(g.resolved.dump(), "resolved.json", load_options());
  CHECK(node(again, "third.l1").params_of == "net.l1");
  CHECK(again.hash() == g.hash());
}

TEST_CASE("params_of errors name the file, the node and the field") {
  TempDir dir;
  dir.write("block.json", kBlock);
  SUBCASE("no such node") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": "nett" },
      "nett2": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } })"));
    CHECK(error_of(p) == "unknown_node " + p + R"(: node "f", params_of: no node "nett" to share parameters with (did you mean "nett2"?))");
  }
  SUBCASE("another type") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "g": { "op": "nn.conv2d", "inputs": { "x": "img" }, "attrs": { "out_channels": 4 }, "params_of": "f" },
      "img": { "op": "random.normal", "attrs": { "shape": [1, 4, 4, 4] } })"));
    CHECK(error_of(p) == "tie_mismatch " + p + R"(: node "g", params_of: a nn.conv2d cannot use the parameters of "f", a nn.linear)");
  }
  SUBCASE("other shapes") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "g": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 }, "params_of": "f" })"));
    CHECK(error_of(p) == "tie_mismatch " + p + R"(: node "g", params_of: its parameters (weight [3, 4], bias [3]) differ )"
                                                R"(from those of "f" (weight [4, 4], bias [4]))");
  }
  SUBCASE("a node without parameters") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.silu", "inputs": { "x": "x" } },
      "g": { "op": "nn.silu", "inputs": { "x": "x" }, "params_of": "f" })"));
    CHECK(error_of(p) == "no_params " + p + R"(: node "g", params_of: node type nn.silu has no parameters to share)");
  }
  SUBCASE("an instance whose counterpart lacks a node") {
    dir.write("short.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "out": "l1" },
      "nodes": { "l1": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } } } })");
    const std::string p = dir.write("a.json", R"({ "noiseflow": 1, "include": { "block": "block.json", "short": "short.json" },
      "nodes": { "x": { "op": "random.normal", "attrs": { "shape": [2, 4] } },
        "s": { "op": "short", "inputs": { "x": "x" } },
        "b": { "op": "block", "inputs": { "x": "x" }, "params_of": "s" } } })");
    CHECK(error_of(p) == "unknown_node " + p + R"(: node "b", params_of: node "b.l2": no node "s.l2" to share parameters with (did you mean "s.l1"?))");
  }
  SUBCASE("a cycle") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": "g" },
      "g": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": "f" })"));
    try {
      graph::load_pipeline(p, load_options());
      FAIL("loaded");
    } catch (const GraphError& e) {
      REQUIRE(!e.diagnostics.empty());
      CHECK(e.diagnostics[0].code == "tie_cycle");
    }
  }
  SUBCASE("not a string") {
    const std::string p = dir.write("a.json", top(R"(
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": 3 })"));
    CHECK(error_of(p) == "wrong_type " + p + R"(: node "f", params_of: expected the id of another node or subgraph instance of the same type, got 3)");
  }
}
