// tests/runtime/exec/test_errors.cpp — errors raised while binding and running: a failing backward task,
// std::bad_alloc in a node, a buffer too large to allocate. Each a RunError with its exact message, code
// and phase.
#include <doctest/doctest.h>

#include <new>

#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::Context;
using runtime::Executor;
using runtime::Node;
using runtime::RunError;
using runtime::Schema;

namespace {

// y = x; its backward fails at tick `at_tick`.
struct TestGradFail final : Node {
  static Schema schema() {
    return Schema("test.grad_fail", "test: identity whose backward throws at a given tick")
        .input("x")
        .output("y")
        .attr_int("at_tick", 0, 0, {})
        .differentiable({"x"})
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }
  void forward(Context& ctx) override { ctx.output("y").copy_from(ctx.input("x")); }
  void backward(Context& ctx) override {
    if (ctx.tick() == ctx.attr_int("at_tick"))
      ctx.fail("x", "no gradient at tick " + std::to_string(ctx.tick()), "test_backward");
    ctx.grad_input("x").copy_from(ctx.grad_output("y"));
  }
};
NOISEFLOW_REGISTER_NODE(TestGradFail);

// Throws std::bad_alloc from forward, as an allocation inside a node would.
struct TestOom final : Node {
  static Schema schema() {
    return Schema("test.oom", "test: forward throws std::bad_alloc").input("x").output("y").shape(
        [](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }
  void forward(Context&) override { throw std::bad_alloc(); }
};
NOISEFLOW_REGISTER_NODE(TestOom);

graph::Graph load(const std::string& text, const std::string& name) {
  return graph::load_pipeline_text(text, name, test::load_options());
}

}  // namespace

TEST_CASE("an exception in a backward task is a RunError naming the node, the input and the phase") {
  const auto g = load(R"({ "noiseflow": 1, "nodes": {
      "x":    { "op": "random.normal", "attrs": { "shape": [4, 3] } },
      "lin":  { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
      "gf":   { "op": "test.grad_fail", "inputs": { "x": "lin" }, "attrs": { "at_tick": 2 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "gf", "target": "x" } },
      "opt":  { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.1 } } },
    "run": { "ticks": 5 } })",
                      "bad/bwd.json");
  Executor ex(g, {.threads = 1});
  const auto w0 = ex.find_param("lin.weight")->value.to_vector();
  try {
    ex.run();
    FAIL("no error");
  } catch (const RunError& e) {
    CHECK(std::string(e.what()) == R"(bad/bwd.json: node "gf", input "x": no gradient at tick 2)");
    CHECK(e.phase == "backward");
    CHECK(e.node == "gf");
    CHECK(e.code() == "test_backward");
    CHECK(e.diagnostic.field == R"(input "x")");
    CHECK(e.diagnostic.file == "bad/bwd.json");
  }
  // Ticks 0 and 1 were done and stepped; the failing tick did not reach the optimizer.
  CHECK(ex.next_tick() == 2);
  CHECK(ex.find_param("lin.weight")->value.to_vector() != w0);
}

TEST_CASE("std::bad_alloc thrown by a node is an out_of_memory RunError naming the node") {
  const auto g = load(R"({ "noiseflow": 1, "nodes": {
      "x":   { "op": "random.normal", "attrs": { "shape": [4, 3] } },
      "oom": { "op": "test.oom", "inputs": { "x": "x" } } } })",
                      "bad/oom.json");
  Executor ex(g, {.threads = 1});
  try {
    ex.run();
    FAIL("no error");
  } catch (const RunError& e) {
    CHECK(std::string(e.what()) == R"(bad/oom.json: node "oom", forward: out of memory while the node ran (std::bad_alloc))");
    CHECK(e.code() == "out_of_memory");
    CHECK(e.phase == "forward");
  }
}

TEST_CASE("a buffer the machine cannot hold is a plan-time RunError naming the node, the output and the bytes") {
  // 2^40 floats: 4 TiB.
  const auto g = load(R"({ "noiseflow": 1, "nodes": {
      "big": { "op": "random.normal", "attrs": { "shape": [1024, 1024, 1024, 1024] } } } })",
                      "bad/big.json");
  try {
    Executor ex(g, {.threads = 1});
    FAIL("planned");
  } catch (const RunError& e) {
    CHECK(std::string(e.what()) == R"(bad/big.json: node "big", output "y": out of memory: cannot allocate a )"
                                   R"([1024, 1024, 1024, 1024] tensor (4398046511104 bytes))");
    CHECK(e.code() == "out_of_memory");
    CHECK(e.phase == "plan");
  }
}
