// tests/runtime/exec/test_tying.cpp — weight tying at run time: one set of tensors for every use, the
// gradient of the shared weights is the sum over uses (central differences), the plan shows the tie, a
// checkpoint holds each tensor once, and a tied use behind a stop_gradient adds nothing.
#include <doctest/doctest.h>

#include <cmath>

#include "graph/pipeline.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/plan/print.hpp"
#include "runtime/safetensors.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

graph::Graph load(const std::string& text) { return graph::load_pipeline_text(text, "tying.json", load_options()); }

// y = f(g(f(x))): linear f used twice (the second use "f2" tied to f or an untied copy), g between them,
// compared to a constant. `barrier`: g(f(x)) is compared to the target f2(c), behind a stop_gradient (a
// consistency target: the same net on other inputs).
std::string graph_text(bool tied, bool barrier, bool optimizer) {
  std::string s = R"({ "noiseflow": 1, "nodes": {
    "x":   { "op": "tensor.constant", "attrs": { "values": [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.1, -0.3], "shape": [2, 4] } },
    "c":   { "op": "tensor.constant", "attrs": { "values": [0.2, 0.1, -0.4, 0.3, 0.0, -0.2, 0.5, 0.1], "shape": [2, 4] } },
    "f":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
    "g":   { "op": "nn.linear", "inputs": { "x": "f" }, "attrs": { "out_features": 4 } },
    "f2":  { "op": "nn.linear", "inputs": { "x": ")" + std::string(barrier ? "c" : "g") + R"(" }, "attrs": { "out_features": 4 })";
  s += tied ? R"(, "params_of": "f" },)" : " },";
  s += barrier ? R"("sg": { "op": "tensor.stop_gradient", "inputs": { "x": "f2" } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "g", "target": "sg" } })"
               : R"("loss": { "op": "loss.mse", "inputs": { "pred": "f2", "target": "c" } })";
  if (optimizer) s += R"(, "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.0 } })";
  return s + R"( }, "run": { "ticks": 1, "seed": 4 } })";
}

struct FdResult {
  double worst = 0, scale = 0;
};

// Central differences of the untied graph's loss in f's weights, moving f2's copy along (`both`) or not,
// against `grad`.
FdResult fd_against(Executor& train, const Tensor& grad, bool barrier, bool both) {
  Executor eval(load(graph_text(false, barrier, false)));
  for (const char* p : {"f.weight", "f.bias", "g.weight", "g.bias"})
    eval.find_param(p)->value.copy_from(train.find_param(p)->value);
  eval.find_param("f2.weight")->value.copy_from(train.find_param("f.weight")->value);
  eval.find_param("f2.bias")->value.copy_from(train.find_param("f.bias")->value);
  auto loss_at = [&] {
    eval.set_next_tick(0);
    eval.step();
    return double(eval.output("loss")[0]);
  };
  Tensor& w = eval.find_param("f.weight")->value;
  Tensor& w2 = eval.find_param("f2.weight")->value;
  FdResult r;
  const double h = 1e-2;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float w0 = w[i];
    auto set = [&](float v) {
      w[i] = v;
      if (both) w2[i] = v;
    };
    set(w0 + float(h));
    const double up = loss_at();
    set(w0 - float(h));
    const double down = loss_at();
    set(w0);
    const double fd = (up - down) / (2 * h);
    r.worst = std::max(r.worst, std::abs(fd - double(grad[i])));
    r.scale = std::max(r.scale, std::abs(fd));
  }
  return r;
}

}  // namespace

TEST_CASE("weight tying: the shared weights' gradient is the sum over both uses (central differences)") {
  Executor train(load(graph_text(true, false, true)));
  train.step();
  const Param* f = train.find_param("f.weight");
  REQUIRE(f);
  CHECK_FALSE(train.find_param("f2.weight"));  // one tensor, under the owner's name
  const FdResult both = fd_against(train, f->grad, false, true);
  const FdResult one = fd_against(train, f->grad, false, false);
  INFO("|fd - grad| ", both.worst, " (both uses moved), ", one.worst, " (the first alone); gradients up to ", both.scale);
  CHECK(both.scale > 1e-3);
  CHECK(both.worst < 2e-3 * std::max(1.0, both.scale));
  CHECK(one.worst > 20 * both.worst);  // the sum is not the first use's gradient alone
}

TEST_CASE("weight tying behind a stop_gradient: the tied use adds no gradient") {
  // loss = mse(g(f(x)), sg(f2(c))) with f2 = f: only the prediction path trains f.
  Executor train(load(graph_text(true, true, true)));
  train.step();
  const Param* f = train.find_param("f.weight");
  const FdResult alone = fd_against(train, f->grad, true, false);
  const FdResult both = fd_against(train, f->grad, true, true);
  INFO("|fd - grad| ", alone.worst, " (the prediction's use), ", both.worst, " (both uses)");
  CHECK(alone.scale > 1e-3);
  CHECK(alone.worst < 2e-3 * std::max(1.0, alone.scale));
  CHECK(both.worst > 20 * alone.worst);
}

TEST_CASE("weight tying: the plan shows the tie, training keeps one tensor, the checkpoint holds it once") {
  TempDir dir;
  std::string text = graph_text(true, false, true);
  text.replace(text.find(R"("lr": 0.0)"), 9, R"("lr": 0.1)");
  Executor ex(load(text));
  const std::string plan = plan::plan_text(ex.graph(), ex.plan());
  CHECK(plan.find("f2 uses the parameters of f") != std::string::npos);
  CHECK(plan.find("gradients of f, f2 summed into f's before the optimizer") != std::string::npos);
  const graph::Json pj = plan::plan_json(ex.graph(), ex.plan());
  REQUIRE(pj["ties"].size() == 1);
  CHECK(pj["ties"][0]["node"] == "f2");
  CHECK(pj["tie_sums"][0]["users"] == graph::Json::array({"f", "f2"}));
  const int f = ex.graph().find("f"), f2 = ex.graph().find("f2");
  CHECK(std::count(ex.plan().autodiff.trainable_nodes.begin(), ex.plan().autodiff.trainable_nodes.end(), f) == 1);
  CHECK(std::count(ex.plan().autodiff.trainable_nodes.begin(), ex.plan().autodiff.trainable_nodes.end(), f2) == 0);
  const Tensor before = ex.find_param("f.weight")->value.clone();
  for (int k = 0; k < 3; ++k) ex.step();
  CHECK_FALSE(same_bytes(ex.find_param("f.weight")->value, before));  // it trains
  const std::string ckpt = dir / "tied.safetensors";
  save_checkpoint(ex, ckpt, 3);
  const SafeTensors st = read_safetensors(ckpt);
  CHECK(st.tensors.count("f.weight") == 1);
  CHECK(st.tensors.count("f2.weight") == 0);
  CHECK(same_bytes(st.tensors.at("f.weight"), ex.find_param("f.weight")->value));
  // Loaded into a fresh executor, the tied use reads the checkpoint's weights too: the same loss as the untied
  // graph with the checkpoint's f copied into both uses.
  Executor tied(load(graph_text(true, false, false))), copies(load(graph_text(false, false, false)));
  load_checkpoint(tied, ckpt, {.mode = LoadMode::Weights});
  for (const char* p : {"f.weight", "f.bias", "g.weight", "g.bias"}) copies.find_param(p)->value.copy_from(st.tensors.at(p));
  copies.find_param("f2.weight")->value.copy_from(st.tensors.at("f.weight"));
  copies.find_param("f2.bias")->value.copy_from(st.tensors.at("f.bias"));
  tied.step(), copies.step();
  CHECK(same_bytes(tied.output("loss"), copies.output("loss")));
}

TEST_CASE("weight tying: an owner used only behind a barrier still trains through its tied use") {
  // The owner f feeds the loss only through a stop_gradient; its tied copy f2 is the prediction.
  Executor ex(load(R"({ "noiseflow": 1, "nodes": {
    "x":    { "op": "tensor.constant", "attrs": { "values": [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.1, -0.3], "shape": [2, 4] } },
    "c":    { "op": "tensor.constant", "attrs": { "values": [0.2, 0.1, -0.4, 0.3, 0.0, -0.2, 0.5, 0.1], "shape": [2, 4] } },
    "f":    { "op": "nn.linear", "inputs": { "x": "c" }, "attrs": { "out_features": 4 } },
    "sg":   { "op": "tensor.stop_gradient", "inputs": { "x": "f" } },
    "f2":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 }, "params_of": "f" },
    "loss": { "op": "loss.mse", "inputs": { "pred": "f2", "target": "sg" } },
    "opt":  { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.05 } } }, "run": { "ticks": 1 } })"));
  const int f = ex.graph().find("f");
  CHECK(ex.plan().autodiff.trainable_nodes == std::vector<int>{f});
  const Tensor before = ex.find_param("f.weight")->value.clone();
  ex.step();
  CHECK_FALSE(same_bytes(ex.find_param("f.weight")->value, before));
}
