// tests/nodes/kernels/test_group_norm.cpp — the group normalization kernels (nodes/kernels/group_norm.hpp)
// called directly: forward and backward against a naive double-precision group norm, plain and channel-major
// output strides giving the same bits, the dx_add term of backward (nn.attention's residual), and every ISA
// this CPU can run (nodes/kernels/isa.hpp) against the baseline code, plain and nChw16c, with and without
// the fused SiLU. The node tests (tests/nodes/nn/test_group_norm.cpp, test_attention.cpp) cover layouts,
// SiLU and dropout through the nodes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "nodes/kernels/group_norm.hpp"

namespace kernels = noiseflow::nodes::kernels;
namespace gn = noiseflow::nodes::kernels::group_norm;

namespace {

std::vector<float> random(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

// max |a - b| / max |b|
double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(double(a[i]) - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

// y = gn(x) * gamma + beta, dx and the parameter gradients for the output gradient dy, in double.
struct Reference {
  std::vector<double> y, dx, dgamma, dbeta;
};

Reference reference(const gn::Geometry& g, const std::vector<float>& x, const std::vector<float>& gamma,
                    const std::vector<float>& beta, const std::vector<float>& dy) {
  const int64_t cpg = g.c / g.groups, m = cpg * g.hw;
  Reference r{std::vector<double>(x.size()), std::vector<double>(x.size()), std::vector<double>(size_t(g.c)),
              std::vector<double>(size_t(g.c))};
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t q = 0; q < g.groups; ++q) {
      const int64_t o = (n * g.c + q * cpg) * g.hw;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < m; ++i) mean += x[size_t(o + i)];
      mean /= double(m);
      for (int64_t i = 0; i < m; ++i) var += (x[size_t(o + i)] - mean) * (x[size_t(o + i)] - mean);
      const double rstd = 1.0 / std::sqrt(var / double(m) + g.eps);
      // dxhat = dy * gamma; dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
      double s1 = 0, s2 = 0;
      for (int64_t i = 0; i < m; ++i) {
        const int64_t c = q * cpg + i / g.hw;
        const double xhat = (x[size_t(o + i)] - mean) * rstd, d = double(dy[size_t(o + i)]) * gamma[size_t(c)];
        r.y[size_t(o + i)] = xhat * gamma[size_t(c)] + beta[size_t(c)];
        r.dgamma[size_t(c)] += dy[size_t(o + i)] * xhat;
        r.dbeta[size_t(c)] += dy[size_t(o + i)];
        s1 += d, s2 += d * xhat;
      }
      for (int64_t i = 0; i < m; ++i) {
        const int64_t c = q * cpg + i / g.hw;
        const double xhat = (x[size_t(o + i)] - mean) * rstd;
        r.dx[size_t(o + i)] = rstd * (double(dy[size_t(o + i)]) * gamma[size_t(c)] - s1 / double(m) - xhat * s2 / double(m));
      }
    }
  return r;
}

// [N, C, HW] -> [C, N, HW]
std::vector<float> to_channel_major(const gn::Geometry& g, const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      std::copy_n(v.begin() + (n * g.c + c) * g.hw, g.hw, out.begin() + (c * g.n + n) * g.hw);
  return out;
}

}  // namespace

TEST_CASE("group norm kernels: forward, backward and parameter gradients match a naive group norm") {
  for (const gn::Geometry g : {gn::Geometry{2, 16, 35, 8}, gn::Geometry{3, 6, 35, 3}, gn::Geometry{2, 32, 400, 2},
                               gn::Geometry{1, 4, 1, 1}}) {
    CAPTURE(g.n);
    CAPTURE(g.c);
    CAPTURE(g.hw);
    CAPTURE(g.groups);
    const size_t total = size_t(g.n * g.c * g.hw);
    const auto x = random(total, 1, 2.f, 5.f), dy = random(total, 2), gamma = random(size_t(g.c), 3, 0.5f, 1.5f),
               beta = random(size_t(g.c), 4, -0.5f, 0.5f);
    const Reference r = reference(g, x, gamma, beta, dy);
    for (kernels::Isa isa : kernels::usable_isas()) {
      CAPTURE(kernels::isa_name(isa));
      gn::GroupNorm k(g, isa);
      std::vector<float> y(total, 7.f), dx(total, 7.f), dgamma(size_t(g.c)), dbeta(size_t(g.c));
      k.forward(x.data(), gamma.data(), beta.data(), y.data(), false);
      k.backward(x.data(), dy.data(), gamma.data(), beta.data(), dx.data(), false);
      k.param_grads(dgamma.data(), dbeta.data());
      CHECK(rel(y, r.y) < 2e-6);
      CHECK(rel(dx, r.dx) < 2e-5);
      CHECK(rel(dgamma, r.dgamma) < 1e-5);
      CHECK(rel(dbeta, r.dbeta) < 1e-5);
    }
  }
}

TEST_CASE("group norm kernels: channel-major output and output gradient give the same bits, dx_add is added") {
  const gn::Geometry g{3, 12, 49, 4};
  const size_t total = size_t(g.n * g.c * g.hw);
  const auto x = random(total, 5, -2.f, 2.f), dy = random(total, 6), add = random(total, 7),
             gamma = random(size_t(g.c), 8, 0.5f, 1.5f), beta = random(size_t(g.c), 9, -0.5f, 0.5f);
  gn::GroupNorm plain(g), cm(g);
  std::vector<float> y(total), y_cm(total), dx(total), dx_cm(total), dgamma(size_t(g.c)), dbeta(size_t(g.c)),
      dgamma_cm(size_t(g.c)), dbeta_cm(size_t(g.c));
  plain.forward(x.data(), gamma.data(), beta.data(), y.data(), false);
  cm.forward(x.data(), gamma.data(), beta.data(), y_cm.data(), gn::channel_major(g));
  CHECK(to_channel_major(g, y) == y_cm);

  plain.backward(x.data(), dy.data(), gamma.data(), beta.data(), dx.data(), false);
  const auto dy_cm = to_channel_major(g, dy);
  cm.backward(x.data(), dy_cm.data(), gn::channel_major(g), gamma.data(), beta.data(), dx_cm.data(), add.data());
  plain.param_grads(dgamma.data(), dbeta.data());
  cm.param_grads(dgamma_cm.data(), dbeta_cm.data());
  CHECK(dgamma == dgamma_cm);
  CHECK(dbeta == dbeta_cm);
  for (size_t i = 0; i < total; ++i) REQUIRE(dx_cm[i] == dx[i] + add[i]);

  // Without dx only the sums behind the parameter gradients.
  std::vector<float> dgamma2(size_t(g.c)), dbeta2(size_t(g.c));
  cm.backward(x.data(), dy_cm.data(), gn::channel_major(g), gamma.data(), beta.data(), nullptr, add.data());
  cm.param_grads(dgamma2.data(), dbeta2.data());
  CHECK(dgamma2 == dgamma);
  CHECK(dbeta2 == dbeta);
}

TEST_CASE("group norm kernels: every ISA's code agrees with the baseline's, plain and nChw16c, with and without SiLU") {
  // [N, C, HW] read as plain or as nChw16c (the same floats; the ISAs are compared with each other).
  const gn::Geometry shapes[] = {{2, 32, 30, 8}, {2, 48, 15, 16}, {2, 32, 400, 8}, {3, 16, 30, 1}};
  for (gn::Geometry g : shapes)
    for (bool silu : {false, true})
      for (bool blocked : {false, true}) {
        g.silu = silu;
        CAPTURE(g.c);
        CAPTURE(g.hw);
        CAPTURE(g.groups);
        CAPTURE(silu);
        CAPTURE(blocked);
        const size_t total = size_t(g.n * g.c * g.hw);
        const auto x = random(total, 11, 2.f, 5.f), dy = random(total, 12), add = random(total, 13),
                   gamma = random(size_t(g.c), 14, 0.5f, 1.5f), beta = random(size_t(g.c), 15, -0.5f, 0.5f);
        struct Out {
          std::vector<float> y, dx, dgamma, dbeta;
        };
        const auto run = [&](kernels::Isa isa) {
          gn::GroupNorm k(g, isa);
          Out o{std::vector<float>(total), std::vector<float>(total), std::vector<float>(size_t(g.c)),
                std::vector<float>(size_t(g.c))};
          k.forward(x.data(), gamma.data(), beta.data(), o.y.data(), blocked);
          k.backward(x.data(), dy.data(), gamma.data(), beta.data(), o.dx.data(), blocked, add.data());
          k.param_grads(o.dgamma.data(), o.dbeta.data());
          return o;
        };
        const Out base = run(kernels::Isa::generic);
        const auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
        for (kernels::Isa isa : kernels::usable_isas()) {
          CAPTURE(kernels::isa_name(isa));
          const Out o = run(isa);
          CHECK(rel(o.y, as_double(base.y)) < 1e-6);
          CHECK(rel(o.dx, as_double(base.dx)) < 1e-5);
          CHECK(rel(o.dgamma, as_double(base.dgamma)) < 1e-5);
          CHECK(rel(o.dbeta, as_double(base.dbeta)) < 1e-5);
          // The same call again: the same bits.
          const Out again = run(isa);
          CHECK(again.y == o.y);
          CHECK(again.dx == o.dx);
        }
      }
}
