// tests/runtime/exec/test_executor.cpp — the TBB flow-graph executor: every node
// once per tick in dependency order, sinks on their ticks, state across
// ticks, errors naming their node, cancel, reproducibility, embedding API.
//
//          ┌─> l ─┐
//   src ───┤      ├─> m ──────────────┐
//          └─> r ─┘                   ├─> final ──> sink
//   src ──> b0..b7 ──> j1 (b0..b3) ───┤
//                  └─> j2 (b4..b7) ───┘
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "graph/pipeline.hpp"
#include "noiseflow/noiseflow.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
using namespace noiseflow;
using graph::Json;
using runtime::Context;
using runtime::Executor;
using runtime::ExecutorOptions;
using runtime::Node;
using runtime::RunError;
using runtime::Schema;
using runtime::Tensor;

namespace {

// Embedding options without designated initializers (which warn about the fields left out).
noiseflow::Options opts(std::map<std::string, nlohmann::json> params = {}, std::optional<int64_t> ticks = {},
                        int threads = 0) {
  noiseflow::Options o;
  o.params = std::move(params);
  o.ticks = ticks;
  o.threads = threads;
  return o;
}

// ---- a thread-safe record of which node ran at which tick, in what order ----

struct Entry {
  int64_t tick;
  std::string id;
  int64_t seq;
};

class RunLog {
 public:
  void add(int64_t tick, const std::string& id) {
    std::lock_guard lock(m_);
    entries_.push_back({tick, id, next_++});
  }
  void clear() {
    std::lock_guard lock(m_);
    entries_.clear();
    next_ = 0;
  }
  std::vector<Entry> entries() {
    std::lock_guard lock(m_);
    return entries_;
  }
  // Ticks at which `id` ran, in order.
  std::vector<int64_t> ticks_of(const std::string& id) {
    std::vector<int64_t> t;
    for (auto& e : entries())
      if (e.id == id) t.push_back(e.tick);
    return t;
  }

 private:
  std::mutex m_;
  std::vector<Entry> entries_;
  int64_t next_ = 0;
};

RunLog& run_log() {
  static RunLog log;
  return log;
}

// ---- test-only node types ----

// y = tick, filled into `shape`; optionally sleeps to give other threads a chance.
struct TestSource final : Node {
  static Schema schema() {
    return Schema("test.source", "test: y filled with the tick index")
        .output("y")
        .attr_ints("shape", std::vector<int64_t>{1})
        .attr_int("sleep_us", 0, 0, {})
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.attr_ints("shape")); });
  }
  void forward(Context& ctx) override {
    run_log().add(ctx.tick(), ctx.id());
    if (int64_t us = ctx.attr_int("sleep_us")) std::this_thread::sleep_for(std::chrono::microseconds(us));
    ctx.output("y").fill(float(ctx.tick()));
  }
};
NOISEFLOW_REGISTER_NODE(TestSource);

// y = a + b + c + d (the connected ones).
struct TestJoin final : Node {
  static Schema schema() {
    return Schema("test.join", "test: y = sum of the connected inputs")
        .input("a")
        .optional_input("b")
        .optional_input("c")
        .optional_input("d")
        .output("y")
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("a")); });
  }
  void forward(Context& ctx) override {
    run_log().add(ctx.tick(), ctx.id());
    Tensor& y = ctx.output("y");
    y.copy_from(ctx.input("a"));
    for (const char* name : {"b", "c", "d"})
      if (ctx.has_input(name))
        for (int64_t i = 0; i < y.numel(); ++i) y[i] += ctx.input(name)[i];
  }
};
NOISEFLOW_REGISTER_NODE(TestJoin);

// A sink that only records that it ran.
struct TestSink final : Node {
  static Schema schema() {
    return Schema("test.sink", "test: records its ticks").input("x").sink().shape([](graph::ShapeContext&) {});
  }
  void forward(Context& ctx) override { run_log().add(ctx.tick(), ctx.id()); }
};
NOISEFLOW_REGISTER_NODE(TestSink);

// y = x, but fails at tick `at_tick` (the first time only when `once`), or while planning.
struct TestFail final : Node {
  static Schema schema() {
    return Schema("test.fail", "test: throws at a given tick")
        .input("x")
        .output("y")
        .attr_int("at_tick", 0, 0, {})
        .attr_string("kind", "runtime", {"runtime", "input", "attr", "plan"})
        .attr_bool("once", true)
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }
  void plan(Context& ctx) override {
    if (ctx.attr_string("kind") == "plan") ctx.fail("at_tick", "cannot plan this");
  }
  void forward(Context& ctx) override {
    run_log().add(ctx.tick(), ctx.id());
    if (ctx.tick() == ctx.attr_int("at_tick") && !(thrown_ && ctx.attr_bool("once"))) {
      thrown_ = true;
      const std::string kind = ctx.attr_string("kind");
      if (kind == "input") ctx.fail("x", "bad value at tick " + std::to_string(ctx.tick()));
      if (kind == "attr") ctx.fail("at_tick", "reached");
      throw std::runtime_error("boom at tick " + std::to_string(ctx.tick()));
    }
    ctx.output("y").copy_from(ctx.input("x"));
  }

 private:
  bool thrown_ = false;
};
NOISEFLOW_REGISTER_NODE(TestFail);

// ---- helpers ----

graph::Graph load(const std::string& text, std::optional<uint64_t> seed = {}, const std::string& path = "exec/x.json") {
  graph::LoadOptions o;
  o.schemas = &runtime::Registry::global();
  o.seed = seed;
  try {
    return graph::load_pipeline_text(text, path, o);
  } catch (const graph::GraphError& e) {
    FAIL("unexpected errors:\n", e.what());
    throw;
  }
}

// The diamond and the 8-wide fan-out/fan-in drawn at the top of the file.
std::string parallel_pipeline(int64_t ticks) {
  std::string nodes = R"(
    "src":   { "op": "test.source", "attrs": { "shape": [3] } },
    "l":     { "op": "test.join", "inputs": { "a": "src" } },
    "r":     { "op": "test.join", "inputs": { "a": "src" } },
    "m":     { "op": "test.join", "inputs": { "a": "l", "b": "r" } },
    "j1":    { "op": "test.join", "inputs": { "a": "b0", "b": "b1", "c": "b2", "d": "b3" } },
    "j2":    { "op": "test.join", "inputs": { "a": "b4", "b": "b5", "c": "b6", "d": "b7" } },
    "final": { "op": "test.join", "inputs": { "a": "m", "b": "j1", "c": "j2" } },
    "sink":  { "op": "test.sink", "inputs": { "x": "final" } })";
  for (int i = 0; i < 8; ++i)
    nodes += ", \"b" + std::to_string(i) + R"(": { "op": "test.join", "inputs": { "a": "src" } })";
  return R"({ "noiseflow": 1, "nodes": {)" + nodes + R"(}, "run": { "ticks": )" + std::to_string(ticks) + " } }";
}

// Checks the log of a run of `g` over `ticks` ticks: every node once per tick,
// each after all its producers, ticks not interleaved.
void check_log(const graph::Graph& g, int64_t ticks) {
  auto entries = run_log().entries();
  CHECK(entries.size() == size_t(ticks) * g.nodes.size());
  std::vector<std::map<std::string, int64_t>> seq(static_cast<size_t>(ticks));
  size_t duplicates = 0, out_of_range = 0, order_violations = 0, interleaved = 0;
  int64_t last_tick = 0;
  for (auto& e : entries) {
    if (e.tick < 0 || e.tick >= ticks) {
      ++out_of_range;
      continue;
    }
    if (e.tick < last_tick) ++interleaved;
    last_tick = std::max(last_tick, e.tick);
    if (!seq[size_t(e.tick)].emplace(e.id, e.seq).second) ++duplicates;
  }
  size_t missing = 0;
  for (int64_t t = 0; t < ticks; ++t) {
    auto& s = seq[size_t(t)];
    for (auto& n : g.nodes) {
      auto it = s.find(n.id);
      if (it == s.end()) {
        ++missing;
        continue;
      }
      for (auto& in : n.inputs) {
        if (!in) continue;
        auto p = s.find(g.nodes[size_t(in->node)].id);
        if (p == s.end() || p->second > it->second) ++order_violations;
      }
    }
  }
  CHECK(out_of_range == 0);
  CHECK(duplicates == 0);
  CHECK(missing == 0);
  CHECK(order_violations == 0);
  CHECK(interleaved == 0);
}

std::vector<uint8_t> bytes(const Tensor& t) {
  const auto* p = reinterpret_cast<const uint8_t*>(t.data());
  return {p, p + t.numel() * sizeof(float)};
}

using noiseflow::test::TempDir;

}  // namespace

TEST_CASE("parallel branches: every node once per tick after its producers") {
  const int64_t ticks = 200;
  auto g = load(parallel_pipeline(ticks));
  REQUIRE(g.nodes.size() == 16);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    run_log().clear();
    Executor ex(g, ExecutorOptions{.threads = threads, .flow_threads = threads});
    int64_t callbacks = 0;
    ex.run([&](const runtime::TickInfo& t) {
      CHECK(t.tick == callbacks);
      CHECK(t.ticks == ticks);
      ++callbacks;
    });
    CHECK(callbacks == ticks);
    CHECK(ex.next_tick() == ticks);
    check_log(g, ticks);
    // final = m + j1 + j2 = 2 src + 4 src + 4 src, with src = last tick.
    auto y = ex.output("final");
    CHECK(y.shape() == graph::Shape{3});
    for (int i = 0; i < 3; ++i) CHECK(y[i] == doctest::Approx(10.0 * (ticks - 1)));
    // run() again: nothing left to do.
    ex.run();
    CHECK(run_log().entries().size() == size_t(ticks) * g.nodes.size());
  }
}

TEST_CASE("step() runs one tick at a time") {
  auto g = load(parallel_pipeline(5));
  run_log().clear();
  Executor ex(g, ExecutorOptions{2});
  ex.step();
  ex.step();
  CHECK(ex.next_tick() == 2);
  check_log(g, 2);
  CHECK(ex.output("final.y")[0] == 10.f);
}

TEST_CASE("sinks run every N ticks and at the end") {
  const std::string text = R"({ "noiseflow": 1,
    "nodes": {
      "src":   { "op": "test.source" },
      "all":   { "op": "test.sink", "inputs": { "x": "src" } },
      "every3": { "op": "test.sink", "inputs": { "x": "src" }, "every": 3 },
      "end":   { "op": "test.sink", "inputs": { "x": "src" }, "at_end": true },
      "both":  { "op": "test.sink", "inputs": { "x": "src" }, "every": 4, "at_end": true },
      "never": { "op": "test.sink", "inputs": { "x": "src" }, "at_end": false, "every": 100 }
    },
    "run": { "ticks": 10 } })";
  auto g = load(text);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    run_log().clear();
    Executor ex(g, ExecutorOptions{.threads = threads, .flow_threads = threads});
    ex.run();
    CHECK(run_log().ticks_of("src") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(run_log().ticks_of("all") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(run_log().ticks_of("every3") == std::vector<int64_t>{2, 5, 8});
    CHECK(run_log().ticks_of("end") == std::vector<int64_t>{9});
    CHECK(run_log().ticks_of("both") == std::vector<int64_t>{3, 7, 9});
    CHECK(run_log().ticks_of("never").empty());
  }
  SUBCASE("every N that divides the tick count: the last tick once") {
    graph::LoadOptions o;
    o.schemas = &runtime::Registry::global();
    o.ticks = 12;
    auto g12 = graph::load_pipeline_text(text, "exec/x.json", o);
    run_log().clear();
    Executor ex(g12, ExecutorOptions{1});
    ex.run();
    CHECK(run_log().ticks_of("both") == std::vector<int64_t>{3, 7, 11});
    CHECK(run_log().ticks_of("end") == std::vector<int64_t>{11});
  }
}

TEST_CASE("a node that only feeds gated sinks runs when one of them does") {
  const std::string text = R"({ "noiseflow": 1,
    "nodes": {
      "src":    { "op": "test.source", "attrs": { "shape": [2] } },
      "only3":  { "op": "test.join", "inputs": { "a": "src" } },
      "deep":   { "op": "test.join", "inputs": { "a": "only3" } },
      "s3":     { "op": "test.sink", "inputs": { "x": "deep" }, "every": 3 },
      "shared": { "op": "test.join", "inputs": { "a": "src" } },
      "s_end":  { "op": "test.sink", "inputs": { "x": "shared" }, "at_end": true },
      "s_all":  { "op": "test.sink", "inputs": { "x": "shared" } },
      "two":    { "op": "test.join", "inputs": { "a": "src" } },
      "t4":     { "op": "test.sink", "inputs": { "x": "two" }, "every": 4 },
      "tend":   { "op": "test.sink", "inputs": { "x": "two" }, "at_end": true }
    },
    "run": { "ticks": 10 } })";
  auto g = load(text);
  run_log().clear();
  Executor ex(g, ExecutorOptions{1});
  ex.run();
  CHECK(run_log().ticks_of("src") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(run_log().ticks_of("only3") == std::vector<int64_t>{2, 5, 8});
  CHECK(run_log().ticks_of("deep") == std::vector<int64_t>{2, 5, 8});
  CHECK(run_log().ticks_of("shared") == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(run_log().ticks_of("two") == std::vector<int64_t>{3, 7, 9});
  CHECK(ex.output("deep")[0] == 8.f);  // computed at the last tick it was needed
}

TEST_CASE("a state node runs every tick even when only a gated sink reads it (Schema::stateful)") {
  const std::string text = R"({ "noiseflow": 1,
    "nodes": {
      "zero": { "op": "tensor.constant", "attrs": { "shape": [1], "fill": 0.5 } },
      "src":  { "op": "test.source", "attrs": { "shape": [1] } },
      "held": { "op": "state", "inputs": { "init": "zero", "next": "src" } },
      "look": { "op": "test.join", "inputs": { "a": "held" } },
      "s3":   { "op": "test.sink", "inputs": { "x": "look" }, "every": 3 }
    },
    "run": { "ticks": 9 } })";
  auto g = load(text);
  run_log().clear();
  ExecutorOptions one_thread;
  one_thread.threads = 1;
  Executor ex(g, one_thread);
  std::vector<float> seen;
  ex.run([&](const runtime::TickInfo&) { seen.push_back(ex.output("look")[0]); });
  CHECK(run_log().ticks_of("look") == std::vector<int64_t>{2, 5, 8});
  // At tick k the state holds src's value of tick k - 1: it took init at tick 0, not when look first ran.
  REQUIRE(seen.size() == 9);
  CHECK(seen[2] == 1.f);
  CHECK(seen[5] == 4.f);
  CHECK(seen[8] == 7.f);
}

TEST_CASE("a state node accumulates across ticks: x_{k+1} = x_k + 1") {
  const std::string text = R"({ "noiseflow": 1,
    "nodes": {
      "zero": { "op": "tensor.constant", "attrs": { "shape": [2, 3], "fill": 0.5 } },
      "acc":  { "op": "state", "inputs": { "init": "zero", "next": "inc" } },
      "inc":  { "op": "tensor.scale", "inputs": { "x": "acc" }, "attrs": { "b": 1 } },
      "t":    { "op": "tick", "attrs": { "batch": 2 } }
    },
    "run": { "ticks": 37 } })";
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    auto g = load(text);
    Executor ex(g, ExecutorOptions{.threads = threads, .flow_threads = threads});
    std::vector<float> seen;
    ex.run([&](const runtime::TickInfo&) { seen.push_back(ex.output("acc")[0]); });
    // After tick k the state holds x_{k+1} = 0.5 + (k + 1).
    REQUIRE(seen.size() == 37);
    for (size_t k = 0; k < seen.size(); ++k) CHECK(seen[k] == 0.5f + float(k + 1));
    for (float v : ex.output("acc").to_vector()) CHECK(v == 37.5f);
    for (float v : ex.output("inc").to_vector()) CHECK(v == 37.5f);
    for (float v : ex.output("t").to_vector()) CHECK(v == 36.f);
  }
}

TEST_CASE("an exception in forward is a RunError naming the file and node") {
  const std::string base = R"({ "noiseflow": 1,
    "nodes": {
      "src":   { "op": "test.source" },
      "side":  { "op": "test.join", "inputs": { "a": "src" } },
      "boom":  { "op": "test.fail", "inputs": { "x": "src" }, "attrs": { "at_tick": 3, "kind": "KIND" } },
      "after": { "op": "test.join", "inputs": { "a": "boom", "b": "side" } }
    },
    "run": { "ticks": 6 } })";
  auto text_for = [&](const std::string& kind) {
    std::string t = base;
    t.replace(t.find("KIND"), 4, kind);
    return t;
  };
  SUBCASE("a std::exception, the executor stays usable") {
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      auto g = load(text_for("runtime"), {}, "bad/exec.json");
      run_log().clear();
      Executor ex(g, ExecutorOptions{.threads = threads, .flow_threads = threads});
      try {
        ex.run();
        FAIL("no error");
      } catch (const RunError& e) {
        CHECK(std::string(e.what()) == R"(bad/exec.json: node "boom", forward: boom at tick 3)");
        CHECK(e.node == "boom");
        CHECK(e.phase == "forward");
      }
      // The failing tick is not counted; nothing downstream of the failure ran in it.
      CHECK(ex.next_tick() == 3);
      CHECK(run_log().ticks_of("after") == std::vector<int64_t>{0, 1, 2});
      CHECK(run_log().ticks_of("boom") == std::vector<int64_t>{0, 1, 2, 3});
      // run() again resumes at the failed tick and runs it whole.
      ex.run();
      CHECK(ex.next_tick() == 6);
      CHECK(run_log().ticks_of("after") == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
      CHECK(run_log().ticks_of("boom") == std::vector<int64_t>{0, 1, 2, 3, 3, 4, 5});
      CHECK(run_log().ticks_of("src") == std::vector<int64_t>{0, 1, 2, 3, 3, 4, 5});
      CHECK(ex.output("after")[0] == 10.f);
    }
  }
  SUBCASE("a NodeError naming an input or an attribute") {
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      Executor ex(load(text_for("input"), {}, "bad/exec.json"), ExecutorOptions{threads});
      CHECK_THROWS_WITH_AS(ex.run(), R"(bad/exec.json: node "boom", input "x": bad value at tick 3)", RunError);
      Executor ex2(load(text_for("attr"), {}, "bad/exec.json"), ExecutorOptions{threads});
      CHECK_THROWS_WITH_AS(ex2.run(), R"(bad/exec.json: node "boom", attr "at_tick": reached)", RunError);
    }
  }
  SUBCASE("an error while planning") {
    auto g = load(text_for("plan"), {}, "bad/exec.json");
    try {
      Executor ex(g, ExecutorOptions{1});
      FAIL("planned");
    } catch (const RunError& e) {
      CHECK(std::string(e.what()) == R"(bad/exec.json: node "boom", attr "at_tick": cannot plan this)");
      CHECK(e.phase == "plan");
    }
  }
}

TEST_CASE("cancel() stops a run with Cancelled") {
  auto g = load(parallel_pipeline(50));
  SUBCASE("from the tick callback") {
    Executor ex(g, ExecutorOptions{2});
    int64_t calls = 0;
    CHECK_THROWS_AS(ex.run([&](const runtime::TickInfo& t) {
      ++calls;
      if (t.tick == 4) ex.cancel();
    }),
                    runtime::Cancelled);
    CHECK(calls == 5);
    CHECK(ex.next_tick() == 5);
    // A new run() continues where the cancelled one stopped.
    ex.run([&](const runtime::TickInfo&) { ++calls; });
    CHECK(calls == 50);
    CHECK(ex.next_tick() == 50);
  }
  SUBCASE("from another thread") {
    auto slow = load(R"({ "noiseflow": 1,
      "nodes": { "src": { "op": "test.source", "attrs": { "sleep_us": 200 } } },
      "run": { "ticks": 20000 } })");
    Executor ex(slow, ExecutorOptions{2});
    std::atomic<int64_t> done{0};
    std::thread canceller([&] {
      while (done < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ex.cancel();
    });
    CHECK_THROWS_AS(ex.run([&](const runtime::TickInfo&) { ++done; }), runtime::Cancelled);
    canceller.join();
    CHECK(ex.next_tick() >= 3);
    CHECK(ex.next_tick() < 20000);
  }
}

TEST_CASE("reproducibility: same seed gives the same bytes at any thread count") {
  const std::string text = R"({ "noiseflow": 1,
    "nodes": {
      "x":     { "op": "random.normal", "attrs": { "shape": [8, 3, 32, 32] } },
      "eps":   { "op": "random.normal", "inputs": { "like": "x" } },
      "sched": { "op": "diffusion.schedule", "attrs": { "T": 100 } },
      "t":     { "op": "diffusion.timesteps", "inputs": { "like": "x", "schedule": "sched" } },
      "xt":    { "op": "diffusion.add_noise", "inputs": { "x0": "x", "noise": "eps", "t": "t", "schedule": "sched" } }
    },
    "run": { "ticks": 3, "seed": 1 } })";
  auto run = [&](uint64_t seed, int threads) {
    Executor ex(load(text, seed), ExecutorOptions{threads});
    ex.run();
    return std::vector<std::vector<uint8_t>>{bytes(ex.output("xt")), bytes(ex.output("eps")), bytes(ex.output("t"))};
  };
  auto a = run(42, 1);
  CHECK(run(42, 1) == a);
  CHECK(run(42, 2) == a);
  auto b = run(43, 2);
  CHECK(b[0] != a[0]);
  CHECK(b[1] != a[1]);
  // The noise is not trivially zero and xt mixes x and eps.
  CHECK(a[0] != a[1]);
  // Two random nodes with the same settings draw different streams (keyed by node id).
  Executor ex(load(text, 42), ExecutorOptions{1});
  ex.step();
  CHECK(bytes(ex.output("x")) != bytes(ex.output("eps")));
  // And a new draw every tick.
  auto first = bytes(ex.output("eps"));
  ex.step();
  CHECK(bytes(ex.output("eps")) != first);
}

TEST_CASE("embedding API: params and per-tick callback and outputs") {
  TempDir dir;
  const std::string path = dir.write("acc.json", R"({ "noiseflow": 1,
    "params": { "steps": 5, "inc": 1.0 },
    "nodes": {
      "zero": { "op": "tensor.constant", "attrs": { "shape": [4], "fill": 0 } },
      "acc":  { "op": "state", "inputs": { "init": "zero", "next": "step" } },
      "step": { "op": "tensor.scale", "inputs": { "x": "acc" }, "attrs": { "b": "$inc" } }
    },
    "run": { "ticks": "$steps" } })");

  SUBCASE("overrides and callback") {
    noiseflow::Pipeline p(path, opts({{"steps", 7}, {"inc", 0.5}}, {}, 1));
    CHECK(p.graph().ticks == 7);
    std::vector<int64_t> ticks;
    p.run([&](const noiseflow::TickInfo& t) {
      CHECK(t.ticks == 7);
      CHECK(t.seconds >= 0);
      ticks.push_back(t.tick);
    });
    CHECK(ticks == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
    noiseflow::Tensor acc = p.output("acc");
    CHECK(acc.shape() == graph::Shape{4});
    for (float v : acc.to_vector()) CHECK(v == 3.5f);
    CHECK(p.output("step.y")[3] == 3.5f);
    CHECK_THROWS_WITH_AS(p.output("nope"), ("no node output \"nope\" in " + path).c_str(), std::invalid_argument);
    CHECK_THROWS_AS(p.set_param("inc", 2.0), std::logic_error);
  }
  SUBCASE("defaults, set_param, step, ticks option") {
    noiseflow::Pipeline p(path);
    CHECK(p.graph().ticks == 5);
    p.set_param("inc", 2.0);
    p.step();
    CHECK(p.output("acc")[0] == 2.f);
    p.run();
    CHECK(p.output("acc")[0] == 10.f);

    noiseflow::Pipeline q(path, opts({}, 2));
    int calls = 0;
    q.run([&](const noiseflow::TickInfo&) { ++calls; });
    CHECK(calls == 2);
    CHECK(q.output("acc")[0] == 2.f);
  }
  SUBCASE("cancel through the Pipeline") {
    noiseflow::Pipeline p(path, opts({{"steps", 100}}));
    int calls = 0;
    CHECK_THROWS_AS(p.run([&](const noiseflow::TickInfo&) {
      if (++calls == 3) p.cancel();
    }),
                    noiseflow::Cancelled);
    CHECK(calls == 3);
    CHECK(p.output("acc")[0] == 3.f);
  }
  SUBCASE("invalid params are GraphErrors") {
    try {
      noiseflow::Pipeline p(path, opts({{"step", 3}}));
      FAIL("loaded");
    } catch (const noiseflow::GraphError& e) {
      CHECK(std::string(e.what()) == path + R"(: params: unknown param "step" (did you mean "steps"?))");
    }
  }
  SUBCASE("node types include the built-in and the test-registered ones") {
    auto types = noiseflow::node_types();
    for (const char* op : {"diffusion.add_noise", "random.normal", "state", "tick", "test.source", "test.fail"})
      CHECK(std::find(types.begin(), types.end(), op) != types.end());
  }
}
