// Generic finite-difference gradient case (gradcheck.hpp) for diffusion.add_noise;
// its node-specific gradient tests live in test_diffusion_add_noise.cpp.
#include "tests/nodes/gradcheck.hpp"

namespace {

// diffusion.add_noise needs integer timesteps and a valid table, but the generic
// checker fills every input with one uniform range. With lo = hi = 1 every input
// is exactly 1: t = 1 is valid for the [8, 2] "table" of ones (T = 2), whose
// coefficients are then 1. This only proves the op is wired into the generic
// check; the per-sample coefficients are checked against central differences
// and the closed form in test_diffusion_add_noise.cpp.
noiseflow::testing::GradCase add_noise_case() {
  noiseflow::testing::GradCase c;
  c.name = "diffusion.add_noise (inputs all 1, T = 2)";
  c.op = "diffusion.add_noise";
  c.attrs = nlohmann::json::object();
  c.inputs = {{"x0", {3, 2, 2}}, {"noise", {3, 2, 2}}, {"t", {3}}, {"schedule", {8, 2}}};
  c.lo = c.hi = 1.f;
  return c;
}
const bool add_noise_registered = noiseflow::testing::register_grad_case(add_noise_case());

}  // namespace
