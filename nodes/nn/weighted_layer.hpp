// nodes/nn/weighted_layer.hpp — what the oneDNN-backed layers with a weight and an optional bias
// (conv2d, linear) share: the forward, backward_data and backward_weights primitives, the Staged
// tensors around them, one scratchpad for the three, and the forward() / backward() bodies.
//
// A layer node builds the three primitive_descs its own way (format_tag::any, user-mode scratchpad,
// backward descs hinted by the forward one) and hands them over with the stored layouts of its tensors;
// WeightedLayer does the rest. The weights are reordered every tick (they change every optimizer step).
#pragma once

#include <string>
#include <unordered_map>
#include <utility>

#include <oneapi/dnnl/dnnl.hpp>

#include "nodes/kernels/dnnl_util.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes::nn {

/// The names a layer node reads and writes in its Context.
struct LayerNames {
  std::string input = "x", output = "y", weight = "weight", bias = "bias";
};

/// The layouts of a layer's tensors as they are stored (plain or nChw16c); `bias` is only read when the layer has one.
struct TensorLayouts {
  dnnl::memory::desc src, weights, dst, bias;
};

/// y = op(x, weight) [+ bias] and its vector-Jacobian products, over the oneDNN primitives
/// Fwd, BwdData and BwdWeights (e.g. convolution_forward, convolution_backward_data,
/// convolution_backward_weights).
template <class Fwd, class BwdData, class BwdWeights>
class WeightedLayer {
 public:
  using FwdPd = typename Fwd::primitive_desc;
  using BwdDataPd = typename BwdData::primitive_desc;
  using BwdWeightsPd = typename BwdWeights::primitive_desc;
  using Staged = kernels::dnnl_util::Staged;
  using Scratchpad = kernels::dnnl_util::Scratchpad;

  explicit WeightedLayer(LayerNames names = {}) : names_(std::move(names)) {}

  /// At plan time: builds the primitives, the Staged tensors and the shared scratchpad. The descs must
  /// ask for a user-mode scratchpad (user_scratchpad_attr()); `bias` says whether the layer has one.
  void plan(const dnnl::engine& eng, const FwdPd& fwd_pd, const BwdDataPd& bwd_d_pd, const BwdWeightsPd& bwd_w_pd,
            const TensorLayouts& user, bool bias) {
    bias_ = bias;

    // Forward.
    fwd_pd_ = fwd_pd;
    fwd_ = Fwd(fwd_pd_);
    fwd_src_ = Staged(user.src, fwd_pd_.src_desc(), eng, 0);
    fwd_wei_ = Staged(user.weights, fwd_pd_.weights_desc(), eng, 1);
    fwd_dst_ = Staged(user.dst, fwd_pd_.dst_desc(), eng, 2);

    // Backward data.
    bwd_d_pd_ = bwd_d_pd;
    bwd_d_ = BwdData(bwd_d_pd_);
    bwd_d_diff_src_ = Staged(user.src, bwd_d_pd_.diff_src_desc(), eng, 3);
    bwd_d_wei_ = Staged(user.weights, bwd_d_pd_.weights_desc(), eng, 1);
    bwd_d_diff_dst_ = Staged(user.dst, bwd_d_pd_.diff_dst_desc(), eng, 2);

    // Backward weights (and bias).
    bwd_w_pd_ = bwd_w_pd;
    bwd_w_ = BwdWeights(bwd_w_pd_);
    bwd_w_src_ = Staged(user.src, bwd_w_pd_.src_desc(), eng, 0);
    bwd_w_diff_dst_ = Staged(user.dst, bwd_w_pd_.diff_dst_desc(), eng, 2);
    bwd_w_diff_wei_ = Staged(user.weights, bwd_w_pd_.diff_weights_desc(), eng, 4);
    if (bias_) bwd_w_diff_bias_ = Staged(user.bias, bwd_w_pd_.diff_bias_desc(), eng, 5);
    same_diff_dst_ = bwd_d_pd_.diff_dst_desc() == bwd_w_pd_.diff_dst_desc();

    // One scratchpad size for the three.
    scratch_.reserve(fwd_pd_);
    scratch_.reserve(bwd_d_pd_);
    scratch_.reserve(bwd_w_pd_);
  }

  void forward(runtime::Context& ctx) {
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    runtime::Tensor& y = ctx.output(names_.output);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, fwd_src_.in(ctx.input(names_.input), eng, s)},
                                               {DNNL_ARG_WEIGHTS, fwd_wei_.in(ctx.param(names_.weight), eng, s)},
                                               {DNNL_ARG_DST, fwd_dst_.out(y, eng)},
                                               {DNNL_ARG_SCRATCHPAD, scratch_.memory_for(fwd_pd_, eng)}};
    if (bias_) args[DNNL_ARG_BIAS] = ctx.param(names_.bias).dnnl_memory(eng);
    fwd_.execute(s, args);
    fwd_dst_.finish(y, eng, s);
    s.wait();
  }

  void backward(runtime::Context& ctx) {
    const auto& eng = ctx.engine();
    auto& s = ctx.stream();
    const runtime::Tensor& dy = ctx.grad_output(names_.output);

    dnnl::memory dy_d;  // dy as backward_data wants it; shared with backward_weights when the layouts agree
    if (ctx.wants_grad(names_.input)) {
      runtime::Tensor& dx = ctx.grad_input(names_.input);
      dy_d = bwd_d_diff_dst_.in(dy, eng, s);
      bwd_d_.execute(s, {{DNNL_ARG_DIFF_DST, dy_d},
                         {DNNL_ARG_WEIGHTS, bwd_d_wei_.in(ctx.param(names_.weight), eng, s)},
                         {DNNL_ARG_DIFF_SRC, bwd_d_diff_src_.out(dx, eng)},
                         {DNNL_ARG_SCRATCHPAD, scratch_.memory_for(bwd_d_pd_, eng)}});
      bwd_d_diff_src_.finish(dx, eng, s);
    }

    runtime::Tensor& dw = ctx.param_grad(names_.weight);
    const dnnl::memory dy_w = dy_d && same_diff_dst_ ? dy_d : bwd_w_diff_dst_.in(dy, eng, s);
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, bwd_w_src_.in(ctx.input(names_.input), eng, s)},
                                               {DNNL_ARG_DIFF_DST, dy_w},
                                               {DNNL_ARG_DIFF_WEIGHTS, bwd_w_diff_wei_.out(dw, eng)},
                                               {DNNL_ARG_SCRATCHPAD, scratch_.memory_for(bwd_w_pd_, eng)}};
    if (bias_) args[DNNL_ARG_DIFF_BIAS] = bwd_w_diff_bias_.out(ctx.param_grad(names_.bias), eng);
    bwd_w_.execute(s, args);
    bwd_w_diff_wei_.finish(dw, eng, s);
    if (bias_) bwd_w_diff_bias_.finish(ctx.param_grad(names_.bias), eng, s);
    s.wait();
  }

 private:
  LayerNames names_;
  bool bias_ = true, same_diff_dst_ = false;
  FwdPd fwd_pd_;
  Fwd fwd_;
  Staged fwd_src_, fwd_wei_, fwd_dst_;
  BwdDataPd bwd_d_pd_;
  BwdData bwd_d_;
  Staged bwd_d_diff_src_, bwd_d_wei_, bwd_d_diff_dst_;
  BwdWeightsPd bwd_w_pd_;
  BwdWeights bwd_w_;
  Staged bwd_w_src_, bwd_w_diff_dst_, bwd_w_diff_wei_, bwd_w_diff_bias_;
  Scratchpad scratch_;
};

}  // namespace noiseflow::nodes::nn
