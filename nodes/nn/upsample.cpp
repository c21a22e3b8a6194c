// nodes/nn/upsample.cpp — nearest-neighbour upsampling by an integer factor.
//
// Forward: oneDNN resampling_nearest (jit). Backward: a plain loop (each input
// pixel's gradient is the sum of its scale x scale children). Measured at
// [64,64,14,14], scale 2, 2 threads (machine shared, so loaded): oneDNN
// resampling_backward on plain nchw picks "simple:any" and took 50-57 ms; this
// loop took 3.0-3.1 ms (8 ms for a naive s*s gather loop), so the loop is kept.
#include <algorithm>
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

  void plan(Context& ctx) override {
    scale_ = ctx.attr_int("scale");
    auto d = dnnl::resampling_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::resampling_nearest,
                                            ctx.input("x").plain_desc(), ctx.output("y").plain_desc());
    fwd_pd_ = dnnl::resampling_forward::primitive_desc(d, ctx.engine());
    fwd_ = dnnl::resampling_forward(fwd_pd_);
  }

  void forward(Context& ctx) override {
    auto& e = ctx.engine();
    fwd_.execute(ctx.stream(), {{DNNL_ARG_SRC, ctx.input("x").dnnl_memory(e)}, {DNNL_ARG_DST, ctx.output("y").dnnl_memory(e)}});
    ctx.stream().wait();
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
  dnnl::resampling_forward::primitive_desc fwd_pd_;
  dnnl::resampling_forward fwd_;
};

NOISEFLOW_REGISTER_NODE(Upsample);

}  // namespace
}  // namespace noiseflow::nodes
