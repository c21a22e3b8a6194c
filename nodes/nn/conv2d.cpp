// nodes/nn/conv2d.cpp — 2-D convolution (PyTorch nn.Conv2d semantics), oneDNN forward,
// backward_data and backward_weights (with bias) primitives built once at plan time.
//
// The primitives choose their layouts (format_tag::any: nChw16c and blocked weights on AVX-512, about
// twice as fast as plain nchw); tensors are reordered from/to their stored layouts only where the chosen
// descs differ. Running them is nodes/nn/weighted_layer.hpp's part.
//
// Algorithm: 3x3 stride-1 convolutions use oneDNN's Winograd F(4x4, 3x3) kernels when the CPU has them
// ("auto"): 2.25x fewer multiplications, measured 1.6-1.9x faster than the direct kernels at every
// unet-small shape in forward, backward-data and backward-weights (docs/PERFORMANCE.md), with float32
// rounding differences around 1e-6 relative. "direct" forces the direct kernels; the reference path
// (ExecutorOptions::reference) uses them too.
#include <algorithm>

#include "nodes/nn/dnnl_util.hpp"
#include "nodes/nn/weighted_layer.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
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

/// The forward, backward-data and backward-weights primitive_descs of a convolution, layouts left to
/// oneDNN (format_tag::any), user-mode scratchpads.
struct ConvPds {
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_d;
  dnnl::convolution_backward_weights::primitive_desc bwd_w;
};

ConvPds make_pds(const dnnl::engine& eng, const ConvGeometry& g, dnnl::algorithm alg, bool bias) {
  const dnnl::memory::desc src_any({g.n, g.cin, g.h, g.w}, dt::f32, tag::any),
      wei_any({g.cout, g.cin, g.k, g.k}, dt::f32, tag::any), dst_any({g.n, g.cout, g.ho, g.wo}, dt::f32, tag::any);
  const dnnl::memory::desc bias_prim = bias ? dnnl::memory::desc({g.cout}, dt::f32, tag::x) : dnnl::memory::desc();
  const auto attr = dnnl_util::user_scratchpad_attr();
  const dnnl::memory::dims strides{g.stride, g.stride}, pad{g.pad, g.pad};
  ConvPds p{dnnl::convolution_forward::primitive_desc(
                dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src_any, wei_any, bias_prim,
                                                dst_any, strides, pad, pad),
                attr, eng),
            {},
            {}};
  p.bwd_d = dnnl::convolution_backward_data::primitive_desc(
      dnnl::convolution_backward_data::desc(alg, src_any, wei_any, dst_any, strides, pad, pad), attr, eng, p.fwd);
  p.bwd_w = dnnl::convolution_backward_weights::primitive_desc(
      dnnl::convolution_backward_weights::desc(alg, src_any, wei_any, bias_prim, dst_any, strides, pad, pad), attr, eng,
      p.fwd);
  return p;
}

/// Per-call working memory on the thread's shared buffers: the largest of the three scratchpads, and the
/// weights and their gradient reordered into the primitives' layouts.
graph::NodeMemory conv_memory(const graph::MemoryContext& m) {
  if (!m.inputs[0]) return {};
  const ConvGeometry g = geometry(*m.inputs[0], m.attrs);
  const bool wino = g.k == 3 && g.stride == 1 && g.pad == 1 && !m.reference && m.attrs["algorithm"] != "direct";
  const auto& eng = Engine::get().engine;
  for (auto alg : {dnnl::algorithm::convolution_winograd, dnnl::algorithm::convolution_direct}) {
    if (alg == dnnl::algorithm::convolution_winograd && !wino) continue;
    try {
      const ConvPds p = make_pds(eng, g, alg, m.attrs["bias"].get<bool>());
      const size_t scratch = std::max({p.fwd.scratchpad_desc().get_size(), p.bwd_d.scratchpad_desc().get_size(),
                                       p.bwd_w.scratchpad_desc().get_size()});
      return {0, 0, int64_t(scratch + p.fwd.weights_desc().get_size() + p.bwd_w.diff_weights_desc().get_size())};
    } catch (const dnnl::error&) {
    }
  }
  return {};
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
        .attr_string("algorithm", "auto", {"auto", "direct", "winograd"},
                     "auto: Winograd for 3x3 stride-1 kernels when the CPU supports it, else direct")
        .attr_bool("zero_init", false,
                   "start weight and bias at zero (else PyTorch's default U(+-1/sqrt(Cin*kernel^2)))")
        .differentiable({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::any)
        .memory(conv_memory)
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input_rank("x", 4);
          auto g = geometry(x, Json{{"out_channels", c.attr_int("out_channels")},
                                    {"kernel", c.attr_int("kernel")},
                                    {"stride", c.attr_int("stride")},
                                    {"padding", c.attr_int("padding")}});
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
    g_ = geometry(ctx.input("x").shape(), ctx.attrs());
    bias_ = ctx.attr_bool("bias");

    // The tensors' own layouts (x and y may be nChw16c: the executor keeps them blocked between
    // convolutions; gradients share their values' layouts).
    const dnnl::memory::dims wei_dims{g_.cout, g_.cin, g_.k, g_.k}, bias_dims{g_.cout};
    const dnnl::memory::desc src_md = ctx.input("x").desc(), wei_md(wei_dims, dt::f32, tag::oihw),
                             dst_md = ctx.output("y").desc(), bias_md(bias_dims, dt::f32, tag::x);
    const std::string choice = ctx.attr_string("algorithm");
    const bool wino_shape = g_.k == 3 && g_.stride == 1 && g_.pad == 1;
    if (choice == "winograd" && !wino_shape)
      ctx.fail("algorithm", "winograd needs kernel 3, stride 1, padding 1 (got kernel " + std::to_string(g_.k) +
                                ", stride " + std::to_string(g_.stride) + ", padding " + std::to_string(g_.pad) + ")");
    const bool try_wino = choice == "winograd" || (choice == "auto" && wino_shape && !ctx.reference());
    for (auto alg : {dnnl::algorithm::convolution_winograd, dnnl::algorithm::convolution_direct}) {
      if (alg == dnnl::algorithm::convolution_winograd && !try_wino) continue;
      try {
        plan_with(ctx, alg, {src_md, wei_md, dst_md, bias_md});
        return;
      } catch (const dnnl::error& e) {
        if (alg == dnnl::algorithm::convolution_winograd && choice == "winograd")
          ctx.fail("algorithm", std::string("this CPU has no Winograd convolution for this shape: ") + e.what());
      }
    }
  }

  void forward(Context& ctx) override { layer_.forward(ctx); }
  void backward(Context& ctx) override { layer_.backward(ctx); }

 private:
  void plan_with(Context& ctx, dnnl::algorithm alg, const dnnl_util::TensorLayouts& layouts) {
    const ConvPds pds = make_pds(ctx.engine(), g_, alg, bias_);
    layer_.plan(ctx.engine(), pds.fwd, pds.bwd_d, pds.bwd_w, layouts, bias_);
  }

  ConvGeometry g_{};
  bool bias_ = true;
  dnnl_util::WeightedLayer<dnnl::convolution_forward, dnnl::convolution_backward_data,
                           dnnl::convolution_backward_weights>
      layer_;
};

NOISEFLOW_REGISTER_NODE(Conv2d);

}  // namespace
}  // namespace noiseflow::nodes
