// Finite-difference gradient cases (gradcheck.hpp) for nn.attention, nn.concat
// and nn.upsample; test_gradients.cpp runs them.
#include "gradcheck.hpp"

// nn.attention: gradients to x and all six parameters.
NOISEFLOW_GRAD_CASE("attention C=6 groups=2 heads=1 5x7", "nn.attention", R"({"groups": 2})", {"x", {1, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("attention C=6 groups=3 heads=2 batch 3", "nn.attention", R"({"groups": 3, "heads": 2})",
                    {"x", {3, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("attention C=8 heads=4 groups=8 3x3", "nn.attention", R"({"heads": 4})", {"x", {2, 8, 3, 3}});
NOISEFLOW_GRAD_CASE("attention zero_init", "nn.attention", R"({"groups": 2, "zero_init": true})",
                    {"x", {2, 6, 4, 4}});
NOISEFLOW_GRAD_CASE("attention 1x1 image", "nn.attention", R"({"groups": 1, "heads": 2})", {"x", {3, 4, 1, 1}});
// Wider inputs make the softmax peakier (scores further from uniform).
static const bool attention_wide_inputs = noiseflow::testing::register_grad_case([] {
  noiseflow::testing::GradCase c;
  c.name = "attention inputs in [-3, 3] heads=2";
  c.op = "nn.attention";
  c.attrs = {{"groups", 2}, {"heads", 2}};
  c.inputs = {{"x", {2, 4, 3, 5}}};
  c.lo = -3.f, c.hi = 3.f;
  c.step = 3e-3;
  return c;
}());

// nn.concat: every connected input.
NOISEFLOW_GRAD_CASE("concat channels a,b", "nn.concat", "{}", {"a", {1, 2, 5, 7}}, {"b", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("concat channels a,b,c,d batch 3", "nn.concat", "{}", {"a", {3, 1, 2, 3}}, {"b", {3, 2, 2, 3}},
                    {"c", {3, 1, 2, 3}}, {"d", {3, 3, 2, 3}});
NOISEFLOW_GRAD_CASE("concat axis 0", "nn.concat", R"({"axis": 0})", {"a", {2, 3, 4}}, {"b", {1, 3, 4}},
                    {"c", {3, 3, 4}});
NOISEFLOW_GRAD_CASE("concat axis -1", "nn.concat", R"({"axis": -1})", {"a", {2, 3, 4}}, {"b", {2, 3, 5}});

// nn.upsample.
NOISEFLOW_GRAD_CASE("upsample x2 5x7", "nn.upsample", "{}", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("upsample x3 batch 2", "nn.upsample", R"({"scale": 3})", {"x", {2, 2, 3, 4}});
NOISEFLOW_GRAD_CASE("upsample x1", "nn.upsample", R"({"scale": 1})", {"x", {2, 3, 2, 2}});
