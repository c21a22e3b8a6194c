// tests/test_util.hpp — the helpers every test suite shares: scratch folders and file bytes, load
// options, random tensors and their differences, the error a node raises, one node run on plain and
// on nChw16c tensors, a central-difference check of one node input, diffusion schedules recomputed
// in double, and what the sampler-step suites compare with. (The generic gradient checker is a
// framework of its own: tests/nodes/gradcheck.hpp.)
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/harness.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::test {

// ---- files ----------------------------------------------------------------------------------------

/// A fresh folder under the system temp dir (unique per process and instance), removed on destruction.
struct TempDir {
  std::filesystem::path path;

  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("noiseflow-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);  // left over from an earlier process with the same pid
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The folder itself, as a string.
  std::string str() const { return path.string(); }
  /// The path of `name` inside the folder (nothing is created).
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const std::string& name) const { return file(name); }
  /// Writes `text` to `name` inside the folder (creating its parent folders); returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::filesystem::path p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

/// Writes `bytes` to `path`.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

/// Reads the whole file.
inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// ---- pipelines ------------------------------------------------------------------------------------

/// Load options over the global node registry, with param overrides.
inline graph::LoadOptions load_options(std::map<std::string, graph::Json> overrides = {}) {
  graph::LoadOptions o;
  o.schemas = &runtime::Registry::global();
  o.overrides = std::move(overrides);
  return o;
}

/// The state tensors of node `id` in an executor, by name (live handles, not copies).
inline std::map<std::string, runtime::Tensor> state_of(runtime::Executor& ex, const std::string& id) {
  std::map<std::string, runtime::Tensor> s;
  for (size_t i = 0; i < ex.graph().nodes.size(); ++i)
    if (ex.graph().nodes[i].id == id)
      for (auto& [name, t] : ex.node(int(i)).state_tensors(ex.context(int(i)))) s[name] = t;
  return s;
}

// ---- tensors --------------------------------------------------------------------------------------

/// Plain tensors of uniform values in [lo, hi), reproducible per (key, stream). A suite that draws its
/// inputs under a key of its own keeps that key, so that its checks see the same numbers wherever it
/// lives: `constexpr UniformTensors uniform{0x5eed}; Tensor x = uniform({2, 3}, 1);`.
struct UniformTensors {
  uint64_t key;  ///< the Philox key of every tensor drawn
  /// A plain tensor of `s`, stream `stream` of the key.
  runtime::Tensor operator()(const runtime::Shape& s, uint64_t stream, float lo = -1.f, float hi = 1.f) const {
    runtime::Tensor t(s);
    runtime::random::fill_uniform(t.data(), t.numel(), key, stream, lo, hi);
    return t;
  }
};

/// A plain tensor of uniform values in [lo, hi), reproducible per stream (the layout and fusion suites' key).
inline runtime::Tensor random_tensor(const runtime::Shape& s, uint64_t stream, float lo = -1.f, float hi = 1.f) {
  return UniformTensors{0xb10c}(s, stream, lo, hi);
}

/// Largest |got - want| / max(1, |want|) over two plain tensors of the same shape.
inline double max_rel_diff(const runtime::Tensor& got, const runtime::Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]) / std::max(1.0, std::abs(double(want[i]))));
  return worst;
}

/// The two tensors hold the same number of elements with the same bytes.
inline bool same_bytes(const runtime::Tensor& a, const runtime::Tensor& b) {
  return a.numel() == b.numel() && std::memcmp(a.data(), b.data(), size_t(a.numel()) * sizeof(float)) == 0;
}

/// max |a - b| / max(1, max |b|): a tensor against a reference computed in double.
inline double rel_diff(const runtime::Tensor& a, const std::vector<double>& b) {
  REQUIRE(a.numel() == int64_t(b.size()));
  double d = 0, m = 1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::fabs(double(a[i]) - b[i]));
    m = std::max(m, std::fabs(b[i]));
  }
  return d / m;
}

// ---- nodes ----------------------------------------------------------------------------------------

/// The error a node raises while planning (or at `tick`'s forward when
/// `run` is true): "field: message", or "" when there is none.
inline std::string node_error(const std::string& op, const runtime::Json& attrs, bool run = false, int64_t tick = 0) {
  try {
    runtime::NodeHarness h(op, attrs, {});
    if (run) h.forward(tick);
  } catch (const runtime::NodeError& e) {
    return e.field + ": " + e.what();
  }
  return "";
}

/// The field named by the graph::ShapeError that planning `op` on these inputs throws (its message is
/// printed), or "(no error)".
inline std::string shape_error_field(const std::string& op, const runtime::Json& attrs,
                                     const runtime::NamedTensors& inputs) {
  try {
    runtime::NodeHarness h(op, attrs, inputs);
  } catch (const graph::ShapeError& e) {
    MESSAGE(op, ": ", e.field, ": ", std::string(e.what()));
    return e.field;
  }
  return "(no error)";
}

/// Runs `op` forward and backward twice on the same inputs, parameters and output gradient — once plain,
/// once with every blockable rank-4 tensor nChw16c — and checks that the results agree. Parameters are set
/// to random values (not their init) so that affine terms are exercised. Returns how many of the blocked
/// run's inputs and outputs were really blocked.
inline int check_layouts_agree(const std::string& op, const runtime::Json& attrs, const runtime::NamedTensors& inputs,
                               double tol = 1e-5) {
  runtime::NodeHarness plain(op, attrs, inputs, 7, 1, runtime::Layout::plain);
  runtime::NodeHarness blocked(op, attrs, inputs, 7, 1, runtime::Layout::nChw16c);
  int n_blocked = 0;
  for (auto& [name, t] : inputs) {
    CAPTURE(name);
    CHECK(blocked.input(name).blocked() == runtime::Tensor::can_block(t.shape()));
    n_blocked += blocked.input(name).blocked();
  }
  runtime::Tensor& y = blocked.output();
  CHECK(y.blocked() == runtime::Tensor::can_block(y.shape()));
  n_blocked += y.blocked();

  uint64_t stream = 100;
  for (size_t i = 0; i < plain.params().size(); ++i) {
    runtime::Tensor v = random_tensor(plain.params()[i].value.shape(), stream++, 0.5f, 1.5f);
    plain.params()[i].value.copy_from(v);
    blocked.params()[i].value.copy_from(v);
  }

  plain.forward();
  blocked.forward();
  CHECK(max_rel_diff(y.to_plain(), plain.output()) <= tol);

  const runtime::Tensor dy = random_tensor(plain.output().shape(), stream++);
  plain.backward({{"y", dy}});
  blocked.backward({{"y", dy}});
  for (auto& [name, t] : inputs) {
    CAPTURE(name);
    CHECK(blocked.grad_input(name).blocked() == blocked.input(name).blocked());
    CHECK(max_rel_diff(blocked.grad_input(name).to_plain(), plain.grad_input(name)) <= tol);
  }
  for (size_t i = 0; i < plain.params().size(); ++i) {
    CAPTURE(plain.params()[i].name);
    CHECK(max_rel_diff(blocked.params()[i].grad, plain.params()[i].grad) <= tol);
  }
  return n_blocked;
}

/// sum(r * y) in double.
inline double project(const runtime::Tensor& r, const runtime::Tensor& y) {
  double l = 0;
  for (int64_t i = 0; i < y.numel(); ++i) l += double(r[i]) * double(y[i]);
  return l;
}

/// Central differences of L = sum(r * output) with respect to every element of
/// `input` of a node run in a NodeHarness (for tests that need fixed, not random,
/// other inputs), against the gradient backward() wrote. Returns the largest
/// |analytic - numeric| relative to max(|analytic|, |numeric|, 1e-3).
inline double fd_error(runtime::NodeHarness& h, const std::string& input, const std::string& output,
                       const runtime::Tensor& r, double step = 1e-2) {
  h.forward();
  h.backward({{output, r}});
  runtime::Tensor analytic = h.grad_input(input).clone();
  runtime::Tensor& x = h.input(input);
  double max_diff = 0, scale = 1e-3;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float x0 = x[i];
    const float xp = float(x0 + step), xm = float(x0 - step);
    x[i] = xp;
    h.forward();
    double lp = project(r, h.output(output));
    x[i] = xm;
    h.forward();
    double lm = project(r, h.output(output));
    x[i] = x0;
    double num = (lp - lm) / (double(xp) - double(xm));
    max_diff = std::max(max_diff, std::fabs(num - analytic[i]));
    scale = std::max({scale, std::fabs(num), std::fabs(double(analytic[i]))});
  }
  h.forward();
  return max_diff / scale;
}

// ---- diffusion schedules ---------------------------------------------------------------------------

/// The betas linspace(start, end, T) of a linear schedule, in double (diffusion.schedule's defaults).
inline std::vector<double> linear_betas(int64_t T, double start = 1e-4, double end = 0.02) {
  std::vector<double> b(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) b[t] = T == 1 ? start : start + (end - start) * double(t) / double(T - 1);
  return b;
}

/// alpha_bar: the cumulative products of (1 - beta), in double.
inline std::vector<double> cumprod_alpha(const std::vector<double>& beta) {
  std::vector<double> abar(beta.size());
  double p = 1.0;
  for (size_t t = 0; t < beta.size(); ++t) abar[t] = p *= 1.0 - beta[t];
  return abar;
}

/// The default linear schedule of diffusion.schedule (1e-4 .. 0.02 over T steps), in double, with the
/// coefficients of x_t = a x0 + b eps.
struct LinearSchedule {
  std::vector<double> beta, alpha, abar;  ///< per step t: beta_t, 1 - beta_t, alpha_bar_t
  explicit LinearSchedule(int64_t T = 1000) : beta(linear_betas(T)), abar(cumprod_alpha(beta)) {
    for (double b : beta) alpha.push_back(1.0 - b);
  }
  /// sqrt(alpha_bar_t), the scale of x0 in x_t.
  double a(int64_t t) const { return std::sqrt(abar[size_t(t)]); }
  /// sqrt(1 - alpha_bar_t), the scale of eps in x_t.
  double b(int64_t t) const { return std::sqrt(1.0 - abar[size_t(t)]); }
  /// alpha_bar_{t-1}, 1 at t = 0.
  double abar_prev(int64_t t) const { return t > 0 ? abar[size_t(t - 1)] : 1.0; }
};

/// The [8, T] table output of a diffusion.schedule node of that kind.
inline runtime::Tensor schedule_table(int64_t T = 1000, const std::string& kind = "linear") {
  runtime::NodeHarness h("diffusion.schedule", {{"kind", kind}, {"T", T}}, {});
  h.forward();
  return h.output("table").clone();
}

// ---- diffusion samplers ----------------------------------------------------------------------------

/// A plain tensor of N(mean, std^2) draws, reproducible per key.
inline runtime::Tensor normal(runtime::Shape shape, uint64_t key, float mean = 0.f, float std = 1.f) {
  runtime::Tensor x(std::move(shape));
  runtime::random::fill_normal(x.data(), x.numel(), key, 0, mean, std);
  return x;
}

/// A [N] tensor of timesteps.
inline runtime::Tensor timesteps(const std::vector<float>& t) { return runtime::Tensor({int64_t(t.size())}, t); }

/// |got - want| <= atol + rtol |want|, elementwise; reports the worst element.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double excess = std::fabs(got[i] - want[i]) - (atol + rtol * std::fabs(want[i]));
    if (i == 0 || excess > worst) worst = excess, at = i;
  }
  INFO("worst element ", at, ": got ", got[at], ", want ", want[at]);
  CHECK(worst <= 0.0);
}

/// The elements of a plain tensor, in double.
inline std::vector<double> as_double(const runtime::Tensor& t) { return {t.data(), t.data() + t.numel()}; }

/// a - b elementwise, in double.
inline std::vector<double> minus(const runtime::Tensor& a, const runtime::Tensor& b) {
  std::vector<double> d(size_t(a.numel()));
  for (int64_t i = 0; i < a.numel(); ++i) d[size_t(i)] = double(a[i]) - double(b[i]);
  return d;
}

/// Runs sampler step `op` at `tick` on (x, pred) and again on (0, 0): returns {y, y(0, 0)}. The noise z
/// of a step is a pure function of (seed, node id, tick, element), so the same node at the same tick with
/// x = pred = 0 outputs exactly sigma z: y - y(0, 0) is the noise-free mean, and y(0, 0) / sigma must
/// look like N(0, 1).
inline std::pair<runtime::Tensor, runtime::Tensor> run_with_zero(const std::string& op, const runtime::Json& attrs,
                                                                 runtime::NamedTensors in, int64_t tick) {
  runtime::NodeHarness h(op, attrs, in, /*seed=*/5);
  h.forward(tick);
  runtime::Tensor y = h.output().clone();
  for (auto& [name, t] : in)
    if (name == "x" || name == "pred") h.input(name).zero();
  h.forward(tick);
  return {y, h.output().clone()};
}

/// Fills x = a x0 + b eps and v = a eps - b x0 (Salimans & Ho's v): sample i of the [N, ...] tensors at
/// timestep tv[i] of schedule S.
inline void noise_with_v(const LinearSchedule& S, const std::vector<float>& tv, const runtime::Tensor& x0,
                         const runtime::Tensor& eps, runtime::Tensor& x, runtime::Tensor& v) {
  const int64_t N = int64_t(tv.size()), m = x0.numel() / N;
  for (int64_t i = 0; i < N; ++i) {
    const int64_t t = int64_t(tv[size_t(i)]);
    for (int64_t k = 0; k < m; ++k) {
      const int64_t j = i * m + k;
      x[j] = float(S.a(t) * x0[j] + S.b(t) * eps[j]);
      v[j] = float(S.a(t) * eps[j] - S.b(t) * x0[j]);
    }
  }
}

/// Mean and unbiased variance of y[i0, i0 + m) / s.
inline std::pair<double, double> standardised(const runtime::Tensor& y, int64_t i0, int64_t m, double s) {
  double sum = 0, ss = 0;
  for (int64_t k = 0; k < m; ++k) sum += y[i0 + k] / s;
  const double mean = sum / double(m);
  for (int64_t k = 0; k < m; ++k) ss += (y[i0 + k] / s - mean) * (y[i0 + k] / s - mean);
  return {mean, ss / double(m - 1)};
}

}  // namespace noiseflow::test
