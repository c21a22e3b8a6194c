// nodes/loss/cross_entropy.cpp — softmax cross-entropy of class logits, with integer labels or soft targets,
// and the batch's accuracy.
//
// p = softmax(logits) per row; with labels: loss = -1/N sum_n log p[n, label_n]; with a target
// distribution: loss = -1/N sum_n sum_k target[n, k] log p[n, k]. d loss / d logits = (p * sum_k target[n, k] -
// target) / N (one-hot targets for labels). accuracy = share of rows whose largest logit is the label (or
// the target's largest entry). Accumulated in double.
#include <cmath>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

int64_t argmax(const float* v, int64_t k) {
  int64_t best = 0;
  for (int64_t j = 1; j < k; ++j)
    if (v[j] > v[best]) best = j;
  return best;
}

struct CrossEntropy final : Node {
  static Schema schema() {
    return Schema("loss.cross_entropy",
                  "Softmax cross-entropy of class logits against integer labels or a target distribution "
                  "(torch.nn.functional.cross_entropy, mean over the batch), and the batch's accuracy")
        .input("logits", "unnormalised class scores [N, K]")
        .optional_input("labels", "class indices [N], integers in [0, K) (as floats); give labels or target")
        .optional_input("target", "target probabilities [N, K] (soft labels); give labels or target")
        .output("loss", "the scalar loss [1]; also recorded as the run's \"loss\" scalar")
        .output("accuracy", "[1] share of rows whose largest logit is the label; recorded as \"accuracy\"")
        .differentiable({"logits"})
        .shape([](graph::ShapeContext& c) {
          const Shape& z = c.input_rank("logits", 2);
          if (z[1] < 2) c.fail("logits", "expected at least 2 classes, got " + graph::shape_str(z));
          if (c.has_input("labels") == c.has_input("target"))
            c.fail("labels", "connect exactly one of `labels` [N] and `target` [N, K]");
          if (c.has_input("labels") && c.input("labels") != Shape{z[0]})
            c.fail("labels", "expected labels [" + std::to_string(z[0]) + "] for logits " + graph::shape_str(z) +
                                 ", got " + graph::shape_str(c.input("labels")));
          if (c.has_input("target") && c.input("target") != z)
            c.fail("target", "target " + graph::shape_str(c.input("target")) + " does not match logits " +
                                 graph::shape_str(z));
          c.set_output("loss", {1});
          c.set_output("accuracy", {1});
        });
  }

  void plan(Context& ctx) override {
    const Tensor& z = ctx.input("logits");
    n_ = z.dim(0), k_ = z.dim(1);
    prob_.assign(size_t(n_ * k_), 0.f);
  }

  void forward(Context& ctx) override {
    const float* z = ctx.input("logits").data();
    const float* labels = ctx.has_input("labels") ? ctx.input("labels").data() : nullptr;
    const float* target = ctx.has_input("target") ? ctx.input("target").data() : nullptr;
    double total = 0;
    int64_t correct = 0;
    for (int64_t n = 0; n < n_; ++n) {
      const float* zn = z + n * k_;
      const int64_t top = argmax(zn, k_);
      double sum = 0;
      for (int64_t j = 0; j < k_; ++j) sum += std::exp(double(zn[j]) - double(zn[top]));
      const double log_sum = std::log(sum) + double(zn[top]);  // log sum_j exp(z_j)
      for (int64_t j = 0; j < k_; ++j) prob_[size_t(n * k_ + j)] = float(std::exp(double(zn[j]) - log_sum));
      if (labels) {
        const int64_t y = label_of(ctx, labels[n], n);
        total += log_sum - double(zn[y]);
        correct += top == y;
      } else {
        const float* tn = target + n * k_;
        for (int64_t j = 0; j < k_; ++j) total += double(tn[j]) * (log_sum - double(zn[j]));
        correct += top == argmax(tn, k_);
      }
    }
    const double loss = total / double(n_), accuracy = double(correct) / double(n_);
    ctx.output("loss")[0] = float(loss);
    ctx.output("accuracy")[0] = float(accuracy);
    if (ctx.run_state()) {
      ctx.run_state()->scalar("loss", ctx.tick(), loss);
      ctx.run_state()->scalar("accuracy", ctx.tick(), accuracy);
    }
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("logits")) return;
    const float* labels = ctx.has_input("labels") ? ctx.input("labels").data() : nullptr;
    const float* target = ctx.has_input("target") ? ctx.input("target").data() : nullptr;
    const float g = float(double(ctx.grad_output("loss")[0]) / double(n_));
    float* dz = ctx.grad_input("logits").data();
    for (int64_t n = 0; n < n_; ++n) {
      const float* pn = prob_.data() + n * k_;
      float* dn = dz + n * k_;
      if (labels) {
        for (int64_t j = 0; j < k_; ++j) dn[j] = g * pn[j];
        dn[label_of(ctx, labels[n], n)] -= g;
      } else {
        const float* tn = target + n * k_;
        float mass = 0.f;
        for (int64_t j = 0; j < k_; ++j) mass += tn[j];
        for (int64_t j = 0; j < k_; ++j) dn[j] = g * (pn[j] * mass - tn[j]);
      }
    }
  }

 private:
  int64_t label_of(Context& ctx, float v, int64_t n) const {
    const int64_t y = int64_t(v);
    if (float(y) != v || y < 0 || y >= k_)
      ctx.fail("labels", "label " + std::to_string(v) + " of row " + std::to_string(n) + " is not a class index in [0, " +
                             std::to_string(k_) + ")");
    return y;
  }

  int64_t n_ = 0, k_ = 0;
  std::vector<float> prob_;  // softmax of the last forward, for backward
};

NOISEFLOW_REGISTER_NODE(CrossEntropy);

}  // namespace
}  // namespace noiseflow::nodes
