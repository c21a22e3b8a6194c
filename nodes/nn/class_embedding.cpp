// nodes/nn/class_embedding.cpp — a learned vector per class, plus one for "no class" (classifier-free guidance).
//
// y[n] = weight[labels[n]], weight [num_classes + 1, dim]; row num_classes is the null class that label dropout
// and the unconditional half of a guided batch use. Backward: weight.grad[k] = sum of dy[n] over the n with
// label k. The labels are class indices stored as floats; anything else is an error naming the sample.
#include <cmath>
#include <cstring>
#include <string>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct ClassEmbedding final : Node {
  static Schema schema() {
    return Schema("nn.class_embedding",
                  "Learned class vectors y[n] = weight[labels[n]] (nn.Embedding), num_classes + 1 rows: the last "
                  "is the null class (no label) of classifier-free guidance")
        .input("labels", "[N] class indices 0 .. num_classes (num_classes: the null class), as floats")
        .output("y", "[N, dim]")
        .attr_int("num_classes", std::nullopt, 1, 1 << 20, "number of real classes (the null class is one more)")
        .recipe("num_classes", "classes")
        .attr_int("dim", std::nullopt, 1, 1 << 16, "embedding width")
        .attr_float("init_std", 1.0, 0.0, {}, "standard deviation of the initial vectors (PyTorch nn.Embedding: 1)")
        .shape([](graph::ShapeContext& c) {
          const Shape& l = c.input("labels");
          if (l.size() != 1 && !(l.size() == 2 && l[1] == 1))
            c.fail("labels", "expected class labels of shape [N], got " + graph::shape_str(l));
          const int64_t k = c.attr_int("num_classes"), dim = c.attr_int("dim");
          c.set_output("y", {l[0], dim});
          c.param("weight", {k + 1, dim}, graph::Init::normal(c.attr_float("init_std")));
        });
  }

  void plan(Context& ctx) override {
    classes_ = ctx.attr_int("num_classes");
    dim_ = ctx.attr_int("dim");
  }

  int64_t row(Context& ctx, const Tensor& labels, int64_t n) const {
    const float v = labels[n];
    if (!(v >= 0.f && v <= float(classes_) && v == std::floor(v)))
      ctx.fail("labels", "sample " + std::to_string(n) + " has label " + std::to_string(v) +
                             ", expected an integer in 0 .. " + std::to_string(classes_) + " (" +
                             std::to_string(classes_) + ": the null class)",
               "bad_label");
    return int64_t(v);
  }

  void forward(Context& ctx) override {
    const Tensor& labels = ctx.input("labels");
    const float* w = ctx.param("weight").data();
    float* y = ctx.output("y").data();
    for (int64_t n = 0; n < labels.dim(0); ++n)
      std::memcpy(y + n * dim_, w + row(ctx, labels, n) * dim_, size_t(dim_) * sizeof(float));
  }

  void backward(Context& ctx) override {
    const Tensor& labels = ctx.input("labels");
    const float* dy = ctx.grad_output("y").data();
    Tensor& dw = ctx.param_grad("weight");
    dw.zero();
    for (int64_t n = 0; n < labels.dim(0); ++n) {
      float* g = dw.data() + row(ctx, labels, n) * dim_;
      for (int64_t j = 0; j < dim_; ++j) g[j] += dy[n * dim_ + j];
    }
  }

 private:
  int64_t classes_ = 0, dim_ = 0;
};

NOISEFLOW_REGISTER_NODE(ClassEmbedding);

}  // namespace
}  // namespace noiseflow::nodes
