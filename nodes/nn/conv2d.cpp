// nodes/nn/conv2d.cpp — 2-D convolution (PyTorch nn.Conv2d semantics), oneDNN forward,
// backward_data and backward_weights (with bias) primitives built once at plan time.
//
// The primitives choose their layouts (format_tag::any: nChw16c and blocked weights on AVX-512, about
// twice as fast as plain nchw); tensors are reordered from/to the plain tensors only where the chosen
// descs differ. The weights are reordered every tick (they change every optimizer step).
#include <unordered_map>

#include "nodes/nn/dnnl_util.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using dnnl_util::Staged;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

struct ConvGeometry {
  int64_t n, cin, h, w, cout, k, stride, pad, ho, wo;
};

ConvGeometry geometry(const Shape& x, const Json& attrs) {
  ConvGeometry g{};
  g.n = x[0], g.cin = x[1], g.h = x[2], g.w = x[3];
  g.cout = attrs.at("out_channels").get<int64_t>();
  g.k = attrs.at("kernel").get<int64_t>();
  g.stride = attrs.at("stride").get<int64_t>();
  g.pad = attrs.at("padding").get<int64_t>();
  if (g.pad < 0) g.pad = g.k / 2;
  g.ho = (g.h + 2 * g.pad - g.k) / g.stride + 1;
  g.wo = (g.w + 2 * g.pad - g.k) / g.stride + 1;
  return g;
}

struct Conv2d final : Node {
  static Schema schema() {
    return Schema("nn.conv2d", "2-D convolution y = W * x + b over NCHW images (PyTorch Conv2d, square kernel)")
        .input("x", "images [N, Cin, H, W]")
        .output("y", "[N, out_channels, Ho, Wo], Ho = (H + 2*padding - kernel) / stride + 1")
        .attr_int("out_channels", std::nullopt, 1, 1 << 16, "output channels")
        .attr_int("kernel", 3, 1, 31, "kernel height and width")
        .attr_int("stride", 1, 1, 16, "stride in both directions")
        .attr_int("padding", -1, -1, 31, "zero padding on every side; -1 means kernel / 2")
        .attr_bool("bias", true, "add a learned per-channel bias")
        .attr_bool("zero_init", false,
                   "start weight and bias at zero (else PyTorch's default U(+-1/sqrt(Cin*kernel^2)))")
        .differentiable({"x"})
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input_rank("x", 4);
          auto g = geometry(x, Json{{"out_channels", c.attr_int("out_channels")},
                                    {"kernel", c.attr_int("kernel")},
                                    {"stride", c.attr_int("stride")},
                                    {"padding", c.attr_int("padding")}});
          if (g.cout < 1) c.fail("out_channels", "must be at least 1, got " + std::to_string(g.cout));
          if (g.k < 1) c.fail("kernel", "must be at least 1, got " + std::to_string(g.k));
          if (g.stride < 1) c.fail("stride", "must be at least 1, got " + std::to_string(g.stride));
          if (g.pad >= g.k)
            c.fail("padding", "padding " + std::to_string(g.pad) + " must be smaller than the kernel " +
                                  std::to_string(g.k));
          if (g.h + 2 * g.pad < g.k || g.w + 2 * g.pad < g.k)
            c.fail("x", "input " + graph::shape_str(x) + " with padding " + std::to_string(g.pad) +
                            " is smaller than the kernel " + std::to_string(g.k));
          c.set_output("y", {g.n, g.cout, g.ho, g.wo});
          const int64_t fan_in = g.cin * g.k * g.k;
          const bool zero = c.attr_bool("zero_init");
          c.param("weight", {g.cout, g.cin, g.k, g.k},
                  zero ? graph::Init::zeros() : graph::Init::kaiming_uniform(fan_in));
          if (c.attr_bool("bias"))
            c.param("bias", {g.cout}, zero ? graph::Init::zeros() : graph::Init::uniform_fan_in(fan_in));
        });
  }

  void plan(Context& ctx) override {
    const auto& eng = ctx.engine();
    g_ = geometry(ctx.input("x").shape(), ctx.attrs());
    bias_ = ctx.attr_bool("bias");

    // Plain user layouts.
    const dnnl::memory::dims src_dims{g_.n, g_.cin, g_.h, g_.w}, wei_dims{g_.cout, g_.cin, g_.k, g_.k},
        dst_dims{g_.n, g_.cout, g_.ho, g_.wo}, bias_dims{g_.cout};
    const dnnl::memory::desc src_md(src_dims, dt::f32, tag::nchw), wei_md(wei_dims, dt::f32, tag::oihw),
        dst_md(dst_dims, dt::f32, tag::nchw), bias_md(bias_dims, dt::f32, tag::x);
    // Layouts left to the primitives.
    const dnnl::memory::desc src_any(src_dims, dt::f32, tag::any), wei_any(wei_dims, dt::f32, tag::any),
        dst_any(dst_dims, dt::f32, tag::any);
    const dnnl::memory::desc bias_prim = bias_ ? bias_md : dnnl::memory::desc();
    const dnnl::memory::dims strides{g_.stride, g_.stride}, pad{g_.pad, g_.pad};
    const auto attr = dnnl_util::user_scratchpad_attr();
    const auto alg = dnnl::algorithm::convolution_direct;

    // Forward.
    dnnl::convolution_forward::desc fwd_d(dnnl::prop_kind::forward_training, alg, src_any, wei_any, bias_prim,
                                          dst_any, strides, pad, pad);
    fwd_pd_ = dnnl::convolution_forward::primitive_desc(fwd_d, attr, eng);
    fwd_ = dnnl::convolution_forward(fwd_pd_);
    fwd_src_ = Staged(src_md, fwd_pd_.src_desc(), eng);
    fwd_wei_ = Staged(wei_md, fwd_pd_.weights_desc(), eng);
    fwd_dst_ = Staged(dst_md, fwd_pd_.dst_desc(), eng);

    // Backward data.
    dnnl::convolution_backward_data::desc bwd_d_d(alg, src_any, wei_any, dst_any, strides, pad, pad);
    bwd_d_pd_ = dnnl::convolution_backward_data::primitive_desc(bwd_d_d, attr, eng, fwd_pd_);
    bwd_d_ = dnnl::convolution_backward_data(bwd_d_pd_);
    bwd_d_diff_src_ = Staged(src_md, bwd_d_pd_.diff_src_desc(), eng);
    bwd_d_wei_ = Staged(wei_md, bwd_d_pd_.weights_desc(), eng);
    bwd_d_diff_dst_ = Staged(dst_md, bwd_d_pd_.diff_dst_desc(), eng);

    // Backward weights (and bias).
    dnnl::convolution_backward_weights::desc bwd_w_d(alg, src_any, wei_any, bias_prim, dst_any, strides, pad, pad);
    bwd_w_pd_ = dnnl::convolution_backward_weights::primitive_desc(bwd_w_d, attr, eng, fwd_pd_);
    bwd_w_ = dnnl::convolution_backward_weights(bwd_w_pd_);
    bwd_w_src_ = Staged(src_md, bwd_w_pd_.src_desc(), eng);
    bwd_w_diff_dst_ = Staged(dst_md, bwd_w_pd_.diff_dst_desc(), eng);
    bwd_w_diff_wei_ = Staged(wei_md, bwd_w_pd_.diff_weights_desc(), eng);
    if (bias_) bwd_w_diff_bias_ = Staged(bias_md, bwd_w_pd_.diff_bias_desc(), eng);
    same_diff_dst_ = bwd_d_pd_.diff_dst_desc() == bwd_w_pd_.diff_dst_desc();

    // One scratchpad for the three (they never run at the same time).
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

    dnnl::memory dy_d;  // dy as backward_data wants it; shared with backward_weights when the layouts agree
    if (ctx.wants_grad("x")) {
      Tensor& dx = ctx.grad_input("x");
      dy_d = bwd_d_diff_dst_.in(dy, eng, s);
      bwd_d_.execute(s, {{DNNL_ARG_DIFF_DST, dy_d},
                         {DNNL_ARG_WEIGHTS, bwd_d_wei_.in(ctx.param("weight"), eng, s)},
                         {DNNL_ARG_DIFF_SRC, bwd_d_diff_src_.out(dx, eng)},
                         {DNNL_ARG_SCRATCHPAD, bwd_d_scratch_}});
      bwd_d_diff_src_.finish(dx, eng, s);
    }

    Tensor& dw = ctx.param_grad("weight");
    const dnnl::memory dy_w = dy_d && same_diff_dst_ ? dy_d : bwd_w_diff_dst_.in(dy, eng, s);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, bwd_w_src_.in(ctx.input("x"), eng, s)},
                                               {DNNL_ARG_DIFF_DST, dy_w},
                                               {DNNL_ARG_DIFF_WEIGHTS, bwd_w_diff_wei_.out(dw, eng)},
                                               {DNNL_ARG_SCRATCHPAD, bwd_w_scratch_}};
    if (bias_) args[DNNL_ARG_DIFF_BIAS] = bwd_w_diff_bias_.out(ctx.param_grad("bias"), eng);
    bwd_w_.execute(s, args);
    bwd_w_diff_wei_.finish(dw, eng, s);
    if (bias_) bwd_w_diff_bias_.finish(ctx.param_grad("bias"), eng, s);
    s.wait();
  }

 private:
  ConvGeometry g_{};
  bool bias_ = true, same_diff_dst_ = false;
  dnnl::convolution_forward::primitive_desc fwd_pd_;
  dnnl::convolution_forward fwd_;
  Staged fwd_src_, fwd_wei_, fwd_dst_;
  dnnl::convolution_backward_data::primitive_desc bwd_d_pd_;
  dnnl::convolution_backward_data bwd_d_;
  Staged bwd_d_diff_src_, bwd_d_wei_, bwd_d_diff_dst_;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd_;
  dnnl::convolution_backward_weights bwd_w_;
  Staged bwd_w_src_, bwd_w_diff_dst_, bwd_w_diff_wei_, bwd_w_diff_bias_;
  dnnl_util::Scratchpad scratch_;
  dnnl::memory fwd_scratch_, bwd_d_scratch_, bwd_w_scratch_;
};

NOISEFLOW_REGISTER_NODE(Conv2d);

}  // namespace
}  // namespace noiseflow::nodes
