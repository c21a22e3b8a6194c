// nodes/sampler/sampler.hpp — what the sampler nodes share: the list of samplers, the grid of noise
// levels a sampler steps through (the timestep / sigma spacing), which grid point each tick
// evaluates, and the base of the step nodes.
//
// Every sampler is two nodes wired the same way (pipelines/sample.json):
//
//   sampler.timesteps ── t ──────────────> net(x, t) ── pred ──┐
//        │  points [3, K+1] (t, a, b per grid point) ──────────> sampler.<name> ── x_next ──> state x
//        └─ history (zeros) ──> state h ── history ───────────>       └──────── history ──> state h
//
// with one tick per model evaluation (run.ticks "auto"). The grid has K points of decreasing
// noise, each with the net's timestep t (fractional for the sigma spacings) and the noise level
// (a, b) of x = a x0 + b eps, then the data point (t = -1, a = 1, b = 0). The step nodes work on
// a and b directly, so a schedule whose first point is pure noise (a = 0, zero terminal SNR) needs
// no special case where the sampler's formula has a limit there; the sigma-space samplers (Heun)
// floor a at kAFloor. The multistep samplers keep their history (earlier x0 predictions, the
// previous x) in the `history` state [H, N, ...].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "nodes/diffusion/prediction.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"
#include "runtime/run_state.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::nodes::sampler {

using diffusion::NoiseLevel;
using diffusion::Prediction;

/// One sampler: its name (the step node is "sampler.<name>"), the tensors of history it keeps
/// and whether each step evaluates the net twice (Heun: at the point and at the next one).
struct SamplerInfo {
  const char* name;
  int64_t history;
  bool two_evaluations;
};

/// Every sampler, in the order the docs list them.
inline const std::vector<SamplerInfo>& samplers() {
  static const std::vector<SamplerInfo> list = {
      {"ddpm", 1, false},  {"ddim", 1, false},     {"euler", 1, false},         {"euler_a", 1, false},
      {"heun", 2, true},   {"dpmpp_2m", 1, false}, {"dpmpp_2m_sde", 1, false}, {"unipc", 3, false},
      {"consistency", 1, false},  // a distilled model's sampler (nodes/sampler/consistency.cpp)
  };
  return list;
}

inline std::vector<std::string> sampler_names() {
  std::vector<std::string> names;
  for (const auto& s : samplers()) names.push_back(s.name);
  return names;
}

inline const SamplerInfo& sampler_info(const std::string& name) {
  for (const auto& s : samplers())
    if (name == s.name) return s;
  throw std::logic_error("unknown sampler " + name);
}

/// Model evaluations (ticks) of K steps: K, or 2K - 1 for Heun (its last step, to the data, is Euler).
inline int64_t evaluations(const SamplerInfo& s, int64_t K) { return s.two_evaluations ? 2 * K - 1 : K; }

/// What a tick evaluates: the step it belongs to and, for Heun, whether it is the second
/// evaluation (at the step's end point).
struct Eval {
  int64_t step = 0;
  bool second = false;
};

inline Eval eval_at(const SamplerInfo& s, int64_t tick) {
  if (!s.two_evaluations) return {tick, false};
  return {tick / 2, tick % 2 == 1};
}

/// Spacing of the K grid points.
inline std::vector<std::string> spacing_choices() { return {"leading", "trailing", "linspace", "karras", "exponential"}; }

inline constexpr const char* kSpacingDoc =
    "where the K points lie: leading t = (K-1-i) floor(T/K) (DDIM's uniform), trailing t = round(T - i T/K) - 1 "
    "(Lin et al. 2023), linspace t = round((T-1)(K-1-i)/(K-1)) (improved DDPM's respacing), karras sigma = "
    "(smax^(1/rho) + i/(K-1) (smin^(1/rho) - smax^(1/rho)))^rho (Karras et al. 2022), exponential log sigma "
    "evenly from log smax to log smin; the sigma spacings give fractional t";

/// The smallest a the sigma spacings use (abar >= 2^-24, sigma <= 4096), as diffusers does for
/// zero-terminal-SNR schedules in its sigma-space schedulers.
inline constexpr double kAFloor = 1.0 / 4096.0;

/// One grid point: the net's timestep and the noise level.
struct Point {
  double t = -1.0, a = 1.0, b = 0.0;
  bool data() const { return b == 0.0; }
  /// log-SNR lambda = log(a / b): -inf at pure noise, +inf at the data.
  double lambda() const { return std::log(a) - std::log(b); }
};

/// The K grid points (largest noise first) and the data point after them. `top` is the grid's largest
/// timestep (-1: T - 1): the integer spacings lay their points over [0, top] as over a schedule of top + 1
/// steps, the sigma spacings start at sigma_top.
inline std::vector<Point> make_points(const diffusion::ScheduleTable& s, const std::string& spacing, int64_t K,
                                      double rho, int64_t top = -1) {
  using namespace diffusion;
  const int64_t T = top < 0 ? s.steps() : std::min(top + 1, s.steps());
  std::vector<Point> pts;
  auto at_t = [&](int64_t t) { pts.push_back({double(t), s.at(kSqrtAlphaBar, t), s.at(kSqrtOneMinusAlphaBar, t)}); };
  if (spacing == "leading") {
    for (int64_t i = 0; i < K; ++i) at_t((K - 1 - i) * (T / K));
  } else if (spacing == "trailing") {
    for (int64_t i = 0; i < K; ++i) at_t(int64_t(std::nearbyint(double(T) - double(i) * double(T) / double(K))) - 1);
  } else if (spacing == "linspace") {
    for (int64_t i = 0; i < K; ++i)
      at_t(K == 1 ? T - 1 : int64_t(std::nearbyint(double(T - 1) * double(K - 1 - i) / double(K - 1))));
  } else {  // karras, exponential: sigma between the table's smallest and largest (a floored)
    const double lmin = log_sigma_at(s, 0, kAFloor), lmax = log_sigma_at(s, T - 1, kAFloor);  // T - 1 = top
    for (int64_t i = 0; i < K; ++i) {
      const double f = K == 1 ? 0.0 : double(i) / double(K - 1);
      double sigma;
      if (spacing == "karras") {
        const double hi = std::exp(lmax / rho), lo = std::exp(lmin / rho);
        sigma = std::pow(hi + f * (lo - hi), rho);
      } else {
        sigma = std::exp(lmax + f * (lmin - lmax));
      }
      const double a = 1.0 / std::sqrt(1.0 + sigma * sigma);
      pts.push_back({timestep_of_sigma(s, sigma, kAFloor), a, sigma * a});
    }
  }
  pts.push_back({-1.0, 1.0, 0.0});
  return pts;
}

/// Steps kept at strength s in [0, 1] (image to image, Meng et al. 2022, as diffusers' img2img): the
/// last max(1, round(s K)) of the K, so that sampling starts at the grid point nearest t = s T.
inline int64_t kept_steps(int64_t K, double strength) {
  return std::clamp<int64_t>(int64_t(std::nearbyint(strength * double(K))), 1, K);
}

/// The doc of the `strength` attribute.
inline constexpr const char* kStrengthDoc =
    "image to image (SDEdit): keep only the last max(1, round(strength K)) grid points, so that sampling "
    "starts at t ~ strength T from the given images noised to that level (sampler.start); 1: the whole grid";

/// Drops all but the last `kept` steps of a grid (K points and the data point).
inline void keep_last_steps(std::vector<Point>& pts, int64_t kept) {
  const int64_t K = int64_t(pts.size()) - 1;
  pts.erase(pts.begin(), pts.begin() + (K - kept));
}

/// One model evaluation of a RePaint schedule (Lugmayr et al. 2022) over a grid of K points: a step from
/// grid point `from` to `to` = from + 1, after which the next evaluation starts at grid point `next`:
/// `to` itself, or `to` - jump_length after a resampling jump (x noised back up by q(x_next | x_to)).
struct Move {
  int64_t from = 0, to = 1, next = 1;
};

/// RePaint's schedule (its get_schedule_jump, in grid indices): down the grid one step at a time; on
/// reaching a grid point whose distance from the end is a multiple of jump_length (below K - jump_length),
/// jump back up jump_length points, resample - 1 times there; then on. resample = 1: the plain K steps.
inline std::vector<Move> repaint_moves(int64_t K, int64_t jump_length, int64_t resample) {
  // RePaint's times t in [-1, K-1] (t = -1 the data); grid index = K - 1 - t.
  std::vector<int64_t> jumps(size_t(K), 0);
  for (int64_t j = 0; j + jump_length < K; j += jump_length) jumps[size_t(j)] = resample - 1;
  std::vector<int64_t> times;
  int64_t t = K;
  while (t >= 1) {
    times.push_back(--t);
    if (jumps[size_t(t)] > 0) {
      --jumps[size_t(t)];
      for (int64_t i = 0; i < jump_length; ++i) times.push_back(++t);
    }
  }
  times.push_back(-1);
  std::vector<Move> moves;
  for (size_t i = 0; i + 1 < times.size(); ++i)
    if (times[i + 1] < times[i]) moves.push_back({K - 1 - times[i], K - 1 - times[i + 1], 0});
  for (size_t i = 0; i < moves.size(); ++i) moves[i].next = i + 1 < moves.size() ? moves[i + 1].from : moves[i].to;
  return moves;
}

/// Row indices of the [3, K+1] `points` tensor.
enum PointRow : int64_t { kPointT = 0, kPointA = 1, kPointB = 2 };

/// Reads grid point k of a `points` tensor.
inline Point point_at(const runtime::Tensor& points, int64_t k) {
  const int64_t n = points.dim(1);
  return {points[kPointT * n + k], points[kPointA * n + k], points[kPointB * n + k]};
}

/// x0_hat and eps_hat at one noise level from (x, pred): linear in both, or with x0_hat clamped
/// to [-1, 1] and eps_hat re-derived from it.
class Denoised {
 public:
  Denoised(Prediction p, bool clip, const Point& at)
      : x0_(diffusion::x0_from(p, at.a, at.b)), eps_(diffusion::eps_from(p, at.a, at.b)), clip_(clip),
        a_(float(at.a)), inv_b_(float(1.0 / at.b)) {}
  void operator()(float x, float pred, float& x0, float& eps) const {
    x0 = float(x0_.kx) * x + float(x0_.kp) * pred;
    if (clip_) {
      x0 = std::clamp(x0, -1.f, 1.f);
      eps = (x - a_ * x0) * inv_b_;
    } else {
      eps = float(eps_.kx) * x + float(eps_.kp) * pred;
    }
  }

 private:
  diffusion::Linear2 x0_, eps_;
  bool clip_;
  float a_, inv_b_;
};

/// Everything a step sees at one tick.
struct StepIo {
  const float* x;         ///< the state x at this tick
  const float* pred;      ///< the net's prediction for it
  const float* hist_in;   ///< [H][numel]
  float* x_next;          ///< the state at the next tick
  float* hist_out;        ///< [H][numel], a copy of hist_in on entry
  const float* z;         ///< N(0, I) noise of this tick (filled when the sampler asked for it)
  int64_t numel = 0;      ///< elements of x
  Eval eval;              ///< the step and evaluation of this tick
  int64_t steps = 0;      ///< K
  const runtime::Tensor* points = nullptr;
  Point point(int64_t k) const { return point_at(*points, k); }
  const float* hist(int64_t slot) const { return hist_in + slot * numel; }
  float* hist_next(int64_t slot) { return hist_out + slot * numel; }
};

/// The doc shared by the step nodes' ports.
inline graph::Schema step_schema(const std::string& name, const std::string& doc) {
  return graph::Schema("sampler." + name, doc)
      .input("x", "the sample x [N, ...] at this tick (a state node)")
      .input("pred", "the net's prediction for x at t, same shape as x (see `prediction`)")
      .input("t", "[N] the timestep the net was given (sampler.timesteps.t), checked against this sampler's grid")
      .input("points", "[3, K+1] the grid (sampler.timesteps.points)")
      .input("history", "[H, N, ...] the sampler's history (a state node started from sampler.timesteps.history)")
      .output("x_next", "the sample at the next tick, same shape as x")
      .output("history", "the history for the next tick")
      .attr_string("prediction", "eps", diffusion::prediction_choices(), diffusion::kPredictionDoc)
      .recipe("prediction", "objective", false)
      .attr_bool("clip_x0", false, "clamp x0_hat to [-1, 1] (and re-derive eps_hat) at every evaluation");
}

/// Shape rule of the step nodes.
inline void check_step(graph::ShapeContext& c, const SamplerInfo& info) {
  const graph::Shape& x = c.input("x");
  if (x.empty()) c.fail("x", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
  if (c.input("pred") != x)
    c.fail("pred", "pred shape " + graph::shape_str(c.input("pred")) + " differs from x shape " + graph::shape_str(x));
  if (c.input("t") != graph::Shape{x[0]})
    c.fail("t", "expected timesteps of shape [" + std::to_string(x[0]) + "], got " + graph::shape_str(c.input("t")));
  const graph::Shape& p = c.input("points");
  if (p.size() != 2 || p[0] != 3 || p[1] < 2)
    c.fail("points", "expected the grid [3, K+1] of sampler.timesteps, got " + graph::shape_str(p));
  graph::Shape h{info.history};
  h.insert(h.end(), x.begin(), x.end());
  if (c.input("history") != h)
    c.fail("history", std::string("sampler ") + info.name + " keeps a history of shape " + graph::shape_str(h) +
                          ", got " + graph::shape_str(c.input("history")) +
                          ": start its state from sampler.timesteps.history with sampler = \"" + info.name + "\"");
  c.set_output("x_next", x);
  c.set_output("history", h);
}

/// The base of the step nodes: reads the tick's grid point, checks the net's t, fills the noise when
/// asked and hands the step to step(). Derived classes set `info_` and `noise_` in their plan().
class StepNode : public runtime::Node {
 public:
  void plan(runtime::Context& ctx) override {
    prediction_ = diffusion::parse_prediction(ctx.attr_string("prediction"));
    clip_ = ctx.attr_bool("clip_x0");
    key_ = ctx.random_key();
    plan_sampler(ctx);
    if (noise_) z_.resize(size_t(ctx.input("x").numel()));
  }

  void forward(runtime::Context& ctx) override {
    const runtime::Tensor& x = ctx.input("x");
    const runtime::Tensor& points = ctx.input("points");
    const runtime::Tensor& h = ctx.input("history");
    runtime::Tensor& hn = ctx.output("history");
    StepIo io;
    io.steps = points.dim(1) - 1;
    io.eval = eval_at(*info_, ctx.tick());
    if (ctx.tick() >= evaluations(*info_, io.steps))  // (heun's last step evaluates once: 2K - 1 ticks)
      ctx.fail("points", "tick " + std::to_string(ctx.tick()) + " is past the " + std::to_string(io.steps) +
                             " steps of the grid (" + std::to_string(evaluations(*info_, io.steps)) +
                             " ticks for " + info_->name + "); run the pipeline with run.ticks \"auto\"");
    io.points = &points;
    check_t(ctx, io);
    const Point at = io.point(io.eval.step + (io.eval.second ? 1 : 0));
    if (prediction_ == Prediction::Eps && at.a == 0.0)
      ctx.fail("prediction", "an eps prediction says nothing about x0 at pure noise (alpha_bar = 0 at t = " +
                                 std::to_string(int64_t(at.t)) +
                                 ", a zero-terminal-SNR schedule): train and sample with prediction v (or x0)");
    io.x = x.data();
    io.pred = ctx.input("pred").data();
    io.hist_in = h.data();
    io.hist_out = hn.data();
    io.x_next = ctx.output("x_next").data();
    io.numel = x.numel();
    std::copy_n(h.data(), h.numel(), hn.data());
    // Dimension 0 of x is the batch: under data parallelism this rank's slice, drawn as the same elements of
    // the whole batch's noise (the counter is the element's index in the global batch).
    if (noise_)
      runtime::random::fill_normal(z_.data(), io.numel, key_, uint64_t(ctx.tick()), 0.f, 1.f,
                                   ctx.sample_offset(1) * io.numel);
    io.z = z_.data();
    step(ctx, io);
    if (runtime::RunState* rs = ctx.run_state(); rs && rs->on_x0) show_x0(ctx, *rs, at);
  }

 protected:
  /// Sets info_, noise_ and reads the sampler's own attributes.
  virtual void plan_sampler(runtime::Context& ctx) = 0;
  /// Writes io.x_next (and the history slots it keeps).
  virtual void step(runtime::Context& ctx, StepIo& io) = 0;

  /// Hands a watcher of the run (RunState::on_x0) this evaluation's x0 prediction, in plain layout.
  void show_x0(runtime::Context& ctx, runtime::RunState& rs, const Point& at) {
    const runtime::Tensor& xi = ctx.input("x");
    const runtime::Tensor& pi = ctx.input("pred");
    const runtime::Tensor x = xi.blocked() ? xi.to_plain() : xi, p = pi.blocked() ? pi.to_plain() : pi;
    runtime::Tensor x0(x.shape());
    const Denoised d(prediction_, clip_, at);
    float eps;
    for (int64_t i = 0; i < x.numel(); ++i) d(x.data()[i], p.data()[i], x0.data()[i], eps);
    rs.on_x0(ctx.id(), ctx.tick(), x0);
  }

  /// x0_hat, eps_hat at grid point k.
  Denoised denoiser(const StepIo& io, int64_t k) const { return Denoised(prediction_, clip_, io.point(k)); }

  const SamplerInfo* info_ = nullptr;
  bool noise_ = false;  ///< fill io.z every tick
  Prediction prediction_ = Prediction::Eps;
  bool clip_ = false;

 private:
  void check_t(const runtime::Context& ctx, const StepIo& io) const {
    const runtime::Tensor& t = ctx.input("t");
    const Point at = io.point(io.eval.step + (io.eval.second ? 1 : 0));
    for (int64_t i = 0; i < t.numel(); ++i)
      if (t[i] != float(at.t))
        ctx.fail("t", "t[" + std::to_string(i) + "] = " + std::to_string(t[i]) + " but " + info_->name +
                          " evaluates t = " + std::to_string(at.t) + " at tick " + std::to_string(ctx.tick()) +
                          ": give sampler.timesteps sampler = \"" + info_->name + "\" and feed its t to the net");
  }

  uint64_t key_ = 0;
  std::vector<float> z_;
};

/// The ancestral step of DDIM (Song et al. 2021) and Euler (ancestral) in the VP form, from grid point
/// p to q with stochasticity eta in [0, 1]:
///
///   up   = eta b_q sqrt(1 - r),  r = (sigma_q / sigma_p)^2 = (b_q a_p / (a_q b_p))^2
///   down = sqrt(b_q^2 - up^2)
///   x_q  = a_q x0_hat + down eps_hat + up z
///
/// eta = 0 is DDIM and, in sigma space (x / a), exactly k-diffusion's Euler step x + (sigma_q -
/// sigma_p) eps_hat; eta = 1 is k-diffusion's Euler ancestral (sigma_up, sigma_down times a_q) and
/// DDIM's eta = 1. At pure noise (a_p = 0) r = 0; to the data point (b_q = 0) x_q = x0_hat.
inline void ancestral_step(const Denoised& den, const Point& p, const Point& q, double eta, StepIo& io) {
  const double ratio = q.b * p.a / (q.a * p.b);
  const double up = eta * q.b * std::sqrt(std::max(1.0 - ratio * ratio, 0.0));
  const float A = float(q.a), D = float(std::sqrt(std::max(q.b * q.b - up * up, 0.0))), U = float(up);
  for (int64_t k = 0; k < io.numel; ++k) {
    float x0, eps;
    den(io.x[k], io.pred[k], x0, eps);
    io.x_next[k] = A * x0 + D * eps + (U == 0.f ? 0.f : U * io.z[k]);
  }
}

}  // namespace noiseflow::nodes::sampler
