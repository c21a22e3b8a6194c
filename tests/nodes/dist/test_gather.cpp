// tests/nodes/dist/test_gather.cpp — dist.gather: its shapes, the identity in one process, the count checks.
// Several ranks: tests/runtime/test_distributed.cpp (threads) and tests/tools/test_mpi.cpp (mpirun).
#include <doctest/doctest.h>

#include <string>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("dist.gather in one process: y is x, of shape [count, ...]") {
  Tensor x({3, 2, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i) * 0.5f - 3.f;
  NodeHarness h("dist.gather", {{"count", 3}}, {{"x", x}});
  CHECK(h.output("y").shape() == Shape{3, 2, 4});
  h.forward(0);
  CHECK(same_bytes(h.output("y"), x));
  // Every tick: the node is stateful, so it runs on every rank each tick.
  h.set_input("x", Tensor({3, 2, 4}));
  h.forward(1);
  CHECK(same_bytes(h.output("y"), Tensor({3, 2, 4})));
  // A vector of per-sample values (labels, timesteps) too.
  NodeHarness v("dist.gather", {{"count", 5}}, {{"x", Tensor({5})}});
  CHECK(v.output("y").shape() == Shape{5});
}

TEST_CASE("dist.gather: the shape is [count, x's other dimensions], count a multiple of x's samples per rank") {
  // Shape inference does not know the rank count: it refuses what no rank count fits.
  CHECK(shape_error_field("dist.gather", {{"count", 6}}, {{"x", Tensor({4, 1, 2, 2})}}) == "count");
  // Planning, the rank count is known: one process must hold all count samples (2 ranks would fit).
  try {
    NodeHarness h("dist.gather", {{"count", 8}}, {{"x", Tensor({4, 1, 2, 2})}});
    FAIL("count 8 with 4 samples on 1 rank");
  } catch (const NodeError& e) {
    CHECK(e.field == "count");
    CHECK(std::string(e.what()).find("the global batch 8 is not the 1 rank x 4 samples of x") != std::string::npos);
  }
}
