// nodes/nn/group_norm.cpp — group normalization (PyTorch nn.GroupNorm) with a per-channel affine.
//
// oneDNN 2.6 has no group normalization: the kernels are noiseflow's own (nodes/kernels/group_norm.hpp, shared
// with nn.attention's norm), on the plain layout and, with layouts uniform, on nChw16c.
//
// activation "silu" fuses y = silu(gn(x)) into the normalise pass (no separate SiLU node, no extra pass over
// memory, no normalised tensor kept for backward); backward recomputes z = gn(x) from x and the saved
// statistics.
//
// dropout p (improved-diffusion's ResBlock: norm, SiLU, dropout, conv) multiplies y by a mask of 0 or
// 1 / (1 - p) while training (Context::training: gradients flow through the node); sampling runs it as the
// identity. The mask is drawn per element by its logical [N, C, H*W] index from Philox keyed by (seed,
// node id), stream = tick, so it is the same on either layout, on any thread count and after a resume;
// backward multiplies dy by the saved mask first.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "nodes/kernels/group_norm.hpp"
#include "nodes/kernels/nchw16c.hpp"
#include "nodes/nn/onnx_ops.hpp"
#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using kernels::nchw16c::kLanes;

struct GroupNorm final : Node {
  static Schema schema() {
    return Schema("nn.group_norm",
                  "Group normalization: normalise each group of C/groups channels per sample, then scale and shift "
                  "per channel (PyTorch GroupNorm)")
        .input("x", "[N, C, H, W] (or [N, C], or [N, C, ...])")
        .output("y", "same shape as x")
        .attr_int("groups", 8, 1, 1 << 16, "number of channel groups; must divide C")
        .attr_float("eps", 1e-5, 0.0, 1.0, "added to the variance")
        .attr_bool("affine", true, "learn a per-channel scale (weight, starts at 1) and shift (bias, starts at 0)")
        .attr_string("activation", "none", {"none", "silu"},
                     "applied to the normalised output in the same pass: none, or silu (y = z * sigmoid(z))")
        .attr_float("dropout", 0.0, 0.0, 0.99,
                    "after the activation, while training: zero each element with this probability and scale the "
                    "rest by 1 / (1 - dropout); sampling pipelines run it as the identity (0: off)")
        .differentiable({"x"})
        .backward_reads({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input("x");
          if (x.size() < 2) c.fail("x", "expected [N, C, ...] (rank 2 or more), got shape " + graph::shape_str(x));
          const int64_t g = c.attr_int("groups");
          if (x[1] % g != 0)
            c.fail("groups", "the " + std::to_string(x[1]) + " channels of x " + graph::shape_str(x) +
                                 " are not divisible by groups = " + std::to_string(g));
          c.set_output("y", x);
          if (c.attr_bool("affine")) {
            c.param("weight", {x[1]}, graph::Init::ones());
            c.param("bias", {x[1]}, graph::Init::zeros());
          }
        });
  }

  // Reshape [N, G, -1] - InstanceNormalization (scale 1, shift 0) - Reshape back - Mul weight [C, 1, 1]
  // - Add bias [C, 1, 1] (nodes/nn/onnx_ops.hpp), then Sigmoid and Mul for activation silu.
  static void onnx(onnx::OpContext& c) {
    const graph::Shape& x = c.input_shape("x");
    // [C] seen as [C, 1, ...] to broadcast over the spatial dimensions.
    std::vector<int64_t> per_channel{x[1]};
    per_channel.resize(x.size() < 2 ? 1 : x.size() - 1, 1);
    const bool affine = c.attr_bool("affine"), act = c.attr_string("activation") == "silu";
    const std::string w = affine ? c.param("weight", per_channel) : std::string();
    const std::string b = affine ? c.param("bias", per_channel) : std::string();
    const std::string out = act ? c.temp("norm") : c.output();
    onnx_ops::group_norm(c, c.input("x"), x, c.attr_int("groups"), c.attr_float("eps"), w, b, out, "norm");
    if (act) onnx_ops::silu(c, out, c.output(), "silu");
  }

  void plan(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    n_ = x.dim(0);
    c_ = x.dim(1);
    hw_ = x.numel() / std::max<int64_t>(n_ * c_, 1);
    affine_ = ctx.attr_bool("affine");
    gn_ = kernels::group_norm::GroupNorm(
        {n_, c_, hw_, ctx.attr_int("groups"), ctx.attr_float("eps"), ctx.attr_string("activation") == "silu"});
    ones_.assign(size_t(c_), 1.f);
    zeros_.assign(size_t(c_), 0.f);
    dropout_ = ctx.training() ? ctx.attr_float("dropout") : 0.0;
    if (dropout_ > 0) {
      key_ = ctx.random_key();
      mask_.assign(size_t(x.numel()), 0.f);
      scratch_.assign(size_t(x.numel()), 0.f);
    }
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    float* y = ctx.output("y").data();
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const float* beta = affine_ ? ctx.param("bias").data() : zeros_.data();
    gn_.forward(x.data(), gamma, beta, y, x.blocked());
    if (dropout_ > 0) apply_dropout(ctx.tick(), y, x.blocked());
  }

  void backward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    const float* dy = ctx.grad_output("y").data();
    if (dropout_ > 0) {
      const int64_t total = int64_t(mask_.size());
      for (int64_t i = 0; i < total; ++i) scratch_[size_t(i)] = dy[i] * mask_[size_t(i)];
      dy = scratch_.data();
    }
    float* dx = ctx.wants_grad("x") ? ctx.grad_input("x").data() : nullptr;
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const float* beta = affine_ ? ctx.param("bias").data() : zeros_.data();
    gn_.backward(x.data(), dy, gamma, beta, dx, x.blocked());
    if (affine_) gn_.param_grads(ctx.param_grad("weight").data(), ctx.param_grad("bias").data());
  }

 private:
  // y *= mask, the mask drawn for this tick by logical index and kept (in y's layout) for backward.
  void apply_dropout(int64_t tick, float* y, bool blocked) {
    const int64_t total = int64_t(mask_.size());
    random::fill_uniform(scratch_.data(), total, key_, uint64_t(tick), 0.f, 1.f);
    const float keep = float(1.0 / (1.0 - dropout_)), p = float(dropout_);
    for (int64_t n = 0; n < n_; ++n)
      for (int64_t c = 0; c < c_; ++c)
        for (int64_t i = 0; i < hw_; ++i) {
          const int64_t logical = (n * c_ + c) * hw_ + i;
          const int64_t at = blocked ? ((n * (c_ / kLanes) + c / kLanes) * hw_ + i) * kLanes + c % kLanes : logical;
          mask_[size_t(at)] = scratch_[size_t(logical)] >= p ? keep : 0.f;
        }
    for (int64_t i = 0; i < total; ++i) y[i] *= mask_[size_t(i)];
  }

  int64_t n_ = 0, c_ = 0, hw_ = 1;
  bool affine_ = true;
  kernels::group_norm::GroupNorm gn_;  // the statistics saved by forward for backward
  std::vector<float> ones_, zeros_;    // gamma and beta without affine
  double dropout_ = 0;                 // while training; 0 otherwise
  uint64_t key_ = 0;
  std::vector<float> mask_, scratch_;  // the tick's mask in y's layout; uniforms, then the masked dy
};

NOISEFLOW_REGISTER_NODE(GroupNorm);

}  // namespace
}  // namespace noiseflow::nodes
