// tests/runtime/exec/test_errors.cpp — errors raised while binding and running: a failing backward task,
// std::bad_alloc in a node, a buffer too large to allocate, a plan larger than the memory it may use. Each a RunError with its exact message, code
// and phase.
#include <doctest/doctest.h>

#include <fstream>
#include <new>
#include <string>

#include "runtime/exec/executor.hpp"
#include "runtime/memory.hpp"
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
    Executor ex(g, {.threads = 1, .memory_limit = -1});  // past the plan's memory check, to the allocation
    FAIL("planned");
  } catch (const RunError& e) {
    CHECK(std::string(e.what()) == R"(bad/big.json: node "big", output "y": out of memory: cannot allocate a )"
                                   R"([1024, 1024, 1024, 1024] tensor (4398046511104 bytes))");
    CHECK(e.code() == "out_of_memory");
    CHECK(e.phase == "plan");
  }
}

TEST_CASE("a plan larger than its memory limit is refused before anything is allocated, naming the largest tensor") {
  const auto g = load(R"({ "noiseflow": 1, "params": { "batch": 1024 }, "nodes": {
      "small": { "op": "random.normal", "attrs": { "shape": [4, 3] } },
      "big":   { "op": "random.normal", "attrs": { "shape": ["$batch", 1024] } } } })",
                      "bad/limit.json");
  CHECK_NOTHROW(Executor(g, {.threads = 1, .memory_limit = 5'000'000}));
  try {
    Executor ex(g, {.threads = 1, .memory_limit = 4'000'000});
    FAIL("planned");
  } catch (const RunError& e) {
    const std::string m = e.what();
    CHECK(m.rfind(R"(bad/limit.json: node "big", output "y": out of memory: the plan needs 0.00 GB ()", 0) == 0);
    CHECK(m.find("and the limit is 0.00 GB; its largest tensor is this [1024, 1024] output (4194304 bytes); "
                 "a smaller batch needs less (--set batch=N)") != std::string::npos);
    CHECK(e.code() == "out_of_memory");
    CHECK(e.phase == "plan");
  }
}

TEST_CASE("a plan larger than the memory the process can use is refused at plan time, not by the OOM killer") {
  const int64_t avail = runtime::available_memory();
  REQUIRE(avail > 0);
  // /proc/meminfo's totals bound what is available.
  int64_t mem_total = 0, swap_total = 0;
  {
    std::ifstream f("/proc/meminfo");
    std::string key, unit;
    int64_t kb = 0;
    while (f >> key >> kb) {
      std::getline(f, unit);
      if (key == "MemTotal:") mem_total = kb * 1024;
      if (key == "SwapTotal:") swap_total = kb * 1024;
    }
  }
  CHECK(avail <= mem_total + swap_total);
  // Twice what is available, in tensors of 1 GiB each: every single allocation would succeed (Linux
  // overcommits) and the process be killed while filling them.
  const int64_t tensors = avail / (int64_t(1) << 29) + 2;
  std::string nodes;
  for (int64_t i = 0; i < tensors; ++i)
    nodes += (i ? ", " : "") + ("\"t" + std::to_string(i) + "\": { \"op\": \"random.normal\", \"attrs\": { \"shape\": [262144, 1024] } }");
  const auto g = load(R"({ "noiseflow": 1, "nodes": { )" + nodes + " } }", "bad/machine.json");
  try {
    Executor ex(g, {.threads = 1});
    FAIL("planned");
  } catch (const RunError& e) {
    const std::string m = e.what();
    CHECK(m.find("out of memory: the plan needs") != std::string::npos);
    CHECK(m.find("this process can use") != std::string::npos);
    CHECK(m.find("[262144, 1024] output (1073741824 bytes)") != std::string::npos);
    CHECK(e.code() == "out_of_memory");
  }
}
