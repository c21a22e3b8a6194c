// tests/nodes/io/test_save_load_tensor.cpp — io.save_tensor writes what io.load_tensor reads back,
// atomically; a missing file, a missing name or a wrong shape is an error naming the field.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

TEST_CASE("io.save_tensor then io.load_tensor: the same floats, shape checked, a prefix (from an entry) on request") {
  TempDir dir;
  const std::string path = (dir.path / "sub" / "s.safetensors").string();
  const runtime::Tensor x = random_tensor({6, 1, 2, 3}, 3);
  runtime::NodeHarness save("io.save_tensor", {{"path", path}, {"name", "samples"}}, {{"x", x}});
  save.forward(0);
  REQUIRE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  runtime::NodeHarness load("io.load_tensor", {{"path", path}, {"name", "samples"}, {"shape", {6, 1, 2, 3}}}, {});
  load.forward(0);
  CHECK(same_bytes(load.output("y"), x));
  // The first 4 of 6 with prefix; without it the shape must match.
  runtime::NodeHarness first("io.load_tensor",
                             {{"path", path}, {"name", "samples"}, {"shape", {4, 1, 2, 3}}, {"prefix", true}}, {});
  first.forward(0);
  for (int64_t i = 0; i < 4 * 6; ++i) CHECK(first.output("y")[i] == x[i]);
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("io.load_tensor", {{"path", path}, {"name", "samples"}, {"shape", {4, 1, 2, 3}}}, {}),
                       doctest::Contains("has shape [6, 1, 2, 3], the pipeline expects [4, 1, 2, 3]"), runtime::NodeError);
  // Entries 2..4 with start 2; start past what the file holds, or without prefix, is an error.
  runtime::NodeHarness middle("io.load_tensor", {{"path", path}, {"name", "samples"}, {"shape", {3, 1, 2, 3}},
                                                 {"prefix", true}, {"start", 2}}, {});
  middle.forward(0);
  for (int64_t i = 0; i < 3 * 6; ++i) CHECK(middle.output("y")[i] == x[2 * 6 + i]);
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("io.load_tensor", {{"path", path}, {"name", "samples"}, {"shape", {3, 1, 2, 3}},
                                                               {"prefix", true}, {"start", 4}}, {}),
                       doctest::Contains("(or more entries along dim 0, from entry 4)"), runtime::NodeError);
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("io.load_tensor", {{"path", path}, {"name", "samples"}, {"shape", {3, 1, 2, 3}},
                                                               {"start", 1}}, {}),
                       doctest::Contains("start 1 needs prefix: true"), runtime::NodeError);
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("io.load_tensor", {{"path", path}, {"name", "x"}, {"shape", {6, 1, 2, 3}}}, {}),
                       doctest::Contains("no tensor 'x' (it holds: samples)"), runtime::NodeError);
  CHECK_THROWS_WITH_AS(runtime::NodeHarness("io.load_tensor", {{"path", (dir.path / "none.safetensors").string()}, {"shape", {1}},
                                                               {"hint", "run the sampler first"}}, {}),
                       doctest::Contains("run the sampler first"), runtime::NodeError);
}
