// tests/nodes/io/test_write_metrics.cpp — io.write_metrics writes its named scalars as JSON, atomically;
// bad names are shape errors.
#include <doctest/doctest.h>

#include <fstream>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::NodeHarness;
using runtime::Tensor;

TEST_CASE("io.write_metrics: {tick, name: value} in a JSON file, no temp file left") {
  test::TempDir dir;
  const std::string path = dir / "m/metrics.json";
  NodeHarness h("io.write_metrics", {{"path", path}, {"names", "accuracy,fd"}},
                {{"a", Tensor({1}, {0.5f})}, {"c", Tensor({1}, {12.25f})}});
  h.forward(7);
  std::ifstream in(path);
  const auto j = graph::Json::parse(in);
  CHECK(j["tick"] == 7);
  CHECK(j["accuracy"] == 0.5);
  CHECK(j["fd"] == 12.25);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("io.write_metrics: one name per connected input") {
  auto field = [](const graph::Json& attrs, const runtime::NamedTensors& in) {
    try {
      NodeHarness h("io.write_metrics", attrs, in);
    } catch (const graph::ShapeError& e) {
      return e.field;
    }
    return std::string("no error");
  };
  CHECK(field({{"path", "x.json"}, {"names", "a,b"}}, {{"a", Tensor({1})}}) == "names");
  CHECK(field({{"path", "x.json"}, {"names", "a"}}, {}) == "a");
  CHECK(field({{"path", "x.json"}, {"names", "a"}}, {{"a", Tensor({2})}}) == "a");
}
