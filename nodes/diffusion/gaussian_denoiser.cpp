// nodes/diffusion/gaussian_denoiser.cpp — the exact optimal denoiser for data
// distributed elementwise as N(mu, s^2): a "network" that needs no training,
// to check samplers against a known answer.
//
// With x_t = a x0 + b eps, a = sqrt(abar_t), b = sqrt(1 - abar_t), x_t is
// Gaussian with mean a mu and variance D = abar s^2 + 1 - abar, and
//
//   E[eps | x_t] = b (x_t - a mu) / D
//   E[x0  | x_t] = mu + a s^2 (x_t - a mu) / D
//   E[v   | x_t] = a E[eps | x_t] - b E[x0 | x_t]      (v = a eps - b x0)
//
// each an affine function k x_t + o per sample.
#include <cmath>
#include <string>
#include <vector>

#include "nodes/diffusion/prediction.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// Shape rule: `x` [N, ...] with a batch dimension and `t` [N], one timestep per sample.
void check_shapes(const graph::ShapeContext& c) {
  const graph::Shape& x = c.input("x");
  if (x.empty()) c.fail("x", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
  if (c.input("t") != graph::Shape{x[0]})
    c.fail("t", "expected timesteps of shape [" + std::to_string(x[0]) + "] (one per sample of x " +
                    graph::shape_str(x) + "), got " + graph::shape_str(c.input("t")));
  schedule_steps(c);
}

struct GaussianDenoiser final : Node {
  static Schema schema() {
    return Schema("diffusion.gaussian_denoiser",
                  "The exact minimum-MSE prediction (eps, x0 or v) for data distributed elementwise as N(mu, sigma^2): "
                  "E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) mu) / (abar sigma^2 + 1 - abar); a stand-in "
                  "network for checking samplers without training")
        .input("x", "x_t [N, ...]")
        .input("t", "[N] timestep per sample in [0, T-1]; fractional ones (the sigma-spaced samplers') take the "
                    "noise level between the table's, log sigma interpolated")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("pred", "the prediction, same shape as x")
        .attr_float("mu", 0.0, {}, {}, "mean of the data distribution")
        .attr_float("sigma", 1.0, 0.0, {}, "standard deviation of the data distribution (> 0)")
        .attr_string("prediction", "eps", prediction_choices(), kPredictionDoc)
        .shape([](graph::ShapeContext& c) {
          if (!(c.attr_float("sigma") > 0.0))
            c.fail("sigma", "sigma must be > 0, got " + std::to_string(c.attr_float("sigma")));
          check_shapes(c);
          c.set_output("pred", c.input("x"));
        });
  }

  void plan(Context& ctx) override {
    prediction_ = parse_prediction(ctx.attr_string("prediction"));
    mu_ = ctx.attr_float("mu");
    var_ = ctx.attr_float("sigma") * ctx.attr_float("sigma");
    k_.resize(size_t(ctx.input("t").numel()));
    o_.resize(size_t(ctx.input("t").numel()));
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    const Tensor& t = ctx.input("t");
    Tensor& y = ctx.output("pred");
    ScheduleTable sched(ctx.input("schedule"));
    const int64_t n = x.dim(0), inner = x.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      // Samples mostly share their timestep: a run of equal t (checked with its first) shares k and o.
      if (i > 0 && t[i] == t[i - 1]) {
        k_[size_t(i)] = k_[size_t(i - 1)];
        o_[size_t(i)] = o_[size_t(i - 1)];
        continue;
      }
      const NoiseLevel l = level_at(sched, continuous_timestep_at(ctx, t, i, sched.steps()));
      const double a = l.a, b = l.b;
      const double D = a * a * var_ + b * b;
      // eps_hat = ke x + oe, x0_hat = kx x + ox.
      const double ke = b / D, oe = -b * a * mu_ / D;
      const double kx = a * var_ / D, ox = mu_ - a * var_ * a * mu_ / D;
      double k = ke, o = oe;
      if (prediction_ == Prediction::X0) k = kx, o = ox;
      if (prediction_ == Prediction::V) k = a * ke - b * kx, o = a * oe - b * ox;
      k_[size_t(i)] = float(k);
      o_[size_t(i)] = float(o);
    }
    for (int64_t i = 0; i < n; ++i) {
      const float k = k_[size_t(i)], o = o_[size_t(i)];
      const float* xi = x.data() + i * inner;
      float* yi = y.data() + i * inner;
      for (int64_t j = 0; j < inner; ++j) yi[j] = k * xi[j] + o;
    }
  }

 private:
  Prediction prediction_ = Prediction::Eps;
  double mu_ = 0.0, var_ = 1.0;
  std::vector<float> k_, o_;
};

NOISEFLOW_REGISTER_NODE(GaussianDenoiser);

}  // namespace
}  // namespace noiseflow::nodes
