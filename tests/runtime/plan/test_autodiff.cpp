// tests/runtime/plan/test_autodiff.cpp — the backward pass the autodiff planner derives, and its errors.
#include <doctest/doctest.h>

#include "runtime/errors.hpp"
#include "runtime/plan/autodiff.hpp"
#include "runtime/plan/layouts.hpp"
#include "tests/runtime/plan/plan_graphs.hpp"

using namespace noiseflow;
using runtime::Layout;
using runtime::RunError;
using runtime::plan::AutodiffPlan;
using runtime::plan::ValueId;
using test::node_index;

namespace {
AutodiffPlan autodiff_of(const graph::Graph& g) {
  return runtime::plan::plan_autodiff(g, runtime::plan::plan_layouts(g, false).layouts);
}

// The RunError a plan of `text` throws.
RunError plan_error_of(const std::string& text) {
  const auto g = test::load_graph(text, "plan/bad.json");
  try {
    autodiff_of(g);
  } catch (const RunError& e) {
    return e;
  }
  FAIL("no error");
  return RunError({}, "");
}
}  // namespace

TEST_CASE("autodiff: the diamond's backward order, fan-in, zero gradients and trainable nodes") {
  const auto g = test::load_graph(test::kDiamond);
  const AutodiffPlan ad = autodiff_of(g);
  const int x = node_index(g, "x"), a = node_index(g, "a"), l = node_index(g, "l"), r = node_index(g, "r"),
            m = node_index(g, "m"), c = node_index(g, "c"), loss = node_index(g, "loss"), opt = node_index(g, "opt"),
            ema = node_index(g, "ema");
  CHECK(ad.optimizer == opt);
  CHECK(ad.loss == ValueId{loss, 0});
  // Consumers first; the random sources and the optimizer take no part.
  REQUIRE(ad.backward_order.size() == 6);
  CHECK(ad.backward_order.front() == loss);
  CHECK(ad.backward_order[1] == c);
  CHECK(ad.backward_order[2] == m);
  CHECK(ad.backward_order.back() == a);
  auto pos = [&](int n) { return std::find(ad.backward_order.begin(), ad.backward_order.end(), n) - ad.backward_order.begin(); };
  CHECK(pos(l) < pos(a));
  CHECK(pos(r) < pos(a));
  CHECK_FALSE(ad.in_backward[size_t(x)]);
  CHECK_FALSE(ad.in_backward[size_t(opt)]);
  // Gradients: loss->c (pred), c->m, m->l, m->r, l->a, r->a; eps is not in the backward, so no gradient to it.
  CHECK(ad.gradients.size() == 6);
  // a feeds l and r: one fan-in of two gradients.
  REQUIRE(ad.fan_in.size() == 1);
  CHECK(ad.fan_in[0].value == ValueId{a, 0});
  REQUIRE(ad.fan_in[0].gradients.size() == 2);
  for (int k : ad.fan_in[0].gradients) CHECK(ad.gradients[size_t(k)].value == ValueId{a, 0});
  // Nothing flows back into the loss output: it gets the all-zero (then seeded) gradient.
  REQUIRE(ad.zero_gradients.size() == 1);
  CHECK(ad.zero_gradients[0] == ValueId{loss, 0});
  // The plain-only loss writes c's gradient plain; it is converted into c's blocked layout.
  for (const auto& gr : ad.gradients) {
    CAPTURE(gr.consumer);
    CHECK(gr.converted == (gr.consumer == loss));
    CHECK(gr.layout == Layout::nChw16c);
  }
  CHECK(ad.trainable_nodes == std::vector<int>{c, r, a});
  CHECK(ad.optimizer_readers == std::vector<int>{ema});
}

TEST_CASE("autodiff: a pipeline without an optimizer has no backward pass") {
  const auto g = test::load_graph(test::kFanOut);
  const AutodiffPlan ad = autodiff_of(g);
  CHECK(ad.optimizer == -1);
  CHECK(ad.backward_order.empty());
  CHECK(ad.gradients.empty());
}

TEST_CASE("autodiff: errors name the node, the field and the reason") {
  SUBCASE("two optimizers") {
    const RunError e = plan_error_of(R"({ "noiseflow": 1, "nodes": {
        "x": { "op": "random.normal", "attrs": { "shape": [2, 4] } },
        "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
        "loss": { "op": "loss.mse", "inputs": { "pred": "f", "target": "x" } },
        "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" } },
        "opt2": { "op": "optim.adam", "inputs": { "loss": "loss" } } } })");
    CHECK(std::string(e.what()) ==
          R"(plan/bad.json: node "opt2", op: only one optimizer per pipeline is supported (found "opt" too))");
    CHECK(e.code() == "two_optimizers");
    CHECK(e.phase == "plan");
  }
  SUBCASE("nothing to optimise") {
    const RunError e = plan_error_of(R"({ "noiseflow": 1, "nodes": {
        "x": { "op": "random.normal", "attrs": { "shape": [2, 4] } },
        "y": { "op": "random.normal", "attrs": { "shape": [2, 4] } },
        "loss": { "op": "loss.mse", "inputs": { "pred": "x", "target": "y" } },
        "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" } } } })");
    CHECK(std::string(e.what()) ==
          R"(plan/bad.json: node "opt", input "loss": no trainable parameter upstream of "loss" (nothing to optimise))");
    CHECK(e.code() == "nothing_to_optimise");
  }
  SUBCASE("a non-differentiable input between the parameters and the loss") {
    const RunError e = plan_error_of(R"({ "noiseflow": 1, "nodes": {
        "x": { "op": "random.normal", "attrs": { "shape": [2, 16, 4, 4] } },
        "sched": { "op": "diffusion.schedule", "attrs": { "T": 10 } },
        "t": { "op": "diffusion.timesteps", "inputs": { "like": "x", "schedule": "sched" } },
        "a": { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 16 } },
        "tgt": { "op": "diffusion.target", "inputs": { "x0": "a", "noise": "x", "t": "t", "schedule": "sched" } },
        "loss": { "op": "loss.mse", "inputs": { "pred": "a", "target": "tgt" } },
        "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" } } } })");
    CHECK(std::string(e.what()) == R"(plan/bad.json: node "tgt", input "x0": diffusion.target is not differentiable in )"
                                   R"(this input, but it lies between trainable parameters and the loss "loss")");
    CHECK(e.code() == "not_differentiable");
  }
}

TEST_CASE("autodiff: a stop_gradient node routes no gradient, and a net behind it is frozen") {
  // f is used twice: as the prediction and, through g and the barrier, as the target. A teacher net feeds the
  // loss only through a barrier: no backward, no trainable parameters.
  const auto g = test::load_graph(R"({ "noiseflow": 1, "nodes": {
      "x":       { "op": "random.normal", "attrs": { "shape": [2, 4] } },
      "f":       { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "g":       { "op": "nn.linear", "inputs": { "x": "f" }, "attrs": { "out_features": 4 } },
      "sg":      { "op": "tensor.stop_gradient", "inputs": { "x": "g" } },
      "teacher": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "sg2":     { "op": "tensor.stop_gradient", "inputs": { "x": "teacher" } },
      "mix":     { "op": "nn.add", "inputs": { "a": "sg", "b": "sg2" } },
      "loss":    { "op": "loss.mse", "inputs": { "pred": "f", "target": "mix" } },
      "opt":     { "op": "optim.sgd", "inputs": { "loss": "loss" } } } })");
  const AutodiffPlan ad = autodiff_of(g);
  const int f = node_index(g, "f"), gg = node_index(g, "g"), sg = node_index(g, "sg"), teacher = node_index(g, "teacher"),
            mix = node_index(g, "mix"), loss = node_index(g, "loss");
  CHECK(ad.backward_order == std::vector<int>{loss, f});
  for (int n : {gg, sg, teacher, mix}) CHECK_FALSE(ad.in_backward[size_t(n)]);
  CHECK(ad.trainable_nodes == std::vector<int>{f});
  // One gradient: loss -> f (pred). None into the target side.
  REQUIRE(ad.gradients.size() == 1);
  CHECK(ad.gradients[0].value == ValueId{f, 0});
  CHECK(ad.gradients[0].consumer == loss);

  // Everything behind barriers: nothing to optimise.
  const RunError e = plan_error_of(R"({ "noiseflow": 1, "nodes": {
      "x":    { "op": "random.normal", "attrs": { "shape": [2, 4] } },
      "f":    { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "sg":   { "op": "tensor.stop_gradient", "inputs": { "x": "f" } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "sg", "target": "x" } },
      "opt":  { "op": "optim.sgd", "inputs": { "loss": "loss" } } } })");
  CHECK(e.code() == "nothing_to_optimise");
}
