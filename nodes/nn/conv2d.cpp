// nodes/nn/conv2d.cpp — 2-D convolution (PyTorch nn.Conv2d semantics), oneDNN forward,
// backward_data and backward_weights (with bias) primitives built once at plan time.
//
// The primitives choose their layouts (format_tag::any: nChw16c and blocked weights on AVX-512, about
// twice as fast as plain nchw); tensors are reordered from/to their stored layouts only where the chosen
// descs differ. Running them is nodes/nn/weighted_layer.hpp's part.
//
// Algorithm: 3x3 stride-1 convolutions use oneDNN's Winograd F(4x4, 3x3) kernels when the CPU has them
// (AVX-512), else noiseflow's own (nodes/kernels/winograd.hpp: AVX2 and every other CPU, channel counts that are
// multiples of 16): 4x fewer multiplications in the tile products, measured faster than the direct kernels at
// every unet-small shape in forward, backward-data and backward-weights (docs/PERFORMANCE.md), with float32
// rounding differences around 1e-6 relative. "direct" forces the direct kernels; the reference path
// (ExecutorOptions::reference) uses them too. NOISEFLOW_WINOGRAD=onednn|noiseflow|off changes what "auto"
// picks, for benchmarks.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "nodes/kernels/dnnl_util.hpp"
#include "nodes/kernels/winograd.hpp"
#include "nodes/nn/weighted_layer.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace dnnl_util = kernels::dnnl_util;
namespace winograd = kernels::winograd;
using runtime::onnx::Attribute;
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

enum class Kernel { direct, onednn_winograd, own_winograd };

bool winograd_shape(const ConvGeometry& g) { return g.k == 3 && g.stride == 1 && g.pad == 1; }

/// What `algorithm` (auto | direct | winograd | winograd_onednn | winograd_noiseflow) picks for the layer,
/// nullopt when the requested kind does not exist for it (the caller reports why).
std::optional<Kernel> choose(const dnnl::engine& eng, const ConvGeometry& g, const std::string& choice, bool bias,
                             bool reference) {
  if (choice == "direct" || (choice == "auto" && reference)) return Kernel::direct;
  const bool shape = winograd_shape(g);
  const bool own = shape && winograd::supports(g.cin, g.cout);
  const auto onednn = [&] {
    if (!shape) return false;
    try {
      make_pds(eng, g, dnnl::algorithm::convolution_winograd, bias);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  };
  if (choice == "winograd_noiseflow") return own ? std::optional(Kernel::own_winograd) : std::nullopt;
  if (choice == "winograd_onednn") return onednn() ? std::optional(Kernel::onednn_winograd) : std::nullopt;
  if (choice == "winograd") {
    if (onednn()) return Kernel::onednn_winograd;
    return own ? std::optional(Kernel::own_winograd) : std::nullopt;
  }
  // auto (NOISEFLOW_WINOGRAD=onednn|noiseflow|off narrows it for benchmarks)
  const char* env = std::getenv("NOISEFLOW_WINOGRAD");
  const std::string pref = env ? env : "";
  if (pref == "off") return Kernel::direct;
  if (pref != "noiseflow" && onednn()) return Kernel::onednn_winograd;
  if (pref != "onednn" && own) return Kernel::own_winograd;
  return Kernel::direct;
}

/// Per-call working memory on the thread's shared buffers: the largest of the three scratchpads, and the
/// weights and their gradient reordered into the primitives' layouts (oneDNN); the transformed weights and
/// every thread's tile buffers, and the tensors staged into nChw16c (noiseflow's Winograd).
graph::NodeMemory conv_memory(const graph::MemoryContext& m) {
  if (!m.inputs[0]) return {};
  const ConvGeometry g = geometry(*m.inputs[0], m.attrs);
  const auto& eng = Engine::get().engine;
  const bool bias = m.attrs["bias"].get<bool>();
  const auto kernel = choose(eng, g, m.attrs["algorithm"].get<std::string>(), bias, m.reference);
  if (!kernel) return {};
  if (*kernel == Kernel::own_winograd) {
    const winograd::Conv3x3 c({g.n, g.cin, g.cout, g.h, g.w}, kernels::Isa::generic);
    return {0, 0, int64_t(c.shared_bytes() + c.thread_bytes() * size_t(std::max(1, omp_get_max_threads())))};
  }
  try {
    const ConvPds p = make_pds(eng, g,
                               *kernel == Kernel::onednn_winograd ? dnnl::algorithm::convolution_winograd
                                                                  : dnnl::algorithm::convolution_direct,
                               bias);
    const size_t scratch = std::max({p.fwd.scratchpad_desc().get_size(), p.bwd_d.scratchpad_desc().get_size(),
                                     p.bwd_w.scratchpad_desc().get_size()});
    return {0, 0, int64_t(scratch + p.fwd.weights_desc().get_size() + p.bwd_w.diff_weights_desc().get_size())};
  } catch (const dnnl::error&) {
  }
  return {};
}

struct Conv2d final : Node {
  static Schema schema() {
    return Schema("nn.conv2d", "2-D convolution y = W * x + b over NCHW images (PyTorch Conv2d, square kernel)")
        .input("x", "images [N, Cin, H, W]")
        .optional_input("add", "[N, out_channels, Ho, Wo] added to y (a residual), in the convolution's output pass")
        .optional_input("channel_add",
                        "[N, out_channels] added to every pixel of each image's channels (a time-embedding "
                        "projection), in the convolution's output pass")
        .output("y", "[N, out_channels, Ho, Wo], Ho = (H + 2*padding - kernel) / stride + 1; + add + channel_add")
        .attr_int("out_channels", std::nullopt, 1, 1 << 16, "output channels")
        .attr_int("kernel", 3, 1, 31, "kernel height and width")
        .attr_int("stride", 1, 1, 16, "stride in both directions")
        .attr_int("padding", -1, -1, 31, "zero padding on every side; -1 means kernel / 2")
        .attr_bool("bias", true, "add a learned per-channel bias")
        .attr_string("algorithm", "auto", {"auto", "direct", "winograd", "winograd_onednn", "winograd_noiseflow"},
                     "auto: Winograd F(4x4,3x3) for 3x3 stride-1 kernels (oneDNN's on AVX-512, else noiseflow's "
                     "when both channel counts are multiples of 16), else direct; winograd: either Winograd or "
                     "an error; winograd_onednn / winograd_noiseflow: that one or an error")
        .attr_bool("zero_init", false,
                   "start weight and bias at zero (else PyTorch's default U(+-1/sqrt(Cin*kernel^2)))")
        .differentiable({"x", "add", "channel_add"})
        .backward_reads({"x"})
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
          const Shape y{g.n, g.cout, g.ho, g.wo};
          if (c.has_input("add") && c.input("add") != y)
            c.fail("add", "add is " + graph::shape_str(c.input("add")) + " but the output is " + graph::shape_str(y));
          if (c.has_input("channel_add") && c.input("channel_add") != Shape{g.n, g.cout})
            c.fail("channel_add", "channel_add is " + graph::shape_str(c.input("channel_add")) + ", expected " +
                                      graph::shape_str(Shape{g.n, g.cout}) + " (images, output channels)");
          c.set_output("y", y);
          const int64_t fan_in = g.cin * g.k * g.k;
          const bool zero = c.attr_bool("zero_init");
          c.param("weight", {g.cout, g.cin, g.k, g.k},
                  zero ? graph::Init::zeros() : graph::Init::kaiming_uniform(fan_in));
          if (c.attr_bool("bias"))
            c.param("bias", {g.cout}, zero ? graph::Init::zeros() : graph::Init::uniform_fan_in(fan_in));
        });
  }

  // Conv (kernel, stride, padding; bias as the third input when present), then Add of channel_add Unsqueezed
  // to [N, C, 1, 1] and Add of add, where connected.
  static void onnx(onnx::OpContext& c) {
    const int64_t k = c.attr_int("kernel"), stride = c.attr_int("stride");
    int64_t pad = c.attr_int("padding");
    if (pad < 0) pad = k / 2;
    std::vector<std::string> ins{c.input("x"), c.param("weight")};
    if (c.attr_bool("bias")) ins.push_back(c.param("bias"));
    const std::vector<Attribute> attrs{Attribute::of_ints("kernel_shape", {k, k}),
                                       Attribute::of_ints("strides", {stride, stride}),
                                       Attribute::of_ints("pads", {pad, pad, pad, pad}),
                                       Attribute::of_ints("dilations", {1, 1}), Attribute::of_int("group", 1)};
    const bool add = c.has_input("add"), chan = c.has_input("channel_add");
    if (!add && !chan) return c.add("Conv", ins, {c.output()}, attrs);
    // The fused additions as their own Add nodes: + channel_add[N, C, 1, 1], + add.
    std::string y = c.add_temp("conv", "Conv", ins, attrs);
    if (chan) {
      const std::string per_pixel =
          c.add_temp("channel_add_nc11", "Unsqueeze", {c.input("channel_add"), c.ints({2, 3})});
      if (!add) return c.add("Add", {y, per_pixel}, {c.output()}, {}, "channel_add");
      y = c.add_temp("channel_add", "Add", {y, per_pixel});
    }
    c.add("Add", {y, c.input("add")}, {c.output()}, {}, "add");
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
    const auto kernel = choose(ctx.engine(), g_, choice, bias_, ctx.reference());
    if (!kernel) {
      if (!winograd_shape(g_))
        ctx.fail("algorithm", choice + " needs kernel 3, stride 1, padding 1 (got kernel " + std::to_string(g_.k) +
                                  ", stride " + std::to_string(g_.stride) + ", padding " + std::to_string(g_.pad) +
                                  ")");
      if (choice == "winograd_onednn")
        ctx.fail("algorithm", "this CPU has no oneDNN Winograd convolution (oneDNN 2.6 has them for AVX-512 only)");
      ctx.fail("algorithm", choice + " needs input and output channels that are multiples of 16 (got " +
                                std::to_string(g_.cin) + " and " + std::to_string(g_.cout) + ")");
    }
    kernel_ = *kernel;
    has_add_ = ctx.has_input("add");
    has_chan_ = ctx.has_input("channel_add");
    if (kernel_ == Kernel::own_winograd) {
      wino_ = winograd::Conv3x3({g_.n, g_.cin, g_.cout, g_.h, g_.w}, kernels::current_isa());
      const auto blocked = [](const dnnl::memory::desc& md) {
        return dnnl::memory::desc(md.dims(), dt::f32, tag::nChw16c);
      };
      const auto& eng = ctx.engine();
      w_src_ = dnnl_util::Staged(src_md, blocked(src_md), eng, 0);
      w_dst_ = dnnl_util::Staged(dst_md, blocked(dst_md), eng, 2);
      w_dsrc_ = dnnl_util::Staged(src_md, blocked(src_md), eng, 3);
      w_ddst_ = dnnl_util::Staged(dst_md, blocked(dst_md), eng, 4);
      if (has_add_) add_ = dnnl_util::Staged(ctx.input("add").desc(), blocked(dst_md), eng, 1);
      return;
    }
    // oneDNN's kernels: the additions are a pass of their own after the primitive, add in y's layout.
    if (has_add_) add_ = dnnl_util::Staged(ctx.input("add").desc(), dst_md, ctx.engine(), 1);
    plan_with(ctx,
              kernel_ == Kernel::onednn_winograd ? dnnl::algorithm::convolution_winograd
                                                 : dnnl::algorithm::convolution_direct,
              {src_md, wei_md, dst_md, bias_md});
  }

  void forward(Context& ctx) override {
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    Tensor& y = ctx.output("y");
    const float* chan = has_chan_ ? ctx.input("channel_add").data() : nullptr;
    if (kernel_ != Kernel::own_winograd) {
      layer_.forward(ctx);
      const float* add = nullptr;
      if (has_add_) {
        const dnnl::memory a = add_.in(ctx.input("add"), eng, s);
        s.wait();
        add = static_cast<const float*>(a.get_data_handle());
      }
      if (add || chan) add_into(y, chan, add);
      return;
    }
    const dnnl::memory x = w_src_.in(ctx.input("x"), eng, s);
    const float* add = nullptr;
    if (has_add_) add = static_cast<const float*>(add_.in(ctx.input("add"), eng, s).get_data_handle());
    s.wait();
    const dnnl::memory ym = w_dst_.out(y, eng);
    wino_.forward(static_cast<const float*>(x.get_data_handle()), ctx.param("weight").data(),
                  bias_ ? ctx.param("bias").data() : nullptr, static_cast<float*>(ym.get_data_handle()), chan, add);
    w_dst_.finish(y, eng, s);
    s.wait();
  }

  void backward(Context& ctx) override {
    // The additions' gradients: dy itself, and dy summed over each image's pixels.
    if (has_add_ && ctx.wants_grad("add")) ctx.grad_input("add").assign(ctx.grad_output("y"));
    if (has_chan_ && ctx.wants_grad("channel_add")) channel_sums(ctx.grad_output("y"), ctx.grad_input("channel_add"));
    if (kernel_ != Kernel::own_winograd) return layer_.backward(ctx);
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    const dnnl::memory dy = w_ddst_.in(ctx.grad_output("y"), eng, s);
    s.wait();
    const auto* dyp = static_cast<const float*>(dy.get_data_handle());
    if (ctx.wants_grad("x")) {
      Tensor& dx = ctx.grad_input("x");
      const dnnl::memory dxm = w_dsrc_.out(dx, eng);
      wino_.backward_data(dyp, ctx.param("weight").data(), static_cast<float*>(dxm.get_data_handle()));
      w_dsrc_.finish(dx, eng, s);
      s.wait();
    }
    const dnnl::memory x = w_src_.in(ctx.input("x"), eng, s);
    s.wait();
    wino_.backward_weights(static_cast<const float*>(x.get_data_handle()), dyp, ctx.param_grad("weight").data(),
                           bias_ ? ctx.param_grad("bias").data() : nullptr);
  }

 private:
  void plan_with(Context& ctx, dnnl::algorithm alg, const nn::TensorLayouts& layouts) {
    const ConvPds pds = make_pds(ctx.engine(), g_, alg, bias_);
    layer_.plan(ctx.engine(), pds.fwd, pds.bwd_d, pds.bwd_w, layouts, bias_);
  }

  /// y += chan (per image and channel) + add (in y's layout), one pass (the oneDNN kernels' path).
  void add_into(Tensor& y, const float* chan, const float* add) const {
    const int64_t n = g_.n, c = g_.cout, hw = g_.ho * g_.wo, lanes = y.blocked() ? 16 : 1, blocks = c / lanes;
    float* py = y.data();
    // [n][c / lanes][hw][lanes]: one (image, channel block) per iteration, its lanes innermost.
#pragma omp parallel for
    for (int64_t nb = 0; nb < n * blocks; ++nb) {
      const int64_t img = nb / blocks, c0 = nb % blocks * lanes;
      float v[16] = {};
      if (chan)
        for (int64_t l = 0; l < lanes; ++l) v[l] = chan[img * c + c0 + l];
      float* row = py + nb * hw * lanes;
      const float* arow = add ? add + nb * hw * lanes : nullptr;
      for (int64_t p = 0; p < hw; ++p)
#pragma omp simd
        for (int64_t l = 0; l < lanes; ++l) row[p * lanes + l] += v[l] + (arow ? arow[p * lanes + l] : 0.f);
    }
  }

  /// g[n][c] = sum over the pixels of dy[n][c].
  void channel_sums(const Tensor& dy, Tensor& g) const {
    const int64_t n = g_.n, c = g_.cout, hw = g_.ho * g_.wo, lanes = dy.blocked() ? 16 : 1, blocks = c / lanes;
    const float* p = dy.data();
#pragma omp parallel for
    for (int64_t nb = 0; nb < n * blocks; ++nb) {
      const int64_t img = nb / blocks, c0 = nb % blocks * lanes;
      const float* row = p + nb * hw * lanes;
      double sum[16] = {};
      for (int64_t q = 0; q < hw; ++q)
#pragma omp simd
        for (int64_t l = 0; l < lanes; ++l) sum[l] += row[q * lanes + l];
      for (int64_t l = 0; l < lanes; ++l) g.data()[img * c + c0 + l] = float(sum[l]);
    }
  }

  ConvGeometry g_{};
  bool bias_ = true, has_add_ = false, has_chan_ = false;
  Kernel kernel_ = Kernel::direct;
  winograd::Conv3x3 wino_;
  dnnl_util::Staged w_src_, w_dst_, w_dsrc_, w_ddst_;  // noiseflow's Winograd: the tensors in nChw16c
  dnnl_util::Staged add_;  // the residual in the layout the output pass reads
  nn::WeightedLayer<dnnl::convolution_forward, dnnl::convolution_backward_data,
                           dnnl::convolution_backward_weights>
      layer_;
};

NOISEFLOW_REGISTER_NODE(Conv2d);

}  // namespace
}  // namespace noiseflow::nodes
