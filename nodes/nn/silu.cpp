// nodes/nn/silu.cpp — y = x * sigmoid(x), oneDNN eltwise swish forward and backward, on x's physical
// layout (plain or nChw16c; y and the gradients share it).
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Silu final : Node {
  static Schema schema() {
    return Schema("nn.silu", "SiLU (swish): y = x * sigmoid(x), elementwise")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .differentiable({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  void plan(Context& ctx) override {
    auto md = ctx.input("x").desc();
    auto fwd_d = dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_swish, md, 1.f);
    fwd_pd_ = dnnl::eltwise_forward::primitive_desc(fwd_d, ctx.engine());
    fwd_ = dnnl::eltwise_forward(fwd_pd_);
    auto bwd_d = dnnl::eltwise_backward::desc(dnnl::algorithm::eltwise_swish, md, md, 1.f);
    bwd_pd_ = dnnl::eltwise_backward::primitive_desc(bwd_d, ctx.engine(), fwd_pd_);
    bwd_ = dnnl::eltwise_backward(bwd_pd_);
  }

  void forward(Context& ctx) override {
    auto& e = ctx.engine();
    fwd_.execute(ctx.stream(), {{DNNL_ARG_SRC, ctx.input("x").dnnl_read_memory(e)}, {DNNL_ARG_DST, ctx.output("y").dnnl_memory(e)}});
    ctx.stream().wait();
  }

  void backward(Context& ctx) override {
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
  dnnl::eltwise_backward::primitive_desc bwd_pd_;
  dnnl::eltwise_backward bwd_;
};

NOISEFLOW_REGISTER_NODE(Silu);

}  // namespace
}  // namespace noiseflow::nodes
