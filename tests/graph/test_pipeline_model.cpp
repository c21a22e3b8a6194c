// tests/graph/test_pipeline_model.cpp — what a valid pipeline becomes: params
// and substitution, subgraph instances, state loops, order, dot, resolved JSON.
//
//   src ──> a (blk: s1 -> s2) ──> b (blk: s1 -> s2) ──> c
//                  └── a.mid ─────────────────────────> d
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "graph/pipeline.hpp"
#include "runtime/node.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace noiseflow;
using graph::GraphError;
using graph::Json;
using graph::Shape;

namespace {

using test::load_options;

graph::Graph load_text(const std::string& text, const graph::LoadOptions& o = load_options()) {
  try {
    return graph::load_pipeline_text(text, "model/x.json", o);
  } catch (const GraphError& e) {
    FAIL("unexpected errors:\n", e.what());
    throw;
  }
}

graph::Graph load_file(const std::string& path, const graph::LoadOptions& o = load_options()) {
  try {
    return graph::load_pipeline(path, o);
  } catch (const GraphError& e) {
    FAIL("unexpected errors:\n", e.what());
    throw;
  }
}

const graph::GraphNode& node(const graph::Graph& g, const std::string& id) {
  int i = g.find(id);
  REQUIRE_MESSAGE(i >= 0, "no node ", id);
  return g.nodes[size_t(i)];
}

// The "node.output" feeding input `port` of node `id`.
std::string source_of(const graph::Graph& g, const std::string& id, const std::string& port) {
  const auto& n = node(g, id);
  int p = n.schema->input_index(port);
  REQUIRE(p >= 0);
  REQUIRE(n.inputs[size_t(p)].has_value());
  return g.ref_name(*n.inputs[size_t(p)]);
}

using noiseflow::test::TempDir;

// Every ordering edge goes from an earlier to a later position of g.order.
void check_order(const graph::Graph& g) {
  REQUIRE(g.order.size() == g.nodes.size());
  std::vector<int> pos(g.nodes.size(), -1);
  for (size_t k = 0; k < g.order.size(); ++k) pos[size_t(g.order[k])] = int(k);
  CHECK(std::count(pos.begin(), pos.end(), -1) == 0);
  size_t edges = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    for (size_t p = 0; p < n.inputs.size(); ++p) {
      if (!n.inputs[p] || n.schema->is_back_edge(n.schema->inputs()[p].name)) continue;
      ++edges;
      INFO(g.nodes[size_t(n.inputs[p]->node)].id, " -> ", n.id);
      CHECK(pos[size_t(n.inputs[p]->node)] < pos[i]);
    }
  }
  CHECK(edges > 0);
}

// A subgraph of two tensor.scale nodes, s1 (a = $k) then s2 (b = 1); checkable on its own.
const std::string kBlock = R"({
  "noiseflow": 1,
  "doc": "y = k * x + 1",
  "params": { "k": 2.0 },
  "inputs": { "x": { "shape": [2, 3] } },
  "outputs": { "out": "s2", "mid": "s1.y" },
  "nodes": {
    "s1": { "op": "tensor.scale", "inputs": { "x": "x" }, "attrs": { "a": "$k" } },
    "s2": { "op": "tensor.scale", "inputs": { "x": "s1" }, "attrs": { "b": 1.0 } }
  }
})";

const std::string kTop = R"({
  "noiseflow": 1,
  "name": "two-blocks",
  "include": { "blk": "nets/block.json" },
  "nodes": {
    "src": { "op": "random.normal", "attrs": { "shape": [2, 3] } },
    "a":   { "op": "blk", "inputs": { "x": "src" }, "attrs": { "k": 3.0 } },
    "b":   { "op": "blk", "inputs": { "x": "a.out" } },
    "c":   { "op": "tensor.scale", "inputs": { "x": "b.out" } },
    "d":   { "op": "tensor.scale", "inputs": { "x": "a.mid" } }
  },
  "run": { "ticks": 3, "seed": 5 }
})";

}  // namespace

TEST_CASE("params: $name keeps the type and ${name} formats into strings and overrides apply") {
  const std::string text = R"({
    "noiseflow": 1,
    "params": { "batch": 4, "std": 0.5, "name": "demo", "shape": [1, 1, 4, 4], "twice": "$batch" },
    "nodes": {
      "t":   { "op": "tick", "attrs": { "batch": "$batch", "offset": "$twice" } },
      "x":   { "op": "random.normal", "attrs": { "shape": "$shape", "std": "$std" } },
      "w":   { "op": "io.write_images", "inputs": { "images": "x" },
               "attrs": { "path": "runs/${name}/b${batch}_s${std}_$$1.png" }, "every": "$batch" }
    },
    "run": { "ticks": "$batch", "seed": 9 }
  })";
  SUBCASE("file defaults") {
    auto g = load_text(text);
    CHECK(node(g, "t").attrs["batch"] == 4);
    CHECK(node(g, "t").attrs["batch"].is_number_integer());
    CHECK(node(g, "t").attrs["offset"] == 4);  // a param referring to another param
    CHECK(node(g, "t").output_shapes == std::vector<Shape>{{4}});
    CHECK(node(g, "x").attrs["std"] == 0.5);
    CHECK(node(g, "x").attrs["shape"] == Json::array({1, 1, 4, 4}));
    CHECK(node(g, "w").attrs["path"] == "runs/demo/b4_s0.5_$1.png");
    CHECK(node(g, "w").every == 4);
    CHECK(g.ticks == 4);
    CHECK(g.seed == 9);
    CHECK(g.params["twice"] == 4);
    // Defaults are filled in.
    CHECK(node(g, "t").attrs["scale"] == 1);
    CHECK(node(g, "x").attrs["mean"] == 0.0);
  }
  SUBCASE("overrides, types kept") {
    auto g = load_text(text, load_options({{"batch", 6}, {"std", 2}, {"name", "other"}, {"shape", Json::array({1, 1, 2, 2})}}));
    CHECK(node(g, "t").output_shapes == std::vector<Shape>{{6}});
    CHECK(node(g, "t").attrs["offset"] == 6);  // params that refer to an overridden one follow it
    CHECK(node(g, "x").attrs["std"] == 2);
    CHECK(node(g, "x").output_shapes == std::vector<Shape>{{1, 1, 2, 2}});
    CHECK(node(g, "w").attrs["path"] == "runs/other/b6_s2_$1.png");
    CHECK(g.ticks == 6);
    CHECK(g.params["batch"] == 6);
  }
  SUBCASE("seed and ticks options win over run") {
    auto o = load_options();
    o.seed = 77;
    o.ticks = 2;
    auto g = load_text(text, o);
    CHECK(g.seed == 77);
    CHECK(g.ticks == 2);
  }
}

TEST_CASE("includes: subgraph instances with prefixed ids and their inputs and outputs") {
  TempDir dir;
  dir.write("nets/block.json", kBlock);
  const std::string top = dir.write("top.json", kTop);
  auto g = load_file(top);

  CHECK(g.name == "two-blocks");
  CHECK(g.ticks == 3);
  CHECK(g.seed == 5);
  std::vector<std::string> ids;
  for (auto& n : g.nodes) ids.push_back(n.id);
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"a.s1", "a.s2", "b.s1", "b.s2", "c", "d", "src"});
  // The subgraph's own `inputs` do not become nodes when it is included.
  CHECK(g.find("a.x") == -1);

  // Instance attrs set the subgraph's params.
  CHECK(node(g, "a.s1").attrs["a"] == 3.0);
  CHECK(node(g, "b.s1").attrs["a"] == 2.0);
  CHECK(node(g, "a.s2").attrs["b"] == 1.0);
  // Nodes remember the file that declared them.
  CHECK(fs::path(node(g, "a.s1").file).filename() == "block.json");
  CHECK(fs::path(node(g, "c").file).filename() == "top.json");

  // Wiring through instance inputs and outputs.
  CHECK(source_of(g, "a.s1", "x") == "src.y");
  CHECK(source_of(g, "a.s2", "x") == "a.s1.y");
  CHECK(source_of(g, "b.s1", "x") == "a.s2.y");  // "a.out"
  CHECK(source_of(g, "c", "x") == "b.s2.y");     // "b.out"
  CHECK(source_of(g, "d", "x") == "a.s1.y");     // "a.mid"
  for (auto& n : g.nodes) CHECK(n.output_shapes == std::vector<Shape>{{2, 3}});

  // Graph::resolve follows the same names for expanded ids.
  REQUIRE(g.resolve("a.s2").has_value());
  CHECK(g.ref_name(*g.resolve("a.s2")) == "a.s2.y");
  CHECK(g.ref_name(*g.resolve("a.s1.y")) == "a.s1.y");
  CHECK_FALSE(g.resolve("a.s3").has_value());
  CHECK_FALSE(g.resolve("a.s1.z").has_value());

  check_order(g);
}

// An instance named alone ("b") stands for its only output or the one named
// "out" (JSON objects keep no order, so "first declared" would be unreliable).
TEST_CASE("an instance named alone is its output named out") {
  TempDir dir;
  dir.write("nets/block.json", kBlock);
  std::string top = kTop;
  top.replace(top.find(R"("x": "b.out")"), 12, R"("x": "b")");
  auto g = load_file(dir.write("top.json", top));
  CHECK(source_of(g, "c", "x") == "b.s2.y");
}

TEST_CASE("nested includes prefix every level") {
  TempDir dir;
  dir.write("nets/block.json", kBlock);
  dir.write("nets/pair.json", R"({
    "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "second.out" },
    "include": { "blk": "block.json" },
    "nodes": {
      "first":  { "op": "blk", "inputs": { "x": "x" } },
      "second": { "op": "blk", "inputs": { "x": "first.out" }, "attrs": { "k": 4.0 } } } })");
  const std::string top = dir.write("top.json", R"({
    "noiseflow": 1, "include": { "pair": "nets/pair.json" },
    "nodes": {
      "src": { "op": "random.normal", "attrs": { "shape": [2, 3] } },
      "p":   { "op": "pair", "inputs": { "x": "src" } },
      "out": { "op": "tensor.scale", "inputs": { "x": "p" } } } })");  // pair's only output
  auto g = load_file(top);
  CHECK(g.nodes.size() == 6);
  CHECK(source_of(g, "p.first.s1", "x") == "src.y");
  CHECK(source_of(g, "p.second.s1", "x") == "p.first.s2.y");
  CHECK(source_of(g, "out", "x") == "p.second.s2.y");
  CHECK(node(g, "p.second.s1").attrs["a"] == 4.0);
  CHECK(node(g, "p.first.s1").attrs["a"] == 2.0);
  check_order(g);
}

TEST_CASE("a standalone subgraph file with input shapes is checkable") {
  TempDir dir;
  const std::string path = dir.write("block.json", kBlock);
  auto g = load_file(path);
  CHECK(g.nodes.size() == 3);
  CHECK(node(g, "x").op == "input");
  CHECK(node(g, "x").output_shapes == std::vector<Shape>{{2, 3}});
  CHECK(source_of(g, "s1", "x") == "x.y");
  CHECK(node(g, "s1").attrs["a"] == 2.0);
  CHECK(node(g, "s2").output_shapes == std::vector<Shape>{{2, 3}});
  // Its params are overridable like a pipeline's.
  auto g2 = load_file(path, load_options({{"k", 5.0}}));
  CHECK(node(g2, "s1").attrs["a"] == 5.0);
}

TEST_CASE("a state loop is accepted: state.next from downstream") {
  auto g = load_text(R"({
    "noiseflow": 1,
    "nodes": {
      "zero": { "op": "tensor.constant", "attrs": { "shape": [3], "fill": 0 } },
      "acc":  { "op": "state", "inputs": { "init": "zero", "next": "inc" } },
      "inc":  { "op": "tensor.scale", "inputs": { "x": "acc" }, "attrs": { "b": 1 } },
      "out":  { "op": "tensor.scale", "inputs": { "x": "inc" } }
    } })");
  CHECK(source_of(g, "acc", "next") == "inc.y");
  CHECK(node(g, "acc").output_shapes == std::vector<Shape>{{3}});
  CHECK(node(g, "inc").output_shapes == std::vector<Shape>{{3}});
  // The back edge is not an ordering edge: zero, acc, inc, out.
  std::vector<std::string> order;
  for (int i : g.order) order.push_back(g.nodes[size_t(i)].id);
  CHECK(order == std::vector<std::string>{"zero", "acc", "inc", "out"});
  check_order(g);
}

TEST_CASE("topological order respects every edge of a wide graph") {
  // Node ids are named against the dependency order, so an id-sorted or
  // declaration-ordered answer would be wrong.
  auto g = load_text(R"({
    "noiseflow": 1,
    "nodes": {
      "z":     { "op": "random.normal", "attrs": { "shape": [2, 1, 4, 4] } },
      "y1":    { "op": "tensor.scale", "inputs": { "x": "z" } },
      "y2":    { "op": "tensor.scale", "inputs": { "x": "z" } },
      "m":     { "op": "nn.add", "inputs": { "a": "y1", "b": "y2" } },
      "k":     { "op": "nn.add", "inputs": { "a": "m", "b": "y3" } },
      "y3":    { "op": "tensor.scale", "inputs": { "x": "y2" } },
      "sched": { "op": "diffusion.schedule", "attrs": { "T": 20 } },
      "t":     { "op": "diffusion.timesteps", "inputs": { "like": "k", "schedule": "sched" } },
      "e":     { "op": "random.normal", "inputs": { "like": "k" } },
      "a":     { "op": "diffusion.add_noise", "inputs": { "x0": "k", "noise": "e", "t": "t", "schedule": "sched" } }
    } })");
  check_order(g);
  CHECK(node(g, "t").output_shapes == std::vector<Shape>{{2}});
  CHECK(node(g, "sched").output_shapes[0] == Shape{8, 20});
  CHECK(node(g, "a").output_shapes == std::vector<Shape>{{2, 1, 4, 4}});
}

TEST_CASE("dot mentions every node and labels edges with shapes") {
  TempDir dir;
  dir.write("nets/block.json", kBlock);
  auto g = load_file(dir.write("top.json", kTop));
  const std::string dot = g.dot();
  CHECK(dot.rfind("digraph", 0) == 0);
  for (auto& n : g.nodes) {
    INFO(n.id);
    CHECK(dot.find("label=\"" + n.id + "\\n" + n.op + "\"") != std::string::npos);
  }
  CHECK(dot.find("label=\"x [2, 3]\"") != std::string::npos);
  // One edge line per connected pair ("->").
  size_t arrows = 0;
  for (size_t p = dot.find("->"); p != std::string::npos; p = dot.find("->", p + 2)) ++arrows;
  CHECK(arrows == 6);
}

TEST_CASE("resolved JSON reloads to the same graph") {
  TempDir dir;
  dir.write("nets/block.json", kBlock);
  auto g = load_file(dir.write("top.json", kTop));
  CHECK_FALSE(g.resolved.contains("include"));
  CHECK(g.resolved["run"]["ticks"] == 3);
  CHECK(g.resolved["run"]["seed"] == 5);

  auto g2 = graph::load_pipeline_text(g.resolved.dump(2), dir.path.string() + "/resolved.json", load_options());
  CHECK(g2.hash() == g.hash());
  CHECK(g2.resolved["nodes"] == g.resolved["nodes"]);
  CHECK(g2.nodes.size() == g.nodes.size());
  for (auto& n : g.nodes) {
    const auto& m = node(g2, n.id);
    CHECK(m.op == n.op);
    CHECK(m.output_shapes == n.output_shapes);
  }
  CHECK(g2.ticks == g.ticks);
  CHECK(g2.seed == g.seed);

  // The hash is a function of the nodes: another attribute value changes it.
  auto g3 = load_file(dir.path.string() + "/top.json");
  CHECK(g3.hash() == g.hash());
  std::string other = kTop;
  other.replace(other.find("3.0"), 3, "3.5");
  auto g4 = load_file(dir.write("top2.json", other));
  CHECK(g4.hash() != g.hash());
}

TEST_CASE("a state loop round-trips through resolved JSON") {
  auto g = load_text(R"({
    "noiseflow": 1, "params": { "n": 2 },
    "nodes": {
      "zero": { "op": "tensor.constant", "attrs": { "shape": ["$n"] } , "doc": "shape from a param" },
      "acc":  { "op": "state", "inputs": { "init": "zero", "next": "inc" } },
      "inc":  { "op": "tensor.scale", "inputs": { "x": "acc" }, "attrs": { "b": 1 } }
    } })");
  auto g2 = graph::load_pipeline_text(g.resolved.dump(), "model/resolved.json", load_options());
  CHECK(g2.hash() == g.hash());
  CHECK(node(g2, "zero").output_shapes == std::vector<Shape>{{2}});
}

TEST_CASE("param_count sums trainable parameters") {
  auto g = load_text(R"({
    "noiseflow": 1,
    "nodes": {
      "x":   { "op": "random.normal", "attrs": { "shape": [1, 3] } },
      "lin": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } }
    } })");
  CHECK(g.param_count() == 3 * 4 + 4);
}
