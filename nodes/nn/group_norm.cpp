// nodes/nn/group_norm.cpp — group normalization (PyTorch nn.GroupNorm) with a per-channel affine.
//
// oneDNN 2.6 has no group normalization. This is a hand-written kernel on the plain layout: one task per
// (sample, group), two passes for mean and variance, one fused normalise+affine pass; backward is two
// passes (per-channel sums, then dx as a per-channel affine function of dy and x). Statistics are
// accumulated in double over float SIMD chunks. Measured at 64x64x28x28, 8 groups, 1 thread (loaded
// machine, best of 15): forward 2.0 ms vs 2.1 ms for oneDNN layer normalization over [N*G, C/G*H*W] plus
// an affine pass; backward 2.2 ms vs 7-15 ms for layer-norm backward plus the dgamma/dbeta and dy*gamma
// passes.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

// Sum of p[i] (or of (p[i] - shift) * q[i] terms, see below) with float SIMD lanes over chunks,
// accumulated in double so that long groups keep their precision.
constexpr int64_t kChunk = 1024;

inline double sum_of(const float* p, int64_t m) {
  double s = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    const int64_t e = std::min(m, o + kChunk);
    float c = 0.f;
#pragma omp simd reduction(+ : c)
    for (int64_t i = o; i < e; ++i) c += p[i];
    s += c;
  }
  return s;
}

inline double sum_sq_dev(const float* p, int64_t m, float mean) {
  double s = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    const int64_t e = std::min(m, o + kChunk);
    float c = 0.f;
#pragma omp simd reduction(+ : c)
    for (int64_t i = o; i < e; ++i) c += (p[i] - mean) * (p[i] - mean);
    s += c;
  }
  return s;
}

// Both sums of dy[i] and of dy[i] * (x[i] - mean) in one pass.
inline void sum_dy_and_dot(const float* dy, const float* x, int64_t m, float mean, double& sdy, double& sdot) {
  sdy = 0, sdot = 0;
  for (int64_t o = 0; o < m; o += kChunk) {
    const int64_t e = std::min(m, o + kChunk);
    float a = 0.f, b = 0.f;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = o; i < e; ++i) {
      a += dy[i];
      b += dy[i] * (x[i] - mean);
    }
    sdy += a;
    sdot += b;
  }
}

struct GroupNorm final : Node {
  static Schema schema() {
    return Schema("nn.group_norm",
                  "Group normalization: normalise each group of C/groups channels per sample, then scale and shift "
                  "per channel (PyTorch GroupNorm)")
        .input("x", "[N, C, H, W] (or [N, C], or [N, C, ...])")
        .output("y", "same shape as x")
        .attr_int("groups", 8, 1, 1 << 16, "number of channel groups; must divide C")
        .attr_float("eps", 1e-5, 0.0, 1.0, "added to the variance")
        .attr_bool("affine", true, "learn a per-channel scale (weight, starts at 1) and shift (bias, starts at 0)")
        .differentiable({"x"})
        .heavy()
        .shape([](graph::ShapeContext& c) {
          const Shape& x = c.input("x");
          if (x.size() < 2) c.fail("x", "expected [N, C, ...] (rank 2 or more), got shape " + graph::shape_str(x));
          const int64_t g = c.attr_int("groups");
          if (g < 1) c.fail("groups", "must be at least 1, got " + std::to_string(g));
          if (x[1] % g != 0)
            c.fail("groups", "the " + std::to_string(x[1]) + " channels of x " + graph::shape_str(x) +
                                 " are not divisible by groups = " + std::to_string(g));
          c.set_output("y", x);
          if (c.attr_bool("affine")) {
            c.param("weight", {x[1]}, graph::Init::ones());
            c.param("bias", {x[1]}, graph::Init::zeros());
          }
        });
  }

  void plan(Context& ctx) override {
    const Tensor& x = ctx.input("x");
    n_ = x.dim(0);
    c_ = x.dim(1);
    hw_ = x.numel() / std::max<int64_t>(n_ * c_, 1);
    g_ = ctx.attr_int("groups");
    eps_ = ctx.attr_float("eps");
    affine_ = ctx.attr_bool("affine");
    mean_.assign(size_t(n_ * g_), 0.0);
    rstd_.assign(size_t(n_ * g_), 0.0);
    dsum_.assign(size_t(n_ * c_), 0.0);
    dxsum_.assign(size_t(n_ * c_), 0.0);
    ones_.assign(size_t(c_), 1.f);
    zeros_.assign(size_t(c_), 0.f);
  }

  void forward(Context& ctx) override {
    const float* x = ctx.input("x").data();
    float* y = ctx.output("y").data();
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const float* beta = affine_ ? ctx.param("bias").data() : zeros_.data();
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, ng = n_ * g_, groups = g_;
    const double eps = eps_;
    double* mean_out = mean_.data();
    double* rstd_out = rstd_.data();

#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < ng; ++k) {
      const float* xp = x + k * m;
      float* yp = y + k * m;
      const double mean = sum_of(xp, m) / double(m);
      const double var = sum_sq_dev(xp, m, float(mean)) / double(m);
      const double rstd = 1.0 / std::sqrt(var + eps);
      mean_out[k] = mean;
      rstd_out[k] = rstd;
      const int64_t c0 = (k % groups) * cpg;
      for (int64_t j = 0; j < cpg; ++j) {
        const float scale = float(rstd * gamma[c0 + j]);
        const float shift = float(beta[c0 + j] - mean * rstd * gamma[c0 + j]);
        const float* xc = xp + j * hw;
        float* yc = yp + j * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; ++i) yc[i] = xc[i] * scale + shift;
      }
    }
  }

  void backward(Context& ctx) override {
    const float* x = ctx.input("x").data();
    const float* dy = ctx.grad_output("y").data();
    const bool want_dx = ctx.wants_grad("x");
    float* dx = want_dx ? ctx.grad_input("x").data() : nullptr;
    const float* gamma = affine_ ? ctx.param("weight").data() : ones_.data();
    const int64_t cpg = c_ / g_, hw = hw_, m = cpg * hw, ng = n_ * g_, groups = g_, channels = c_;
    const double* mean_in = mean_.data();
    const double* rstd_in = rstd_.data();
    double* dsum = dsum_.data();    // [N, C]: sum of dy
    double* dxsum = dxsum_.data();  // [N, C]: sum of dy * xhat

#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < ng; ++k) {
      const int64_t n = k / groups, c0 = (k % groups) * cpg;
      const float* xp = x + k * m;
      const float* dyp = dy + k * m;
      const double mean = mean_in[k], rstd = rstd_in[k];
      // Pass 1: per-channel sums of dy and dy * xhat; their gamma-weighted sums over the group.
      double sum1 = 0, sum2 = 0;
      for (int64_t j = 0; j < cpg; ++j) {
        double a, b;
        sum_dy_and_dot(dyp + j * hw, xp + j * hw, hw, float(mean), a, b);
        b *= rstd;
        dsum[n * channels + c0 + j] = a;
        dxsum[n * channels + c0 + j] = b;
        sum1 += gamma[c0 + j] * a;
        sum2 += gamma[c0 + j] * b;
      }
      if (!dx) continue;
      // Pass 2: dx = rstd * (gamma*dy - sum1/m - xhat*sum2/m), an affine function of dy and x per channel.
      const float bx = float(-rstd * rstd * sum2 / double(m));
      const double c_all = rstd * (mean * rstd * sum2 - sum1) / double(m);
      float* dxp = dx + k * m;
      for (int64_t j = 0; j < cpg; ++j) {
        const float a = float(rstd * gamma[c0 + j]);
        const float cst = float(c_all);
        const float* dyc = dyp + j * hw;
        const float* xc = xp + j * hw;
        float* dxc = dxp + j * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; ++i) dxc[i] = dyc[i] * a + xc[i] * bx + cst;
      }
    }

    if (affine_) {
      float* dgamma = ctx.param_grad("weight").data();
      float* dbeta = ctx.param_grad("bias").data();
      for (int64_t c = 0; c < c_; ++c) {
        double sg = 0, sb = 0;
        for (int64_t n = 0; n < n_; ++n) {
          sg += dxsum[n * c_ + c];
          sb += dsum[n * c_ + c];
        }
        dgamma[c] = float(sg);
        dbeta[c] = float(sb);
      }
    }
  }

 private:
  int64_t n_ = 0, c_ = 0, hw_ = 1, g_ = 1;
  double eps_ = 1e-5;
  bool affine_ = true;
  std::vector<double> mean_, rstd_;   // [N, G], saved by forward for backward
  std::vector<double> dsum_, dxsum_;  // [N, C] backward scratch
  std::vector<float> ones_, zeros_;   // gamma and beta without affine
};

NOISEFLOW_REGISTER_NODE(GroupNorm);

}  // namespace
}  // namespace noiseflow::nodes
