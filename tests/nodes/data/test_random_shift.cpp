// tests/nodes/data/test_random_shift.cpp — data.random_shift: every output image is its input moved
// by one whole-pixel (dy, dx) within [-max, max] with the border filled; shifts vary over samples
// and ticks and repeat for the same (seed, tick).
#include <doctest/doctest.h>

#include <set>
#include <utility>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using namespace noiseflow::test;

namespace {

// The (dy, dx) with y = shift(x), or (99, 99) if none in [-m, m] fits.
std::pair<int, int> find_shift(const runtime::Tensor& x, const runtime::Tensor& y, int64_t n, int m, float fill) {
  const int64_t H = x.dim(2), W = x.dim(3);
  for (int dy = -m; dy <= m; ++dy)
    for (int dx = -m; dx <= m; ++dx) {
      bool ok = true;
      for (int64_t i = 0; i < H && ok; ++i)
        for (int64_t j = 0; j < W && ok; ++j) {
          const int64_t si = i - dy, sj = j - dx;
          const float want = (si >= 0 && si < H && sj >= 0 && sj < W) ? x[(n * H + si) * W + sj] : fill;
          ok = y[(n * H + i) * W + j] == want;
        }
      if (ok) return {dy, dx};
    }
  return {99, 99};
}

}  // namespace

TEST_CASE("data.random_shift: whole-pixel translations within max, varied, reproducible") {
  const runtime::Tensor x = random_tensor({16, 1, 7, 7}, 3);
  std::set<std::pair<int, int>> seen;
  for (int64_t tick : {0, 1}) {
    runtime::NodeHarness h("data.random_shift", {{"max", 2}, {"fill", -1.0}}, {{"x", x}}, 9);
    h.forward(tick);
    runtime::NodeHarness again("data.random_shift", {{"max", 2}, {"fill", -1.0}}, {{"x", x}}, 9);
    again.forward(tick);
    CHECK(same_bytes(h.output("y"), again.output("y")));
    for (int64_t n = 0; n < 16; ++n) {
      const auto s = find_shift(x, h.output("y"), n, 2, -1.f);
      CHECK(s.first != 99);
      seen.insert(s);
    }
  }
  CHECK(seen.size() > 8);  // of the 25 possible shifts
  runtime::NodeHarness none("data.random_shift", {{"max", 0}}, {{"x", x}});
  none.forward(0);
  CHECK(same_bytes(none.output("y"), x));
}
