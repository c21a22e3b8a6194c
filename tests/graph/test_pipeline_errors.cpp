// tests/graph/test_pipeline_errors.cpp — malformed pipelines, each checked for
// its exact message line (`FILE: node "ID", FIELD: message`) and stable code.
//
// Node types come from the real registry (every test executable links the
// whole node library), so validation is driven by the real schemas.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/node.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace noiseflow;
using graph::Diagnostic;
using graph::GraphError;
using graph::Json;

namespace {

using test::load_options;

// The diagnostics of a pipeline that must fail to load.
std::vector<Diagnostic> errors(const std::string& text, const graph::LoadOptions& o = load_options(),
                               const std::string& path = "bad/x.json") {
  try {
    graph::load_pipeline_text(text, path, o);
  } catch (const GraphError& e) {
    return e.diagnostics;
  }
  FAIL("the pipeline loaded without errors");
  return {};
}

// Every diagnostic, one per line with its code (for failure messages).
std::string dump(const std::vector<Diagnostic>& d) {
  std::string all;
  for (auto& x : d) all += "\n  [" + x.code + "] " + x.str();
  return all;
}

// The single diagnostic of a pipeline with exactly one problem.
Diagnostic one_error(const std::string& text, const graph::LoadOptions& o = load_options(),
                     const std::string& path = "bad/x.json") {
  auto d = errors(text, o, path);
  INFO("diagnostics:", dump(d));
  REQUIRE(d.size() == 1);
  return d[0];
}

// A pipeline text: `nodes` is the body of the "nodes" object.
std::string pipeline(const std::string& nodes, const std::string& extra = "") {
  return R"({ "noiseflow": 1, )" + extra + R"( "nodes": { )" + nodes + " } }";
}

using noiseflow::test::TempDir;

// Replaces the first `from` in `text` (which must contain it).
void replace(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "no ", from);
  text.replace(at, from.size(), to);
}

// A valid forward-process fragment on random data: x, eps, sched, t, xt.
const std::string kForward = R"(
  "x":     { "op": "random.normal", "attrs": { "shape": [4, 1, 8, 8] } },
  "eps":   { "op": "random.normal", "inputs": { "like": "x" } },
  "sched": { "op": "diffusion.schedule", "attrs": { "T": 10 } },
  "t":     { "op": "diffusion.timesteps", "inputs": { "like": "x", "schedule": "sched" } },
  "xt":    { "op": "diffusion.add_noise", "inputs": { "x0": "x", "noise": "eps", "t": "t", "schedule": "sched" } }
)";

}  // namespace

TEST_CASE("the valid fragment used below loads") {
  auto g = graph::load_pipeline_text(pipeline(kForward), "good/x.json", load_options());
  CHECK(g.nodes.size() == 5);
}

TEST_CASE("JSON syntax error: line and column") {
  const std::string text =
      "{\n"
      "  \"noiseflow\": 1,\n"
      "  \"nodes\": {\n"
      "    \"a\": { \"op\": \"tick\" },\n"
      "  }\n"
      "}\n";
  auto d = one_error(text);
  CHECK(d.code == "syntax_error");
  CHECK(d.str() == "bad/x.json:5:3: syntax error while parsing object key - unexpected '}'; expected string literal");

  SUBCASE("unterminated string on line 2") {
    auto d2 = one_error("{\n  \"noiseflow: 1\n}");
    CHECK(d2.code == "syntax_error");
    CHECK(d2.file == "bad/x.json:2:16");
  }
}

TEST_CASE("a number beyond double's range is an error at its line and column") {
  auto d = one_error("{\n  \"noiseflow\": 1,\n  \"params\": { \"x\": -1e400 }\n}");
  CHECK(d.code == "number_out_of_range");
  CHECK(d.str() == "bad/x.json:3:20: the number -1e400 is out of range (beyond a double's largest, about 1.8e308)");
  CHECK(one_error("1e381").str() == "bad/x.json:1:1: the number 1e381 is out of range (beyond a double's largest, about 1.8e308)");
}

TEST_CASE("nesting deeper than 100 levels is an error at the bracket that goes too deep") {
  // 300,000 levels overflowed the stack (nlohmann copies and dumps recursively).
  const std::string deep = "{ \"noiseflow\": 1, \"params\": { \"a\": " + std::string(300000, '[') + std::string(300000, ']') + " } }";
  auto d = one_error(deep);
  CHECK(d.code == "too_deep");
  CHECK(d.str() == "bad/x.json:1:134: nested deeper than 100 levels of [ and {");
  // Brackets inside strings do not count; 100 levels are fine.
  const std::string ok = pipeline(R"("x": { "op": "input", "attrs": { "shape": [1] } })",
                                  "\"doc\": \"" + std::string(500, '[') + "\", \"params\": { \"a\": " + std::string(97, '[') +
                                      std::string(97, ']') + " },");
  CHECK_NOTHROW(graph::load_pipeline_text(ok, "bad/x.json", load_options()));
}

TEST_CASE("params that expand exponentially or nest too deep are one error, not an exhausted memory") {
  // 26 params, each "${previous}${previous}": 705 bytes that made 1 GB of string (and a bad_alloc).
  std::string params = R"("a": "xxxxxxxxxxxxxxxx")", prev = "a";
  for (int i = 0; i < 26; ++i) {
    std::string k = "b";
    k += std::to_string(100 + i);
    params.append(", \"").append(k).append("\": \"${").append(prev).append("}${").append(prev).append("}\"");
    prev = k;
  }
  auto d = one_error(pipeline(R"("x": { "op": "input", "attrs": { "shape": [1] } })", "\"params\": {" + params + "},"));
  CHECK(d.code == "params_too_large");
  CHECK(d.str() == "bad/x.json: params/b118: substituting params makes more than 16777216 values and characters "
                   "(params built from other params many times over?)");
  // The same with whole values: lists of lists.
  params = R"("a": [1, 2, 3, 4, 5, 6, 7, 8])", prev = "a";
  for (int i = 0; i < 30; ++i) {
    std::string k = "b";
    k += std::to_string(100 + i);
    params.append(", \"").append(k).append("\": [\"$").append(prev).append("\", \"$").append(prev).append("\"]");
    prev = k;
  }
  CHECK(one_error(pipeline(R"("x": { "op": "input", "attrs": { "shape": [1] } })", "\"params\": {" + params + "},")).code ==
        "params_too_large");
  // Each param one level deeper than the one before.
  params = R"("a": 1)", prev = "a";
  for (int i = 0; i < 120; ++i) {
    std::string k = "b";
    k += std::to_string(100 + i);
    params.append(", \"").append(k).append("\": [\"$").append(prev).append("\"]");
    prev = k;
  }
  d = one_error(pipeline(R"("x": { "op": "input", "attrs": { "shape": [1] } })", "\"params\": {" + params + "},"));
  CHECK(d.str() == "bad/x.json: params/b200: substituting params nests deeper than 100 levels");
}

TEST_CASE("a name that is not a string is an error") {
  for (const char* name : {"{}", "[\"a\"]", "7", "null"}) {
    auto d = one_error(pipeline(R"("x": { "op": "input", "attrs": { "shape": [1] } })", std::string("\"name\": ") + name + ","));
    CHECK(d.code == "wrong_type");
    CHECK(d.str() == std::string("bad/x.json: name: expected the pipeline's name as a string, got ") + name);
  }
}

TEST_CASE("empty file") {
  for (const char* text : {"", "  \n\t\n"}) {
    auto d = one_error(text);
    CHECK(d.code == "empty_file");
    CHECK(d.str() == R"(bad/x.json: the file is empty (expected a JSON object with "noiseflow": 1))");
  }
}

TEST_CASE("top level: not an object / missing version / unknown key") {
  auto d = one_error("[1, 2]");
  CHECK(d.code == "not_an_object");
  CHECK(d.str() == R"(bad/x.json: expected a JSON object with "noiseflow": 1)");

  d = one_error(R"({ "nodes": { "t": { "op": "tick" } } })");
  CHECK(d.code == "missing_version");
  CHECK(d.str() == R"(bad/x.json: noiseflow: missing "noiseflow": 1 (the format version))");

  d = one_error(pipeline(R"("t": { "op": "tick" })", R"("parms": { "a": 1 },)"));
  CHECK(d.code == "unknown_key");
  CHECK(d.str() == R"(bad/x.json: parms: unknown top-level key (did you mean "params"?))");
}

TEST_CASE("top level: the studio's layout section is accepted and ignored, a near miss is still unknown") {
  const std::string nodes = R"("t": { "op": "tick" })";
  const auto plain = graph::load_pipeline_text(pipeline(nodes), "ok/x.json", load_options());
  const auto laid_out = graph::load_pipeline_text(
      pipeline(nodes, R"("layout": { "nodes": { "t": [120, -40.5], "gone": [0, 0] }, "anything": true },)"),
      "ok/x.json", load_options());
  CHECK(laid_out.nodes.size() == plain.nodes.size());
  CHECK(laid_out.params == plain.params);
  // Whatever the section holds, the loader does not look inside it.
  CHECK_NOTHROW(graph::load_pipeline_text(pipeline(nodes, R"("layout": 7,)"), "ok/x.json", load_options()));

  auto d = one_error(pipeline(nodes, R"("layot": { "nodes": {} },)"));
  CHECK(d.code == "unknown_key");
  CHECK(d.str() == R"(bad/x.json: layot: unknown top-level key (did you mean "layout"?))");
  d = one_error(pipeline(nodes, R"("positions": { "t": [0, 0] },)"));
  CHECK(d.code == "unknown_key");
}

TEST_CASE("unknown op with a nearest-name suggestion") {
  std::string nodes = kForward;
  replace(nodes, R"("diffusion.add_noise")", R"("diffusion.add_nois")");
  auto d = one_error(pipeline(nodes));
  CHECK(d.code == "unknown_op");
  CHECK(d.node == "xt");
  CHECK(d.str() == R"(bad/x.json: node "xt", op: unknown node type "diffusion.add_nois" (did you mean "diffusion.add_noise"?))");

  SUBCASE("nothing close: no suggestion") {
    auto d2 = one_error(pipeline(R"("q": { "op": "completely.different" })"));
    CHECK(d2.code == "unknown_op");
    CHECK(d2.str() == R"(bad/x.json: node "q", op: unknown node type "completely.different")");
  }
  SUBCASE("missing op") {
    auto d2 = one_error(pipeline(R"("q": { "attrs": {} })"));
    CHECK(d2.code == "missing_op");
    CHECK(d2.str() == R"(bad/x.json: node "q", op: missing "op" (the node type))");
  }
}

TEST_CASE("misspelt input port") {
  std::string nodes = kForward;
  replace(nodes, R"("noise": "eps")", R"("nosie": "eps")");
  auto d = errors(pipeline(nodes));
  // The misspelt port, then the required port it left unconnected.
  REQUIRE(d.size() == 2);
  CHECK(d[0].code == "unknown_input");
  CHECK(d[0].str() == R"(bad/x.json: node "xt", input "nosie": node type diffusion.add_noise has no input "nosie" (did you mean "noise"?))");
  CHECK(d[1].code == "missing_input");
  CHECK(d[1].str() == R"(bad/x.json: node "xt", input "noise": required input is not connected (diffusion.add_noise needs "noise"))");
}

TEST_CASE("input referencing a missing node gets a suggestion") {
  std::string nodes = kForward;
  replace(nodes, R"("t": "t")", R"("t": "tt")");
  auto d = one_error(pipeline(nodes));
  CHECK(d.code == "unknown_node");
  CHECK(d.str() == R"(bad/x.json: node "xt", input "t": no node "tt" (did you mean "t"?))");

  SUBCASE("a missing output of an existing node") {
    std::string n2 = kForward;
    replace(n2, R"("like": "x", "schedule": "sched")", R"("like": "x", "schedule": "sched.tabel")");
    auto d2 = one_error(pipeline(n2));
    CHECK(d2.code == "unknown_output");
    CHECK(d2.str() == R"(bad/x.json: node "t", input "schedule": node "sched" (diffusion.schedule) has no output "tabel" (did you mean "table"?))");
  }
}

TEST_CASE("an input reading a node without outputs is an error, not a crash") {
  // Found by review: a bare reference to an optimizer was taken as its output 0, which it lacks (SIGSEGV).
  auto d = one_error(pipeline(R"(
    "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
    "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
    "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
    "opt":  { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.1 } },
    "s":    { "op": "tensor.scale", "inputs": { "x": "opt" } })"));
  CHECK(d.code == "unknown_output");
  CHECK(d.str() == R"(bad/x.json: node "s", input "x": node "opt" (optim.sgd) has no outputs to read)");
}

TEST_CASE("missing required attribute") {
  auto d = one_error(pipeline(R"(
    "x": { "op": "random.normal", "attrs": { "shape": [2, 3] } },
    "r": { "op": "tensor.repeat", "inputs": { "x": "x" } })"));
  CHECK(d.code == "missing_attr");
  CHECK(d.str() == R"(bad/x.json: node "r", attr "times": missing required attribute (int))");
}

TEST_CASE("unknown attribute") {
  auto d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "kinds": "linear" } })"));
  CHECK(d.code == "unknown_attr");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "kinds": node type diffusion.schedule has no attribute "kinds" (did you mean "kind"?))");
}

TEST_CASE("wrong attribute type") {
  auto d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": "many" } })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "T": expected an integer, got "many")");

  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": 10.5 } })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "T": expected an integer, got 10.5)");

  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "beta_end": "0.02" } })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "beta_end": expected a number, got "0.02")");

  d = one_error(pipeline(R"("x": { "op": "random.normal", "attrs": { "shape": [2, 3.5] } })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "x", attr "shape": expected a list of integers, got [2,3.5])");

  d = one_error(pipeline(R"("x": { "op": "random.normal", "attrs": { "shape": [2, 3] } },
                           "l": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2, "bias": 1 } })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "l", attr "bias": expected true or false, got 1)");
}

TEST_CASE("value out of range") {
  auto d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": 0 } })"));
  CHECK(d.code == "value_below_min");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "T": value 0 is below the minimum 1)");

  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": 200000 } })"));
  CHECK(d.code == "value_above_max");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "T": value 200000 is above the maximum 100000)");

  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "beta_start": -0.25 } })"));
  CHECK(d.code == "value_below_min");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "beta_start": value -0.25 is below the minimum 0)");

  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "beta_end": 1.5 } })"));
  CHECK(d.code == "value_above_max");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "beta_end": value 1.5 is above the maximum 1)");
}

TEST_CASE("bad string choice") {
  auto d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "kind": "cosin" } })"));
  CHECK(d.code == "bad_choice");
  CHECK(d.str() == R"(bad/x.json: node "s", attr "kind": value "cosin" is not one of "linear", "cosine", "sigmoid" (did you mean "cosine"?))");
}

TEST_CASE("shape mismatch") {
  SUBCASE("add_noise with noise of a different shape") {
    std::string nodes = kForward;
    replace(nodes, R"("inputs": { "like": "x" } })", R"("attrs": { "shape": [4, 1, 8, 9] } })");
    auto d = one_error(pipeline(nodes));
    CHECK(d.code == "shape_mismatch");
    CHECK(d.str() == R"(bad/x.json: node "xt", input "noise": noise shape [4, 1, 8, 9] differs from x0 shape [4, 1, 8, 8])");
  }
  SUBCASE("a state whose next differs from its init") {
    auto d = one_error(pipeline(R"(
      "zero": { "op": "tensor.constant", "attrs": { "shape": [3], "fill": 0 } },
      "acc":  { "op": "state", "inputs": { "init": "zero", "next": "grow" } },
      "grow": { "op": "tensor.repeat", "inputs": { "x": "acc" }, "attrs": { "times": 2 } })"));
    CHECK(d.code == "shape_mismatch");
    CHECK(d.str() == R"(bad/x.json: node "acc", input "next": shape [6] does not match the state's shape [3])");
  }
  SUBCASE("one mistake, one message: consumers of a bad node are not reported") {
    std::string nodes = kForward;
    replace(nodes, R"("inputs": { "like": "x" } })", R"("attrs": { "shape": [4, 1, 8, 9] } })");
    nodes += R"(, "y": { "op": "tensor.scale", "inputs": { "x": "xt" } })";
    auto d = errors(pipeline(nodes));
    CHECK(d.size() == 1);
  }
}

TEST_CASE("a cycle not through a state node") {
  auto d = one_error(pipeline(R"(
    "src": { "op": "random.normal", "attrs": { "shape": [2] } },
    "a":   { "op": "nn.add", "inputs": { "a": "src", "b": "c" } },
    "b":   { "op": "tensor.scale", "inputs": { "x": "a" } },
    "c":   { "op": "tensor.scale", "inputs": { "x": "b" } })"));
  CHECK(d.code == "cycle");
  CHECK(d.str() == R"(bad/x.json: node "a", inputs: cycle a -> b -> c -> a (only a state node's "next" input may close a loop))");

  SUBCASE("a node feeding itself") {
    auto d2 = one_error(pipeline(R"("s": { "op": "tensor.scale", "inputs": { "x": "s" } })"));
    CHECK(d2.code == "cycle");
    CHECK(d2.str() == R"(bad/x.json: node "s", inputs: cycle s -> s (only a state node's "next" input may close a loop))");
  }
}

TEST_CASE("every / at_end on a non-sink node") {
  auto d = one_error(pipeline(R"("t": { "op": "tick", "every": 5 })"));
  CHECK(d.code == "not_a_sink");
  CHECK(d.str() == R"(bad/x.json: node "t", every: only sink nodes take every/at_end (tick is not a sink))");

  d = one_error(pipeline(R"("t": { "op": "tick", "at_end": true })"));
  CHECK(d.code == "not_a_sink");
  CHECK(d.str() == R"(bad/x.json: node "t", at_end: only sink nodes take every/at_end (tick is not a sink))");

  d = one_error(pipeline(R"("t": { "op": "tick", "every": 0 })"));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: node "t", every: expected an integer >= 1, got 0)");
}

TEST_CASE("unknown param in $x and ${x}") {
  auto d = errors(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": "$step" } })",
                           R"("params": { "steps": 10 },)"));
  INFO("diagnostics:", dump(d));
  REQUIRE(!d.empty());
  CHECK(d[0].code == "unknown_param");
  CHECK(d[0].str() == R"(bad/x.json: node "s", attr "T": unknown param "$step" (did you mean "steps"?))");

  auto d2 = one_error(pipeline(R"("w": { "op": "io.write_images", "inputs": { "images": "x" }, "attrs": { "path": "runs/${nme}/x.png" } },
                                  "x": { "op": "random.normal", "attrs": { "shape": [1, 1, 4, 4] } })",
                               R"("params": { "name": "a" },)"));
  CHECK(d2.code == "unknown_param");
  CHECK(d2.str() == R"(bad/x.json: node "w", attr "path": unknown param "${nme}" (did you mean "name"?))");

  // In the run block and in input references.
  auto d3 = errors(pipeline(R"("t": { "op": "tick" })", R"("run": { "ticks": "$n" },)"));
  INFO("diagnostics:", dump(d3));
  REQUIRE(!d3.empty());
  CHECK(d3[0].code == "unknown_param");
  CHECK(d3[0].str() == R"(bad/x.json: run: unknown param "$n")");

  auto d4 = errors(pipeline(R"("t": { "op": "tick" }, "s": { "op": "tensor.scale", "inputs": { "x": "$src" } })",
                            R"("params": { "sr": "t" },)"));
  INFO("diagnostics:", dump(d4));
  REQUIRE(!d4.empty());
  CHECK(d4[0].code == "unknown_param");
  CHECK(d4[0].str() == R"(bad/x.json: node "s", input "x": unknown param "$src" (did you mean "sr"?))");
}

// KNOWN ISSUE (reported): an unknown "$param" is reported twice, once as
// unknown_param and again for the unsubstituted "$step" string (wrong_type in
// attrs and run, unknown_node `no node "$src"` in inputs), where graph.cpp
// otherwise keeps to one mistake, one message. Remove should_fail when fixed.
TEST_CASE("an unknown $param is one message" * doctest::should_fail()) {
  for (auto [nodes, extra] : std::vector<std::pair<std::string, std::string>>{
           {R"("s": { "op": "diffusion.schedule", "attrs": { "T": "$step" } })", R"("params": { "steps": 10 },)"},
           {R"("t": { "op": "tick" })", R"("run": { "ticks": "$n" },)"},
           {R"("t": { "op": "tick" }, "s": { "op": "tensor.scale", "inputs": { "x": "$src" } })", R"("params": { "sr": "t" },)"}}) {
    auto d = errors(pipeline(nodes, extra));
    CHECK_MESSAGE(d.size() == 1, dump(d));
  }
}

TEST_CASE("unterminated ${") {
  auto d = one_error(pipeline(R"("x": { "op": "random.normal", "attrs": { "shape": [1, 1, 4, 4] } },
                                 "w": { "op": "io.write_images", "inputs": { "images": "x" }, "attrs": { "path": "runs/${name/x.png" } })",
                              R"("params": { "name": "a" },)"));
  CHECK(d.code == "bad_param_ref");
  CHECK(d.str() == R"(bad/x.json: node "w", attr "path": unterminated ${...} in "runs/${name/x.png")");
}

TEST_CASE("overrides (--set): unknown param and wrong type") {
  const std::string text = pipeline(R"("t": { "op": "tick", "attrs": { "batch": "$digits" } })", R"("params": { "digits": 8 },)");
  auto d = one_error(text, load_options({{"digitz", 4}}));
  CHECK(d.code == "unknown_param");
  CHECK(d.str() == R"(bad/x.json: params: unknown param "digitz" (did you mean "digits"?))");

  d = one_error(text, load_options({{"digits", "four"}}));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: params: param "digits" expects an integer, got "four")");

  d = one_error(text, load_options({{"digits", 2.5}}));
  CHECK(d.code == "wrong_type");
  CHECK(d.str() == R"(bad/x.json: params: param "digits" expects an integer, got 2.5)");

  d = one_error(pipeline(R"("t": { "op": "tick" })"), load_options({{"steps", 3}}));
  CHECK(d.code == "unknown_param");
  CHECK(d.str() == R"(bad/x.json: params: unknown param "steps" (the pipeline declares no params))");
}

TEST_CASE("bad --set argument") {
  for (const std::string arg : {"batch", "=128"}) {
    try {
      graph::parse_set(arg);
      FAIL("parse_set accepted ", arg);
    } catch (const GraphError& e) {
      REQUIRE(e.diagnostics.size() == 1);
      CHECK(e.diagnostics[0].code == "bad_set");
      CHECK(e.diagnostics[0].str() == "--set: \"" + arg + "\": expected key=value (e.g. --set batch=128)");
      CHECK(std::string(e.what()) == e.diagnostics[0].str());
    }
  }
  // Values parse as JSON, else as strings.
  CHECK(graph::parse_set("batch=128") == std::pair<std::string, Json>{"batch", 128});
  CHECK(graph::parse_set("lr=2e-4").second.is_number_float());
  CHECK(graph::parse_set("kind=cosine") == std::pair<std::string, Json>{"kind", "cosine"});
  CHECK(graph::parse_set("shape=[1,2]").second == Json::array({1, 2}));
  CHECK(graph::parse_set("out=a=b") == std::pair<std::string, Json>{"out", "a=b"});
  CHECK(graph::parse_set("empty=") == std::pair<std::string, Json>{"empty", ""});
}

TEST_CASE("a missing pipeline file") {
  try {
    graph::load_pipeline("bad/does_not_exist.json", load_options());
    FAIL("loaded a missing file");
  } catch (const GraphError& e) {
    REQUIRE(e.diagnostics.size() == 1);
    CHECK(e.diagnostics[0].code == "missing_file");
    CHECK(e.diagnostics[0].str() == "bad/does_not_exist.json: no such pipeline file");
  }
}

TEST_CASE("a missing include file") {
  const std::string text = pipeline(R"("src": { "op": "random.normal", "attrs": { "shape": [2] } },
                                       "n":   { "op": "net", "inputs": { "x": "src" } })",
                                    R"("include": { "net": "nets/nope.json" },)");
  auto d = errors(text);
  INFO("diagnostics:", dump(d));
  REQUIRE(!d.empty());
  CHECK(d[0].code == "missing_file");
  CHECK(d[0].str() == R"(bad/x.json: include "net": included file "bad/nets/nope.json" does not exist)");

  SUBCASE("relative to the including file, found from another folder") {
    TempDir dir;
    dir.write("nets/block.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "s" },
      "nodes": { "s": { "op": "tensor.scale", "inputs": { "x": "x" } } } })");
    const std::string top = dir.write("top.json", text);
    auto d2 = errors(text, load_options(), top);
    INFO("diagnostics:", dump(d2));
    REQUIRE(!d2.empty());
    CHECK(d2[0].str() == top + R"(: include "net": included file ")" + dir.str() + R"(/nets/nope.json" does not exist)");
    // Fixed, it loads.
    std::string fixed = text;
    replace(fixed, "nets/nope.json", "nets/block.json");
    CHECK(graph::load_pipeline_text(fixed, top, load_options()).find("n.s") >= 0);
  }
}

TEST_CASE("an include cycle") {
  TempDir dir;
  const std::string a = dir.write("sub_a.json", R"({
    "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "b" },
    "include": { "B": "sub_b.json" },
    "nodes": { "b": { "op": "B", "inputs": { "x": "x" } } } })");
  const std::string b = dir.write("sub_b.json", R"({
    "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "a" },
    "include": { "A": "sub_a.json" },
    "nodes": { "a": { "op": "A", "inputs": { "x": "x" } } } })");
  const std::string top = dir.write("top.json", R"({
    "noiseflow": 1, "include": { "A": "sub_a.json" },
    "nodes": {
      "src":  { "op": "random.normal", "attrs": { "shape": [2] } },
      "inst": { "op": "A", "inputs": { "x": "src" } } } })");
  try {
    graph::load_pipeline(top, load_options());
    FAIL("an include cycle loaded");
  } catch (const GraphError& e) {
    INFO("diagnostics:", dump(e.diagnostics));
    REQUIRE(!e.diagnostics.empty());
    CHECK(e.diagnostics[0].code == "include_cycle");
    CHECK(e.diagnostics[0].str() == b + R"(: node "inst.b.a", op: include cycle: )" + top + " -> " + a + " -> " + b + " -> " + a);
  }
}

// Fixed in graph/pipeline.cpp: after an include cycle each subgraph's outputs
// were reported as missing, suggesting themselves:
//   sub_a.json: outputs: no node "b" (did you mean "b"?)
TEST_CASE("an include cycle is one message") {
  TempDir dir;
  dir.write("sub_a.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "b" }, "include": { "B": "sub_b.json" },
                               "nodes": { "b": { "op": "B", "inputs": { "x": "x" } } } })");
  dir.write("sub_b.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "a" }, "include": { "A": "sub_a.json" },
                               "nodes": { "a": { "op": "A", "inputs": { "x": "x" } } } })");
  const std::string top = dir.write("top.json", R"({ "noiseflow": 1, "include": { "A": "sub_a.json" },
    "nodes": { "src": { "op": "random.normal", "attrs": { "shape": [2] } }, "inst": { "op": "A", "inputs": { "x": "src" } },
               "use": { "op": "tensor.scale", "inputs": { "x": "inst" } }, "use2": { "op": "tensor.scale", "inputs": { "x": "inst.y" } } } })");
  try {
    graph::load_pipeline(top, load_options());
    FAIL("an include cycle loaded");
  } catch (const GraphError& e) {
    INFO("diagnostics:", dump(e.diagnostics));
    CHECK(e.diagnostics.size() == 1);
    CHECK(std::string(e.what()).find(R"(no node "b" (did you mean "b"?))") == std::string::npos);
  }
}

// Fixed in graph/pipeline.cpp: every instance of a missing include's alias was
// reported again as `unknown node type "net"`.
TEST_CASE("a missing include file is one message") {
  auto d = errors(pipeline(R"("src": { "op": "random.normal", "attrs": { "shape": [2] } },
                              "n":   { "op": "net", "inputs": { "x": "src" } },
                              "m":   { "op": "net", "inputs": { "x": "n" } },
                              "use": { "op": "tensor.scale", "inputs": { "x": "m.y" } })",
                           R"("include": { "net": "nets/nope.json" },)"));
  INFO("diagnostics:", dump(d));
  CHECK(d.size() == 1);
}

TEST_CASE("subgraph instance errors") {
  TempDir dir;
  dir.write("sub.json", R"({
    "noiseflow": 1, "params": { "k": 2.0 }, "inputs": ["x"], "outputs": { "y": "s" },
    "nodes": { "s": { "op": "tensor.scale", "inputs": { "x": "x" }, "attrs": { "a": "$k" } } } })");
  const std::string top = dir.write("top.json", R"({
    "noiseflow": 1, "include": { "blk": "sub.json" },
    "nodes": {
      "src":  { "op": "random.normal", "attrs": { "shape": [2] } },
      "i1":   { "op": "blk", "inputs": { "xx": "src" }, "attrs": { "kk": 3.0 } } } })");
  try {
    graph::load_pipeline(top, load_options());
    FAIL("loaded");
  } catch (const GraphError& e) {
    INFO("diagnostics:", dump(e.diagnostics));
    REQUIRE(e.diagnostics.size() == 3);
    CHECK(e.diagnostics[0].code == "unknown_attr");
    CHECK(e.diagnostics[0].str() == top + R"(: node "i1", attr "kk": subgraph ")" + dir.str() + R"(/sub.json" has no param "kk" (did you mean "k"?))");
    CHECK(e.diagnostics[1].code == "unknown_input");
    CHECK(e.diagnostics[1].str() == top + R"(: node "i1", input "xx": subgraph ")" + dir.str() + R"(/sub.json" has no input "xx" (did you mean "x"?))");
    CHECK(e.diagnostics[2].code == "missing_input");
    CHECK(e.diagnostics[2].str() == top + R"(: node "i1", input "x": required input of subgraph ")" + dir.str() + R"(/sub.json" is not connected)");
  }
}

// Fixed in graph/pipeline.cpp: an unconnected subgraph input "x" was resolved
// as an output of the instance's first output node, giving a misleading line:
//   sub.json: node "i1.s", input "x": node "i1.s" (tensor.scale) has no output "x" (did you mean "y"?)
TEST_CASE("an unconnected subgraph input is one message") {
  TempDir dir;
  dir.write("sub.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "s" },
    "nodes": { "s": { "op": "tensor.scale", "inputs": { "x": "x" } } } })");
  const std::string top = dir.write("top.json", R"({ "noiseflow": 1, "include": { "blk": "sub.json" },
    "nodes": { "src": { "op": "random.normal", "attrs": { "shape": [2] } }, "i1": { "op": "blk" } } })");
  try {
    graph::load_pipeline(top, load_options());
    FAIL("loaded");
  } catch (const GraphError& e) {
    INFO("diagnostics:", dump(e.diagnostics));
    CHECK(e.diagnostics.size() == 1);
    CHECK(e.diagnostics[0].code == "missing_input");
  }
}

// Fixed in graph/pipeline.cpp: range messages printed 6 significant digits,
// so 1234567 read "value 1.23457e+06" (and a maximum of 1 << 20 "1.04858e+06").
TEST_CASE("out-of-range values are printed as written") {
  auto d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "T": 1234567 } })"));
  CHECK(d.str() == R"(bad/x.json: node "s", attr "T": value 1234567 is above the maximum 100000)");
  d = one_error(pipeline(R"("x": { "op": "random.normal", "attrs": { "shape": [2, 3] } },
                           "l": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2000000 } })"));
  CHECK(d.str() == R"(bad/x.json: node "l", attr "out_features": value 2000000 is above the maximum 1048576)");
  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "beta_end": 1.0000001 } })"));
  CHECK(d.str() == R"(bad/x.json: node "s", attr "beta_end": value 1.0000001 is above the maximum 1)");
  d = one_error(pipeline(R"("s": { "op": "diffusion.schedule", "attrs": { "beta_start": -1e-05 } })"));
  CHECK(d.str() == R"(bad/x.json: node "s", attr "beta_start": value -1e-05 is below the minimum 0)");
}

TEST_CASE("several errors in one file are all reported") {
  const std::string text = pipeline(R"(
    "x":     { "op": "random.normal", "attrs": { "shape": [4, 1, 8, 8], "std": -1 } },
    "sched": { "op": "diffusion.schedule", "attrs": { "kind": "cosin", "T": 0 } },
    "t":     { "op": "diffusion.timesteps", "inputs": { "like": "x", "schedule": "shed" } },
    "xt":    { "op": "diffusion.add_nois", "inputs": { "x0": "x" } },
    "r":     { "op": "tensor.repeat", "inputs": { "x": "x" } },
    "k":     { "op": "tick", "every": 2 })");
  std::vector<Diagnostic> d;
  try {
    graph::load_pipeline_text(text, "bad/many.json", load_options());
    FAIL("loaded");
  } catch (const GraphError& e) {
    d = e.diagnostics;
    // what() holds every line, in order.
    std::string all;
    for (size_t i = 0; i < d.size(); ++i) all += (i ? "\n" : "") + d[i].str();
    CHECK(std::string(e.what()) == all);
    CHECK(e.has("bad_choice"));
    CHECK_FALSE(e.has("cycle"));
  }
  std::vector<std::string> lines;
  for (auto& x : d) lines.push_back(x.str());
  const std::vector<std::string> expected = {
      R"(bad/many.json: node "xt", op: unknown node type "diffusion.add_nois" (did you mean "diffusion.add_noise"?))",
      R"(bad/many.json: node "k", every: only sink nodes take every/at_end (tick is not a sink))",
      R"(bad/many.json: node "r", attr "times": missing required attribute (int))",
      R"(bad/many.json: node "sched", attr "kind": value "cosin" is not one of "linear", "cosine", "sigmoid" (did you mean "cosine"?))",
      R"(bad/many.json: node "sched", attr "T": value 0 is below the minimum 1)",
      R"(bad/many.json: node "t", input "schedule": no node "shed" (did you mean "sched"?))",
      R"(bad/many.json: node "x", attr "std": value -1 is below the minimum 0)",
  };
  CHECK(lines == expected);
  CHECK(d.size() == 7);
}

TEST_CASE("JSON syntax error in an included file: its own line and column, one message") {
  TempDir dir;
  const std::string sub = dir.write("sub.json", "{\n  \"noiseflow\": 1,\n  \"inputs\": [\"x\"] \"outputs\": {}\n}\n");
  const std::string top = dir.write("top.json", R"({ "noiseflow": 1, "include": { "blk": "sub.json" },
    "nodes": { "src": { "op": "random.normal", "attrs": { "shape": [2] } },
               "i":   { "op": "blk", "inputs": { "x": "src" } },
               "use": { "op": "tensor.scale", "inputs": { "x": "i" } } } })");
  try {
    graph::load_pipeline(top, load_options());
    FAIL("loaded");
  } catch (const GraphError& e) {
    INFO("diagnostics:", dump(e.diagnostics));
    REQUIRE(e.diagnostics.size() == 1);
    CHECK(e.diagnostics[0].code == "syntax_error");
    // The column of the last character read: the end of the unexpected "outputs".
    CHECK(e.diagnostics[0].file == sub + ":3:27");
    CHECK(e.diagnostics[0].str() ==
          sub + ":3:27: syntax error while parsing object - unexpected string literal; expected '}'");
  }
}

TEST_CASE("subgraph outputs: several without \"out\", none, and a loop through instances") {
  TempDir dir;
  dir.write("two.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "p": "s", "q": "s2" },
    "nodes": { "s":  { "op": "tensor.scale", "inputs": { "x": "x" } },
               "s2": { "op": "tensor.scale", "inputs": { "x": "s" } } } })");
  dir.write("none.json", R"({ "noiseflow": 1, "inputs": ["x"],
    "nodes": { "s": { "op": "tensor.scale", "inputs": { "x": "x" } } } })");
  dir.write("pass.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "x" }, "nodes": {} })");
  const std::string include = R"("include": { "two": "two.json", "none": "none.json", "pass": "pass.json" },)";
  const std::string src = R"("src": { "op": "random.normal", "attrs": { "shape": [2] } }, )";
  auto load_errors = [&](const std::string& nodes) {
    return errors(pipeline(src + nodes, include), load_options(), dir / "top.json");
  };

  SUBCASE("an instance with several outputs named alone") {
    auto d = load_errors(R"("m": { "op": "two", "inputs": { "x": "src" } },
                            "u": { "op": "tensor.scale", "inputs": { "x": "m" } },
                            "v": { "op": "tensor.scale", "inputs": { "x": "m.q" } })");
    INFO("diagnostics:", dump(d));
    REQUIRE(d.size() == 1);
    CHECK(d[0].code == "unknown_output");
    CHECK(d[0].str() == dir / "top.json" +
                            R"(: node "u", input "x": subgraph instance "m" has several outputs ("p", "q"): name one, e.g. "m.p")");
  }
  SUBCASE("a subgraph without outputs") {
    auto d = load_errors(R"("n": { "op": "none", "inputs": { "x": "src" } })");
    INFO("diagnostics:", dump(d));
    REQUIRE(d.size() == 1);
    CHECK(d[0].code == "missing_outputs");
    CHECK(d[0].str() == dir / "none.json" + ": outputs: a subgraph must declare its outputs");
  }
  SUBCASE("two pass-through instances fed by each other") {
    auto d = load_errors(R"("a": { "op": "pass", "inputs": { "x": "b" } }, "b": { "op": "pass", "inputs": { "x": "a" } },
                            "u": { "op": "tensor.scale", "inputs": { "x": "a" } })");
    INFO("diagnostics:", dump(d));
    REQUIRE(d.size() == 1);
    CHECK(d[0].code == "unknown_output");
    CHECK(d[0].str() == dir / "top.json" + R"(: node "u", input "x": reference loops through subgraph aliases)");
  }
}

TEST_CASE("an include alias that shadows a node type") {
  TempDir dir;
  dir.write("blk.json", R"({ "noiseflow": 1, "inputs": ["x"], "outputs": { "y": "s" },
    "nodes": { "s": { "op": "tensor.scale", "inputs": { "x": "x" } } } })");
  auto d = one_error(pipeline(R"("t": { "op": "tick" })", R"("include": { "tensor.scale": "blk.json" },)"), load_options(),
                     dir / "top.json");
  CHECK(d.code == "alias_shadows_op");
  CHECK(d.str() == dir / "top.json" + R"(: include "tensor.scale": include alias shadows the node type "tensor.scale")");
}
