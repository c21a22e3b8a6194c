// tests/nodes/fd_check.hpp — a central-difference check of one input of a node
// run in a NodeHarness, for tests that need fixed (not random) other inputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/harness.hpp"

namespace noiseflow::test {

/// sum(r * y) in double.
inline double project(const runtime::Tensor& r, const runtime::Tensor& y) {
  double l = 0;
  for (int64_t i = 0; i < y.numel(); ++i) l += double(r[i]) * double(y[i]);
  return l;
}

/// Central differences of L = sum(r * output) with respect to every element of
/// `input`, against the gradient backward() wrote. Returns the largest
/// |analytic - numeric| relative to max(|analytic|, |numeric|, 1e-3).
inline double fd_error(runtime::NodeHarness& h, const std::string& input, const std::string& output,
                       const runtime::Tensor& r, double step = 1e-2) {
  h.forward();
  h.backward({{output, r}});
  runtime::Tensor analytic = h.grad_input(input).clone();
  runtime::Tensor& x = h.input(input);
  double max_diff = 0, scale = 1e-3;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float x0 = x[i];
    const float xp = float(x0 + step), xm = float(x0 - step);
    x[i] = xp;
    h.forward();
    double lp = project(r, h.output(output));
    x[i] = xm;
    h.forward();
    double lm = project(r, h.output(output));
    x[i] = x0;
    double num = (lp - lm) / (double(xp) - double(xm));
    max_diff = std::max(max_diff, std::fabs(num - analytic[i]));
    scale = std::max({scale, std::fabs(num), std::fabs(double(analytic[i]))});
  }
  h.forward();
  return max_diff / scale;
}

}  // namespace noiseflow::test
