// Generic finite-difference gradient cases (gradcheck.hpp) for the diffusion
// and core tensor nodes; their node-specific gradient tests live in
// test_diffusion_add_noise.cpp and test_tensor_ops.cpp.
#include "tests/nodes/gradcheck.hpp"

NOISEFLOW_GRAD_CASE("tensor.repeat tile x3", "tensor.repeat", R"({"times": 3})", {"x", {2, 3, 2}});
NOISEFLOW_GRAD_CASE("tensor.repeat interleave x2", "tensor.repeat", R"({"times": 2, "mode": "interleave"})",
                    {"x", {3, 1, 4}});
NOISEFLOW_GRAD_CASE("tensor.scale a=-1.5 b=0.3", "tensor.scale", R"({"a": -1.5, "b": 0.3})", {"x", {2, 5}});

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
