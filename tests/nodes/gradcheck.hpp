// tests/nodes/gradcheck.hpp — one generic finite-difference gradient check for every node type.
//
// Register a case at namespace scope in any file of tests/nodes/, next to the node's other tests:
//
//   #include "tests/nodes/gradcheck.hpp"
//   NOISEFLOW_GRAD_CASE("conv2d stride 2", "nn.conv2d", R"({"out_channels": 4, "stride": 2})",
//                       {"x", {1, 3, 5, 7}});
//   NOISEFLOW_GRAD_CASE("mse weighted", "loss.mse", "{}",
//                       {"pred", {3, 2}}, {"target", {3, 2}}, {"weights", {3}});
//
//   - name:   unique, shown as the doctest SUBCASE;
//   - op:     the registered op name;
//   - attrs:  a JSON object as a string (a raw string keeps its commas away from the preprocessor);
//   - inputs: one {"input name", {shape...}} per connected input (optional inputs may be left out).
//
// NOISEFLOW_GRAD_CASE_TOL(name, op, attrs, tol, inputs...) sets another tolerance (default 1e-2).
// For anything more (input value ranges, step), call register_grad_case(GradCase{...}) from a static
// initialiser: `static const bool my_case = noiseflow::testing::register_grad_case(c);`.
//
// tests/nodes/test_gradients.cpp runs every registered case and fails when a differentiable op
// (Schema::is_differentiable()) has no case at all, so a new node lands with its gradient test.
//
// What one case checks (check_gradients()): inputs are filled with uniform values in [lo, hi]; the node
// runs forward; with a random projection L = sum_k sum(r_k * y_k) over every output y_k, backward runs with
// grad_output(y_k) = r_k; every differentiable input gradient and every parameter gradient is compared
// with central differences of L (evaluated in double from float forwards) — all elements of small tensors,
// a deterministic random sample of ~20 (plus the first and last) of big ones. The error of one tensor is
// max|analytic - numeric| / max(max|analytic|, max|numeric|, 1e-3) over the compared elements.
// Two more checks per case: backward() run again over stale gradient values must give the same result
// (gradients are overwritten, not accumulated), and with no input gradient wanted it must still produce
// the same parameter gradients.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/harness.hpp"
#include "runtime/random.hpp"

namespace noiseflow::testing {

/// One gradient-check case: an op, its attributes and its input shapes.
struct GradCase {
  std::string name, op;
  nlohmann::json attrs;
  std::vector<std::pair<std::string, noiseflow::graph::Shape>> inputs;
  double tol = 1e-2;   ///< largest accepted relative error per tensor
  double step = 1e-2;  ///< finite-difference step, relative to max(1, |value|)
  float lo = -1.f, hi = 1.f;  ///< range of the random input values
  uint64_t seed = 1;          ///< seed of the node (parameter init) and of the input values
};

/// Every registered case, in registration order.
inline std::vector<GradCase>& grad_cases() {
  static std::vector<GradCase> cases;
  return cases;
}

/// Adds a case (throws on a duplicate name); returns true so it can initialise a static.
inline bool register_grad_case(GradCase c) {
  for (auto& e : grad_cases())
    if (e.name == c.name) throw std::logic_error("gradient case '" + c.name + "' is registered twice");
  grad_cases().push_back(std::move(c));
  return true;
}

/// Parses the attribute string of the registration macros.
inline nlohmann::json grad_case_attrs(const char* text) { return nlohmann::json::parse(text); }

/// The result of comparing one gradient tensor.
struct GradReport {
  std::string what;   ///< "input x" or "param weight"
  double error = 0;   ///< relative error as defined above
  int64_t compared = 0;
  int64_t worst = -1;  ///< element index of the largest difference
  double analytic = 0, numeric = 0;  ///< values at `worst`
};

/// Runs one case; returns a report per differentiable input and parameter.
inline std::vector<GradReport> check_gradients(const GradCase& c) {
  using namespace noiseflow::runtime;
  const uint64_t key = random::mix(c.seed, random::hash("gradcheck:" + c.name));

  NamedTensors inputs;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor t(c.inputs[i].second);
    random::fill_uniform(t.data(), t.numel(), key, 100 + i, c.lo, c.hi);
    inputs.emplace_back(c.inputs[i].first, t);
  }
  NodeHarness h(c.op, c.attrs, inputs, c.seed);
  const Schema& schema = h.ctx().schema();

  // Random projection of every output.
  h.forward();
  NamedTensors r;
  for (size_t k = 0; k < schema.outputs().size(); ++k) {
    Tensor rk(h.ctx().output(k).shape());
    random::fill_uniform(rk.data(), rk.numel(), key, 200 + k, -1.f, 1.f);
    r.emplace_back(schema.outputs()[k].name, rk);
  }
  auto loss = [&]() {
    h.forward();
    double l = 0;
    for (size_t k = 0; k < r.size(); ++k) {
      const Tensor& y = h.ctx().output(k);
      for (int64_t i = 0; i < y.numel(); ++i) l += double(r[k].second[i]) * double(y[i]);
    }
    return l;
  };

  // Analytic gradients (copied before any perturbation).
  h.backward(r);
  std::vector<std::pair<std::string, Tensor*>> targets;  // value tensors to perturb
  std::vector<Tensor> analytic;
  for (auto& [name, _] : c.inputs) {
    const auto* port = schema.find_input(name);
    if (!port || !port->differentiable) continue;
    targets.emplace_back("input " + name, &h.input(name));
    analytic.push_back(h.grad_input(name).clone());
  }
  for (auto& p : h.params()) {
    targets.emplace_back("param " + p.name.substr(p.name.find('.') + 1), &p.value);
    analytic.push_back(p.grad.clone());
  }

  std::vector<GradReport> reports;
  // backward() must OVERWRITE its gradients: run it again over garbage and compare.
  {
    Context& ctx = h.ctx();
    for (auto& g : ctx.grad_inputs_)
      if (!g.empty()) g.fill(1e3f);
    for (auto* p : ctx.params_) p->grad.fill(1e3f);
    h.node().backward(ctx);
    size_t ai = 0;
    auto compare = [&](const std::string& what, const Tensor& got) {
      const Tensor& want = analytic[ai++];
      GradReport rep{what + " (backward again over stale values)"};
      double d = 0, m = 1e-3;
      for (int64_t i = 0; i < got.numel(); ++i) {
        if (std::fabs(double(got[i]) - want[i]) > d) d = std::fabs(double(got[i]) - want[i]), rep.worst = i;
        m = std::max(m, double(std::fabs(want[i])));
      }
      rep.error = d / m;
      rep.compared = got.numel();
      if (rep.worst >= 0) rep.analytic = got[rep.worst], rep.numeric = want[rep.worst];
      reports.push_back(rep);
    };
    for (auto& [name, _] : c.inputs) {
      const auto* port = schema.find_input(name);
      if (port && port->differentiable) compare("input " + name, h.grad_input(name));
    }
    for (auto& p : h.params()) compare("param " + p.name.substr(p.name.find('.') + 1), p.grad);
    // With no input gradient wanted, parameter gradients are still computed (and nothing throws).
    if (!ctx.params_.empty()) {
      for (auto& g : ctx.grad_inputs_) g = Tensor();
      for (auto* p : ctx.params_) p->grad.fill(1e3f);
      h.node().backward(ctx);
      ai = analytic.size() - ctx.params_.size();
      for (auto& p : h.params()) compare("param " + p.name.substr(p.name.find('.') + 1) + " without input gradients", p.grad);
    }
  }
  for (size_t ti = 0; ti < targets.size(); ++ti) {
    Tensor& v = *targets[ti].second;
    const Tensor& a = analytic[ti];
    // Which elements to compare.
    std::vector<int64_t> idx;
    if (v.numel() <= 48) {
      for (int64_t i = 0; i < v.numel(); ++i) idx.push_back(i);
    } else {
      std::set<int64_t> s{0, v.numel() - 1};
      for (uint64_t j = 0; s.size() < 22; ++j) s.insert(int64_t(random::below(uint64_t(v.numel()), key, 300 + ti, j)));
      idx.assign(s.begin(), s.end());
    }
    GradReport rep{targets[ti].first};
    double max_diff = 0, max_a = 0, max_n = 0;
    for (int64_t i : idx) {
      const float x0 = v[i];
      const double step = c.step * std::max(1.0, std::fabs(double(x0)));
      const float xp = float(x0 + step), xm = float(x0 - step);
      v[i] = xp;
      double lp = loss();
      v[i] = xm;
      double lm = loss();
      v[i] = x0;
      double num = (lp - lm) / (double(xp) - double(xm));
      double ana = a[i];
      double d = std::fabs(ana - num);
      if (d > max_diff || rep.worst < 0) {
        max_diff = std::max(max_diff, d);
        rep.worst = i;
        rep.analytic = ana;
        rep.numeric = num;
      }
      max_a = std::max(max_a, std::fabs(ana));
      max_n = std::max(max_n, std::fabs(num));
    }
    rep.compared = int64_t(idx.size());
    rep.error = max_diff / std::max({max_a, max_n, 1e-3});
    reports.push_back(rep);
  }
  h.forward();  // leave the node in its unperturbed state
  return reports;
}

/// "input x: error 1.2e-4 over 22 elements (worst [5]: analytic 0.1, numeric 0.1)".
inline std::string to_string(const GradReport& r) {
  std::ostringstream os;
  os << r.what << ": error " << r.error << " over " << r.compared << " elements (worst [" << r.worst
     << "]: analytic " << r.analytic << ", numeric " << r.numeric << ")";
  return os.str();
}

}  // namespace noiseflow::testing

#define NOISEFLOW_GC_CONCAT_INNER(a, b) a##b
#define NOISEFLOW_GC_CONCAT(a, b) NOISEFLOW_GC_CONCAT_INNER(a, b)

/// Registers a gradient case: NOISEFLOW_GRAD_CASE(name, op, attrs_json_string, {"input", {shape}}...).
#define NOISEFLOW_GRAD_CASE(name, op, attrs, ...) NOISEFLOW_GRAD_CASE_TOL(name, op, attrs, 1e-2, __VA_ARGS__)

/// The same with a tolerance other than 1e-2.
#define NOISEFLOW_GRAD_CASE_TOL(name, op, attrs, tol, ...)                                              \
  static const bool NOISEFLOW_GC_CONCAT(noiseflow_grad_case_, __LINE__) =                               \
      ::noiseflow::testing::register_grad_case(::noiseflow::testing::GradCase{                           \
          name, op, ::noiseflow::testing::grad_case_attrs(attrs), {__VA_ARGS__}, tol})
