// tests/nodes/optim/test_adam.cpp — optim.adam against an independent double-precision AdamW
// (torch.optim.AdamW + clip_grad_norm_ + linear warm-up) on a tiny regression pipeline, driven through
// the executor:
//
//   x [N,3] ──> fc (nn.linear, 2) ──> loss (loss.mse) ──> opt (optim.adam)
//   y [N,2] ─────────────────────────┘
#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "graph/diagnostics.hpp"
#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/parameters.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using noiseflow::test::state_of;
using runtime::Executor;
using runtime::ExecutorOptions;
using runtime::Param;
using runtime::Tensor;
using Vec = std::vector<double>;

namespace {

graph::Graph load_adam_pipeline(int64_t n, const std::string& adam_attrs, int64_t ticks) {
  const std::string text = R"({ "noiseflow": 1, "name": "adam-test",
    "nodes": {
      "x":    { "op": "input", "attrs": { "shape": [)" + std::to_string(n) + R"(, 3] } },
      "y":    { "op": "input", "attrs": { "shape": [)" + std::to_string(n) + R"(, 2] } },
      "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
      "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": )" + adam_attrs + R"( }
    },
    "run": { "ticks": )" + std::to_string(ticks) + " } }";
  return graph::load_pipeline_text(text, "optim/adam.json", noiseflow::test::load_options());
}

// Inputs x and a target y = x A^T + c that a linear layer can fit exactly.
void set_regression_data(Executor& ex) {
  Tensor x = ex.output("x"), y = ex.output("y");
  const int64_t n = x.dim(0);
  const double a[2][3] = {{0.8, -0.6, 0.3}, {-0.4, 0.9, 0.7}}, c[2] = {0.25, -0.5};
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 3; ++j) x[i * 3 + j] = float(std::sin(1.3 * double(i) + 0.7 * j + 0.1));
  for (int64_t i = 0; i < n; ++i)
    for (int o = 0; o < 2; ++o) {
      double s = c[o];
      for (int j = 0; j < 3; ++j) s += a[o][j] * x[i * 3 + j];
      y[i * 2 + o] = float(s);
    }
}

Vec to_vec(const Tensor& t) { return Vec(t.data(), t.data() + t.numel()); }

// d mse / d (W, b) for pred = x W^T + b over `n` samples, in double.
std::pair<Vec, Vec> linear_mse_grads(const Tensor& x, const Tensor& y, const Vec& w, const Vec& b) {
  const int64_t n = x.dim(0);
  Vec gw(6, 0.0), gb(2, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int o = 0; o < 2; ++o) {
      double pred = b[o];
      for (int j = 0; j < 3; ++j) pred += x[i * 3 + j] * w[o * 3 + j];
      const double d = 2.0 * (pred - y[i * 2 + o]) / double(n * 2);
      for (int j = 0; j < 3; ++j) gw[o * 3 + j] += d * x[i * 3 + j];
      gb[o] += d;
    }
  return {gw, gb};
}

// The reference: AdamW as torch.optim.AdamW after torch.nn.utils.clip_grad_norm_, in double.
struct RefAdam {
  double lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0, clip = 0;
  int64_t warmup = 0;
  std::function<double(int64_t)> schedule;  // when set: the learning rate of step k (else lr with warm-up)
  std::vector<Vec> m, v;
  double norm = 0, lr_t = 0;

  // One update at 1-based step `k` of weights `w` with gradients `g`; returns the new weights.
  std::vector<Vec> step(int64_t k, const std::vector<Vec>& w, const std::vector<Vec>& g) {
    if (m.empty())
      for (auto& gi : g) m.emplace_back(gi.size(), 0.0), v.emplace_back(gi.size(), 0.0);
    double sq = 0;
    for (auto& gi : g)
      for (double e : gi) sq += e * e;
    norm = std::sqrt(sq);
    const double coef = clip > 0 ? std::min(1.0, clip / (norm + 1e-6)) : 1.0;
    lr_t = schedule ? schedule(k) : warmup > 0 ? lr * std::min(1.0, double(k) / double(warmup)) : lr;
    const double bc1 = 1 - std::pow(beta1, double(k)), bc2 = 1 - std::pow(beta2, double(k));
    std::vector<Vec> out = w;
    for (size_t p = 0; p < g.size(); ++p)
      for (size_t i = 0; i < g[p].size(); ++i) {
        const double gi = coef * g[p][i];
        m[p][i] = beta1 * m[p][i] + (1 - beta1) * gi;
        v[p][i] = beta2 * v[p][i] + (1 - beta2) * gi * gi;
        out[p][i] *= 1 - lr_t * wd;
        out[p][i] -= lr_t / bc1 * m[p][i] / (std::sqrt(v[p][i]) / std::sqrt(bc2) + eps);
      }
    return out;
  }
};

bool close_rel(double a, double b, double rel, double abs = 1e-12) { return std::fabs(a - b) <= rel * std::fabs(b) + abs; }

void check_tensor(const Tensor& t, const Vec& ref, double rel, double abs, const char* what) {
  REQUIRE(size_t(t.numel()) == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    CAPTURE(what);
    CAPTURE(i);
    CHECK(close_rel(t[int64_t(i)], ref[i], rel, abs));
  }
}

}  // namespace

TEST_CASE("optim.adam: 5 steps match a double-precision AdamW reference") {
  RefAdam ref;
  std::string attrs;
  SUBCASE("plain Adam") { attrs = R"({ "lr": 0.01 })"; }
  SUBCASE("betas and eps") {
    attrs = R"({ "lr": 0.02, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3 })";
    ref.lr = 0.02, ref.beta1 = 0.5, ref.beta2 = 0.9, ref.eps = 1e-3;
  }
  SUBCASE("decoupled weight decay") {
    attrs = R"({ "lr": 0.01, "weight_decay": 0.5 })";
    ref.wd = 0.5;
  }
  SUBCASE("global gradient-norm clipping") {
    attrs = R"({ "lr": 0.01, "clip_norm": 0.05 })";
    ref.clip = 0.05;
  }
  SUBCASE("linear warm-up") {
    attrs = R"({ "lr": 0.01, "warmup": 3 })";
    ref.warmup = 3;
  }
  SUBCASE("all together") {
    attrs = R"({ "lr": 0.01, "weight_decay": 0.1, "clip_norm": 0.05, "warmup": 4 })";
    ref.wd = 0.1, ref.clip = 0.05, ref.warmup = 4;
  }
  CAPTURE(attrs);
  const int64_t steps = 5;
  auto g = load_adam_pipeline(4, attrs, steps);
  Executor ex(g, ExecutorOptions{1});
  set_regression_data(ex);
  Param* w = ex.find_param("fc.weight");
  Param* b = ex.find_param("fc.bias");
  REQUIRE(w);
  REQUIRE(b);
  auto st = state_of(ex, "opt");
  REQUIRE(st.size() == 4);
  const Tensor x = ex.output("x"), y = ex.output("y");

  for (int64_t k = 1; k <= steps; ++k) {
    CAPTURE(k);
    const std::vector<Vec> before{to_vec(w->value), to_vec(b->value)};
    ex.step();
    // The gradients the update used: the backward pass ran on the weights before the step.
    const std::vector<Vec> grads{to_vec(w->grad), to_vec(b->grad)};
    auto [gw, gb] = linear_mse_grads(x, y, before[0], before[1]);
    check_tensor(w->grad, gw, 1e-4, 1e-7, "grad fc.weight");
    check_tensor(b->grad, gb, 1e-4, 1e-7, "grad fc.bias");

    const std::vector<Vec> after = ref.step(k, before, grads);
    if (ref.clip > 0) REQUIRE(ref.norm > ref.clip);  // the clip must have triggered
    check_tensor(w->value, after[0], 1e-6, 1e-6, "fc.weight");
    check_tensor(b->value, after[1], 1e-6, 1e-6, "fc.bias");
    check_tensor(st.at("opt.m.fc.weight"), ref.m[0], 1e-5, 1e-9, "m fc.weight");
    check_tensor(st.at("opt.m.fc.bias"), ref.m[1], 1e-5, 1e-9, "m fc.bias");
    check_tensor(st.at("opt.v.fc.weight"), ref.v[0], 1e-5, 1e-12, "v fc.weight");
    check_tensor(st.at("opt.v.fc.bias"), ref.v[1], 1e-5, 1e-12, "v fc.bias");

    CHECK(ex.output("opt.step")[0] == float(k));
    double norm = -1, lr_t = -1;
    REQUIRE(ex.state().latest("grad_norm", norm));
    REQUIRE(ex.state().latest("lr", lr_t));
    CHECK(close_rel(norm, ref.norm, 1e-6));
    CHECK(close_rel(lr_t, ref.lr_t, 1e-12));
  }
}

TEST_CASE("optim.adam: state tensors are the live moments named <id>.m/v.<param>") {
  auto g = load_adam_pipeline(4, R"({ "lr": 0.01 })", 2);
  Executor ex(g, ExecutorOptions{1});
  set_regression_data(ex);
  auto before = state_of(ex, "opt");
  std::vector<std::string> names;
  for (auto& [name, t] : before) names.push_back(name);
  CHECK(names == std::vector<std::string>{"opt.m.fc.bias", "opt.m.fc.weight", "opt.v.fc.bias", "opt.v.fc.weight"});
  CHECK(before.at("opt.m.fc.weight").shape() == graph::Shape{2, 3});
  CHECK(before.at("opt.v.fc.weight").shape() == graph::Shape{2, 3});
  CHECK(before.at("opt.m.fc.bias").shape() == graph::Shape{2});
  CHECK(before.at("opt.v.fc.bias").shape() == graph::Shape{2});
  ex.step();
  auto after = state_of(ex, "opt");
  for (auto& [name, t] : after) {
    CAPTURE(name);
    CHECK(t.same_buffer(before.at(name)));  // handles, not copies
  }
  CHECK(after.at("opt.v.fc.weight")[0] > 0.f);
}

TEST_CASE("optim.adam: a run resumed at tick k with its weights and moments continues identically") {
  const std::string attrs = R"({ "lr": 0.01, "warmup": 4, "weight_decay": 0.1, "clip_norm": 0.5 })";
  auto g = load_adam_pipeline(4, attrs, 6);
  Executor straight(g, ExecutorOptions{1}), first(g, ExecutorOptions{1}), resumed(g, ExecutorOptions{1});
  for (Executor* e : {&straight, &first, &resumed}) set_regression_data(*e);
  for (int k = 0; k < 6; ++k) straight.step();
  for (int k = 0; k < 3; ++k) first.step();
  // What a checkpoint carries: the weights, the moments and the tick.
  for (auto& p : first.params()) resumed.find_param(p.name)->value.copy_from(p.value);
  auto from = state_of(first, "opt"), to = state_of(resumed, "opt");
  for (auto& [name, t] : from) to.at(name).copy_from(t);
  resumed.set_next_tick(3);
  for (int k = 0; k < 3; ++k) resumed.step();
  for (auto& p : straight.params()) {
    CAPTURE(p.name);
    CHECK(p.value.to_vector() == resumed.find_param(p.name)->value.to_vector());
  }
  CHECK(resumed.output("opt.step")[0] == 6.f);
}

TEST_CASE("optim.adam: the update does not depend on the thread count") {
  // The node driven directly, with parameters large enough for several blocks and threads.
  const runtime::NodeType* type = runtime::Registry::global().find("optim.adam");
  REQUIRE(type);
  auto run = [&](int threads) {
    std::deque<Param> params;
    for (int64_t n : {70001, 100000, 5}) params.push_back(runtime::make_param("p" + std::to_string(n), {n}, graph::Init::normal(1.0), 7));
    runtime::RunState rs;
    runtime::Context ctx;
    ctx.id_ = "opt";
    ctx.schema_ = &type->schema;
    ctx.attrs_ = type->schema.with_defaults({{"lr", 0.01}, {"clip_norm", 1.0}, {"weight_decay", 0.01}});
    ctx.inputs_ = {Tensor({1})};
    ctx.outputs_ = {Tensor({1})};
    ctx.ticks_ = 3;
    ctx.run_state_ = &rs;
    for (auto& p : params) ctx.trainable_.push_back(&p);
    auto node = type->make();
    node->plan(ctx);
    omp_set_num_threads(threads);
    std::vector<double> norms;
    for (int64_t t = 0; t < 3; ++t) {
      for (auto& p : params)
        for (int64_t i = 0; i < p.grad.numel(); ++i) p.grad[i] = float(std::sin(0.001 * double(i) + double(t)) * 0.01);
      ctx.tick_ = t;
      node->forward(ctx);
      double norm = 0;
      REQUIRE(rs.latest("grad_norm", norm));
      norms.push_back(norm);
    }
    std::vector<float> all;
    for (auto& p : params) all.insert(all.end(), p.value.data(), p.value.data() + p.value.numel());
    return std::pair{all, norms};
  };
  const int saved = omp_get_max_threads();
  auto [w1, n1] = run(1);
  auto [w3, n3] = run(3);
  omp_set_num_threads(saved);
  CHECK(n1 == n3);  // bitwise
  CHECK(w1 == w3);
  CHECK(n1[0] > 1.0);  // the clip was active
}

namespace {
// y = x; its backward passes an infinite gradient on: a finite loss with a non-finite gradient norm.
struct TestInfGrad final : runtime::Node {
  static runtime::Schema schema() {
    return runtime::Schema("test.inf_grad", "test: identity whose backward writes +inf")
        .input("x")
        .output("y")
        .differentiable({"x"})
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }
  void forward(runtime::Context& ctx) override { ctx.output("y").copy_from(ctx.input("x")); }
  void backward(runtime::Context& ctx) override {
    ctx.grad_input("x").copy_from(ctx.grad_output("y"));
    ctx.grad_input("x").data()[0] = std::numeric_limits<float>::infinity();
  }
};
NOISEFLOW_REGISTER_NODE(TestInfGrad);
}  // namespace

TEST_CASE("optim.adam: a non-finite gradient norm with a finite loss is an error that leaves the weights alone") {
  auto g = graph::load_pipeline_text(R"({ "noiseflow": 1, "nodes": {
      "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
      "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
      "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
      "inf":  { "op": "test.inf_grad", "inputs": { "x": "fc" } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "inf", "target": "y" } },
      "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.01 } } },
    "run": { "ticks": 1 } })",
                                     "optim/adam.json", test::load_options());
  Executor ex(g, ExecutorOptions{1});
  set_regression_data(ex);
  const auto before = ex.find_param("fc.weight")->value.to_vector();
  try {
    ex.step();
    FAIL("expected an error");
  } catch (const runtime::RunError& e) {
    CHECK(std::string(e.what()).find("node \"opt\"") != std::string::npos);
    CHECK(std::string(e.what()).find("gradient norm is inf") != std::string::npos);
  }
  CHECK(std::isfinite(ex.output("loss")[0]));
  CHECK(ex.find_param("fc.weight")->value.to_vector() == before);
}

TEST_CASE("optim.adam and optim.sgd: a NaN or infinite loss is an error naming the step, weights left alone") {
  for (const char* op : {"optim.adam", "optim.sgd"}) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      CAPTURE(op);
      CAPTURE(bad);
      auto g = graph::load_pipeline_text(R"({ "noiseflow": 1, "nodes": {
          "x":    { "op": "input", "attrs": { "shape": [4, 3] } },
          "y":    { "op": "input", "attrs": { "shape": [4, 2] } },
          "fc":   { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 2 } },
          "loss": { "op": "loss.mse", "inputs": { "pred": "fc", "target": "y" } },
          "opt":  { "op": ")" + std::string(op) + R"(", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.1 } } },
        "run": { "ticks": 3 } })",
                                         "bad/diverged.json", test::load_options());
      Executor ex(g, ExecutorOptions{1});
      set_regression_data(ex);
      ex.step();
      ex.output("y")[0] = bad;
      const auto before = ex.find_param("fc.weight")->value.to_vector();
      try {
        ex.step();
        FAIL("expected an error");
      } catch (const runtime::RunError& e) {
        CHECK(std::string(e.what()).find("bad/diverged.json: node \"opt\", input \"loss\": the loss is") == 0);
        CHECK(std::string(e.what()).find(" at step 2 (it diverged") != std::string::npos);
      }
      CHECK(ex.find_param("fc.weight")->value.to_vector() == before);
    }
  }
}

TEST_CASE("optim.adam: betas must be below 1 and eps above 0") {
  for (const char* attrs : {R"({ "beta1": 1.0 })", R"({ "beta2": 1 })", R"({ "eps": 0 })"}) {
    CAPTURE(attrs);
    try {
      load_adam_pipeline(4, attrs, 1);
      FAIL("expected a validation error");
    } catch (const graph::GraphError& e) {
      REQUIRE(e.diagnostics.size() == 1);
      CHECK(e.diagnostics[0].node == "opt");
      CHECK(e.diagnostics[0].message.find("must be") != std::string::npos);
    }
  }
}

TEST_CASE("optim.adam: the loss of a tiny linear regression falls below 10% in 200 steps") {
  auto g = load_adam_pipeline(16, R"({ "lr": 0.01 })", 201);
  Executor ex(g, ExecutorOptions{1});
  set_regression_data(ex);
  ex.step();
  const float start = ex.output("loss")[0];  // at the initial weights
  for (int k = 1; k < 201; ++k) ex.step();
  const float end = ex.output("loss")[0];  // after 200 updates
  CAPTURE(start);
  CAPTURE(end);
  CHECK(start > 0.1f);
  CHECK(end < 0.1f * start);
}

TEST_CASE("optim.adam: cosine and linear schedules with warm-up follow their closed forms, and resume identically") {
  // lr 0.02 peak, 3 warm-up steps, decay to min_lr 0.002 at step 9; the run goes 12 steps (past the end).
  const double lr = 0.02, lo = 0.002;
  const int64_t warmup = 3, total = 9, steps = 12;
  std::string kind;
  std::function<double(int64_t)> expect;
  SUBCASE("cosine") {
    kind = "cosine";
    expect = [&](int64_t k) {
      if (k < warmup) return lr * double(k) / double(warmup);
      const double p = std::min(1.0, double(k - warmup) / double(total - warmup));
      return lo + (lr - lo) * 0.5 * (1.0 + std::cos(3.14159265358979323846 * p));
    };
  }
  SUBCASE("linear") {
    kind = "linear";
    expect = [&](int64_t k) {
      if (k < warmup) return lr * double(k) / double(warmup);
      const double p = std::min(1.0, double(k - warmup) / double(total - warmup));
      return lo + (lr - lo) * (1.0 - p);
    };
  }
  SUBCASE("constant") {
    kind = "constant";
    expect = [&](int64_t k) { return k < warmup ? lr * double(k) / double(warmup) : lr; };
  }
  CAPTURE(kind);
  const std::string attrs = R"({ "lr": 0.02, "warmup": 3, "schedule": ")" + kind +
                            R"(", "total": 9, "min_lr": 0.002, "clip_norm": 0.5 })";
  auto g = load_adam_pipeline(4, attrs, steps);
  Executor ex(g, ExecutorOptions{1});
  set_regression_data(ex);
  Param* w = ex.find_param("fc.weight");
  Param* b = ex.find_param("fc.bias");
  RefAdam ref;
  ref.clip = 0.5;
  ref.schedule = expect;
  for (int64_t k = 1; k <= steps; ++k) {
    CAPTURE(k);
    const std::vector<Vec> before{to_vec(w->value), to_vec(b->value)};
    ex.step();
    const std::vector<Vec> after = ref.step(k, before, {to_vec(w->grad), to_vec(b->grad)});
    double lr_t = -1;
    REQUIRE(ex.state().latest("lr", lr_t));
    CHECK(close_rel(lr_t, expect(k), 1e-12));
    check_tensor(w->value, after[0], 1e-6, 1e-6, "fc.weight");
    check_tensor(b->value, after[1], 1e-6, 1e-6, "fc.bias");
  }
  if (kind == "cosine") {
    double mid = expect(6), end = expect(total), past = expect(steps);
    CHECK(mid < lr);  // the closed form itself: below the peak midway, at min_lr from step `total` on
    CHECK(end == doctest::Approx(lo));
    CHECK(past == doctest::Approx(lo));
  }

  // Resumed at tick 5 with the weights and moments: the schedule reads the tick, so the run continues bitwise.
  Executor first(g, ExecutorOptions{1}), resumed(g, ExecutorOptions{1});
  set_regression_data(first);
  set_regression_data(resumed);
  for (int k = 0; k < 5; ++k) first.step();
  for (auto& p : first.params()) resumed.find_param(p.name)->value.copy_from(p.value);
  auto from = state_of(first, "opt"), to = state_of(resumed, "opt");
  for (auto& [name, t] : from) to.at(name).copy_from(t);
  resumed.set_next_tick(5);
  for (int k = 5; k < steps; ++k) resumed.step();
  for (auto& p : ex.params()) {
    CAPTURE(p.name);
    CHECK(p.value.to_vector() == resumed.find_param(p.name)->value.to_vector());
  }
}

TEST_CASE("optim.adam: total 0 decays over the run's ticks, a decay shorter than the warm-up ends at min_lr") {
  {
    auto g = load_adam_pipeline(4, R"({ "lr": 0.01, "schedule": "linear" })", 4);  // total = 4 ticks
    Executor ex(g, ExecutorOptions{1});
    set_regression_data(ex);
    std::vector<double> seen;
    for (int k = 0; k < 4; ++k) {
      ex.step();
      double lr_t = -1;
      REQUIRE(ex.state().latest("lr", lr_t));
      seen.push_back(lr_t);
    }
    CHECK(seen[0] == doctest::Approx(0.01 * 3.0 / 4.0));  // p = s / total with no warm-up
    CHECK(seen[3] == doctest::Approx(0.0));
  }
  {
    // total 3 <= warmup 5: warm-up for steps 1..4, the peak at step 5 (the decay's start), then min_lr
    // (no division by zero, no error).
    auto g = load_adam_pipeline(4, R"({ "lr": 0.01, "schedule": "cosine", "warmup": 5, "total": 3, "min_lr": 0.001 })", 7);
    Executor ex(g, ExecutorOptions{1});
    set_regression_data(ex);
    for (int k = 1; k <= 7; ++k) {
      CAPTURE(k);
      ex.step();
      double lr_t = -1;
      REQUIRE(ex.state().latest("lr", lr_t));
      CHECK(lr_t == doctest::Approx(k < 5 ? 0.01 * k / 5.0 : k == 5 ? 0.01 : 0.001));
    }
  }
  auto g = load_adam_pipeline(4, R"({ "lr": 0.01, "schedule": "cosine", "min_lr": 0.1 })", 4);
  try {
    Executor ex(g, ExecutorOptions{1});
    FAIL("expected a plan error");
  } catch (const runtime::RunError& e) {
    CHECK(e.node == "opt");
    CHECK(std::string(e.what()).find("min_lr") != std::string::npos);
    CHECK(std::string(e.what()).find("is above lr") != std::string::npos);
  }
}
