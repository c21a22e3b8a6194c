// nodes/diffusion/prediction.hpp — what a denoising network predicts, and how
// the samplers turn it back into (x0_hat, eps_hat).
//
// With x_t = a x0 + b eps, a = sqrt(abar_t), b = sqrt(1 - abar_t) (a^2 + b^2 = 1)
// and v = a eps - b x0 (Salimans & Ho 2022), every parametrisation is linear
// in (x_t, pred):
//
//   prediction   x0_hat                 eps_hat
//   eps          (x_t - b pred) / a     pred
//   x0           pred                   (x_t - a pred) / b
//   v            a x_t - b pred         b x_t + a pred
//
// so a sampler folds them into its own per-sample coefficients. With clipping,
// x0_hat is clamped to [-1, 1] and eps_hat re-derived from the clamped x0_hat:
// eps_hat = (x_t - a x0_hat) / b.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::nodes::diffusion {

/// What the network's output means.
enum class Prediction { Eps, X0, V };

/// The `prediction` attribute's allowed values, in the order of Prediction.
inline std::vector<std::string> prediction_choices() { return {"eps", "x0", "v"}; }

/// Doc string of the `prediction` attribute shared by the samplers and the denoiser.
inline constexpr const char* kPredictionDoc =
    "what `pred` is: eps (the noise, Ho et al. 2020), x0 (the clean sample) or v = sqrt(abar) eps - "
    "sqrt(1 - abar) x0 (Salimans & Ho 2022)";

/// Parses the `prediction` attribute (already validated against prediction_choices()).
inline Prediction parse_prediction(const std::string& s) {
  if (s == "x0") return Prediction::X0;
  if (s == "v") return Prediction::V;
  return Prediction::Eps;
}

/// A linear map (x_t, pred) -> kx x_t + kp pred (coefficients in double; the
/// samplers fold them into their own before going to float).
struct Linear2 {
  double kx = 0, kp = 0;
};

/// x0_hat as a linear function of (x_t, pred) for sqrt(abar) = a, sqrt(1 - abar) = b.
inline Linear2 x0_from(Prediction p, double a, double b) {
  switch (p) {
    case Prediction::X0: return {0.0, 1.0};
    case Prediction::V: return {a, -b};
    case Prediction::Eps: break;
  }
  return {1.0 / a, -b / a};
}

/// eps_hat as a linear function of (x_t, pred) for sqrt(abar) = a, sqrt(1 - abar) = b.
inline Linear2 eps_from(Prediction p, double a, double b) {
  switch (p) {
    case Prediction::X0: return {1.0 / b, -a / b};
    case Prediction::V: return {b, a};
    case Prediction::Eps: break;
  }
  return {0.0, 1.0};
}

/// Shape rule shared by the samplers and the denoiser: `x` [N, ...] with a batch
/// dimension, `pred` (where the node has one) the same shape, each of `t_inputs`
/// of shape [N], `schedule` [8, T]; returns T.
inline int64_t check_step_shapes(const graph::ShapeContext& c, std::initializer_list<const char*> t_inputs) {
  const graph::Shape& x = c.input("x");
  if (x.empty()) c.fail("x", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
  if (c.has_input("pred") && c.input("pred") != x)
    c.fail("pred", "pred shape " + graph::shape_str(c.input("pred")) + " differs from x shape " + graph::shape_str(x));
  for (const char* name : t_inputs)
    if (c.input(name) != graph::Shape{x[0]})
      c.fail(name, std::string("expected timesteps of shape [") + std::to_string(x[0]) + "] (one per sample of x " +
                       graph::shape_str(x) + "), got " + graph::shape_str(c.input(name)));
  return schedule_steps(c);
}

/// The base of the sampling-step nodes (diffusion.ddpm_step, diffusion.ddim_step): the `prediction` and
/// `clip_x0` attributes, the tick's noise, per-sample coefficients and the loop over the samples.
/// Coef is a struct with float members A, B, x0x, x0p and sigma; for sample i with c = coef_[i]:
///
///   unclipped  y = A x_t + B pred + sigma z
///   clipped    y = mean(c, x0_hat, x_t) + sigma z,  x0_hat = clamp(x0x x_t + x0p pred, -1, 1)
template <class Coef>
class SamplerStep : public runtime::Node {
 protected:
  /// From plan(): reads the shared attributes and sizes coef_ (one per sample of `t`) and the noise.
  void plan_step(runtime::Context& ctx) {
    prediction_ = parse_prediction(ctx.attr_string("prediction"));
    clip_ = ctx.attr_bool("clip_x0");
    key_ = ctx.random_key();
    coef_.resize(size_t(ctx.input("t").numel()));
    z_.resize(size_t(ctx.input("x").numel()));
  }

  /// From forward(), once coef_ holds this tick's coefficients (`noisy`: some sigma is not 0):
  /// x_prev from x and pred.
  template <class ClippedMean>
  void forward_step(runtime::Context& ctx, bool noisy, ClippedMean&& mean) {
    const runtime::Tensor& x = ctx.input("x");
    const runtime::Tensor& pred = ctx.input("pred");
    runtime::Tensor& y = ctx.output("x_prev");
    const int64_t n = x.dim(0), inner = x.numel() / n;
    // One draw for the whole batch, element index = flat index: independent of threads.
    if (noisy) runtime::random::fill_normal(z_.data(), x.numel(), key_, uint64_t(ctx.tick()));
    for (int64_t i = 0; i < n; ++i) {
      const float* xi = x.data() + i * inner;
      const float* pi = pred.data() + i * inner;
      const float* zi = z_.data() + i * inner;
      float* yi = y.data() + i * inner;
      const Coef& c = coef_[size_t(i)];
      const float s = c.sigma;
      if (!clip_) {
        // Linear in (x_t, pred).
        if (s == 0.f)
          for (int64_t k = 0; k < inner; ++k) yi[k] = c.A * xi[k] + c.B * pi[k];
        else
          for (int64_t k = 0; k < inner; ++k) yi[k] = c.A * xi[k] + c.B * pi[k] + s * zi[k];
      } else {
        for (int64_t k = 0; k < inner; ++k) {
          const float x0 = std::clamp(c.x0x * xi[k] + c.x0p * pi[k], -1.f, 1.f);
          yi[k] = mean(c, x0, xi[k]) + (s == 0.f ? 0.f : s * zi[k]);
        }
      }
    }
  }

  Prediction prediction_ = Prediction::Eps;
  bool clip_ = false;
  uint64_t key_ = 0;
  std::vector<Coef> coef_;  ///< per sample, filled every tick
  std::vector<float> z_;    ///< the tick's noise, like x
};

}  // namespace noiseflow::nodes::diffusion
