// nodes/sampler/start.cpp — where image to image (SDEdit, Meng et al. 2022) starts: the given images
// noised to the first point of the sampler's grid, x = a_0 x0 + b_0 noise, a draw from q(x_t | x0) at
// that point's level. With sampler.timesteps' `strength` the grid begins near t = strength T; the
// noise is an input (random.normal), so the start is a pure function of the run's seed.
#include <string>

#include "nodes/sampler/sampler.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::sampler;

struct SamplerStart final : Node {
  static Schema schema() {
    return Schema("sampler.start",
                  "The start of image to image (SDEdit): the images noised to the level of the grid's first point, "
                  "x = a_0 images + b_0 noise (q(x_t | x0) at that point); feed it to the sampler's state x")
        .input("images", "the images x0 [N, ...] in [-1, 1]")
        .input("noise", "N(0, I) noise, same shape (random.normal)")
        .input("points", "[3, K+1] the grid (sampler.timesteps.points; with `strength` < 1 it starts part way)")
        .output("x", "a_0 images + b_0 noise, same shape as images")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x = c.input("images");
          if (x.empty()) c.fail("images", "expected a tensor [N, ...] with a batch dimension, got a scalar shape []");
          if (c.input("noise") != x)
            c.fail("noise", "noise shape " + graph::shape_str(c.input("noise")) + " differs from images shape " +
                                graph::shape_str(x));
          const graph::Shape& p = c.input("points");
          if (p.size() != 2 || p[0] != 3 || p[1] < 2)
            c.fail("points", "expected the grid [3, K+1] of sampler.timesteps, got " + graph::shape_str(p));
          c.set_output("x", x);
        });
  }

  void forward(Context& ctx) override {
    const Tensor& x0 = ctx.input("images");
    const Tensor& z = ctx.input("noise");
    const Point p = point_at(ctx.input("points"), 0);
    const float a = float(p.a), b = float(p.b);
    Tensor& x = ctx.output("x");
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = a * x0[i] + b * z[i];
  }
};

NOISEFLOW_REGISTER_NODE(SamplerStart);

}  // namespace
}  // namespace noiseflow::nodes
