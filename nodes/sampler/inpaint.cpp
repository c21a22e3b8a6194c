// nodes/sampler/inpaint.cpp — the RePaint merge (Lugmayr et al. 2022), after every sampler step:
//
//   y = known ? a x0 + b z1 : x_step              (the known region noised to where the step ended)
//   y = (a' / a) y + sqrt(b'^2 - (a' / a)^2 b^2) z2   only when the next step starts elsewhere (a jump:
//                                                  q(x_next | x_step) of the forward process)
//
// with (a, b, a', b') the tick's `levels` (sampler.repaint_timesteps). The last step ends at the data
// (a = 1, b = 0), where the known pixels are the input's, bit for bit. A pixel is known where the mask
// is > 0; the mask broadcasts over the batch and the channels ([1 or N, 1 or C, ...]).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct SamplerInpaint final : Node {
  static Schema schema() {
    return Schema("sampler.inpaint",
                  "RePaint's merge after a sampler step: the known pixels (mask > 0) replaced by the images noised "
                  "to the level the step reached, a x0 + b z, and the whole x noised forward when a resampling jump "
                  "follows (levels from sampler.repaint_timesteps); at the data the known pixels are the images'")
        .input("x", "the sampler's x_next [N, C, ...]")
        .input("images", "the images x0 to complete, same shape")
        .input("mask", "[1 or N, 1 or C, ...] > 0 where the pixel is known (kept), <= 0 where it is generated")
        .input("levels", "[4] sampler.repaint_timesteps.levels")
        .output("x", "the merged x, same shape (the sampler's state next)")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& x = c.input("x");
          if (x.size() < 2) c.fail("x", "expected [N, C, ...], got " + graph::shape_str(x));
          if (c.input("images") != x)
            c.fail("images", "images shape " + graph::shape_str(c.input("images")) + " differs from x shape " +
                                 graph::shape_str(x));
          const graph::Shape& m = c.input("mask");
          bool ok = m.size() == x.size() && (m[0] == 1 || m[0] == x[0]) && (m[1] == 1 || m[1] == x[1]);
          for (size_t d = 2; ok && d < x.size(); ++d) ok = m[d] == x[d];
          if (!ok)
            c.fail("mask", "expected a mask [1 or " + std::to_string(x[0]) + ", 1 or " + std::to_string(x[1]) +
                               ", ...] over x " + graph::shape_str(x) + ", got " + graph::shape_str(m));
          if (c.input("levels") != graph::Shape{4})
            c.fail("levels",
                   "expected [4] (sampler.repaint_timesteps.levels), got " + graph::shape_str(c.input("levels")));
          c.set_output("x", x);
        });
  }

  void plan(Context& ctx) override {
    key_ = ctx.random_key();
    z_.resize(size_t(ctx.input("x").numel()));
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    const Tensor& x0 = ctx.input("images");
    const Tensor& mask = ctx.input("mask");
    const Tensor& lv = ctx.input("levels");
    Tensor& y = ctx.output("x");
    const int64_t N = x.dim(0), C = x.dim(1), n = x.numel(), inner = n / (N * C);
    const int64_t mN = mask.dim(0), mC = mask.dim(1);
    const float a = lv[0], b = lv[1], an = lv[2], bn = lv[3];
    // Elements of the global batch (data parallelism: this rank's slice starts at its first sample).
    random::fill_normal(z_.data(), n, key_, uint64_t(2 * ctx.tick()), 0.f, 1.f, ctx.sample_offset(1) * n);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t c = 0; c < C; ++c) {
        const float* m = mask.data() + ((mN == 1 ? 0 : i) * mC + (mC == 1 ? 0 : c)) * inner;
        const int64_t o = (i * C + c) * inner;
        for (int64_t k = 0; k < inner; ++k)
          y[o + k] = m[k] > 0.f ? (b == 0.f ? x0[o + k] : a * x0[o + k] + b * z_[size_t(o + k)]) : x[o + k];
      }
    if (an == a && bn == b) return;
    // A jump: x_next = (a' / a) y + sqrt(b'^2 - (a' / a)^2 b^2) z2.
    const double r = double(an) / double(a), s = std::sqrt(std::max(double(bn) * bn - r * r * double(b) * b, 0.0));
    random::fill_normal(z_.data(), n, key_, uint64_t(2 * ctx.tick() + 1), 0.f, 1.f, ctx.sample_offset(1) * n);
    for (int64_t k = 0; k < n; ++k) y[k] = float(r * y[k] + s * z_[size_t(k)]);
  }

 private:
  uint64_t key_ = 0;
  std::vector<float> z_;
};

NOISEFLOW_REGISTER_NODE(SamplerInpaint);

}  // namespace
}  // namespace noiseflow::nodes
