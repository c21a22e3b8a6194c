// nodes/nn/linear.cpp — fully connected layer (PyTorch nn.Linear), oneDNN inner product forward,
// backward_data and backward_weights (with bias) primitives built once at plan time and run by
// nodes/nn/weighted_layer.hpp.
#include "nodes/kernels/dnnl_util.hpp"
#include "nodes/nn/weighted_layer.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace dnnl_util = kernels::dnnl_util;
using runtime::onnx::Attribute;
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
        .backward_reads({"x"})
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input_rank("x", 2);
          const int64_t out = c.attr_int("out_features");
          c.set_output("y", {x[0], out});
          const bool zero = c.attr_bool("zero_init");
          c.param("weight", {out, x[1]}, zero ? graph::Init::zeros() : graph::Init::kaiming_uniform(x[1]));
          if (c.attr_bool("bias"))
            c.param("bias", {out}, zero ? graph::Init::zeros() : graph::Init::uniform_fan_in(x[1]));
        });
  }

  // Gemm with transB = 1.
  static void onnx(onnx::OpContext& c) {
    std::vector<std::string> ins{c.input("x"), c.param("weight")};
    if (c.attr_bool("bias")) ins.push_back(c.param("bias"));
    c.add("Gemm", ins, {c.output()}, {Attribute::of_int("transB", 1)});
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

    const dnnl::inner_product_forward::primitive_desc fwd_pd(
        dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_training, src_any, wei_any, bias_prim, dst_any),
        attr, eng);
    const dnnl::inner_product_backward_data::primitive_desc bwd_d_pd(
        dnnl::inner_product_backward_data::desc(src_any, wei_any, dst_any), attr, eng, fwd_pd);
    const dnnl::inner_product_backward_weights::primitive_desc bwd_w_pd(
        dnnl::inner_product_backward_weights::desc(src_any, wei_any, bias_prim, dst_any), attr, eng, fwd_pd);
    layer_.plan(eng, fwd_pd, bwd_d_pd, bwd_w_pd, {src_md, wei_md, dst_md, bias_md}, bias_);
  }

  void forward(Context& ctx) override { layer_.forward(ctx); }
  void backward(Context& ctx) override { layer_.backward(ctx); }

 private:
  bool bias_ = true;
  nn::WeightedLayer<dnnl::inner_product_forward, dnnl::inner_product_backward_data,
                           dnnl::inner_product_backward_weights>
      layer_;
};

NOISEFLOW_REGISTER_NODE(Linear);

}  // namespace
}  // namespace noiseflow::nodes
