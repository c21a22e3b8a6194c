// The optimised plan against the straightforward one (ExecutorOptions::reference) on unet-small:
// Winograd convolutions, nChw16c tensors kept between layers and gradient buffers shared by lifetime
// must give the outputs, loss and parameter gradients of direct convolutions on plain tensors with one
// buffer per gradient, on the same weights and inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::Tensor;

namespace {

const char* kPipeline = R"({
  "noiseflow": 1,
  "include": { "unet": "nets/unet_small.json" },
  "params": { "lr": 0.0 },
  "nodes": {
    "x":      { "op": "input", "attrs": { "shape": [4, 1, 28, 28] } },
    "t":      { "op": "input", "attrs": { "shape": [4] } },
    "target": { "op": "input", "attrs": { "shape": [4, 1, 28, 28] } },
    "net":    { "op": "unet", "inputs": { "x": "x", "t": "t" } },
    "loss":   { "op": "loss.mse", "inputs": { "pred": "net", "target": "target" } },
    "opt":    { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": "$lr" } }
  }
})";

// Same non-trivial weights (no zero-initialised layer hiding a gradient) and inputs in both executors.
void fill(runtime::Executor& ex, bool with_target = true) {
  int k = 0;
  for (auto& p : ex.params()) {
    const bool scale = p.name.find("norm") != std::string::npos && p.name.ends_with(".weight");
    for (int64_t i = 0; i < p.value.numel(); ++i)
      p.value[i] = float((scale ? 1.0 : 0.0) + 0.06 * std::sin(0.37 * double(i) + 1.3 * double(k)));
    ++k;
  }
  Tensor x = ex.output("x"), t = ex.output("t");
  for (int64_t j = 0; j < x.numel(); ++j) x[j] = float(std::sin(0.013 * double(j) + 0.4 * double(j % 28)));
  if (with_target) {
    Tensor target = ex.output("target");
    for (int64_t j = 0; j < target.numel(); ++j) target[j] = float(std::cos(0.7 * double(j)));
  }
  for (int n = 0; n < 4; ++n) t[n] = float(n * 290 + 7);
}

// ||a - b|| / ||b||
double rel_l2(const Tensor& a, const Tensor& b) {
  double d = 0, n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d += double(a[i] - b[i]) * (a[i] - b[i]), n += double(b[i]) * b[i];
  return std::sqrt(d / std::max(n, 1e-30));
}

graph::Graph load(double lr) {
  return graph::load_pipeline_text(kPipeline, std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/optimised.json",
                                   test::load_options({{"lr", lr}}));
}

}  // namespace

TEST_CASE("optimised plan matches the straightforward path: outputs and gradients of unet_small") {
  auto g = load(0.0);
  runtime::Executor fast(g, {.threads = 2});
  runtime::Executor ref(g, {.threads = 2, .reference = true});

  // The optimised plan really is different: blocked tensors, shared gradient buffers.
  const auto& fs = fast.plan_stats();
  const auto& rs = ref.plan_stats();
  CHECK(fs.blocked_tensors > 90);  // 94 of 130: all but the 7x7 level around the attention and the 1-channel ends
  CHECK(rs.blocked_tensors == 0);
  CHECK(fs.gradient_bytes < rs.gradient_bytes / 3);
  CHECK(rs.gradient_bytes == rs.gradient_bytes_unshared);

  fill(fast);
  fill(ref);
  fast.step();
  ref.step();

  CHECK(rel_l2(fast.output("net"), ref.output("net")) < 1e-5);
  CHECK(std::abs(fast.output("loss")[0] - ref.output("loss")[0]) < 1e-5 * std::abs(ref.output("loss")[0]));
  REQUIRE(fast.params().size() == ref.params().size());
  int compared = 0;
  for (size_t k = 0; k < fast.params().size(); ++k) {
    const auto& a = fast.params()[k];
    const auto& b = ref.params()[k];
    REQUIRE(a.name == b.name);
    double norm = 0;
    for (int64_t i = 0; i < b.grad.numel(); ++i) norm += double(b.grad[i]) * b.grad[i];
    if (norm == 0) continue;
    INFO("gradient of " << a.name);
    CHECK(rel_l2(a.grad, b.grad) < 1e-4);
    ++compared;
  }
  CHECK(compared > 200);  // of 214 parameters
}

TEST_CASE("optimised plan matches the straightforward path over several SGD steps") {
  auto g = load(0.05);
  runtime::Executor fast(g, {.threads = 2});
  runtime::Executor ref(g, {.threads = 2, .reference = true});
  fill(fast);
  fill(ref);
  for (int step = 0; step < 4; ++step) {
    fast.step();
    ref.step();
    INFO("step " << step);
    CHECK(std::abs(fast.output("loss")[0] - ref.output("loss")[0]) < 1e-4 * std::abs(ref.output("loss")[0]));
  }
  for (size_t k = 0; k < fast.params().size(); ++k) {
    INFO("weights of " << fast.params()[k].name);
    CHECK(rel_l2(fast.params()[k].value, ref.params()[k].value) < 1e-4);
  }
}

TEST_CASE("optimised plan without an optimizer shares activation buffers and matches the straightforward path") {
  const char* text = R"({
    "noiseflow": 1,
    "include": { "unet": "nets/unet_small.json" },
    "nodes": {
      "x":   { "op": "input", "attrs": { "shape": [4, 1, 28, 28] } },
      "t":   { "op": "input", "attrs": { "shape": [4] } },
      "net": { "op": "unet", "inputs": { "x": "x", "t": "t" } },
      "out": { "op": "tensor.scale", "inputs": { "x": "net" }, "attrs": { "a": 2.0 } }
    }
  })";
  auto g = graph::load_pipeline_text(text, std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/forward_only.json",
                                     test::load_options());
  runtime::Executor fast(g, {.threads = 2});
  runtime::Executor ref(g, {.threads = 2, .reference = true});
  CHECK(fast.plan_stats().shared_activation_bytes > 0);
  CHECK(ref.plan_stats().shared_activation_bytes == 0);
  CHECK(fast.plan_stats().activation_bytes < ref.plan_stats().activation_bytes / 2);
  fill(fast, false);
  fill(ref, false);
  for (int tick = 0; tick < 2; ++tick) {
    if (tick == 1)  // new inputs: nothing may leak from the previous tick through a shared buffer
      for (auto* ex : {&fast, &ref}) {
        Tensor x = ex->output("x");
        for (int64_t j = 0; j < x.numel(); ++j) x[j] = float(std::cos(0.021 * double(j)));
      }
    fast.step();
    ref.step();
    INFO("tick " << tick);
    CHECK(rel_l2(fast.output("net"), ref.output("net")) < 1e-5);
    CHECK(rel_l2(fast.output("out"), ref.output("out")) < 1e-5);
  }
  // An intermediate tensor on a shared buffer cannot be read by mistake.
  CHECK_THROWS_WITH_AS(fast.output("net.down.0.conv1"), doctest::Contains("shares with others"), std::invalid_argument);
  CHECK(ref.output("net.down.0.conv1").numel() == 4 * 32 * 28 * 28);
}
