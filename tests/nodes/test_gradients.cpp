// tests/nodes/test_gradients.cpp — runs every registered finite-difference gradient case
// (see gradcheck.hpp) and checks that every differentiable op has one.
#include <doctest/doctest.h>

#include <algorithm>

#include "gradcheck.hpp"

using noiseflow::testing::grad_cases;

// ---- cases for nn.silu and the core layers (other nodes register theirs next to their tests) ----
NOISEFLOW_GRAD_CASE("silu 2x3", "nn.silu", "{}", {"x", {2, 3}});
NOISEFLOW_GRAD_CASE("silu 3x5x7", "nn.silu", "{}", {"x", {1, 3, 5, 7}});

NOISEFLOW_GRAD_CASE("conv2d 3x3 Cin=3 5x7", "nn.conv2d", R"({"out_channels": 4})", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d 3x3 batch 3", "nn.conv2d", R"({"out_channels": 2})", {"x", {3, 2, 4, 5}});
NOISEFLOW_GRAD_CASE("conv2d stride 2", "nn.conv2d", R"({"out_channels": 3, "stride": 2})", {"x", {2, 3, 7, 6}});
NOISEFLOW_GRAD_CASE("conv2d 1x1", "nn.conv2d", R"({"out_channels": 5, "kernel": 1})", {"x", {2, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d no bias", "nn.conv2d", R"({"out_channels": 4, "bias": false})", {"x", {1, 3, 5, 7}});
NOISEFLOW_GRAD_CASE("conv2d 5x5 no padding", "nn.conv2d", R"({"out_channels": 2, "kernel": 5, "padding": 0})",
                    {"x", {1, 2, 7, 6}});
NOISEFLOW_GRAD_CASE("conv2d 16->16 blocked", "nn.conv2d", R"({"out_channels": 16})", {"x", {2, 16, 6, 5}});
NOISEFLOW_GRAD_CASE("conv2d zero init", "nn.conv2d", R"({"out_channels": 3, "zero_init": true})",
                    {"x", {1, 2, 4, 4}});

NOISEFLOW_GRAD_CASE("linear 3x5->4", "nn.linear", R"({"out_features": 4})", {"x", {3, 5}});
NOISEFLOW_GRAD_CASE("linear batch 1", "nn.linear", R"({"out_features": 7})", {"x", {1, 6}});
NOISEFLOW_GRAD_CASE("linear no bias", "nn.linear", R"({"out_features": 3, "bias": false})", {"x", {2, 32}});

NOISEFLOW_GRAD_CASE("group_norm 8 groups 16x5x7", "nn.group_norm", "{}", {"x", {2, 16, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm groups=1 batch 3", "nn.group_norm", R"({"groups": 1})", {"x", {3, 3, 4, 5}});
NOISEFLOW_GRAD_CASE("group_norm groups=C", "nn.group_norm", R"({"groups": 6})", {"x", {1, 6, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm no affine", "nn.group_norm", R"({"groups": 2, "affine": false})",
                    {"x", {2, 4, 3, 3}});
NOISEFLOW_GRAD_CASE("group_norm [N, C]", "nn.group_norm", R"({"groups": 2})", {"x", {3, 12}});
NOISEFLOW_GRAD_CASE("group_norm activation silu", "nn.group_norm", R"({"activation": "silu"})", {"x", {2, 16, 5, 7}});
NOISEFLOW_GRAD_CASE("group_norm activation silu, no affine", "nn.group_norm",
                    R"({"groups": 2, "affine": false, "activation": "silu"})", {"x", {2, 4, 3, 3}});

NOISEFLOW_GRAD_CASE("add same shape", "nn.add", "{}", {"a", {2, 3, 5}}, {"b", {2, 3, 5}});
NOISEFLOW_GRAD_CASE("add trailing bias", "nn.add", "{}", {"a", {3, 4, 5}}, {"b", {5}});
NOISEFLOW_GRAD_CASE("add trailing both ways", "nn.add", "{}", {"a", {3, 1, 5}}, {"b", {4, 1}});
NOISEFLOW_GRAD_CASE("add trailing scalar", "nn.add", "{}", {"a", {2, 3, 4}}, {"b", {1}});
NOISEFLOW_GRAD_CASE("add leading [N,C] onto NCHW", "nn.add", R"({"align": "leading"})", {"a", {3, 4, 5, 7}},
                    {"b", {3, 4}});
NOISEFLOW_GRAD_CASE("add leading [N] batch 1", "nn.add", R"({"align": "leading"})", {"a", {1, 2, 3}}, {"b", {1}});
NOISEFLOW_GRAD_CASE("add leading [1,C,1] onto [N,C,H]", "nn.add", R"({"align": "leading"})", {"a", {3, 2, 5}},
                    {"b", {1, 2, 1}});

NOISEFLOW_GRAD_CASE("mse", "loss.mse", "{}", {"pred", {3, 2, 5, 7}}, {"target", {3, 2, 5, 7}});
NOISEFLOW_GRAD_CASE("mse weighted", "loss.mse", "{}", {"pred", {3, 4}}, {"target", {3, 4}}, {"weights", {3}});
NOISEFLOW_GRAD_CASE("mse batch 1", "loss.mse", "{}", {"pred", {1, 6}}, {"target", {1, 6}});

TEST_CASE("every registered gradient case matches central finite differences") {
  REQUIRE(!grad_cases().empty());
  for (const auto& c : grad_cases()) {
    SUBCASE(c.name.c_str()) {
      INFO("case '", c.name, "' (", c.op, ", attrs ", c.attrs.dump(), ")");
      auto reports = noiseflow::testing::check_gradients(c);
      CHECK(!reports.empty());
      for (const auto& r : reports) {
        INFO(noiseflow::testing::to_string(r));
        CHECK(r.error < c.tol);
      }
    }
  }
}

TEST_CASE("every differentiable op has a gradient case") {
  auto& reg = noiseflow::runtime::Registry::global();
  for (const auto& op : reg.ops()) {
    if (!reg.find_schema(op)->is_differentiable()) continue;
    bool covered = std::any_of(grad_cases().begin(), grad_cases().end(), [&](const auto& c) { return c.op == op; });
    INFO("op ", op, " is differentiable but has no NOISEFLOW_GRAD_CASE (tests/nodes/gradcheck.hpp)");
    CHECK(covered);
  }
}
