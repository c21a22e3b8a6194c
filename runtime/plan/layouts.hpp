// runtime/plan/layouts.hpp — which node outputs live in nChw16c.
//
//   conv ──> group_norm ──> conv ──> add ──> attention (plain only)
//   └──────────── one region, nChw16c ──┘      └ gets a plain copy (a Conversion)
//
// Tensors joined by a `uniform` node (element-wise ops: all its rank-4 tensors share one layout) form a
// region; a region is blocked when every tensor in it can be (rank 4, channels a multiple of 16, produced
// by a node that handles blocked layouts) and some `any` node (a convolution) reads or writes it, so chains
// conv -> add -> group_norm -> silu -> conv never leave the layout convolutions run fastest on.
#pragma once

#include <vector>

#include "runtime/plan/plan.hpp"

namespace noiseflow::runtime::plan {

struct LayoutPlan {
  std::vector<std::vector<Layout>> layouts;  ///< [node][output]
  std::vector<Conversion> conversions;       ///< plain copies for plain-only consumers, in node order
};

/// Layouts of every node output (all plain when `reference`).
LayoutPlan plan_layouts(const graph::Graph& g, bool reference);

}  // namespace noiseflow::runtime::plan
