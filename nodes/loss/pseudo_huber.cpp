// nodes/loss/pseudo_huber.cpp — the pseudo-Huber distance of consistency training (Song & Dhariwal 2023,
// iCT; ECT), per sample and weighted:
//
//   loss = 1/N sum_n w_n (sqrt(||pred_n - target_n||^2 + c^2) - c)
//
// ||.|| over all of a sample's elements. Near 0 it is ||d||^2 / (2c) (a scaled MSE), far from it ||d|| - c
// (robust to outliers). c < 0 takes iCT's 0.00054 sqrt(d), d the elements per sample; c = 0 is ECT's
// plain L2 norm. d loss / d pred = w_n d / (N sqrt(||d||^2 + c^2)) = -d loss / d target. Accumulated in double.
#include <cmath>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct PseudoHuber final : Node {
  static Schema schema() {
    return Schema("loss.pseudo_huber",
                  "Pseudo-Huber loss mean_n(w_n (sqrt(||pred_n - target_n||^2 + c^2) - c)) over samples (consistency "
                  "training, Song & Dhariwal 2023), optionally weighted per sample")
        .input("pred", "prediction [N, ...]")
        .input("target", "target, the same shape as pred")
        .optional_input("weights", "per-sample weights [N] (default 1); not differentiated")
        .output("loss", "the scalar loss [1]; also recorded as the run's \"loss\" scalar")
        .attr_float("c", -1.0, {}, {}, "the transition scale; < 0: 0.00054 sqrt(elements per sample) (iCT); 0: the L2 norm (ECT)")
        .differentiable({"pred", "target"})
        .shape([](graph::ShapeContext& c) {
          const Shape &p = c.input("pred"), &t = c.input("target");
          if (p.empty()) c.fail("pred", "expected a tensor with a batch dimension, got a shapeless one");
          if (p != t) c.fail("target", "target " + graph::shape_str(t) + " does not match pred " + graph::shape_str(p));
          if (c.has_input("weights") && c.input("weights") != Shape{p[0]})
            c.fail("weights", "expected per-sample weights [" + std::to_string(p[0]) + "] for pred " + graph::shape_str(p) +
                                  ", got " + graph::shape_str(c.input("weights")));
          c.set_output("loss", {1});
        });
  }

  void plan(Context& ctx) override {
    const Tensor& p = ctx.input("pred");
    const double c = ctx.attr_float("c");
    c_ = c < 0 ? 0.00054 * std::sqrt(double(p.numel() / p.dim(0))) : c;
    root_.resize(size_t(p.dim(0)));
  }

  void forward(Context& ctx) override {
    const Tensor &p = ctx.input("pred"), &t = ctx.input("target");
    const float* w = ctx.has_input("weights") ? ctx.input("weights").data() : nullptr;
    const int64_t n = p.dim(0), per = p.numel() / n;
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
      double sq = 0;
      const float *pk = p.data() + k * per, *tk = t.data() + k * per;
      for (int64_t i = 0; i < per; ++i) sq += double(pk[i] - tk[i]) * double(pk[i] - tk[i]);
      root_[size_t(k)] = std::sqrt(sq + c_ * c_);
      total += (w ? double(w[k]) : 1.0) * (root_[size_t(k)] - c_);
    }
    const double loss = total / double(n);
    ctx.output("loss")[0] = float(loss);
    if (ctx.run_state()) ctx.run_state()->scalar("loss", ctx.tick(), loss);
  }

  void backward(Context& ctx) override {
    const Tensor &p = ctx.input("pred"), &t = ctx.input("target");
    const float* w = ctx.has_input("weights") ? ctx.input("weights").data() : nullptr;
    const int64_t n = p.dim(0), per = p.numel() / n;
    const double g = double(ctx.grad_output("loss")[0]) / double(n);
    float* dp = ctx.wants_grad("pred") ? ctx.grad_input("pred").data() : nullptr;
    float* dt = ctx.wants_grad("target") ? ctx.grad_input("target").data() : nullptr;
    for (int64_t k = 0; k < n; ++k) {
      const float *pk = p.data() + k * per, *tk = t.data() + k * per;
      const double root = root_[size_t(k)];  // this tick's forward
      const float s = root > 0 ? float(g * (w ? double(w[k]) : 1.0) / root) : 0.f;
      for (int64_t i = 0; i < per; ++i) {
        const float d = s * (pk[i] - tk[i]);
        if (dp) dp[k * per + i] = d;
        if (dt) dt[k * per + i] = -d;
      }
    }
  }

 private:
  double c_ = 0;
  std::vector<double> root_;
};

NOISEFLOW_REGISTER_NODE(PseudoHuber);

}  // namespace
}  // namespace noiseflow::nodes
