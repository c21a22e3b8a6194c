// nodes/diffusion/guidance.cpp — classifier-free guidance (Ho & Salimans 2022) as nodes around any net and
// any sampler step:
//
//   diffusion.label_dropout  training: each label replaced by the null class with probability p, drawn per
//                            sample and tick from the counter-based generator (resume stays bitwise)
//   diffusion.cfg_labels     sampling: labels [N] -> [2N], the labels then N null labels, so that one call of
//                            the net on tensor.repeat'ed x and t (batch 2N) gives both predictions
//   diffusion.guidance       pred [2N, ...] -> [N, ...]: uncond + w (cond - uncond), optionally rescaled
//                            (Lin et al. 2023, "Common diffusion noise schedules and sample steps are flawed",
//                            eq. 15-16: the guided prediction scaled to the conditional one's standard deviation
//                            per sample, mixed with the unscaled one by `rescale`)
//
// The combination is affine with weights summing to one, so it commutes with the affine maps between eps, x0
// and v predictions at a given x_t and t: guiding an x0- or v-predicting net gives the same step as guiding its
// eps prediction (tests/nodes/diffusion/test_guidance.cpp checks this). The rescale is applied to whatever the
// net predicts.
#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

void check_labels_shape(graph::ShapeContext& c) {
  const Shape& l = c.input("labels");
  if (l.size() != 1) c.fail("labels", "expected class labels of shape [N], got " + graph::shape_str(l));
}

struct LabelDropout final : Node {
  static Schema schema() {
    return Schema("diffusion.label_dropout",
                  "Replaces each label by the null class (num_classes) with probability p, drawn per sample and "
                  "tick: trains the unconditional prediction classifier-free guidance needs")
        .input("labels", "[N] class indices")
        .output("y", "[N]: the labels, some of them num_classes")
        .attr_int("num_classes", std::nullopt, 1, 1 << 20, "number of real classes; the null class is this index")
        .recipe("num_classes", "classes", false)
        .attr_float("p", 0.1, 0.0, 1.0, "probability that a label is dropped")
        .shape([](graph::ShapeContext& c) {
          check_labels_shape(c);
          c.set_output("y", c.input("labels"));
        });
  }
  void plan(Context& ctx) override {
    key_ = ctx.random_key();
    p_ = ctx.attr_float("p");
    null_ = float(ctx.attr_int("num_classes"));
  }
  void forward(Context& ctx) override {
    const Tensor& l = ctx.input("labels");
    Tensor& y = ctx.output("y");
    const int64_t first = ctx.sample_offset(l.dim(0));  // the global index of sample 0 (data parallelism)
    for (int64_t n = 0; n < l.dim(0); ++n) {
      // one uniform per (tick, global sample): the same draw whatever the batch is split into
      const float u = random::to_unit(random::philox(key_, uint64_t(ctx.tick()), uint64_t(first + n))[0]);
      y[n] = u < p_ ? null_ : l[n];
    }
  }

 private:
  uint64_t key_ = 0;
  double p_ = 0.1;
  float null_ = 0.f;
};

struct CfgLabels final : Node {
  static Schema schema() {
    return Schema("diffusion.cfg_labels",
                  "Labels for one batched call of a guided net: [N] -> [2N], the labels then N null labels")
        .input("labels", "[N] class indices")
        .output("y", "[2N]")
        .attr_int("num_classes", std::nullopt, 1, 1 << 20, "number of real classes; the null class is this index")
        .recipe("num_classes", "classes", false)
        .shape([](graph::ShapeContext& c) {
          check_labels_shape(c);
          c.set_output("y", {2 * c.input("labels")[0]});
        });
  }
  void plan(Context& ctx) override { null_ = float(ctx.attr_int("num_classes")); }
  void forward(Context& ctx) override {
    const Tensor& l = ctx.input("labels");
    Tensor& y = ctx.output("y");
    const int64_t n = l.dim(0);
    for (int64_t i = 0; i < n; ++i) {
      y[i] = l[i];
      y[n + i] = null_;
    }
  }

 private:
  float null_ = 0.f;
};

struct Guidance final : Node {
  static Schema schema() {
    return Schema("diffusion.guidance",
                  "Classifier-free guidance: pred [2N, ...] (conditional half first, as diffusion.cfg_labels "
                  "orders it) -> uncond + scale (cond - uncond), optionally rescaled (Lin et al. 2023)")
        .input("pred", "[2N, ...] the net's predictions: the conditional ones, then the unconditional ones")
        .output("y", "[N, ...] the guided prediction")
        .attr_float("scale", 1.0, 0.0, 100.0,
                    "guidance weight w: 0 = unconditional, 1 = conditional, > 1 = guided beyond it")
        .attr_float("rescale", 0.0, 0.0, 1.0,
                    "guidance rescale phi: y = phi * g * std(cond) / std(g) + (1 - phi) * g, std per sample")
        .shape([](graph::ShapeContext& c) {
          Shape s = c.input("pred");
          if (s.empty() || s[0] % 2 != 0)
            c.fail("pred", "expected [2N, ...] (conditional and unconditional halves), got " + graph::shape_str(s));
          s[0] /= 2;
          c.set_output("y", s);
        });
  }
  void plan(Context& ctx) override {
    w_ = float(ctx.attr_float("scale"));
    phi_ = ctx.attr_float("rescale");
  }
  void forward(Context& ctx) override {
    const Tensor& p = ctx.input("pred");
    Tensor& y = ctx.output("y");
    const int64_t n = y.dim(0), inner = y.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      const float* c = p.data() + i * inner;
      const float* u = p.data() + (n + i) * inner;
      float* o = y.data() + i * inner;
      for (int64_t j = 0; j < inner; ++j) o[j] = u[j] + w_ * (c[j] - u[j]);
      if (phi_ <= 0) continue;
      const double sc = stddev(c, inner), sg = stddev(o, inner);
      const double f = phi_ * (sg > 0 ? sc / sg : 1.0) + (1.0 - phi_);
      for (int64_t j = 0; j < inner; ++j) o[j] = float(o[j] * f);
    }
  }

 private:
  static double stddev(const float* v, int64_t n) {
    double s = 0, s2 = 0;
    for (int64_t j = 0; j < n; ++j) {
      s += v[j];
      s2 += double(v[j]) * v[j];
    }
    const double m = s / double(n);
    return std::sqrt(std::max(0.0, s2 / double(n) - m * m));
  }
  float w_ = 1.f;
  double phi_ = 0;
};

NOISEFLOW_REGISTER_NODE(LabelDropout);
NOISEFLOW_REGISTER_NODE(CfgLabels);
NOISEFLOW_REGISTER_NODE(Guidance);

}  // namespace
}  // namespace noiseflow::nodes
