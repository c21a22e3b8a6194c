// nodes/nn/pool2d.cpp — 2-D max or average pooling (PyTorch MaxPool2d / AvgPool2d with count_include_pad
// false), oneDNN pooling forward and backward on x's physical layout. Max pooling keeps the workspace
// (argmax positions) its forward writes for its backward.
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using runtime::onnx::Attribute;

struct PoolGeometry {
  int64_t k, stride, pad, ho, wo;
};

PoolGeometry pool_geometry(const Shape& x, const Json& attrs) {
  PoolGeometry g{};
  g.k = attrs.at("kernel").get<int64_t>();
  g.stride = attrs.at("stride").get<int64_t>();
  if (g.stride <= 0) g.stride = g.k;
  g.pad = attrs.at("padding").get<int64_t>();
  g.ho = (x[2] + 2 * g.pad - g.k) / g.stride + 1;
  g.wo = (x[3] + 2 * g.pad - g.k) / g.stride + 1;
  return g;
}

struct Pool2d final : Node {
  static Schema schema() {
    return Schema("nn.pool2d", "2-D max or average pooling over square windows (PyTorch MaxPool2d / AvgPool2d)")
        .input("x", "images [N, C, H, W]")
        .output("y", "[N, C, Ho, Wo], Ho = (H + 2*padding - kernel) / stride + 1")
        .attr_string("mode", "max", {"max", "avg"}, "max: the largest value of each window; avg: the mean of its "
                                                  "values inside the image (padding not counted)")
        .attr_int("kernel", 2, 1, 31, "window height and width")
        .attr_int("stride", 0, 0, 31, "step between windows; 0: the kernel size")
        .attr_int("padding", 0, 0, 15, "padding on every side (must be below the kernel)")
        .differentiable({"x"})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input_rank("x", 4);
          const PoolGeometry g = pool_geometry(
              x, Json{{"kernel", c.attr_int("kernel")}, {"stride", c.attr_int("stride")}, {"padding", c.attr_int("padding")}});
          if (g.pad >= g.k)
            c.fail("padding", "padding " + std::to_string(g.pad) + " must be smaller than the kernel " + std::to_string(g.k));
          if (x[2] + 2 * g.pad < g.k || x[3] + 2 * g.pad < g.k)
            c.fail("x", "input " + graph::shape_str(x) + " with padding " + std::to_string(g.pad) +
                            " is smaller than the kernel " + std::to_string(g.k));
          c.set_output("y", {x[0], x[1], g.ho, g.wo});
        });
  }

  // MaxPool, or AveragePool without the padding counted.
  static void onnx(onnx::OpContext& c) {
    const int64_t k = c.attr_int("kernel"), pad = c.attr_int("padding");
    int64_t stride = c.attr_int("stride");
    if (stride <= 0) stride = k;
    std::vector<Attribute> attrs{Attribute::of_ints("kernel_shape", {k, k}),
                                 Attribute::of_ints("strides", {stride, stride}),
                                 Attribute::of_ints("pads", {pad, pad, pad, pad})};
    const bool max = c.attr_string("mode") == "max";
    if (!max) attrs.push_back(Attribute::of_int("count_include_pad", 0));
    c.add(max ? "MaxPool" : "AveragePool", {c.input("x")}, {c.output()}, attrs);
  }

  void plan(Context& ctx) override {
    const PoolGeometry g = pool_geometry(ctx.input("x").shape(), ctx.attrs());
    const auto alg = ctx.attr_string("mode") == "max" ? dnnl::algorithm::pooling_max
                                                      : dnnl::algorithm::pooling_avg_exclude_padding;
    const dnnl::memory::dims strides{g.stride, g.stride}, kernel{g.k, g.k}, pad{g.pad, g.pad};
    const auto src_md = ctx.input("x").desc(), dst_md = ctx.output("y").desc();
    fwd_pd_ = dnnl::pooling_forward::primitive_desc(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_training, alg, src_md, dst_md, strides, kernel, pad, pad),
        ctx.engine());
    fwd_ = dnnl::pooling_forward(fwd_pd_);
    bwd_ = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
        dnnl::pooling_backward::desc(alg, src_md, dst_md, strides, kernel, pad, pad), ctx.engine(), fwd_pd_));
    if (fwd_pd_.workspace_desc().get_size() > 0) workspace_ = dnnl::memory(fwd_pd_.workspace_desc(), ctx.engine());
  }

  void forward(Context& ctx) override {
    auto& e = ctx.engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, ctx.input("x").dnnl_read_memory(e)},
                                               {DNNL_ARG_DST, ctx.output("y").dnnl_memory(e)}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    fwd_.execute(ctx.stream(), args);
    ctx.stream().wait();
  }

  void backward(Context& ctx) override {
    if (!ctx.wants_grad("x")) return;
    auto& e = ctx.engine();
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, ctx.grad_output("y").dnnl_read_memory(e)},
                                               {DNNL_ARG_DIFF_SRC, ctx.grad_input("x").dnnl_memory(e)}};
    if (workspace_) args[DNNL_ARG_WORKSPACE] = workspace_;
    bwd_.execute(ctx.stream(), args);
    ctx.stream().wait();
  }

 private:
  dnnl::pooling_forward::primitive_desc fwd_pd_;
  dnnl::pooling_forward fwd_;
  dnnl::pooling_backward bwd_;
  dnnl::memory workspace_;
};

NOISEFLOW_REGISTER_NODE(Pool2d);

}  // namespace
}  // namespace noiseflow::nodes
