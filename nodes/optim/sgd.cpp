// nodes/optim/sgd.cpp — stochastic gradient descent with momentum on every
// trainable parameter upstream of `loss` (the runtime derives the backward pass), with the
// learning-rate schedules of nodes/optim/lr_schedule.hpp.
#include <vector>

#include "nodes/optim/finite_loss.hpp"
#include "nodes/optim/lr_schedule.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Sgd final : Node {
  static Schema schema() {
    Schema s("optim.sgd",
             "SGD with momentum: v = momentum * v + grad; w -= lr_t * v, lr_t from the learning-rate schedule "
             "(lr 0 only computes gradients); records \"lr\"");
    s.input("loss", "the scalar loss [1] to minimise");
    return optim::lr_schedule_attrs(s, 0.01)
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
    schedule_ = optim::LrSchedule::from(ctx);
    for (Param* p : ctx.trainable()) velocity_.emplace_back(p->value.shape());
  }

  void forward(Context& ctx) override {
    optim::check_finite_loss(ctx, ctx.tick() + 1);
    const double lr_t = schedule_.at(ctx.tick() + 1);
    if (RunState* rs = ctx.run_state()) rs->scalar("lr", ctx.tick(), lr_t);
    const float lr = float(lr_t), mom = float(ctx.attr_float("momentum"));
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
  optim::LrSchedule schedule_;
  std::vector<Tensor> velocity_;
};

NOISEFLOW_REGISTER_NODE(Sgd);

}  // namespace
}  // namespace noiseflow::nodes
