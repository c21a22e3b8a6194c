// nodes/diffusion/denoised.cpp — the clean-sample estimate x0_hat of a net's prediction at x_t:
//
//   eps:  x0_hat = (x_t - b pred) / a      x0: x0_hat = pred      v: x0_hat = a x_t - b pred
//
// with a = sqrt(abar_t), b = sqrt(1 - abar_t) per sample (at a fractional t, the level between the table's
// neighbours: level_at). Linear in (x_t, pred), so its gradients are the same per-sample coefficients. A
// consistency model's output f(x_t, t) is this estimate of the net it distils (Song et al. 2023; ECT, Geng
// et al. 2024, start from the denoiser itself).
#include <vector>

#include "nodes/diffusion/prediction.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

struct DenoisedNode final : Node {
  static Schema schema() {
    return Schema("diffusion.denoised",
                  "The clean-sample estimate x0_hat of a prediction at x_t (eps: (x_t - sqrt(1-abar) pred) / sqrt(abar); "
                  "x0: pred; v: sqrt(abar) x_t - sqrt(1-abar) pred), per sample; a consistency model's output")
        .input("pred", "the net's prediction [N, ...]")
        .input("xt", "the noised samples it was given, the same shape")
        .input("t", "[N] their timesteps in [0, T-1] (fractional ones between the table's levels)")
        .input("schedule", "[8, T] schedule table")
        .output("x0", "x0_hat, the same shape as pred")
        .attr_string("prediction", "eps", prediction_choices(), kPredictionDoc)
        .recipe("prediction", "objective", false)
        .differentiable({"pred", "xt"})
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& p = c.input("pred");
          if (p.empty()) c.fail("pred", "expected a tensor [N, ...] with a batch dimension");
          if (c.input("xt") != p)
            c.fail("xt", "xt " + graph::shape_str(c.input("xt")) + " differs from pred " + graph::shape_str(p));
          if (c.input("t") != graph::Shape{p[0]})
            c.fail("t", "expected timesteps [" + std::to_string(p[0]) + "], got " + graph::shape_str(c.input("t")));
          schedule_steps(c);
          c.set_output("x0", p);
        });
  }

  void plan(Context& ctx) override {
    prediction_ = parse_prediction(ctx.attr_string("prediction"));
    kx_.resize(size_t(ctx.input("t").numel()));
    kp_.resize(kx_.size());
  }

  void forward(Context& ctx) override {
    coefficients(ctx);
    const Tensor &p = ctx.input("pred"), &x = ctx.input("xt");
    Tensor& y = ctx.output("x0");
    const int64_t n = p.dim(0), per = p.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      const float kx = kx_[size_t(i)], kp = kp_[size_t(i)];
      const float *pi = p.data() + i * per, *xi = x.data() + i * per;
      float* yi = y.data() + i * per;
      for (int64_t k = 0; k < per; ++k) yi[k] = kx * xi[k] + kp * pi[k];
    }
  }

  void backward(Context& ctx) override {
    coefficients(ctx);
    const Tensor& g = ctx.grad_output("x0");
    const int64_t n = g.dim(0), per = g.numel() / n;
    auto scaled = [&](const std::vector<float>& coef, Tensor& out) {
      for (int64_t i = 0; i < n; ++i) {
        const float c = coef[size_t(i)];
        const float* gi = g.data() + i * per;
        float* o = out.data() + i * per;
        for (int64_t k = 0; k < per; ++k) o[k] = c * gi[k];
      }
    };
    if (ctx.wants_grad("pred")) scaled(kp_, ctx.grad_input("pred"));
    if (ctx.wants_grad("xt")) scaled(kx_, ctx.grad_input("xt"));
  }

 private:
  void coefficients(Context& ctx) {
    const Tensor& t = ctx.input("t");
    const ScheduleTable s(ctx.input("schedule"));
    for (int64_t i = 0; i < t.numel(); ++i) {
      const NoiseLevel l = level_at(s, continuous_timestep_at(ctx, t, i, s.steps()));
      if (prediction_ == Prediction::Eps && !(l.a > 0))
        ctx.fail("t", "x0_hat from an eps prediction needs sqrt(abar_t) > 0; t[" + std::to_string(i) + "] is pure noise");
      const Linear2 c = x0_from(prediction_, l.a, l.b);
      kx_[size_t(i)] = float(c.kx), kp_[size_t(i)] = float(c.kp);
    }
  }

  Prediction prediction_ = Prediction::Eps;
  std::vector<float> kx_, kp_;
};

NOISEFLOW_REGISTER_NODE(DenoisedNode);

}  // namespace
}  // namespace noiseflow::nodes
