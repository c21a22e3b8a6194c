// tests/nodes/kernels/test_winograd.cpp — noiseflow's Winograd F(4x4, 3x3) kernels
// (nodes/kernels/winograd.hpp) against a direct convolution in double: forward, backward-data,
// backward-weights and the bias gradient, for every code path this CPU can run, on image sizes that are and
// are not multiples of the 4x4 tile, with one and two threads; and repeatability (the same call twice gives
// the same bits).
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "nodes/kernels/winograd.hpp"

namespace kernels = noiseflow::nodes::kernels;
namespace wg = noiseflow::nodes::kernels::winograd;

namespace {

struct Case {
  int64_t n, cin, cout, h, w;
};

// nChw16c index of (n, c, y, x) for C channels.
int64_t blk(int64_t C, int64_t H, int64_t W, int64_t n, int64_t c, int64_t y, int64_t x) {
  return (((n * (C / 16) + c / 16) * H + y) * W + x) * 16 + c % 16;
}

std::vector<float> random(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

// max |a - b| / max |b|
double rel(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, std::abs(double(a[i]) - b[i]));
    den = std::max(den, std::abs(b[i]));
  }
  return num / den;
}

}  // namespace

TEST_CASE("winograd F(4x4,3x3): forward, backward-data and backward-weights match a direct convolution") {
  for (const Case c : {Case{2, 16, 32, 7, 9}, Case{3, 32, 16, 14, 14}, Case{1, 48, 32, 28, 28}, Case{2, 16, 16, 5, 3}}) {
    const int64_t in_n = c.n * c.cin * c.h * c.w, out_n = c.n * c.cout * c.h * c.w;
    const auto src = random(size_t(in_n), 1), ddst = random(size_t(out_n), 2),
               wei = random(size_t(c.cout * c.cin * 9), 3), bias = random(size_t(c.cout), 4);
    // Direct convolution in double (cross-correlation, padding 1).
    std::vector<double> y(static_cast<size_t>(out_n)), dx(static_cast<size_t>(in_n)), dw(wei.size()),
        db(static_cast<size_t>(c.cout));
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t o = 0; o < c.cout; ++o)
        for (int64_t yy = 0; yy < c.h; ++yy)
          for (int64_t xx = 0; xx < c.w; ++xx) {
            const int64_t oi = blk(c.cout, c.h, c.w, n, o, yy, xx);
            double s = bias[size_t(o)];
            const double g = ddst[size_t(oi)];
            db[size_t(o)] += g;
            for (int64_t i = 0; i < c.cin; ++i)
              for (int ky = 0; ky < 3; ++ky)
                for (int kx = 0; kx < 3; ++kx) {
                  const int64_t sy = yy + ky - 1, sx = xx + kx - 1;
                  if (sy < 0 || sy >= c.h || sx < 0 || sx >= c.w) continue;
                  const int64_t si = blk(c.cin, c.h, c.w, n, i, sy, sx), wi = ((o * c.cin + i) * 3 + ky) * 3 + kx;
                  s += double(wei[size_t(wi)]) * src[size_t(si)];
                  dx[size_t(si)] += double(wei[size_t(wi)]) * g;
                  dw[size_t(wi)] += double(src[size_t(si)]) * g;
                }
            y[size_t(oi)] = s;
          }
    for (kernels::Isa isa : kernels::usable_isas())
      for (int threads : {1, 2}) {
        CAPTURE(kernels::isa_name(isa));
        CAPTURE(threads);
        CAPTURE(c.cin);
        CAPTURE(c.cout);
        CAPTURE(c.h);
        CAPTURE(c.w);
        const int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
        const wg::Conv3x3 conv({c.n, c.cin, c.cout, c.h, c.w}, isa);
        std::vector<float> fy(size_t(out_n), 7.f), fdx(size_t(in_n), 7.f), fdw(wei.size(), 7.f),
            fdb(size_t(c.cout), 7.f);
        conv.forward(src.data(), wei.data(), bias.data(), fy.data());
        conv.backward_data(ddst.data(), wei.data(), fdx.data());
        conv.backward_weights(src.data(), ddst.data(), fdw.data(), fdb.data());
        CHECK(rel(fy, y) < 2e-5);
        CHECK(rel(fdx, dx) < 2e-5);
        CHECK(rel(fdw, dw) < 2e-5);
        CHECK(rel(fdb, db) < 1e-5);
        // The same call again: the same bits.
        std::vector<float> fy2(fy.size()), fdw2(fdw.size()), fdb2(fdb.size());
        conv.forward(src.data(), wei.data(), bias.data(), fy2.data());
        conv.backward_weights(src.data(), ddst.data(), fdw2.data(), fdb2.data());
        CHECK(fy2 == fy);
        CHECK(fdw2 == fdw);
        CHECK(fdb2 == fdb);
        // Without a bias the forward adds none.
        conv.forward(src.data(), wei.data(), nullptr, fy2.data());
        double d = 0;
        for (int64_t n = 0; n < c.n; ++n)
          for (int64_t o = 0; o < c.cout; ++o) {
            const int64_t oi = blk(c.cout, c.h, c.w, n, o, 0, 0);
            d = std::max(d, std::abs(double(fy[size_t(oi)] - fy2[size_t(oi)]) - bias[size_t(o)]));
          }
        CHECK(d < 1e-5);
        omp_set_num_threads(saved);
      }
  }
}

TEST_CASE("winograd: which layers the kernels take") {
  CHECK(wg::supports(32, 64));
  CHECK_FALSE(wg::supports(1, 32));
  CHECK_FALSE(wg::supports(32, 24));
}
