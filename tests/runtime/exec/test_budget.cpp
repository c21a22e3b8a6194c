// tests/runtime/exec/test_budget.cpp — run.minutes, the wall-clock budget: the run ends at the last tick
// that fits, its at_end sinks (the checkpoint) run in that tick, and the pipeline format checks the field.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/checkpoint.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;

namespace {

std::string budget_pipeline(const std::string& minutes, const std::string& ckpt, int64_t ticks) {
  return R"({ "noiseflow": 1, "name": "budget",
    "nodes": {
      "x":    { "op": "random.normal", "attrs": { "shape": [4, 3] } },
      "y":    { "op": "random.normal", "attrs": { "shape": [4, 2] } },
      "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
      "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.01, "schedule": "cosine" } },
      "ckpt": { "op": "io.checkpoint", "inputs": { "after": "opt" }, "attrs": { "path": ")" + ckpt + R"(" }, "at_end": true }
    },
    "run": { "ticks": )" + std::to_string(ticks) + R"(, "minutes": )" + minutes + " } }";
}

}  // namespace

TEST_CASE("run.minutes ends the run at the last tick inside the budget, with its at_end checkpoint") {
  test::TempDir dir;
  const std::string ckpt = (dir.path / "c.safetensors").string();
  const int64_t ticks = 1000000000;  // far more than fit: the budget ends it
  auto g = graph::load_pipeline_text(budget_pipeline("0.005", ckpt, ticks), "budget.json", test::load_options());
  CHECK(g.minutes == doctest::Approx(0.005));
  runtime::Executor ex(g, runtime::ExecutorOptions{1});
  runtime::TickInfo last;
  int64_t calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  ex.run([&](const runtime::TickInfo& t) {
    last = t;
    ++calls;
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto stop = ex.budget_stop();
  REQUIRE(stop);
  CHECK(stop->second == ticks);
  CHECK(stop->first > 1);
  CHECK(stop->first < ticks);
  CHECK(calls == stop->first);  // every tick up to the stop ran, and no other
  CHECK(last.tick + 1 == stop->first);
  CHECK(last.ticks == stop->first);  // the progress callback sees the new end
  CHECK(ex.next_tick() == stop->first);
  // A correctness bound, not a timing claim: it stopped near 0.3 s, not after a billion ticks.
  CHECK(s < 0.3 + 10.0);
  REQUIRE(std::filesystem::exists(ckpt));
  CHECK(runtime::read_safetensors(ckpt).metadata.at("step") == std::to_string(stop->first));

  // No budget: no stop.
  auto g2 = graph::load_pipeline_text(budget_pipeline("0", ckpt, 5), "budget.json", test::load_options());
  runtime::Executor ex2(g2, runtime::ExecutorOptions{1});
  ex2.run();
  CHECK_FALSE(ex2.budget_stop());
  CHECK(ex2.next_tick() == 5);
  CHECK(runtime::read_safetensors(ckpt).metadata.at("step") == "5");
}

TEST_CASE("run.minutes must be a number >= 0, and the resolved pipeline keeps it") {
  for (const std::string bad : {"-1", "\"half an hour\"", "true"}) {
    CAPTURE(bad);
    try {
      graph::load_pipeline_text(budget_pipeline(bad, "c.safetensors", 5), "budget.json", test::load_options());
      FAIL("expected an error");
    } catch (const graph::GraphError& e) {
      const std::string m = e.what();
      CHECK(m.find("budget.json") != std::string::npos);
      CHECK(m.find("\"minutes\"") != std::string::npos);
      CHECK(m.find(">= 0") != std::string::npos);
    }
  }
  auto g = graph::load_pipeline_text(budget_pipeline("30", "c.safetensors", 5), "budget.json", test::load_options());
  CHECK(g.resolved["run"]["minutes"] == 30.0);
}
