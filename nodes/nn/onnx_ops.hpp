// nodes/nn/onnx_ops.hpp — ONNX sequences shared by the nn.* mappings (each node type's static onnx(),
// runtime/export/onnx.hpp): SiLU as Sigmoid and Mul (opset 17 has no SiLU op; nn.silu, nn.group_norm's
// fused activation) and group normalization as Reshape [N, G, -1] - InstanceNormalization (scale 1,
// shift 0) - Reshape back, then Mul weight and Add bias (nn.group_norm, nn.attention's norm).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/export/onnx.hpp"

namespace noiseflow::nodes::onnx_ops {

/// y = x * sigmoid(x), written to `out`; `part` names the two ONNX nodes ("ID/part_sigmoid", "ID/part").
inline void silu(runtime::onnx::OpContext& c, const std::string& x, const std::string& out, const std::string& part) {
  const std::string s = c.add_temp(part + "_sigmoid", "Sigmoid", {x});
  c.add("Mul", {x, s}, {out}, {}, part);
}

/// Group normalization of x ([N, C, ...], `shape`) in `groups` groups into `out`, then times `weight` and plus
/// `bias` (initializers broadcasting over the spatial dimensions); without the affine part when `weight` is
/// empty. `part` names the ONNX nodes.
inline void group_norm(runtime::onnx::OpContext& c, const std::string& x, const graph::Shape& shape, int64_t groups,
                       double eps, const std::string& weight, const std::string& bias, const std::string& out,
                       const std::string& part) {
  using runtime::onnx::Attribute;
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

}  // namespace noiseflow::nodes::onnx_ops
