// tests/nodes/core/test_constant.cpp — tensor.constant from values, with a shape, or filled; its shape errors.
#include <doctest/doctest.h>

#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::shape_error_field;

TEST_CASE("tensor.constant from values, with a shape, or filled") {
  NodeHarness a("tensor.constant", {{"values", {1.5, -2, 3}}}, {});
  a.forward();
  CHECK(a.output("y").shape() == Shape{3});
  CHECK(a.output("y").to_vector() == std::vector<float>{1.5f, -2.f, 3.f});

  NodeHarness b("tensor.constant", {{"values", {1, 2, 3, 4, 5, 6}}, {"shape", {2, 3}}}, {});
  b.forward();
  CHECK(b.output("y").shape() == Shape{2, 3});
  CHECK(b.output("y")[4] == 5.f);

  NodeHarness c("tensor.constant", {{"shape", {2, 2}}, {"fill", 0.25}}, {});
  c.forward();
  CHECK(c.output("y").to_vector() == std::vector<float>(4, 0.25f));

  NodeHarness scalar("tensor.constant", {{"values", Json::array({7})}}, {});
  scalar.forward();
  CHECK(scalar.output("y").shape() == Shape{1});
  CHECK(scalar.output("y")[0] == 7.f);

  CHECK(shape_error_field("tensor.constant", {{"values", {1, 2, 3}}, {"shape", {2, 2}}}, {}) == "values");
  CHECK(shape_error_field("tensor.constant", {}, {}) == "shape");
  CHECK(shape_error_field("tensor.constant", {{"shape", {0}}}, {}) == "shape");
}
