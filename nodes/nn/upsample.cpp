// nodes/nn/upsample.cpp — nearest-neighbour upsampling by an integer factor, plain or nChw16c.
//
// Both directions are plain loops; oneDNN resampling_nearest was measured and
// is slower on the plain nchw layout here. [64,64,14,14], scale 2, 2 threads,
// median of 21 (machine shared with other builds, so loaded):
//   forward:  oneDNN jit:avx512_core_bf16 1.8-2.0 ms; this loop 0.58-0.60 ms
//   backward: oneDNN simple:any 20-57 ms; this loop 1.0-3.1 ms
// (backward sums each pixel's scale x scale children; a naive gather loop took 8 ms).
// The loops see a tensor as rows of W "pixels" of V floats: V = 1 on the plain layout (rows are (n, c, h)),
// V = 16 on nChw16c (rows are (n, c/16, h), a pixel holds 16 channels), so one kernel serves both.
#include <cstring>
#include <vector>

#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using runtime::onnx::Attribute;

struct Upsample final : Node {
  static Schema schema() {
    return Schema("nn.upsample", "Nearest-neighbour upsampling: [N,C,H,W] -> [N,C,scale*H,scale*W]")
        .input("x", "image batch [N, C, H, W]")
        .output("y", "[N, C, scale*H, scale*W]; y[n,c,i,j] = x[n,c,i/scale,j/scale]")
        .attr_int("scale", 2, 1, 64, "integer upsampling factor for both H and W")
        .differentiable({"x"})
        .backward_reads({})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const auto& x = c.input_rank("x", 4);
          int64_t s = c.attr_int("scale");
          c.set_output("y", {x[0], x[1], x[2] * s, x[3] * s});
        });
  }

  // Resize nearest, asymmetric coordinates, floor: y[i] = x[i / scale].
  static void onnx(onnx::OpContext& c) {
    const float s = float(c.attr_int("scale"));
    c.add("Resize", {c.input("x"), "", c.floats({1.f, 1.f, s, s}, {4})}, {c.output()},
          {Attribute::of_string("mode", "nearest"), Attribute::of_string("coordinate_transformation_mode", "asymmetric"),
           Attribute::of_string("nearest_mode", "floor")});
  }

  void plan(Context& ctx) override { scale_ = ctx.attr_int("scale"); }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    if (x.blocked()) forward_rows<16>(x, ctx.output("y"));
    else forward_rows<1>(x, ctx.output("y"));
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    Tensor& dx = ctx.grad_input("x");
    if (dx.blocked()) backward_rows<16>(ctx.grad_output("y"), dx);
    else backward_rows<1>(ctx.grad_output("y"), dx);
  }

 private:
  template <int V>
  void forward_rows(const Tensor& x, Tensor& y) const {
    const int64_t s = scale_, w_in = x.dim(3), w_out = w_in * s;
    const int64_t rows = x.numel() / (w_in * V);  // input rows; each makes s output rows
    const float* xp = x.data();
    float* yp = y.data();
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
      // Widen the row once, then copy it to the other s - 1 rows.
      const float* src = xp + r * w_in * V;
      float* dst = yp + r * s * w_out * V;
      if (s == 2) {
        for (int64_t w = 0; w < w_in; ++w)
          for (int v = 0; v < V; ++v) dst[2 * w * V + v] = src[w * V + v], dst[(2 * w + 1) * V + v] = src[w * V + v];
      } else {
        for (int64_t w = 0; w < w_in; ++w)
          for (int64_t j = 0; j < s; ++j)
            for (int v = 0; v < V; ++v) dst[(w * s + j) * V + v] = src[w * V + v];
      }
      for (int64_t i = 1; i < s; ++i) std::memcpy(dst + i * w_out * V, dst, size_t(w_out * V) * sizeof(float));
    }
  }

  template <int V>
  void backward_rows(const Tensor& dy, Tensor& dx) const {
    const int64_t s = scale_, w_in = dx.dim(3), w_out = w_in * s;
    const int64_t rows = dx.numel() / (w_in * V);  // input rows; each owns s output rows
    const float* dyp = dy.data();
    float* dxp = dx.data();
#pragma omp parallel
    {
      std::vector<float> acc(static_cast<size_t>(w_out * V));
#pragma omp for
      for (int64_t r = 0; r < rows; ++r) {
        // Sum the s output rows (vectorised), then each run of s pixels.
        const float* src = dyp + r * s * w_out * V;
        for (int64_t o = 0; o < w_out * V; ++o) acc[o] = src[o];
        for (int64_t i = 1; i < s; ++i)
          for (int64_t o = 0; o < w_out * V; ++o) acc[o] += src[i * w_out * V + o];
        float* dst = dxp + r * w_in * V;
        if (s == 2) {
          for (int64_t w = 0; w < w_in; ++w)
            for (int v = 0; v < V; ++v) dst[w * V + v] = acc[2 * w * V + v] + acc[(2 * w + 1) * V + v];
        } else {
          for (int64_t w = 0; w < w_in; ++w)
            for (int v = 0; v < V; ++v) {
              float sum = 0.f;
              for (int64_t j = 0; j < s; ++j) sum += acc[(w * s + j) * V + v];
              dst[w * V + v] = sum;
            }
        }
      }
    }
  }

  int64_t scale_ = 2;
};

NOISEFLOW_REGISTER_NODE(Upsample);

}  // namespace
}  // namespace noiseflow::nodes
