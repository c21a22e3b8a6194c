// nodes/data/random_shift.cpp — data augmentation: every image of the batch translated by its own
// random (dy, dx) in [-max, max]^2 pixels, the uncovered border filled with `fill`. The shifts are
// drawn from (seed, node id, tick, sample), so a resumed run draws the same ones.
#include <algorithm>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct RandomShift final : Node {
  static Schema schema() {
    return Schema("data.random_shift",
                  "Translates each image [N, C, H, W] by its own random whole-pixel shift (dy, dx), each uniform in "
                  "[-max, max], filling the uncovered border with `fill` (augmentation for training a classifier)")
        .input("x", "images [N, C, H, W]")
        .output("y", "the shifted images, same shape")
        .attr_int("max", 2, 0, 64, "largest shift in pixels, each direction")
        .attr_float("fill", -1.0, {}, {}, "value of the uncovered pixels (-1: black in [-1, 1] images)")
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input_rank("x", 4)); });
  }

  void plan(Context& ctx) override { key_ = ctx.random_key(); }

  void forward(Context& ctx) override {
    const Tensor x = ctx.input("x").to_plain();
    Tensor& y = ctx.output("y");
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), m = ctx.attr_int("max");
    const float fill = float(ctx.attr_float("fill"));
    const int64_t first = ctx.sample_offset(N);  // the global index of sample 0 (data parallelism)
    for (int64_t n = 0; n < N; ++n) {
      const uint64_t g = uint64_t(first + n);
      const int64_t dy = int64_t(random::below(uint64_t(2 * m + 1), key_, uint64_t(ctx.tick()), 2 * g)) - m;
      const int64_t dx = int64_t(random::below(uint64_t(2 * m + 1), key_, uint64_t(ctx.tick()), 2 * g + 1)) - m;
      for (int64_t c = 0; c < C; ++c) {
        const float* src = x.data() + (n * C + c) * H * W;
        float* dst = y.data() + (n * C + c) * H * W;
        for (int64_t i = 0; i < H; ++i) {
          const int64_t si = i - dy;
          for (int64_t j = 0; j < W; ++j) {
            const int64_t sj = j - dx;
            dst[i * W + j] = (si >= 0 && si < H && sj >= 0 && sj < W) ? src[si * W + sj] : fill;
          }
        }
      }
    }
  }

 private:
  uint64_t key_ = 0;
};

NOISEFLOW_REGISTER_NODE(RandomShift);

}  // namespace
}  // namespace noiseflow::nodes
