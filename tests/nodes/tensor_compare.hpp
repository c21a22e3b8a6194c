// tests/nodes/tensor_compare.hpp — random inputs and an element-wise relative difference, shared by the
// suites that compare two ways of running a node (plain vs nChw16c, fused vs separate nodes).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "runtime/random.hpp"
#include "runtime/tensor.hpp"

namespace noiseflow::test {

/// A plain tensor of uniform values in [lo, hi), reproducible per stream.
inline runtime::Tensor random_tensor(const runtime::Shape& s, uint64_t stream, float lo = -1.f, float hi = 1.f) {
  runtime::Tensor t(s);
  runtime::random::fill_uniform(t.data(), t.numel(), 0xb10c, stream, lo, hi);
  return t;
}

/// Largest |got - want| / max(1, |want|) over two plain tensors of the same shape.
inline double max_rel_diff(const runtime::Tensor& got, const runtime::Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want[i]) / std::max(1.0, std::abs(double(want[i]))));
  return worst;
}

}  // namespace noiseflow::test
