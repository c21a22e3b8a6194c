// nodes/nn/relu.cpp — y = max(x, 0), oneDNN eltwise relu forward and backward, on x's physical layout
// (plain or nChw16c; y and the gradients share it).
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Relu final : Node {
  static Schema schema() {
    return Schema("nn.relu", "ReLU: y = max(x, 0), elementwise (the gradient at 0 is 0)")
        .input("x", "any shape")
        .output("y", "same shape as x")
        .differentiable({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) { c.set_output("y", c.input("x")); });
  }

  void plan(Context& ctx) override {
    const auto md = ctx.input("x").desc();
    fwd_pd_ = dnnl::eltwise_forward::primitive_desc(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::eltwise_relu, md, 0.f),
        ctx.engine());
    fwd_ = dnnl::eltwise_forward(fwd_pd_);
    bwd_ = dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(
        dnnl::eltwise_backward::desc(dnnl::algorithm::eltwise_relu, md, md, 0.f), ctx.engine(), fwd_pd_));
  }

  void forward(Context& ctx) override {
    auto& e = ctx.engine();
    fwd_.execute(ctx.stream(),
                 {{DNNL_ARG_SRC, ctx.input("x").dnnl_read_memory(e)}, {DNNL_ARG_DST, ctx.output("y").dnnl_memory(e)}});
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
  dnnl::eltwise_backward bwd_;
};

NOISEFLOW_REGISTER_NODE(Relu);

}  // namespace
}  // namespace noiseflow::nodes
