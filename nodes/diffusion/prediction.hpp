// nodes/diffusion/prediction.hpp — what a denoising network predicts, and how
// the samplers (nodes/sampler/) turn it back into (x0_hat, eps_hat).
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
// so a sampler step evaluates them with the coefficients of its grid point
// (Denoised in nodes/sampler/sampler.hpp). With clipping,
// x0_hat is clamped to [-1, 1] and eps_hat re-derived from the clamped x0_hat:
// eps_hat = (x_t - a x0_hat) / b.
#pragma once

#include <string>
#include <vector>

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

/// A linear map (x_t, pred) -> kx x_t + kp pred (coefficients in double, rounded to
/// float where a sampler applies them).
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

}  // namespace noiseflow::nodes::diffusion
