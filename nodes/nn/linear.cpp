// nodes/nn/linear.cpp — fully connected layer (PyTorch nn.Linear), oneDNN inner product forward,
// backward_data and backward_weights (with bias) primitives built once at plan time.
#include <unordered_map>

#include "nodes/nn/dnnl_util.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using dnnl_util::Staged;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct Linear final : Node {
  static Schema schema() {
    return Schema("nn.linear", "Fully connected layer y = x W^T + b (PyTorch Linear)")
        .input("x", "[N, in_features]")
        .output("y", "[N, out_features]")
        .attr_int("out_features", std::nullopt, 1, 1 << 20, "output features")
        .attr_bool("bias", true, "add a learned bias")
        .attr_bool("zero_init", false,
                   "start weight and bias at zero (else PyTorch's default U(+-1/sqrt(in_features)))")
        .differentiable({"x"})
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input_rank("x", 2);
          const int64_t out = c.attr_int("out_features");
          if (out < 1) c.fail("out_features", "must be at least 1, got " + std::to_string(out));
          c.set_output("y", {x[0], out});
          const bool zero = c.attr_bool("zero_init");
          c.param("weight", {out, x[1]}, zero ? graph::Init::zeros() : graph::Init::kaiming_uniform(x[1]));
          if (c.attr_bool("bias"))
            c.param("bias", {out}, zero ? graph::Init::zeros() : graph::Init::uniform_fan_in(x[1]));
        });
  }

  void plan(Context& ctx) override {
    const auto& eng = ctx.engine();
    const int64_t n = ctx.input("x").dim(0), in = ctx.input("x").dim(1), out = ctx.attr_int("out_features");
    bias_ = ctx.attr_bool("bias");

    const dnnl::memory::dims src_dims{n, in}, wei_dims{out, in}, dst_dims{n, out}, bias_dims{out};
    const dnnl::memory::desc src_md(src_dims, dt::f32, tag::nc), wei_md(wei_dims, dt::f32, tag::oi),
        dst_md(dst_dims, dt::f32, tag::nc), bias_md(bias_dims, dt::f32, tag::x);
    const dnnl::memory::desc src_any(src_dims, dt::f32, tag::any), wei_any(wei_dims, dt::f32, tag::any),
        dst_any(dst_dims, dt::f32, tag::any);
    const dnnl::memory::desc bias_prim = bias_ ? bias_md : dnnl::memory::desc();
    const auto attr = dnnl_util::user_scratchpad_attr();

    dnnl::inner_product_forward::desc fwd_d(dnnl::prop_kind::forward_training, src_any, wei_any, bias_prim, dst_any);
    fwd_pd_ = dnnl::inner_product_forward::primitive_desc(fwd_d, attr, eng);
    fwd_ = dnnl::inner_product_forward(fwd_pd_);
    fwd_src_ = Staged(src_md, fwd_pd_.src_desc(), eng);
    fwd_wei_ = Staged(wei_md, fwd_pd_.weights_desc(), eng);
    fwd_dst_ = Staged(dst_md, fwd_pd_.dst_desc(), eng);

    dnnl::inner_product_backward_data::desc bwd_d_d(src_any, wei_any, dst_any);
    bwd_d_pd_ = dnnl::inner_product_backward_data::primitive_desc(bwd_d_d, attr, eng, fwd_pd_);
    bwd_d_ = dnnl::inner_product_backward_data(bwd_d_pd_);
    bwd_d_diff_src_ = Staged(src_md, bwd_d_pd_.diff_src_desc(), eng);
    bwd_d_wei_ = Staged(wei_md, bwd_d_pd_.weights_desc(), eng);
    bwd_d_diff_dst_ = Staged(dst_md, bwd_d_pd_.diff_dst_desc(), eng);

    dnnl::inner_product_backward_weights::desc bwd_w_d(src_any, wei_any, bias_prim, dst_any);
    bwd_w_pd_ = dnnl::inner_product_backward_weights::primitive_desc(bwd_w_d, attr, eng, fwd_pd_);
    bwd_w_ = dnnl::inner_product_backward_weights(bwd_w_pd_);
    bwd_w_src_ = Staged(src_md, bwd_w_pd_.src_desc(), eng);
    bwd_w_diff_dst_ = Staged(dst_md, bwd_w_pd_.diff_dst_desc(), eng);
    bwd_w_diff_wei_ = Staged(wei_md, bwd_w_pd_.diff_weights_desc(), eng);
    if (bias_) bwd_w_diff_bias_ = Staged(bias_md, bwd_w_pd_.diff_bias_desc(), eng);

    scratch_.reserve(fwd_pd_);
    scratch_.reserve(bwd_d_pd_);
    scratch_.reserve(bwd_w_pd_);
    fwd_scratch_ = scratch_.memory_for(fwd_pd_, eng);
    bwd_d_scratch_ = scratch_.memory_for(bwd_d_pd_, eng);
    bwd_w_scratch_ = scratch_.memory_for(bwd_w_pd_, eng);
  }

  void forward(Context& ctx) override {
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    Tensor& y = ctx.output("y");
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, fwd_src_.in(ctx.input("x"), eng, s)},
                                               {DNNL_ARG_WEIGHTS, fwd_wei_.in(ctx.param("weight"), eng, s)},
                                               {DNNL_ARG_DST, fwd_dst_.out(y, eng)},
                                               {DNNL_ARG_SCRATCHPAD, fwd_scratch_}};
    if (bias_) args[DNNL_ARG_BIAS] = ctx.param("bias").dnnl_memory(eng);
    fwd_.execute(s, args);
    fwd_dst_.finish(y, eng, s);
    s.wait();
  }

  void backward(Context& ctx) override {
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    const Tensor& dy = ctx.grad_output("y");

    if (ctx.wants_grad("x")) {
      Tensor& dx = ctx.grad_input("x");
      bwd_d_.execute(s, {{DNNL_ARG_DIFF_DST, bwd_d_diff_dst_.in(dy, eng, s)},
                         {DNNL_ARG_WEIGHTS, bwd_d_wei_.in(ctx.param("weight"), eng, s)},
                         {DNNL_ARG_DIFF_SRC, bwd_d_diff_src_.out(dx, eng)},
                         {DNNL_ARG_SCRATCHPAD, bwd_d_scratch_}});
      bwd_d_diff_src_.finish(dx, eng, s);
    }

    Tensor& dw = ctx.param_grad("weight");
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, bwd_w_src_.in(ctx.input("x"), eng, s)},
                                               {DNNL_ARG_DIFF_DST, bwd_w_diff_dst_.in(dy, eng, s)},
                                               {DNNL_ARG_DIFF_WEIGHTS, bwd_w_diff_wei_.out(dw, eng)},
                                               {DNNL_ARG_SCRATCHPAD, bwd_w_scratch_}};
    if (bias_) args[DNNL_ARG_DIFF_BIAS] = bwd_w_diff_bias_.out(ctx.param_grad("bias"), eng);
    bwd_w_.execute(s, args);
    bwd_w_diff_wei_.finish(dw, eng, s);
    if (bias_) bwd_w_diff_bias_.finish(ctx.param_grad("bias"), eng, s);
    s.wait();
  }

 private:
  bool bias_ = true;
  dnnl::inner_product_forward::primitive_desc fwd_pd_;
  dnnl::inner_product_forward fwd_;
  Staged fwd_src_, fwd_wei_, fwd_dst_;
  dnnl::inner_product_backward_data::primitive_desc bwd_d_pd_;
  dnnl::inner_product_backward_data bwd_d_;
  Staged bwd_d_diff_src_, bwd_d_wei_, bwd_d_diff_dst_;
  dnnl::inner_product_backward_weights::primitive_desc bwd_w_pd_;
  dnnl::inner_product_backward_weights bwd_w_;
  Staged bwd_w_src_, bwd_w_diff_dst_, bwd_w_diff_wei_, bwd_w_diff_bias_;
  dnnl_util::Scratchpad scratch_;
  dnnl::memory fwd_scratch_, bwd_d_scratch_, bwd_w_scratch_;
};

NOISEFLOW_REGISTER_NODE(Linear);

}  // namespace
}  // namespace noiseflow::nodes
