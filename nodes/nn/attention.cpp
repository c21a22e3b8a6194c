// nodes/nn/attention.cpp — self-attention over the H*W positions of an image
// batch, as in the DDPM / improved-diffusion UNet's AttentionBlock:
//
//   x ──► GroupNorm ──► Conv1x1(C, 3C) ──► q, k, v (split into heads)
//   │                     a = softmax(q^T k / sqrt(C/heads)) over key positions
//   │                     h = v a^T
//   └──────────────────► + ◄── Conv1x1(C, C)(h) ──► y
//
// Internal layout: the node keeps its intermediates channel-major, [channels,
// N, P] with P = H*W, so that both 1x1 convolutions and their weight gradients
// are single 2-D matmuls (no per-image loop and no batch reduction), and every
// per-(image, head) attention matmul is a strided 4-D view [N, heads, ., .] of
// those buffers. The group norm is nn.group_norm's kernels (nodes/kernels/group_norm.hpp), reading x and
// writing the channel-major buffer directly, and adding the residual's gradient in its dx pass; the bias
// sums are plain loops.
#include <cmath>
#include <string>
#include <unordered_map>
#include <vector>

#include "nodes/kernels/dnnl_util.hpp"
#include "nodes/kernels/group_norm.hpp"
#include "nodes/nn/onnx_ops.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace dnnl_util = kernels::dnnl_util;
using runtime::onnx::Attribute;
using dims = dnnl::memory::dims;
using md = dnnl::memory::desc;
using tag = dnnl::memory::format_tag;
constexpr auto f32 = dnnl::memory::data_type::f32;

struct Attention final : Node {
  static Schema schema() {
    return Schema("nn.attention",
                  "Self-attention over H*W positions: y = x + proj(attn(qkv(GroupNorm(x)))) (DDPM AttentionBlock)")
        .input("x", "image batch [N, C, H, W]")
        .output("y", "same shape as x")
        .attr_int("heads", 1, 1, {}, "number of attention heads; must divide C")
        .attr_int("groups", 8, 1, {}, "GroupNorm groups; must divide C")
        .attr_float("eps", 1e-5, 0.0, 1.0, "GroupNorm epsilon")
        .attr_bool("zero_init", false, "start the output projection (proj.weight, proj.bias) at zero, as in DDPM")
        .differentiable({"x"})
        .heavy()
        .memory([](const graph::MemoryContext& m) {
          // The buffers plan() makes: 11 of [C, N*P] (6 with qkv at 3C), 3 of [N, heads, P, P]; the group
          // norm's statistics (2 of [N, groups]) and channel sums (2 of [N, C]) in double.
          if (!m.inputs[0] || m.inputs[0]->size() != 4) return graph::NodeMemory{};
          const auto& x = *m.inputs[0];
          const int64_t N = x[0], C = x[1], P = x[2] * x[3];
          const int64_t floats = 11 * C * N * P + 3 * N * m.attrs["heads"].get<int64_t>() * P * P;
          const int64_t doubles = 2 * N * m.attrs["groups"].get<int64_t>() + 2 * N * C;
          return graph::NodeMemory{0, floats * int64_t(sizeof(float)) + doubles * int64_t(sizeof(double))};
        })
        .shape([](graph::ShapeContext& c) {
          const auto& x = c.input_rank("x", 4);
          const int64_t C = x[1], heads = c.attr_int("heads"), groups = c.attr_int("groups");
          if (heads < 1 || C % heads != 0)
            c.fail("heads", "heads = " + std::to_string(heads) + " does not divide the " + std::to_string(C) +
                                " channels of x " + graph::shape_str(x));
          if (groups < 1 || C % groups != 0)
            c.fail("groups", "groups = " + std::to_string(groups) + " does not divide the " + std::to_string(C) +
                                 " channels of x " + graph::shape_str(x));
          c.set_output("y", x);
          c.param("norm.weight", {C}, graph::Init::ones());
          c.param("norm.bias", {C}, graph::Init::zeros());
          c.param("qkv.weight", {3 * C, C, 1, 1}, graph::Init::kaiming_uniform(C));
          c.param("qkv.bias", {3 * C}, graph::Init::uniform_fan_in(C));
          bool zero = c.attr_bool("zero_init");
          c.param("proj.weight", {C, C, 1, 1}, zero ? graph::Init::zeros() : graph::Init::kaiming_uniform(C));
          c.param("proj.bias", {C}, zero ? graph::Init::zeros() : graph::Init::uniform_fan_in(C));
        });
  }

  // Group norm (nodes/nn/onnx_ops.hpp) - Conv 1x1 to q, k, v - Reshape [N, 3, heads, D, HW] - Gather
  // - MatMul(q^T, k) * 1/sqrt(D) - Softmax - MatMul(v, a^T) - Reshape - Conv 1x1 - Add x.
  static void onnx(onnx::OpContext& c) {
    const graph::Shape& x = c.input_shape("x");
    const int64_t C = x[1], H = x[2], W = x[3], heads = c.attr_int("heads"), D = C / heads, P = H * W;
    const std::string in = c.input("x");
    const std::string n = c.temp("norm");
    onnx_ops::group_norm(c, in, x, c.attr_int("groups"), c.attr_float("eps"), c.param("norm.weight", {C, 1, 1}),
                         c.param("norm.bias", {C, 1, 1}), n, "norm");
    const std::vector<Attribute> one_by_one{Attribute::of_ints("kernel_shape", {1, 1})};
    const std::string qkv = c.temp("qkv");
    c.add("Conv", {n, c.param("qkv.weight"), c.param("qkv.bias")}, {qkv}, one_by_one, "qkv");
    // Channels [q | k | v], each split into heads of D channels: [N, 3, heads, D, P].
    const std::string split = c.add_temp("qkv_heads", "Reshape", {qkv, c.ints({0, 3, heads, D, P})});
    auto pick = [&](int64_t i, const std::string& what) {
      return c.add_temp(what, "Gather", {split, c.ints({i}, std::vector<int64_t>{})}, {Attribute::of_int("axis", 1)});
    };
    const std::string q = pick(0, "q"), k = pick(1, "k"), v = pick(2, "v");  // [N, heads, D, P]
    const std::vector<Attribute> swap_last{Attribute::of_ints("perm", {0, 1, 3, 2})};
    const std::string qt = c.add_temp("q_t", "Transpose", {q}, swap_last);
    const std::string s = c.add_temp("scores", "MatMul", {qt, k});  // [N, heads, P(q), P(k)]
    const std::string ss = c.add_temp("scores_scaled", "Mul", {s, c.floats({float(1.0 / std::sqrt(double(D)))}, {})});
    const std::string a = c.add_temp("weights", "Softmax", {ss}, {Attribute::of_int("axis", -1)});
    const std::string at = c.add_temp("weights_t", "Transpose", {a}, swap_last);
    const std::string h = c.add_temp("mixed", "MatMul", {v, at});  // [N, heads, D, P(q)]
    const std::string hi = c.add_temp("mixed_image", "Reshape", {h, c.ints({0, C, H, W})});
    const std::string p = c.temp("proj");
    c.add("Conv", {hi, c.param("proj.weight"), c.param("proj.bias")}, {p}, one_by_one, "proj");
    c.add("Add", {in, p}, {c.output()}, {}, "residual");
  }

  void plan(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    N_ = x.dim(0), C_ = x.dim(1), P_ = x.dim(2) * x.dim(3), NP_ = N_ * P_;
    heads_ = ctx.attr_int("heads"), D_ = C_ / heads_;
    gn_ = kernels::group_norm::GroupNorm({N_, C_, P_, ctx.attr_int("groups"), ctx.attr_float("eps")});
    const float scale = float(1.0 / std::sqrt(double(D_)));
    const int64_t C = C_, N = N_, P = P_, NP = NP_, h = heads_, D = D_;

    // Node-owned buffers: forward values kept for backward, and backward scratch.
    nrm_ = Tensor({C, NP});
    qkv_ = Tensor({3 * C, NP}), att_ = Tensor({N, h, P, P}), hb_ = Tensor({C, NP});
    dyt_ = Tensor({C, NP}), dh_ = Tensor({C, NP}), datt_ = Tensor({N, h, P, P}), dsc_ = Tensor({N, h, P, P});
    dqkv_ = Tensor({3 * C, NP}), dnrm_ = Tensor({C, NP});

    // Views of channel-major [., N, P] buffers as [N, heads, D, P] and its transpose.
    const md head({N, h, D, P}, f32, dims{P, D * NP, NP, 1});
    const md head_t({N, h, P, D}, f32, dims{P, D * NP, 1, NP});
    const md att({N, h, P, P}, f32, tag::abcd);
    const md att_t({N, h, P, P}, f32, dims{h * P * P, P * P, 1, P});
    const md x_md({N, C, P}, f32, tag::abc);

    auto& e = ctx.engine();
    // Forward.
    mm_qkv_ = make_matmul(e, md({1, 3 * C, C}, f32, tag::abc), md({1, C, NP}, f32, tag::abc),
                          md({1, 3 * C, NP}, f32, tag::abc), 1.f, {md({1, 3 * C, 1}, f32, tag::abc)});
    mm_s_ = make_matmul(e, head_t, head, att, scale);
    auto sm_d = dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::softmax_accurate,
                                               att, att, 3);
    sm_fwd_pd_ = dnnl::softmax_v2_forward::primitive_desc(sm_d, dnnl_util::user_scratchpad_attr(), e);
    sm_fwd_ = dnnl::softmax_v2_forward(sm_fwd_pd_);
    scratchpad_.reserve(sm_fwd_pd_);
    mm_h_ = make_matmul(e, head, att_t, head);
    mm_proj_ = make_matmul(e, md({1, C, C}, f32, tag::abc), md({N, C, P}, f32, dims{P, NP, 1}), x_md, 1.f,
                           {x_md, md({1, C, 1}, f32, tag::abc)});
    // Backward.
    mm_dwp_ = make_matmul(e, md({C, NP}, f32, tag::ab), md({NP, C}, f32, tag::ba), md({C, C}, f32, tag::ab));
    mm_dh_ = make_matmul(e, md({C, C}, f32, tag::ba), md({C, NP}, f32, tag::ab), md({C, NP}, f32, tag::ab));
    mm_da_ = make_matmul(e, head_t, head, att);
    mm_dv_ = make_matmul(e, head, att, head);
    auto smb_d = dnnl::softmax_v2_backward::desc(dnnl::algorithm::softmax_accurate, att, att, att, 3);
    sm_bwd_pd_ = dnnl::softmax_v2_backward::primitive_desc(smb_d, dnnl_util::user_scratchpad_attr(), e, sm_fwd_pd_);
    sm_bwd_ = dnnl::softmax_v2_backward(sm_bwd_pd_);
    scratchpad_.reserve(sm_bwd_pd_);
    mm_dq_ = make_matmul(e, head, att_t, head, scale);
    mm_dk_ = make_matmul(e, head, att, head, scale);
    mm_dwqkv_ = make_matmul(e, md({3 * C, NP}, f32, tag::ab), md({NP, C}, f32, tag::ba), md({3 * C, C}, f32, tag::ab));
    mm_dnrm_ = make_matmul(e, md({C, 3 * C}, f32, tag::ba), md({3 * C, NP}, f32, tag::ab), md({C, NP}, f32, tag::ab));
    att_md_ = att;
  }

  void forward(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    // The normalised x, channel-major: [C, NP].
    gn_.forward(x.data(), ctx.param("norm.weight").data(), ctx.param("norm.bias").data(), nrm_.data(),
                kernels::group_norm::channel_major(gn_.geometry()));

    const int64_t C = C_, NP = NP_;
    float* q = qkv_.data();
    float* k = q + C * NP;
    float* v = k + C * NP;
    // qkv = W n + b: [3C, NP].
    run(ctx, mm_qkv_, ctx.param("qkv.weight").data(), nrm_.data(), qkv_.data(), {ctx.param("qkv.bias").data()});
    // Scores, softmax over keys (in place), weighted values.
    run(ctx, mm_s_, q, k, att_.data());
    sm_fwd_.execute(ctx.stream(), {{DNNL_ARG_SRC, mem(ctx, att_md_, att_.data())},
                                   {DNNL_ARG_DST, mem(ctx, att_md_, att_.data())},
                                   {DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(sm_fwd_pd_, ctx.engine())}});
    run(ctx, mm_h_, v, att_.data(), hb_.data());
    // y = x + Wp h + bp.
    run(ctx, mm_proj_, ctx.param("proj.weight").data(), hb_.data(), ctx.output("y").data(),
        {x.data(), ctx.param("proj.bias").data()});
    ctx.stream().wait();
  }

  void backward(Context& ctx) override {
    const int64_t C = C_, N = N_, P = P_, NP = NP_;
    const Tensor& dy = ctx.grad_output("y");

    // dy to channel-major; proj.bias gradient as row sums.
    {
      const float* src = dy.data();
      float* dst = dyt_.data();
      float* dbp = ctx.param_grad("proj.bias").data();
#pragma omp parallel for
      for (int64_t c = 0; c < C; ++c) {
        float s = 0.f;
        for (int64_t n = 0; n < N; ++n) {
          const float* a = src + (n * C + c) * P;
          float* b = dst + c * NP + n * P;
#pragma omp simd reduction(+ : s)
          for (int64_t p = 0; p < P; ++p) b[p] = a[p], s += a[p];
        }
        dbp[c] = s;
      }
    }
    const float* q = qkv_.data();
    const float* k = q + C * NP;
    const float* v = k + C * NP;
    float* dq = dqkv_.data();
    float* dk = dq + C * NP;
    float* dv = dk + C * NP;
    // Output projection: dWp = dy h^T, dh = Wp^T dy.
    run(ctx, mm_dwp_, dyt_.data(), hb_.data(), ctx.param_grad("proj.weight").data());
    run(ctx, mm_dh_, ctx.param("proj.weight").data(), dyt_.data(), dh_.data());
    // h = v a^T: da = dh^T v, dv = dh a.
    run(ctx, mm_da_, dh_.data(), v, datt_.data());
    run(ctx, mm_dv_, dh_.data(), att_.data(), dv);
    // Softmax, then s = scale q^T k: dq = scale k ds^T, dk = scale q ds.
    sm_bwd_.execute(ctx.stream(), {{DNNL_ARG_DST, mem(ctx, att_md_, att_.data())},
                                   {DNNL_ARG_DIFF_DST, mem(ctx, att_md_, datt_.data())},
                                   {DNNL_ARG_DIFF_SRC, mem(ctx, att_md_, dsc_.data())},
                                   {DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(sm_bwd_pd_, ctx.engine())}});
    run(ctx, mm_dq_, k, dsc_.data(), dq);
    run(ctx, mm_dk_, q, dsc_.data(), dk);
    // qkv projection: dW = dqkv n^T, dn = W^T dqkv.
    run(ctx, mm_dwqkv_, dqkv_.data(), nrm_.data(), ctx.param_grad("qkv.weight").data());
    run(ctx, mm_dnrm_, ctx.param("qkv.weight").data(), dqkv_.data(), dnrm_.data());
    ctx.stream().wait();
    row_sums(dqkv_.data(), 3 * C, NP, ctx.param_grad("qkv.bias").data());

    // Group norm from dnrm (channel-major): its parameter gradients, and dx = GroupNorm'(dnrm) + dy (the
    // residual) when dx is wanted.
    gn_.backward(ctx.input("x").data(), dnrm_.data(), kernels::group_norm::channel_major(gn_.geometry()),
                 ctx.param("norm.weight").data(), ctx.param("norm.bias").data(),
                 ctx.wants_grad("x") ? ctx.grad_input("x").data() : nullptr, dy.data());
    gn_.param_grads(ctx.param_grad("norm.weight").data(), ctx.param_grad("norm.bias").data());
  }

 private:
  /// A matmul primitive with the descriptors of its arguments (built once in plan()).
  /// Biases are binary-add post-ops, not the matmul bias argument: a bias along
  /// M (our per-output-channel bias) sends oneDNN 2.6 to its ref:any matmul,
  /// which took 0.5-1.5 s here; broadcast binary post-ops keep the jit kernels.
  struct Matmul {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
    md src, wei, dst;
    std::vector<md> adds;
  };

  Matmul make_matmul(const dnnl::engine& e, const md& src, const md& wei, const md& dst, float scale = 1.f,
                     std::vector<md> adds = {}) {
    dnnl::primitive_attr attr = dnnl_util::user_scratchpad_attr();
    if (scale != 1.f) attr.set_output_scales(0, {scale});
    dnnl::post_ops po;
    for (auto& a : adds) po.append_binary(dnnl::algorithm::binary_add, a);
    attr.set_post_ops(po);
    auto pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei, dst), attr, e);
    scratchpad_.reserve(pd);
    return {pd, dnnl::matmul(pd), src, wei, dst, std::move(adds)};
  }

  static dnnl::memory mem(Context& ctx, const md& d, float* p) { return dnnl::memory(d, ctx.engine(), p); }
  /// A memory oneDNN only reads (src, weights, post-op operands): dnnl::memory takes a void*.
  static dnnl::memory src_mem(Context& ctx, const md& d, const float* p) {
    return dnnl::memory(d, ctx.engine(), const_cast<float*>(p));
  }

  /// dst = scale * src @ wei + adds...
  void run(Context& ctx, Matmul& m, const float* src, const float* wei, float* dst,
           std::initializer_list<const float*> adds = {}) {
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src_mem(ctx, m.src, src)},
                                               {DNNL_ARG_WEIGHTS, src_mem(ctx, m.wei, wei)},
                                               {DNNL_ARG_DST, mem(ctx, m.dst, dst)},
                                               {DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(m.pd, ctx.engine())}};
    int i = 0;
    for (const float* a : adds) {
      args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1] = src_mem(ctx, m.adds.at(size_t(i)), a);
      ++i;
    }
    m.prim.execute(ctx.stream(), args);
  }

  static void row_sums(const float* a, int64_t rows, int64_t cols, float* out) {
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0.f;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < cols; ++j) s += a[r * cols + j];
      out[r] = s;
    }
  }

  int64_t N_ = 0, C_ = 0, P_ = 0, NP_ = 0, heads_ = 1, D_ = 0;
  kernels::group_norm::GroupNorm gn_;  // its statistics kept for backward
  // Forward values kept for backward (channel-major), and backward scratch.
  Tensor nrm_, qkv_, att_, hb_;
  Tensor dyt_, dh_, datt_, dsc_, dqkv_, dnrm_;
  md att_md_;
  Matmul mm_qkv_, mm_s_, mm_h_, mm_proj_;
  Matmul mm_dwp_, mm_dh_, mm_da_, mm_dv_, mm_dq_, mm_dk_, mm_dwqkv_, mm_dnrm_;
  dnnl::softmax_v2_forward::primitive_desc sm_fwd_pd_;
  dnnl::softmax_v2_forward sm_fwd_;
  dnnl::softmax_v2_backward::primitive_desc sm_bwd_pd_;
  dnnl::softmax_v2_backward sm_bwd_;
  dnnl_util::Scratchpad scratchpad_;  ///< user-mode, shared: the primitives run one after another
};

NOISEFLOW_REGISTER_NODE(Attention);

}  // namespace
}  // namespace noiseflow::nodes
