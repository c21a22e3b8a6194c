// tests/nodes/optim/test_ema.cpp — optim.ema against the recurrence ema_k = d_k ema_{k-1} + (1 - d_k) w_k
// over the weights recorded after every Adam step, in double:
//
//   x [N,3] ──> fc (nn.linear, 2) ──> loss (loss.mse) ──> opt (optim.adam) ──step──> ema (optim.ema)
//   y [N,2] ─────────────────────────┘
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using noiseflow::test::state_of;
using runtime::Executor;
using runtime::ExecutorOptions;
using runtime::Tensor;

namespace {

const char* kEmaPipeline = R"({ "noiseflow": 1, "name": "ema-test",
  "nodes": {
    "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
    "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
    "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
    "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.05 } },
    "ema":  { "op": "optim.ema", "inputs": { "step": "opt.step" }, "attrs": EMA_ATTRS }
  },
  "run": { "ticks": 6 } })";

graph::Graph load_text(const std::string& text) {
  return graph::load_pipeline_text(text, "optim/ema.json", noiseflow::test::load_options());
}

graph::Graph load_ema_pipeline(const std::string& ema_attrs) {
  std::string text = kEmaPipeline;
  text.replace(text.find("EMA_ATTRS"), 9, ema_attrs);
  return load_text(text);
}

void set_data(Executor& ex) {
  Tensor x = ex.output("x"), y = ex.output("y");
  for (int i = 0; i < 12; ++i) x[i] = float(std::cos(0.9 * i + 0.2));
  for (int i = 0; i < 8; ++i) y[i] = float(std::sin(1.7 * i - 0.3));
}

}  // namespace

TEST_CASE("optim.ema follows the recurrence over the weights after every step") {
  double decay = 0;
  bool warmup = false;
  std::function<double(double)> ramp;  // when set: the decay after step k
  std::string attrs;
  SUBCASE("constant decay") {
    decay = 0.8;
    attrs = R"({ "decay": 0.8 })";
  }
  SUBCASE("warm-up: d = min(decay, (1 + step) / (10 + step))") {
    decay = 0.3, warmup = true;  // the warm-up term wins for steps 1..2, the decay from step 3 on
    attrs = R"({ "decay": 0.3, "warmup": true })";
  }
  SUBCASE("warm-up with the default decay") {
    decay = 0.999, warmup = true;
    attrs = R"({ "warmup": true })";
  }
  SUBCASE("ramp tf is warmup: true") {
    decay = 0.3, warmup = true;
    attrs = R"({ "decay": 0.3, "ramp": "tf" })";
  }
  SUBCASE("power ramp (diffusers' EMAModel): 0 at the first step, then 1 - (1 + k / inv_gamma)^-power") {
    attrs = R"({ "decay": 0.7, "ramp": "power", "power": 0.75, "inv_gamma": 2.0, "min_decay": 0.1 })";
    ramp = [](double step) {
      const double k = step - 1;  // update_after 0
      if (k <= 0) return 0.0;     // the copy takes the weights
      return std::max(0.1, std::min(0.7, 1.0 - std::pow(1.0 + k / 2.0, -0.75)));
    };
  }
  SUBCASE("power ramp with update_after: the copy follows the weights until then") {
    attrs = R"({ "decay": 0.99, "ramp": "power", "power": 0.6667, "update_after": 2 })";
    ramp = [](double step) {
      const double k = std::max(0.0, step - 2 - 1);
      return k <= 0 ? 0.0 : std::min(0.99, 1.0 - std::pow(1.0 + k, -0.6667));
    };
  }
  CAPTURE(attrs);
  auto g = load_ema_pipeline(attrs);
  Executor ex(g, ExecutorOptions{1});
  set_data(ex);
  auto st = state_of(ex, "ema");
  REQUIRE(st.size() == 2);

  // Reference: the copies start as the initial weights.
  std::map<std::string, std::vector<double>> ref;
  for (auto& p : ex.params()) ref[p.name] = std::vector<double>(p.value.data(), p.value.data() + p.value.numel());
  for (auto& [name, w] : ref) {
    CAPTURE(name);
    CHECK(st.at("ema." + name).to_vector() == std::vector<float>(w.begin(), w.end()));
  }
  for (int64_t k = 1; k <= 6; ++k) {
    CAPTURE(k);
    ex.step();
    const double d = ramp ? ramp(double(k)) : warmup ? std::min(decay, (1.0 + double(k)) / (10.0 + double(k))) : decay;
    for (auto& p : ex.params()) {
      CAPTURE(p.name);
      auto& e = ref[p.name];
      const Tensor& got = st.at("ema." + p.name);
      for (int64_t i = 0; i < p.value.numel(); ++i) {
        e[size_t(i)] = d * e[size_t(i)] + (1 - d) * p.value[i];
        CHECK(got[i] == doctest::Approx(e[size_t(i)]).epsilon(1e-6));
        if (k == 1 && !ramp) CHECK(got[i] != p.value[i]);  // an average, not a copy (the weights moved)
        if (ramp && d == 0.0) CHECK(got[i] == p.value[i]);  // decay 0: the copy is the weights
      }
    }
    CHECK(ex.output("ema.step")[0] == float(k));  // the optimizer's step, passed through
  }
}

TEST_CASE("optim.ema state tensors are named ema.<param> with the shapes of the parameters") {
  auto g = load_ema_pipeline("{}");
  Executor ex(g, ExecutorOptions{1});
  set_data(ex);
  auto st = state_of(ex, "ema");
  std::vector<std::string> names;
  for (auto& [name, t] : st) names.push_back(name);
  CHECK(names == std::vector<std::string>{"ema.fc.bias", "ema.fc.weight"});
  CHECK(st.at("ema.fc.weight").shape() == graph::Shape{2, 3});
  CHECK(st.at("ema.fc.bias").shape() == graph::Shape{2});
  ex.step();
  for (auto& [name, t] : state_of(ex, "ema")) {
    CAPTURE(name);
    CHECK(t.same_buffer(st.at(name)));  // live handles: a checkpoint load writes into them
  }
}

TEST_CASE("optim.ema not fed by an optimizer is a plan error naming its step input") {
  auto g = load_text(R"({ "noiseflow": 1,
    "nodes": {
      "c":   { "op": "tensor.constant", "attrs": { "shape": [1], "fill": 1 } },
      "ema": { "op": "optim.ema", "inputs": { "step": "c" } }
    } })");
  try {
    Executor ex(g, ExecutorOptions{1});
    FAIL("expected a plan error");
  } catch (const runtime::RunError& e) {
    CHECK(e.node == "ema");
    CHECK(std::string(e.what()).find("input \"step\": no trainable parameters") != std::string::npos);
  }
}

TEST_CASE("optim.ema: a fixed and a ramped average side by side under their prefixes, each loadable") {
  auto g = load_text(R"({ "noiseflow": 1, "name": "two-emas",
    "nodes": {
      "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
      "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
      "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
      "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.05 } },
      "ema":  { "op": "optim.ema", "inputs": { "step": "opt.step" }, "attrs": { "decay": 0.9 } },
      "slow": { "op": "optim.ema", "inputs": { "step": "opt.step" }, "attrs": { "decay": 0.99, "ramp": "power", "prefix": "ema_slow" } }
    },
    "run": { "ticks": 4 } })");
  Executor ex(g, ExecutorOptions{1});
  set_data(ex);
  for (int k = 0; k < 4; ++k) ex.step();
  auto fast = state_of(ex, "ema"), slow = state_of(ex, "slow");
  REQUIRE(fast.count("ema.fc.weight"));
  REQUIRE(slow.count("ema_slow.fc.weight"));
  CHECK(fast.at("ema.fc.weight").to_vector() != slow.at("ema_slow.fc.weight").to_vector());

  // io.load_checkpoint's `weights` picks either average by its prefix.
  noiseflow::test::TempDir dir;
  const std::string path = (dir.path / "two.safetensors").string();
  runtime::save_checkpoint(ex, path, 4);
  for (const std::string which : {"ema", "ema_slow"}) {
    CAPTURE(which);
    auto lg = load_text(R"({ "noiseflow": 1, "nodes": {
        "load": { "op": "io.load_checkpoint", "attrs": { "path": ")" + path + R"(", "weights": ")" + which + R"(" } },
        "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
        "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } } } })");
    Executor loaded(lg, ExecutorOptions{1});
    const auto& want = which == "ema" ? fast.at("ema.fc.weight") : slow.at("ema_slow.fc.weight");
    CHECK(loaded.find_param("fc.weight")->value.to_vector() == want.to_vector());
  }
}

TEST_CASE("optim.ema: conflicting ramps and bad prefixes are errors naming the field") {
  auto check = [](const std::string& attrs, const std::string& field, const std::string& part) {
    CAPTURE(attrs);
    try {
      load_ema_pipeline(attrs);
      FAIL("expected an error");
    } catch (const graph::GraphError& e) {
      const std::string m = e.what();
      CHECK(m.find(field) != std::string::npos);
      CHECK(m.find(part) != std::string::npos);
    }
  };
  check(R"({ "warmup": true, "ramp": "power" })", "warmup", "choose one ramp");
  check(R"({ "ramp": "power", "inv_gamma": 0 })", "inv_gamma", "above 0");
  check(R"({ "decay": 0.5, "min_decay": 0.6 })", "min_decay", "above decay");
  check(R"({ "prefix": "a.b" })", "prefix", "without '.'");
}

TEST_CASE("optim.ema: two averages under one prefix are a plan error naming both nodes") {
  auto g = load_text(R"({ "noiseflow": 1,
    "nodes": {
      "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
      "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
      "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
      "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" } },
      "ema":  { "op": "optim.ema", "inputs": { "step": "opt.step" } },
      "ema2": { "op": "optim.ema", "inputs": { "step": "opt.step" }, "attrs": { "decay": 0.99 } }
    } })");
  try {
    Executor ex(g, ExecutorOptions{1});
    FAIL("expected a plan error");
  } catch (const runtime::RunError& e) {
    const std::string m = e.what();
    CHECK(e.node == "ema2");
    CHECK(m.find("prefix") != std::string::npos);
    CHECK(m.find("\"ema.fc.") != std::string::npos);
    CHECK(m.find("node \"ema\"") != std::string::npos);
  }
}
