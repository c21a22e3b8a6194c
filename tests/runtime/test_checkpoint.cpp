// tests/runtime/test_checkpoint.cpp — checkpoints of an executor (runtime/checkpoint.hpp): loading checks names,
// shapes, finite values and the recorded recipe before writing anything.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "graph/pipeline.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::Tensor;
using noiseflow::test::TempDir;

namespace {
const char* kTiny = R"({
  "noiseflow": 1,
  "nodes": {
    "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
    "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
    "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
    "opt":  { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.1 } }
  }
})";
graph::Graph tiny() {
  std::string text = kTiny;
  return graph::load_pipeline_text(text, "tiny.json", test::load_options());
}
std::string load_error(runtime::Executor& ex, const std::string& path, runtime::LoadMode mode) {
  try {
    runtime::load_checkpoint(ex, path, {.mode = mode});
  } catch (const runtime::CheckpointError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("checkpoints load into a pipeline only when names and shapes match") {
  TempDir d;
  std::string p = d.file("tiny.safetensors");
  runtime::Executor a(tiny());
  runtime::save_checkpoint(a, p, 7);
  runtime::Executor b(tiny());
  b.find_param("fc.weight")->value.fill(9.f);
  CHECK(runtime::load_checkpoint(b, p, {.mode = runtime::LoadMode::Weights}) == 7);
  CHECK(b.find_param("fc.weight")->value.to_vector() == a.find_param("fc.weight")->value.to_vector());

  SUBCASE("a shape that does not match") {
    runtime::write_safetensors(p, {{"fc.weight", Tensor({3, 3})}, {"fc.bias", Tensor({2})}}, {});
    CHECK(load_error(b, p, runtime::LoadMode::Weights) ==
          p + ": tensor \"fc.weight\" has shape [3, 3] but the pipeline needs [2, 3]");
  }
  SUBCASE("no EMA copies") {
    CHECK(load_error(b, p, runtime::LoadMode::Ema) ==
          p + ": has no tensor \"ema.fc.weight\" needed by the pipeline (the file has raw weights but no EMA copies: load raw weights)");
  }
  SUBCASE("missing tensor") {
    runtime::write_safetensors(p, {{"fc.weight", Tensor({2, 3})}}, {});
    CHECK(load_error(b, p, runtime::LoadMode::Weights) == p + ": has no tensor \"fc.bias\" needed by the pipeline");
  }
  SUBCASE("weights with NaN or Inf are refused, naming the tensor, and nothing is loaded") {
    Tensor w({2, 3});
    w.fill(1.f);
    w[1] = std::nanf("");
    w[4] = INFINITY;
    runtime::write_safetensors(p, {{"fc.weight", w}, {"fc.bias", Tensor({2})}}, {});
    b.find_param("fc.bias")->value.fill(5.f);
    CHECK(load_error(b, p, runtime::LoadMode::Weights) ==
          p + ": tensor \"fc.weight\" holds 2 NaN or infinite values (of 6): the run that wrote it diverged; load an "
              "earlier checkpoint (or allow_nonfinite to inspect it)");
    CHECK(b.find_param("fc.bias")->value.to_vector() == std::vector<float>{5.f, 5.f});
    // Allowed explicitly, they load as they are.
    CHECK(runtime::load_checkpoint(b, p, {.mode = runtime::LoadMode::Weights, .allow_nonfinite = true}) == 0);
    const auto loaded = b.find_param("fc.weight")->value.to_vector();
    CHECK(std::isnan(loaded[1]));
    CHECK(std::isinf(loaded[4]));
    CHECK(loaded[0] == 1.f);
  }
}

TEST_CASE("a recipe (metadata, itself JSON text) nested deeper than 64 levels is refused, not a stack overflow") {
  TempDir d;
  const std::string p = d.file("deep.safetensors");
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  runtime::Executor ex(tiny());
  runtime::write_safetensors(p, {{"fc.weight", Tensor({2, 3})}, {"fc.bias", Tensor({2})}}, {{"recipe", deep}});
  CHECK(load_error(ex, p, runtime::LoadMode::Weights) ==
        p + ": __metadata__ recipe is not a JSON object (of at most 64 levels)");
}
