// nodes/optim/adam.cpp — Adam / AdamW (torch.optim.AdamW semantics) on every trainable parameter
// upstream of `loss`, with optional global gradient-norm clipping and a learning-rate schedule
// (warm-up, then constant, cosine or linear decay: nodes/optim/lr_schedule.hpp).
//
// At step s = tick + 1 (derived from the tick, so a run resumed at tick k continues identically):
//   lr_t  = the schedule at s                              (default: lr, with warmup lr * s / warmup before)
//   norm  = sqrt(sum over every trainable element of g^2)  (recorded as "grad_norm")
//   c     = min(1, clip_norm / (norm + 1e-6))              (clip_norm 0: c = 1; torch clip_grad_norm_)
//   m     = beta1 * m + (1 - beta1) * c g
//   v     = beta2 * v + (1 - beta2) * (c g)^2
//   w     = w * (1 - lr_t * weight_decay)                  (decoupled decay, AdamW)
//   w    -= lr_t / (1 - beta1^s) * m / (sqrt(v) / sqrt(1 - beta2^s) + eps)
// The gradients themselves are left unscaled (clipping only scales what enters the moments).
//
// Work is cut into the fixed blocks of nodes/optim/param_blocks.hpp; the norm is summed per block in
// double and the block sums are combined in block order, so every result is independent of the
// thread count.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/optim/finite_loss.hpp"
#include "nodes/optim/lr_schedule.hpp"
#include "nodes/optim/param_blocks.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Adam final : Node {
  static Schema schema() {
    Schema s("optim.adam",
             "Adam with decoupled weight decay (torch.optim.AdamW), global gradient-norm clipping and a learning-rate "
             "schedule (warm-up, then constant, cosine or linear decay); outputs the 1-based step count (tick + 1) so "
             "EMA or checkpoint nodes can follow the update; records \"grad_norm\" (before clipping) and \"lr\"; "
             "fails on a non-finite gradient norm");
    s.input("loss", "the scalar loss [1] to minimise")
        .output("step", "[1] the number of updates done, tick + 1 (connect optim.ema here)");
    return optim::lr_schedule_attrs(s, 2e-4)
        .attr_float("beta1", 0.9, 0.0, 1.0, "first-moment decay, in [0, 1)")
        .attr_float("beta2", 0.999, 0.0, 1.0, "second-moment decay, in [0, 1)")
        .attr_float("eps", 1e-8, 0.0, {}, "added to the denominator, > 0")
        .attr_float("weight_decay", 0.0, 0.0, {}, "decoupled weight decay: w -= lr_t * weight_decay * w")
        .attr_float("clip_norm", 0.0, 0.0, {}, "clip the global gradient norm to at most this (0: off)")
        .optimizer()
        .memory([](const graph::MemoryContext& m) { return graph::NodeMemory{2 * m.trainable_bytes, 0}; })  // m, v
        .heavy()
        .shape([](graph::ShapeContext& c) {
          if (graph::numel(c.input("loss")) != 1)
            c.fail("loss", "expected a scalar loss [1], got " + graph::shape_str(c.input("loss")));
          // The schema's ranges are closed; the open ends are checked here.
          for (const char* beta : {"beta1", "beta2"})
            if (c.attr_float(beta) >= 1.0) c.fail(beta, "must be below 1 (a decay of 1 never updates the moment)");
          if (c.attr_float("eps") <= 0.0) c.fail("eps", "must be above 0 (it keeps the update finite)");
          c.set_output("step", {1});
        });
  }

  void plan(Context& ctx) override {
    schedule_ = optim::LrSchedule::from(ctx);
    const auto& ps = ctx.trainable();
    for (size_t k = 0; k < ps.size(); ++k) {
      m_.emplace_back(ps[k]->value.shape());
      v_.emplace_back(ps[k]->value.shape());
    }
    blocks_ = optim::ParamBlocks(ps);
    partial_.assign(size_t(blocks_.size()), 0.0);
  }

  void forward(Context& ctx) override {
    const int64_t step = ctx.tick() + 1;
    optim::check_finite_loss(ctx, step);
    const double beta1 = ctx.attr_float("beta1"), beta2 = ctx.attr_float("beta2");
    const double eps = ctx.attr_float("eps"), wd = ctx.attr_float("weight_decay");
    const double clip = ctx.attr_float("clip_norm");
    const auto& ps = ctx.trainable();

    // Global gradient norm: a double sum per block, the blocks combined in order.
    double* partial = partial_.data();
    blocks_.for_each([&](int64_t b, const optim::ParamBlocks::Block& bl) {
      const float* g = ps[bl.param]->grad.data();
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = bl.begin; i < bl.end; ++i) s += double(g[i]) * double(g[i]);
      partial[b] = s;
    });
    double sum = 0;
    for (int64_t b = 0; b < blocks_.size(); ++b) sum += partial[b];
    const double norm = std::sqrt(sum);
    if (!std::isfinite(norm))
      ctx.fail("loss", "the gradient norm is " + std::to_string(norm) + " at step " + std::to_string(step) +
                           " (the loss diverged?); the weights were left unchanged");

    const double lr_t = schedule_.at(step);
    const double coef = clip > 0 ? std::min(1.0, clip / (norm + 1e-6)) : 1.0;
    const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
    if (RunState* rs = ctx.run_state()) {
      rs->scalar("grad_norm", ctx.tick(), norm);
      rs->scalar("lr", ctx.tick(), lr_t);
    }

    // The update, element-wise; constants rounded to float once.
    const float c = float(coef), b1 = float(beta1), b2 = float(beta2), ob1 = float(1.0 - beta1),
                ob2 = float(1.0 - beta2), step_size = float(lr_t / bc1), inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2)),
                e = float(eps), keep = float(1.0 - lr_t * wd);
    blocks_.for_each([&](int64_t, const optim::ParamBlocks::Block& bl) {
      float* w = ps[bl.param]->value.data();
      const float* g = ps[bl.param]->grad.data();
      float* m = m_[bl.param].data();
      float* v = v_[bl.param].data();
#pragma omp simd
      for (int64_t i = bl.begin; i < bl.end; ++i) {
        const float gi = c * g[i];
        m[i] = b1 * m[i] + ob1 * gi;
        v[i] = b2 * v[i] + ob2 * gi * gi;
        w[i] = w[i] * keep - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + e);
      }
    });
    ctx.output("step")[0] = float(step);
  }

  /// The moments, "<id>.m.<param>" and "<id>.v.<param>": live handles (a checkpoint load writes into them).
  std::vector<std::pair<std::string, Tensor>> state_tensors(Context& ctx) override {
    std::vector<std::pair<std::string, Tensor>> out;
    const auto& ps = ctx.trainable();
    for (size_t k = 0; k < ps.size() && k < m_.size(); ++k) out.push_back({ctx.id() + ".m." + ps[k]->name, m_[k]});
    for (size_t k = 0; k < ps.size() && k < v_.size(); ++k) out.push_back({ctx.id() + ".v." + ps[k]->name, v_[k]});
    return out;
  }

 private:
  optim::LrSchedule schedule_;
  std::vector<Tensor> m_, v_;
  optim::ParamBlocks blocks_;
  std::vector<double> partial_;  // the norm's sum per block
};

NOISEFLOW_REGISTER_NODE(Adam);

}  // namespace
}  // namespace noiseflow::nodes
