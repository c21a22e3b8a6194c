// nodes/core/repeat.cpp — repeat a batch along dimension 0.
//
//   tile:       y = [x_0, ..., x_{N-1}, x_0, ..., x_{N-1}, ...]        (torch.Tensor.repeat)
//   interleave: y = [x_0, x_0, ..., x_1, x_1, ..., x_{N-1}, ...]       (torch.repeat_interleave, dim 0)
//
// Backward sums the gradients of the copies of each row.
#include <algorithm>
#include <string>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Repeat final : Node {
  static Schema schema() {
    return Schema("tensor.repeat",
                  "Repeat x [N, ...] `times` times along dimension 0 to [N*times, ...]: mode tile (x, x, ...) or "
                  "interleave (x0, x0, ..., x1, x1, ...)")
        .input("x", "[N, ...]")
        .output("y", "[N*times, ...]")
        .attr_int("times", std::nullopt, 1, {}, "number of copies (>= 1); required")
        .attr_string("mode", "tile", {"tile", "interleave"},
                     "tile: the whole batch repeated; interleave: each sample repeated in place")
        .differentiable({"x"})
        .shape([](graph::ShapeContext& c) {
          graph::Shape s = c.input("x");
          if (s.empty()) c.fail("x", "expected a tensor [N, ...] with a first dimension, got a scalar shape []");
          const int64_t times = c.attr_int("times");
          s[0] *= times;
          c.set_output("y", s);
        });
  }

  void plan(Context& ctx) override {
    times_ = ctx.attr_int("times");
    interleave_ = ctx.attr_string("mode") == "interleave";
  }

  // Row of y that holds copy k of row i of x.
  int64_t dst_row(int64_t i, int64_t k, int64_t n) const { return interleave_ ? i * times_ + k : k * n + i; }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    Tensor& y = ctx.output("y");
    const int64_t n = x.dim(0), inner = x.numel() / n;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < times_; ++k)
        std::copy_n(x.data() + i * inner, inner, y.data() + dst_row(i, k, n) * inner);
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    const Tensor& gy = ctx.grad_output("y");
    Tensor& gx = ctx.grad_input("x");
    const int64_t n = gx.dim(0), inner = gx.numel() / n;
    for (int64_t i = 0; i < n; ++i) {
      float* g = gx.data() + i * inner;
      std::copy_n(gy.data() + dst_row(i, 0, n) * inner, inner, g);
      for (int64_t k = 1; k < times_; ++k) {
        const float* src = gy.data() + dst_row(i, k, n) * inner;
        for (int64_t j = 0; j < inner; ++j) g[j] += src[j];
      }
    }
  }

 private:
  int64_t times_ = 1;
  bool interleave_ = false;
};

NOISEFLOW_REGISTER_NODE(Repeat);

}  // namespace
}  // namespace noiseflow::nodes
