// nodes/data/class_labels.cpp — the class labels a conditional sampling run asks for: every class in turn
// (rows of a grid) or one class for the whole batch. Under data parallelism each rank holds its slice.
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct ClassLabels final : Node {
  static Schema schema() {
    return Schema("data.class_labels",
                  "Labels [n] for conditional sampling: label i = floor(i * num_classes / n) (n / num_classes "
                  "samples of each class, in order: one grid row per class when n = num_classes x columns), or "
                  "`class` for every sample")
        .output("labels", "[n] class indices as floats")
        .attr_int("n", std::nullopt, 1, {}, "number of samples (the global batch: data parallelism splits it)")
        .batch_attr("n")
        .attr_int("num_classes", 10, 1, 1 << 20, "number of classes")
        .attr_int("class", -1, -1, 1 << 20, "-1: every class in turn; else this class for all n")
        .shape([](graph::ShapeContext& c) {
          const int64_t k = c.attr_int("num_classes"), cls = c.attr_int("class");
          if (cls >= k)
            c.fail("class", "class " + std::to_string(cls) + " is not one of the " + std::to_string(k) +
                                " classes 0 .. " + std::to_string(k - 1));
          c.set_output("labels", {c.attr_int("n")});
        });
  }
  void plan(Context& ctx) override {
    // Under data parallelism n is this rank's slice: its labels are those of global indices first + i.
    const int64_t n = ctx.attr_int("n"), k = ctx.attr_int("num_classes"), cls = ctx.attr_int("class");
    const int64_t global = n * ctx.ranks(), first = ctx.sample_offset(n);
    labels_.assign(size_t(n), 0.f);
    for (int64_t i = 0; i < n; ++i) labels_[size_t(i)] = float(cls >= 0 ? cls : (first + i) * k / global);
  }
  void forward(Context& ctx) override {
    Tensor& y = ctx.output("labels");
    for (int64_t i = 0; i < y.numel(); ++i) y[i] = labels_[size_t(i)];
  }

 private:
  std::vector<float> labels_;
};

NOISEFLOW_REGISTER_NODE(ClassLabels);

}  // namespace
}  // namespace noiseflow::nodes
