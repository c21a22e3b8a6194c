// nodes/nn/upsample.cpp — nearest-neighbour upsampling by an integer factor.
//
// Both directions are plain loops; oneDNN resampling_nearest was measured and
// is slower on the plain nchw layout here. [64,64,14,14], scale 2, 2 threads,
// median of 21 (machine shared with other builds, so loaded):
//   forward:  oneDNN jit:avx512_core_bf16 1.8-2.0 ms; this loop 0.58-0.60 ms
//   backward: oneDNN simple:any 20-57 ms; this loop 1.0-3.1 ms
// (backward sums each pixel's scale x scale children; a naive gather loop took 8 ms).
#include <cstring>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Upsample final : Node {
  static Schema schema() {
    return Schema("nn.upsample", "Nearest-neighbour upsampling: [N,C,H,W] -> [N,C,scale*H,scale*W]")
        .input("x", "image batch [N, C, H, W]")
        .output("y", "[N, C, scale*H, scale*W]; y[n,c,i,j] = x[n,c,i/scale,j/scale]")
        .attr_int("scale", 2, 1, 64, "integer upsampling factor for both H and W")
        .differentiable({"x"})
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const auto& x = c.input_rank("x", 4);
          int64_t s = c.attr_int("scale");
          if (s < 1) c.fail("scale", "scale must be at least 1, got " + std::to_string(s));
          c.set_output("y", {x[0], x[1], x[2] * s, x[3] * s});
        });
  }

  void plan(Context& ctx) override { scale_ = ctx.attr_int("scale"); }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    const int64_t s = scale_, w_in = x.dim(3), w_out = w_in * s;
    const int64_t rows = x.dim(0) * x.dim(1) * x.dim(2);  // input rows; each makes s output rows
    const float* xp = x.data();
    float* yp = y.data();
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
      // Widen the row once, then copy it to the other s - 1 rows.
      const float* src = xp + r * w_in;
      float* dst = yp + r * s * w_out;
      if (s == 2) {
        for (int64_t w = 0; w < w_in; ++w) dst[2 * w] = src[w], dst[2 * w + 1] = src[w];
      } else {
        for (int64_t w = 0; w < w_in; ++w)
          for (int64_t j = 0; j < s; ++j) dst[w * s + j] = src[w];
      }
      for (int64_t i = 1; i < s; ++i) std::memcpy(dst + i * w_out, dst, size_t(w_out) * sizeof(float));
    }
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    const Tensor& dy = ctx.grad_output("y");
    Tensor& dx = ctx.grad_input("x");
    const int64_t s = scale_, w_in = dx.dim(3), w_out = w_in * s;
    const int64_t rows = dx.dim(0) * dx.dim(1) * dx.dim(2);  // input rows; each owns s output rows
    const float* dyp = dy.data();
    float* dxp = dx.data();
#pragma omp parallel
    {
      std::vector<float> acc(static_cast<size_t>(w_out));
#pragma omp for
      for (int64_t r = 0; r < rows; ++r) {
        // Sum the s output rows (vectorised), then each run of s columns.
        const float* src = dyp + r * s * w_out;
        for (int64_t o = 0; o < w_out; ++o) acc[o] = src[o];
        for (int64_t i = 1; i < s; ++i)
          for (int64_t o = 0; o < w_out; ++o) acc[o] += src[i * w_out + o];
        float* dst = dxp + r * w_in;
        if (s == 2) {
          for (int64_t w = 0; w < w_in; ++w) dst[w] = acc[2 * w] + acc[2 * w + 1];
        } else {
          for (int64_t w = 0; w < w_in; ++w) {
            float v = 0.f;
            for (int64_t j = 0; j < s; ++j) v += acc[w * s + j];
            dst[w] = v;
          }
        }
      }
    }
  }

 private:
  int64_t scale_ = 2;
};

NOISEFLOW_REGISTER_NODE(Upsample);

}  // namespace
}  // namespace noiseflow::nodes
