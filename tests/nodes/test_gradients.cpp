// tests/nodes/test_gradients.cpp — runs every registered finite-difference gradient case
// (see gradcheck.hpp) and checks that every differentiable op has one.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/nodes/gradcheck.hpp"

using noiseflow::testing::grad_cases;

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
    if (op.rfind("test.", 0) == 0) continue;  // the suites' own nodes, some with deliberately wrong gradients
    bool covered = std::any_of(grad_cases().begin(), grad_cases().end(), [&](const auto& c) { return c.op == op; });
    INFO("op ", op, " is differentiable but has no NOISEFLOW_GRAD_CASE (tests/nodes/gradcheck.hpp)");
    CHECK(covered);
  }
}
