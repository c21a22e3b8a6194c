// tests/graph/test_schema_attrs.cpp — Schema::check_attrs on its own: each problem
// with its exact message, stable code and field, in declaration order.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "runtime/node.hpp"

using namespace noiseflow;
using graph::Diagnostic;
using graph::Json;
using graph::Schema;

namespace {

// One attribute of every kind, as node files declare them.
Schema demo_schema() {
  return Schema("demo.op", "an op with one attribute of every kind")
      .attr_int("steps", std::nullopt, 1, 1000, "required, in [1, 1000]")
      .attr_float("rate", 0.5, 0.0, 1.0, "in [0, 1]")
      .attr_bool("flag", false)
      .attr_string("kind", "linear", {"linear", "cosine", "sigmoid"})
      .attr_ints("shape", std::vector<int64_t>{})
      .attr_floats("weights", std::vector<double>{});
}

// The problems of `attrs` (defaults filled first, as the loader does).
std::vector<Diagnostic> check(const Json& attrs) {
  const Schema s = demo_schema();
  return s.check_attrs(s.with_defaults(attrs), "p.json", "n");
}

// The single problem of `attrs`.
Diagnostic one_problem(const Json& attrs) {
  auto d = check(attrs);
  std::string all;
  for (auto& x : d) all += "\n  [" + x.code + "] " + x.str();
  INFO("problems:", all);
  REQUIRE(d.size() == 1);
  return d[0];
}

}  // namespace

TEST_CASE("check_attrs: valid attributes, defaults filled, give no problem") {
  CHECK(check({{"steps", 10}}).empty());
  CHECK(check({{"steps", 1}, {"rate", 1}, {"flag", true}, {"kind", "cosine"}, {"shape", {2, 3}}, {"weights", {1, 2.5}}})
            .empty());
  // Attributes the schema does not declare are the caller's concern (the loader reports unknown_attr).
  CHECK(check({{"steps", 10}, {"colour", "red"}}).empty());
}

TEST_CASE("check_attrs: missing required attribute") {
  auto d = one_problem(Json::object());
  CHECK(d.code == "missing_attr");
  CHECK(d.file == "p.json");
  CHECK(d.node == "n");
  CHECK(d.field == R"(attr "steps")");
  CHECK(d.message == "missing required attribute (int)");
  CHECK(d.str() == R"(p.json: node "n", attr "steps": missing required attribute (int))");

  SUBCASE("a required attribute given as null is there, of the wrong type") {
    auto d2 = one_problem({{"steps", nullptr}});
    CHECK(d2.code == "wrong_type");
    CHECK(d2.message == "expected an integer, got null");
  }
}

TEST_CASE("check_attrs: wrong type, one message per declared type") {
  struct Case {
    Json attrs;
    std::string field, message;
  };
  const std::vector<Case> cases = {
      {{{"steps", "many"}}, R"(attr "steps")", R"(expected an integer, got "many")"},
      {{{"steps", 10.5}}, R"(attr "steps")", "expected an integer, got 10.5"},
      {{{"steps", 1}, {"rate", "0.5"}}, R"(attr "rate")", R"(expected a number, got "0.5")"},
      {{{"steps", 1}, {"flag", 1}}, R"(attr "flag")", "expected true or false, got 1"},
      {{{"steps", 1}, {"kind", 3}}, R"(attr "kind")", "expected a string, got 3"},
      {{{"steps", 1}, {"shape", {2, 3.5}}}, R"(attr "shape")", "expected a list of integers, got [2,3.5]"},
      {{{"steps", 1}, {"shape", "abc"}}, R"(attr "shape")", R"(expected a list of integers, got "abc")"},
      {{{"steps", 1}, {"weights", {1, "x"}}}, R"(attr "weights")", R"(expected a list of numbers, got [1,"x"])"},
  };
  for (auto& c : cases) {
    CAPTURE(c.attrs.dump());
    auto d = one_problem(c.attrs);
    CHECK(d.code == "wrong_type");
    CHECK(d.field == c.field);
    CHECK(d.message == c.message);
  }
}

TEST_CASE("check_attrs: below the minimum and above the maximum, printed as written") {
  auto d = one_problem({{"steps", 0}});
  CHECK(d.code == "value_below_min");
  CHECK(d.str() == R"(p.json: node "n", attr "steps": value 0 is below the minimum 1)");

  d = one_problem({{"steps", 1234567}});
  CHECK(d.code == "value_above_max");
  CHECK(d.str() == R"(p.json: node "n", attr "steps": value 1234567 is above the maximum 1000)");

  d = one_problem({{"steps", 1}, {"rate", -1e-05}});
  CHECK(d.code == "value_below_min");
  CHECK(d.message == "value -1e-05 is below the minimum 0");

  d = one_problem({{"steps", 1}, {"rate", 1.0000001}});
  CHECK(d.code == "value_above_max");
  CHECK(d.message == "value 1.0000001 is above the maximum 1");
}

TEST_CASE("check_attrs: a string not among the choices, with a suggestion") {
  auto d = one_problem({{"steps", 1}, {"kind", "cosin"}});
  CHECK(d.code == "bad_choice");
  CHECK(d.str() ==
        R"(p.json: node "n", attr "kind": value "cosin" is not one of "linear", "cosine", "sigmoid" (did you mean "cosine"?))");

  d = one_problem({{"steps", 1}, {"kind", "quadratic"}});
  CHECK(d.message == R"(value "quadratic" is not one of "linear", "cosine", "sigmoid")");
}

TEST_CASE("check_attrs: every problem, in declaration order") {
  auto d = check({{"rate", 2}, {"kind", "x"}, {"flag", "no"}});
  REQUIRE(d.size() == 4);
  CHECK(d[0].code == "missing_attr");
  CHECK(d[0].field == R"(attr "steps")");
  CHECK(d[1].code == "value_above_max");
  CHECK(d[1].field == R"(attr "rate")");
  CHECK(d[2].code == "wrong_type");
  CHECK(d[2].field == R"(attr "flag")");
  CHECK(d[3].code == "bad_choice");
  CHECK(d[3].field == R"(attr "kind")");
}

TEST_CASE("check_attrs: every registered node type's defaults pass its own checks") {
  const auto& registry = runtime::Registry::global();
  for (const std::string& op : registry.ops()) {
    CAPTURE(op);
    const Schema* s = registry.find_schema(op);
    REQUIRE(s != nullptr);
    for (const Diagnostic& d : s->check_attrs(s->with_defaults(Json::object()), "", op)) {
      INFO(d.str());
      CHECK(d.code == "missing_attr");  // only required attributes, which have no default
    }
  }
}
