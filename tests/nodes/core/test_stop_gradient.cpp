// tests/nodes/core/test_stop_gradient.cpp — tensor.stop_gradient: its value is its input's, and a net used
// once through it and once around it gets exactly the gradient of the path around it (central differences with
// the target held fixed), not the gradient of both uses; a net behind it alone is frozen.
#include <doctest/doctest.h>

#include <cmath>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

constexpr UniformTensors uniform{0x5709};

graph::Graph load(const std::string& text) {
  return graph::load_pipeline_text(text, "stop_gradient.json", load_options());
}

// x -> f -> pred; target = g(f2(x)), f2 a copy of f: with `barrier` the target passes a stop_gradient and f2, g
// get no gradient; the graph without the optimizer evaluates the loss for the differences.
std::string graph_text(bool barrier, bool optimizer, const std::string& f2 = "f") {
  std::string s = R"({ "noiseflow": 1, "nodes": {
    "x":    { "op": "tensor.constant", "attrs": { "values": [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.1, -0.3], "shape": [2, 4] } },
    "f":    { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
    "f2":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
    "g":    { "op": "nn.linear", "inputs": { "x": ")" + f2 + R"(" }, "attrs": { "out_features": 3 } },)";
  s += barrier ? R"("sg": { "op": "tensor.stop_gradient", "inputs": { "x": "g" } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "f", "target": "sg" } })"
               : R"("loss": { "op": "loss.mse", "inputs": { "pred": "f", "target": "g" } })";
  if (optimizer) s += R"(, "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.0 } })";
  return s + R"( }, "run": { "ticks": 1, "seed": 3 } })";
}

}  // namespace

TEST_CASE("tensor.stop_gradient passes its input's value") {
  const Tensor x = uniform({2, 3, 4}, 1);
  NodeHarness h("tensor.stop_gradient", {}, {{"x", x}});
  h.forward();
  CHECK(same_bytes(h.output("y"), x));
}

TEST_CASE("tensor.stop_gradient: the net used around the barrier gets the gradient of that use alone") {
  // The trained graph: the target g(f(x)) uses f too, behind the barrier.
  Executor train(load(graph_text(true, true)));
  train.step();
  Param* fw = train.find_param("f.weight");
  Param* gw = train.find_param("g.weight");
  REQUIRE(fw);
  REQUIRE(gw);
  // g is behind the barrier: no gradient (never written, still zero) and not among the optimizer's parameters.
  for (int64_t i = 0; i < gw->grad.numel(); ++i) CHECK(gw->grad[i] == 0.f);

  // Central differences of the loss with f's weights moved only where f is the prediction: f2 (the target's
  // copy of f) keeps the unperturbed weights.
  Executor eval(load(graph_text(false, false, "f2")));
  auto copy = [&](const std::string& from, const std::string& to) { eval.find_param(to)->value.copy_from(train.find_param(from)->value); };
  copy("f.weight", "f.weight"), copy("f.bias", "f.bias"), copy("f.weight", "f2.weight"), copy("f.bias", "f2.bias");
  copy("g.weight", "g.weight"), copy("g.bias", "g.bias");
  auto loss_at = [&] {
    eval.set_next_tick(0);
    eval.step();
    return double(eval.output("loss")[0]);
  };
  Tensor& w = eval.find_param("f.weight")->value;
  double worst = 0, scale = 0;
  double through_both = 0;  // how far the gradient of both uses is from the barrier's: the test can tell them apart
  for (int64_t i = 0; i < w.numel(); ++i) {
    const float w0 = w[i];
    const double h = 1e-2;
    w[i] = w0 + float(h);
    const double up = loss_at();
    w[i] = w0 - float(h);
    const double down = loss_at();
    w[i] = w0;
    const double fd = (up - down) / (2 * h);
    worst = std::max(worst, std::abs(fd - double(fw->grad[i])));
    scale = std::max(scale, std::abs(fd));
    // Moving f's weights in both uses (f2 too) is what the loss without a barrier would differentiate.
    Tensor& w2 = eval.find_param("f2.weight")->value;
    w[i] = w0 + float(h), w2[i] = w0 + float(h);
    const double up2 = loss_at();
    w[i] = w0 - float(h), w2[i] = w0 - float(h);
    const double down2 = loss_at();
    w[i] = w0, w2[i] = w0;
    through_both = std::max(through_both, std::abs((up2 - down2) / (2 * h) - double(fw->grad[i])));
  }
  INFO("largest |fd - grad| ", worst, " of gradients up to ", scale);
  CHECK(scale > 1e-3);
  CHECK(worst < 2e-3 * std::max(1.0, scale));
  CHECK(through_both > 20 * worst);
}

TEST_CASE("tensor.stop_gradient: a net behind it alone keeps its weights while the rest trains") {
  // The teacher feeds the loss only through the barrier: an sgd step with lr 0.1 moves f, not the teacher.
  Executor ex(load(R"({ "noiseflow": 1, "nodes": {
    "x":       { "op": "tensor.constant", "attrs": { "values": [0.5, -1.0, 0.25, 2.0, -0.75, 1.5, 0.1, -0.3], "shape": [2, 4] } },
    "f":       { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
    "teacher": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
    "sg":      { "op": "tensor.stop_gradient", "inputs": { "x": "teacher" } },
    "loss":    { "op": "loss.mse", "inputs": { "pred": "f", "target": "sg" } },
    "opt":     { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.05 } } }, "run": { "ticks": 20 } })"));
  const Tensor teacher0 = ex.find_param("teacher.weight")->value.clone();
  const Tensor f0 = ex.find_param("f.weight")->value.clone();
  double first = 0, last = 0;
  ex.run([&](const TickInfo& t) {
    const double l = ex.output("loss")[0];
    if (t.tick == 0) first = l;
    last = l;
  });
  CHECK(same_bytes(ex.find_param("teacher.weight")->value, teacher0));
  CHECK_FALSE(same_bytes(ex.find_param("f.weight")->value, f0));
  CHECK(last < 0.5 * first);  // f is pulled to the teacher
  // No optimizer state for the teacher: Adam's moments cover f alone.
  const auto state = state_of(ex, "opt");
  CHECK_FALSE(state.empty());
  for (const auto& [name, t] : state) CHECK(name.find("teacher") == std::string::npos);
  bool f_moments = false;
  for (const auto& [name, t] : state) f_moments = f_moments || name.find("f.weight") != std::string::npos;
  CHECK(f_moments);
}
