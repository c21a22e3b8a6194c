// nodes/loss/mse.cpp — mean squared error, optionally weighted per sample.
//
// loss = 1/numel * sum_{n, i} w_n * (pred[n, i] - target[n, i])^2 with w = 1 without `weights`.
// d loss / d pred = 2 w_n (pred - target) / numel = -d loss / d target. Accumulated in double.
#include <algorithm>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Mse final : Node {
  static Schema schema() {
    return Schema("loss.mse", "Mean squared error mean(w_n * (pred - target)^2), optionally weighted per sample")
        .input("pred", "prediction [N, ...]")
        .input("target", "target, the same shape as pred")
        .optional_input("weights", "per-sample weights [N] (default 1); not differentiated")
        .output("loss", "the scalar loss [1]; also recorded as the run's \"loss\" scalar")
        .differentiable({"pred", "target"})
        .shape([](graph::ShapeContext& c) {
          const Shape &p = c.input("pred"), &t = c.input("target");
          if (p.empty()) c.fail("pred", "expected a tensor with a batch dimension, got a shapeless one");
          if (p != t)
            c.fail("target", "target " + graph::shape_str(t) + " does not match pred " + graph::shape_str(p));
          if (c.has_input("weights")) {
            const Shape& w = c.input("weights");
            if (w != Shape{p[0]})
              c.fail("weights", "expected per-sample weights [" + std::to_string(p[0]) + "] for pred " +
                                    graph::shape_str(p) + ", got " + graph::shape_str(w));
          }
          c.set_output("loss", {1});
        });
  }

  void forward(Context& ctx) override {
    const Tensor &p = ctx.input("pred"), &t = ctx.input("target");
    const float* w = ctx.has_input("weights") ? ctx.input("weights").data() : nullptr;
    const int64_t n = p.dim(0), per = p.numel() / n;
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
      const float* pk = p.data() + k * per;
      const float* tk = t.data() + k * per;
      double row = 0;
      for (int64_t o = 0; o < per; o += 1024) {  // float SIMD lanes per chunk, double across chunks
        const int64_t e = std::min(per, o + 1024);
        float c = 0.f;
#pragma omp simd reduction(+ : c)
        for (int64_t i = o; i < e; ++i) c += (pk[i] - tk[i]) * (pk[i] - tk[i]);
        row += c;
      }
      total += (w ? double(w[k]) : 1.0) * row;
    }
    const double loss = total / double(p.numel());
    ctx.output("loss")[0] = float(loss);
    if (ctx.run_state()) ctx.run_state()->scalar("loss", ctx.tick(), loss);
  }

  void backward(Context& ctx) override {
    const Tensor &p = ctx.input("pred"), &t = ctx.input("target");
    const float* w = ctx.has_input("weights") ? ctx.input("weights").data() : nullptr;
    const int64_t n = p.dim(0), per = p.numel() / n;
    const double g = double(ctx.grad_output("loss")[0]) * 2.0 / double(p.numel());
    float* dp = ctx.wants_grad("pred") ? ctx.grad_input("pred").data() : nullptr;
    float* dt = ctx.wants_grad("target") ? ctx.grad_input("target").data() : nullptr;
    for (int64_t k = 0; k < n; ++k) {
      const float s = float(g * (w ? double(w[k]) : 1.0));
      const float* pk = p.data() + k * per;
      const float* tk = t.data() + k * per;
      if (dp) {
        float* d = dp + k * per;
#pragma omp simd
        for (int64_t i = 0; i < per; ++i) d[i] = s * (pk[i] - tk[i]);
      }
      if (dt) {
        float* d = dt + k * per;
#pragma omp simd
        for (int64_t i = 0; i < per; ++i) d[i] = s * (tk[i] - pk[i]);
      }
    }
  }
};

NOISEFLOW_REGISTER_NODE(Mse);

}  // namespace
}  // namespace noiseflow::nodes
