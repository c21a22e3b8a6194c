// nodes/nn/eltwise.hpp — the body shared by element-wise activations on oneDNN's eltwise primitive
// (nn.silu, nn.relu): forward and backward on x's physical layout (plain or nChw16c).
#pragma once

#include "runtime/node.hpp"

namespace noiseflow::nodes::nn {

class Eltwise {
 public:
  /// Builds the forward and backward primitives for `alg` with parameter `alpha` on x's layout.
  void plan(runtime::Context& ctx, dnnl::algorithm alg, float alpha) {
    const auto md = ctx.input("x").desc();
    fwd_pd_ = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, alg, md, alpha), ctx.engine());
    fwd_ = dnnl::eltwise_forward(fwd_pd_);
    bwd_ = dnnl::eltwise_backward(
        dnnl::eltwise_backward::primitive_desc(dnnl::eltwise_backward::desc(alg, md, md, alpha), ctx.engine(), fwd_pd_));
  }

  void forward(runtime::Context& ctx) {
    auto& e = ctx.engine();
    fwd_.execute(ctx.stream(),
                 {{DNNL_ARG_SRC, ctx.input("x").dnnl_read_memory(e)}, {DNNL_ARG_DST, ctx.output("y").dnnl_memory(e)}});
    ctx.stream().wait();
  }

  void backward(runtime::Context& ctx) {
    if (!ctx.wants_grad("x")) return;
    auto& e = ctx.engine();
    bwd_.execute(ctx.stream(), {{DNNL_ARG_SRC, ctx.input("x").dnnl_read_memory(e)},
                                {DNNL_ARG_DIFF_DST, ctx.grad_output("y").dnnl_read_memory(e)},
                                {DNNL_ARG_DIFF_SRC, ctx.grad_input("x").dnnl_memory(e)}});
    ctx.stream().wait();
  }

 private:
  dnnl::eltwise_forward::primitive_desc fwd_pd_;
  dnnl::eltwise_forward fwd_;
  dnnl::eltwise_backward bwd_;
};

}  // namespace noiseflow::nodes::nn
