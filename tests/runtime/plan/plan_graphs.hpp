// tests/runtime/plan/plan_graphs.hpp — small graphs the planner suites share.
//
//   diamond (training):            fan-out (no optimizer):         state loop (no optimizer):
//     x ─> a ─┬─> l ─┐               x ─> a ─┬─> b ─┐                noise ─> s ──> c ──> step ─┐
//             └─> r ─┴─> m ─> c        (conv)  └─> c ─┴─> d (add)              ^  └────────────┘ │
//     c, eps ─> loss ─> opt ─> ema                                              └── next ────────┘
#pragma once

#include <string>

#include "graph/pipeline.hpp"
#include "runtime/plan/plan.hpp"
#include "tests/test_util.hpp"

namespace noiseflow::test {

/// conv a feeds silu l and conv r, summed by add m, then conv c, mse against noise, adam, ema.
inline const char* kDiamond = R"({ "noiseflow": 1,
  "nodes": {
    "x":    { "op": "random.normal", "attrs": { "shape": [2, 16, 8, 8] } },
    "a":    { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 16 } },
    "l":    { "op": "nn.silu", "inputs": { "x": "a" } },
    "r":    { "op": "nn.conv2d", "inputs": { "x": "a" }, "attrs": { "out_channels": 16 } },
    "m":    { "op": "nn.add", "inputs": { "a": "l", "b": "r" } },
    "c":    { "op": "nn.conv2d", "inputs": { "x": "m" }, "attrs": { "out_channels": 16 } },
    "eps":  { "op": "random.normal", "attrs": { "shape": [2, 16, 8, 8] } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "c", "target": "eps" } },
    "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" } },
    "ema":  { "op": "optim.ema", "inputs": { "step": "opt.step" } }
  },
  "run": { "ticks": 2 } })";

/// conv a read by convs b and c, summed by d: no optimizer, so activations share slots by lifetime.
inline const char* kFanOut = R"({ "noiseflow": 1,
  "nodes": {
    "x": { "op": "random.normal", "attrs": { "shape": [2, 16, 8, 8] } },
    "a": { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 16 } },
    "b": { "op": "nn.conv2d", "inputs": { "x": "a" }, "attrs": { "out_channels": 16 } },
    "c": { "op": "nn.conv2d", "inputs": { "x": "a" }, "attrs": { "out_channels": 16 } },
    "d": { "op": "nn.add", "inputs": { "a": "b", "b": "c" } },
    "e": { "op": "nn.conv2d", "inputs": { "x": "d" }, "attrs": { "out_channels": 16 } }
  },
  "run": { "ticks": 1 } })";

/// A state carries x across ticks: x_{k+1} = x_k + conv(x_k).
inline const char* kStateLoop = R"({ "noiseflow": 1,
  "nodes": {
    "noise": { "op": "random.normal", "attrs": { "shape": [2, 16, 8, 8] } },
    "s":     { "op": "state", "inputs": { "init": "noise", "next": "step" } },
    "c":     { "op": "nn.conv2d", "inputs": { "x": "s" }, "attrs": { "out_channels": 16 } },
    "c2":    { "op": "nn.conv2d", "inputs": { "x": "c" }, "attrs": { "out_channels": 16 } },
    "step":  { "op": "nn.add", "inputs": { "a": "s", "b": "c2" } }
  },
  "run": { "ticks": 3 } })";

inline graph::Graph load_graph(const std::string& text, const std::string& name = "plan/test.json") {
  return graph::load_pipeline_text(text, name, load_options());
}

/// Index of a node id (fails the test when missing).
inline int node_index(const graph::Graph& g, const std::string& id) {
  const int i = g.find(id);
  if (i < 0) throw std::logic_error("no node " + id);
  return i;
}

}  // namespace noiseflow::test
