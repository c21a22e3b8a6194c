// tests/nodes/test_gradients.cpp — runs every registered finite-difference gradient case
// (see gradcheck.hpp) and checks that every differentiable op has one.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>

#include "gradcheck.hpp"

using noiseflow::testing::grad_cases;

// ---- cases for nn.silu and the core layers (other nodes register theirs next to their tests) ----
NOISEFLOW_GRAD_CASE("silu 2x3", "nn.silu", "{}", {"x", {2, 3}});
NOISEFLOW_GRAD_CASE("silu 3x5x7", "nn.silu", "{}", {"x", {1, 3, 5, 7}});

TEST_CASE("every registered gradient case matches central finite differences") {
  REQUIRE(!grad_cases().empty());
  for (const auto& c : grad_cases()) {
    SUBCASE(c.name.c_str()) {
      INFO("case '", c.name, "' (", c.op, ", attrs ", c.attrs.dump(), ")");
      auto t0 = std::chrono::steady_clock::now();
      auto reports = noiseflow::testing::check_gradients(c);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      MESSAGE(c.name, ": ", reports.size(), " gradients checked in ", ms, " ms");
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
