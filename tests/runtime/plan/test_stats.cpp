// tests/runtime/plan/test_stats.cpp — the plan's counts, its memory report and how it prints.
#include <doctest/doctest.h>

#include "runtime/plan/print.hpp"
#include "runtime/plan/stats.hpp"
#include "tests/runtime/plan/plan_graphs.hpp"

using namespace noiseflow;
using runtime::plan::ExecutionPlan;

TEST_CASE("stats and memory report of the diamond: what each figure counts") {
  const auto g = test::load_graph(test::kDiamond);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  constexpr int64_t act = 2 * 16 * 8 * 8 * 4;  // one [2, 16, 8, 8] tensor, bytes
  CHECK(p.stats.tensors == 10);  // one output per node
  CHECK(p.stats.blocked_tensors == 5);
  CHECK(p.stats.conversions == 1);
  CHECK(p.stats.gradient_tensors == 6);
  CHECK(p.stats.gradient_bytes_unshared == 6 * act);
  // a, l, r and m alive at once (m starts where l and r end), then c in r's slot: four activation slots
  // of one tensor each.
  CHECK(p.stats.shared_activation_bytes == 4 * act);
  // Parameters: three 16->16 3x3 convolutions with bias.
  constexpr int64_t params = 3 * (16 * 16 * 9 + 16) * 4;
  CHECK(p.memory.parameters == params);
  CHECK(p.memory.parameter_gradients == params);
  CHECK(p.memory.optimizer_state == 3 * params);  // Adam's two moments and the EMA's average
  // Activations: every output, plus the loss's plain copy of c.
  CHECK(p.memory.activations == p.stats.activation_bytes + act);
  // Gradients: the shared slots, the loss's zero gradient [1], and the plain gradient the loss writes for c.
  CHECK(p.memory.gradients == p.stats.gradient_bytes + 4 + act);
  CHECK(p.memory.scratch > 0);  // the convolutions' scratchpads and weight staging
  CHECK(p.memory.peak() == p.memory.activations + p.memory.gradients + 2 * params + 3 * params +
                               p.memory.node_memory + p.memory.scratch);
}

TEST_CASE("plan_text and plan_json list every task, tensor and gradient, and the peak") {
  const auto g = test::load_graph(test::kDiamond);
  const ExecutionPlan p = runtime::plan::make_plan(g);
  const std::string text = runtime::plan::plan_text(g, p);
  CHECK(text.find("plan of plan/test.json: training, optimised path") == 0);
  CHECK(text.find("backward a\n") != std::string::npos);
  CHECK(text.find("c.y                                  [2, 16, 8, 8]      nChw16c  slot") != std::string::npos);
  CHECK(text.find("x.y                                  [2, 16, 8, 8]      plain    own") != std::string::npos);
  CHECK(text.find("sum of 2 gradients into a.y before its backward") != std::string::npos);
  CHECK(text.find("c.y -> plain copy for loss.pred") != std::string::npos);
  CHECK(text.find("  peak ") != std::string::npos);
  const graph::Json j = runtime::plan::plan_json(g, p);
  CHECK(j["schedule"].size() == p.schedule.size());
  CHECK(j["tensors"].size() == 10);
  CHECK(j["gradients"].size() == 6);
  CHECK(j["memory"]["peak"].get<int64_t>() == p.memory.peak());
  CHECK(j["schedule"].back() == graph::Json{{"node", "ema"}, {"phase", "forward"}});
}
