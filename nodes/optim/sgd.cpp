// nodes/optim/sgd.cpp — stochastic gradient descent with momentum on every
// trainable parameter upstream of `loss` (the runtime derives the backward pass).
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Sgd final : Node {
  static Schema schema() {
    return Schema("optim.sgd", "SGD with momentum: v = momentum * v + grad; w -= lr * v (lr 0 only computes gradients)")
        .input("loss", "the scalar loss [1] to minimise")
        .attr_float("lr", 0.01, 0.0, {}, "learning rate")
        .attr_float("momentum", 0.0, 0.0, 1.0, "momentum factor")
        .optimizer()
        .memory([](const graph::MemoryContext& m) { return graph::NodeMemory{m.trainable_bytes, 0}; })  // velocity
        .heavy()
        .shape([](graph::ShapeContext& c) {
          if (graph::numel(c.input("loss")) != 1)
            c.fail("loss", "expected a scalar loss [1], got " + graph::shape_str(c.input("loss")));
        });
  }

  void plan(Context& ctx) override {
    for (Param* p : ctx.trainable()) velocity_.emplace_back(p->value.shape());
  }

  void forward(Context& ctx) override {
    const float lr = float(ctx.attr_float("lr")), mom = float(ctx.attr_float("momentum"));
    const auto& ps = ctx.trainable();
    for (size_t k = 0; k < ps.size(); ++k) {
      float* w = ps[k]->value.data();
      const float* g = ps[k]->grad.data();
      float* v = velocity_[k].data();
      const int64_t n = ps[k]->value.numel();
      for (int64_t i = 0; i < n; ++i) {
        v[i] = mom * v[i] + g[i];
        w[i] -= lr * v[i];
      }
    }
  }

 private:
  std::vector<Tensor> velocity_;
};

NOISEFLOW_REGISTER_NODE(Sgd);

}  // namespace
}  // namespace noiseflow::nodes
