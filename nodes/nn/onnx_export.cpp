// nodes/nn/onnx_export.cpp — the nn.* node types as ONNX opset 17 ops (runtime/export/onnx.hpp), so that
// `noiseflow export onnx` writes nets built from them:
//
//   nn.conv2d             Conv (kernel, stride, padding; bias as the third input when present), then Add of
//                         channel_add Unsqueezed to [N, C, 1, 1] and Add of add, where connected
//   nn.linear             Gemm with transB = 1
//   nn.silu               x * Sigmoid(x)
//   nn.relu               Relu
//   nn.group_norm         Reshape [N, G, -1] - InstanceNormalization (scale 1, shift 0) - Reshape back
//                         - Mul weight [C, 1, 1] - Add bias [C, 1, 1] (- Sigmoid, Mul for activation silu)
//   nn.add                Add (numpy broadcasting); align leading first Unsqueezes b at its end
//   nn.concat             Concat
//   nn.upsample           Resize nearest, asymmetric coordinates, floor: y[i] = x[i / scale]
//   nn.timestep_embedding Unsqueeze t - Mul by the frequencies - Sin, Cos - Concat (t stays float32)
//   nn.attention          group norm as above - Conv 1x1 to q, k, v - Reshape [N, 3, heads, D, HW] - Gather
//                         - MatMul(q^T, k) * 1/sqrt(D) - Softmax - MatMul(v, a^T) - Reshape - Conv 1x1 - Add x
//   nn.flatten            Flatten axis 1
//   nn.pool2d             MaxPool, or AveragePool without the padding counted
//
// Each mapping is next to the others rather than in its node's file so the exporter's whole op table reads in
// one place; a node type of a plugin registers its own mapping the same way.
#include <cmath>
#include <string>
#include <vector>

#include "runtime/export/onnx.hpp"

namespace noiseflow::nodes {
namespace {

using runtime::onnx::Attribute;
using runtime::onnx::OpContext;

// [C] seen as [C, 1, ...] to broadcast over the spatial dimensions of a rank-`rank` tensor.
std::vector<int64_t> per_channel(int64_t c, size_t rank) {
  std::vector<int64_t> d{c};
  d.resize(rank < 2 ? 1 : rank - 1, 1);
  return d;
}

// y = x * sigmoid(x), written to `out`; `part` names the two ONNX nodes.
void silu(OpContext& c, const std::string& x, const std::string& out, const std::string& part) {
  const std::string s = c.add_temp(part + "_sigmoid", "Sigmoid", {x});
  c.add("Mul", {x, s}, {out}, {}, part);
}

// Group normalization of x ([N, C, ...]) into `out`, without the affine part when `weight` is empty.
void group_norm(OpContext& c, const std::string& x, const graph::Shape& shape, int64_t groups, double eps,
                const std::string& weight, const std::string& bias, const std::string& out, const std::string& part) {
  const int64_t C = shape[1];
  const std::string grouped = c.add_temp(part + "_grouped", "Reshape", {x, c.ints({0, groups, -1})});
  const std::string normed =
      c.add_temp(part + "_instance_norm", "InstanceNormalization",
                 {grouped, c.floats(std::vector<float>(size_t(groups), 1.f), {groups}),
                  c.floats(std::vector<float>(size_t(groups), 0.f), {groups})},
                 {Attribute::of_float("epsilon", float(eps))});
  std::vector<int64_t> back{0, C};
  back.insert(back.end(), shape.begin() + 2, shape.end());
  if (weight.empty()) {
    c.add("Reshape", {normed, c.ints(back)}, {out}, {}, part);
    return;
  }
  const std::string z = c.add_temp(part + "_ungrouped", "Reshape", {normed, c.ints(back)});
  const std::string scaled = c.add_temp(part + "_scaled", "Mul", {z, weight});
  c.add("Add", {scaled, bias}, {out}, {}, part);
}

void conv2d(OpContext& c) {
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
    const std::string per_pixel = c.add_temp("channel_add_nc11", "Unsqueeze", {c.input("channel_add"), c.ints({2, 3})});
    if (!add) return c.add("Add", {y, per_pixel}, {c.output()}, {}, "channel_add");
    y = c.add_temp("channel_add", "Add", {y, per_pixel});
  }
  c.add("Add", {y, c.input("add")}, {c.output()}, {}, "add");
}

void linear(OpContext& c) {
  std::vector<std::string> ins{c.input("x"), c.param("weight")};
  if (c.attr_bool("bias")) ins.push_back(c.param("bias"));
  c.add("Gemm", ins, {c.output()}, {Attribute::of_int("transB", 1)});
}

void group_norm_node(OpContext& c) {
  const graph::Shape& x = c.input_shape("x");
  const bool affine = c.attr_bool("affine"), act = c.attr_string("activation") == "silu";
  const std::string w = affine ? c.param("weight", per_channel(x[1], x.size())) : std::string();
  const std::string b = affine ? c.param("bias", per_channel(x[1], x.size())) : std::string();
  const std::string out = act ? c.temp("norm") : c.output();
  group_norm(c, c.input("x"), x, c.attr_int("groups"), c.attr_float("eps"), w, b, out, "norm");
  if (act) silu(c, out, c.output(), "silu");
}

void add(OpContext& c) {
  std::string b = c.input("b");
  const size_t ra = c.input_shape("a").size(), rb = c.input_shape("b").size();
  if (c.attr_string("align") == "leading" && rb < ra) {
    // b's dimensions match a's first ones: append 1s so numpy broadcasting lines them up.
    std::vector<int64_t> axes;
    for (size_t i = rb; i < ra; ++i) axes.push_back(int64_t(i));
    b = c.add_temp("b_leading", "Unsqueeze", {b, c.ints(axes)});
  }
  c.add("Add", {c.input("a"), b}, {c.output()});
}

void concat(OpContext& c) {
  std::vector<std::string> ins;
  for (const char* p : {"a", "b", "c", "d"})
    if (c.has_input(p)) ins.push_back(c.input(p));
  int64_t axis = c.attr_int("axis");
  if (axis < 0) axis += int64_t(c.input_shape("a").size());
  c.add("Concat", ins, {c.output()}, {Attribute::of_int("axis", axis)});
}

void upsample(OpContext& c) {
  const float s = float(c.attr_int("scale"));
  c.add("Resize", {c.input("x"), "", c.floats({1.f, 1.f, s, s}, {4})}, {c.output()},
        {Attribute::of_string("mode", "nearest"), Attribute::of_string("coordinate_transformation_mode", "asymmetric"),
         Attribute::of_string("nearest_mode", "floor")});
}

void timestep_embedding(OpContext& c) {
  // The frequencies exactly as the node computes them (float32).
  const int64_t half = c.attr_int("dim") / 2;
  const float neg_log = -float(std::log(c.attr_float("max_period")));
  std::vector<float> freqs(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freqs[size_t(i)] = std::exp(neg_log * float(i) / float(half - 1));
  std::string t = c.input("t");
  if (c.input_shape("t").size() == 1) t = c.add_temp("t_column", "Unsqueeze", {t, c.ints({1})});
  const std::string a = c.add_temp("angles", "Mul", {t, c.floats(freqs, {half})});
  const std::string sin = c.add_temp("sin", "Sin", {a});
  const std::string cos = c.add_temp("cos", "Cos", {a});
  c.add("Concat", {sin, cos}, {c.output()}, {Attribute::of_int("axis", 1)});
}

void attention(OpContext& c) {
  const graph::Shape& x = c.input_shape("x");
  const int64_t C = x[1], H = x[2], W = x[3], heads = c.attr_int("heads"), D = C / heads, P = H * W;
  const std::string in = c.input("x");
  const std::string n = c.temp("norm");
  group_norm(c, in, x, c.attr_int("groups"), c.attr_float("eps"), c.param("norm.weight", {C, 1, 1}),
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

void flatten(OpContext& c) { c.add("Flatten", {c.input("x")}, {c.output()}, {Attribute::of_int("axis", 1)}); }

void relu(OpContext& c) { c.add("Relu", {c.input("x")}, {c.output()}); }

void silu_node(OpContext& c) { silu(c, c.input("x"), c.output(), "silu"); }

void pool2d(OpContext& c) {
  const int64_t k = c.attr_int("kernel"), pad = c.attr_int("padding");
  int64_t stride = c.attr_int("stride");
  if (stride <= 0) stride = k;
  std::vector<Attribute> attrs{Attribute::of_ints("kernel_shape", {k, k}), Attribute::of_ints("strides", {stride, stride}),
                               Attribute::of_ints("pads", {pad, pad, pad, pad})};
  const bool max = c.attr_string("mode") == "max";
  if (!max) attrs.push_back(Attribute::of_int("count_include_pad", 0));
  c.add(max ? "MaxPool" : "AveragePool", {c.input("x")}, {c.output()}, attrs);
}

NOISEFLOW_REGISTER_ONNX_OP("nn.conv2d", conv2d);
NOISEFLOW_REGISTER_ONNX_OP("nn.linear", linear);
NOISEFLOW_REGISTER_ONNX_OP("nn.silu", silu_node);
NOISEFLOW_REGISTER_ONNX_OP("nn.relu", relu);
NOISEFLOW_REGISTER_ONNX_OP("nn.group_norm", group_norm_node);
NOISEFLOW_REGISTER_ONNX_OP("nn.add", add);
NOISEFLOW_REGISTER_ONNX_OP("nn.concat", concat);
NOISEFLOW_REGISTER_ONNX_OP("nn.upsample", upsample);
NOISEFLOW_REGISTER_ONNX_OP("nn.timestep_embedding", timestep_embedding);
NOISEFLOW_REGISTER_ONNX_OP("nn.attention", attention);
NOISEFLOW_REGISTER_ONNX_OP("nn.flatten", flatten);
NOISEFLOW_REGISTER_ONNX_OP("nn.pool2d", pool2d);

}  // namespace
}  // namespace noiseflow::nodes
