// nodes/core/constant.cpp — a constant tensor from attributes.
#include <algorithm>
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Constant final : Node {
  static Schema schema() {
    return Schema("tensor.constant",
                  "A constant tensor: `values` in row-major order with shape `shape` ([] = [len(values)]), or "
                  "`shape` filled with `fill` when values is empty")
        .output("y", "the constant")
        .attr_floats("values", std::vector<double>{}, "the elements in row-major order; [] to use `fill`")
        .attr_ints("shape", std::vector<int64_t>{}, "output shape; [] means [len(values)]")
        .attr_float("fill", 0.0, {}, {}, "value of every element when `values` is empty")
        .shape([](graph::ShapeContext& c) {
          const auto values = c.attr("values").get<std::vector<double>>();
          const std::vector<int64_t> shape = c.attr_ints("shape");
          for (auto d : shape)
            if (d <= 0) c.fail("shape", "every dimension must be positive, got " + graph::shape_str(shape));
          if (values.empty()) {
            if (shape.empty()) c.fail("shape", "with no `values`, give a non-empty `shape` to fill");
            c.set_output("y", shape);
            return;
          }
          if (shape.empty()) {
            c.set_output("y", {int64_t(values.size())});
            return;
          }
          if (graph::numel(shape) != int64_t(values.size()))
            c.fail("values", std::to_string(values.size()) + " values do not fill shape " + graph::shape_str(shape) +
                                 " (" + std::to_string(graph::numel(shape)) + " elements)");
          c.set_output("y", shape);
        });
  }

  void plan(Context& ctx) override {
    const auto values = ctx.attr("values").get<std::vector<double>>();
    const int64_t n = ctx.output("y").numel();
    values_.assign(size_t(n), float(ctx.attr_float("fill")));
    if (!values.empty()) std::transform(values.begin(), values.end(), values_.begin(), [](double v) { return float(v); });
    forward(ctx);
  }

  // Constant: rewritten each tick (cheap) so it stays right even if the plan reuses the buffer.
  void forward(Context& ctx) override { std::copy(values_.begin(), values_.end(), ctx.output("y").data()); }

 private:
  std::vector<float> values_;
};

NOISEFLOW_REGISTER_NODE(Constant);

}  // namespace
}  // namespace noiseflow::nodes
