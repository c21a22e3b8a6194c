// tests/nodes/sampler/test_ddim.cpp — sampler.ddim against Song et al. eq. 12 (with its noise sigma z) on
// single steps t -> t_prev of the schedule, determinism at eta = 0, the step to the data (t_prev = -1)
// returning x0_hat, and eta = 1 over all T steps against sampler.ddpm with the posterior variance.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/nodes/sampler/sampler_chain.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

namespace {

// The grid of one step from t to tp (-1: to the data).
Tensor one_step(const Tensor& table, int64_t t, int64_t tp) {
  return points_of(table, tp >= 0 ? std::vector<int64_t>{t, tp} : std::vector<int64_t>{t});
}

}  // namespace

TEST_CASE("sampler.ddim follows Song et al. eq. 12, eta = 0 is deterministic, a step to the data returns x0_hat") {
  const LinearSchedule S;
  const Tensor table = schedule_table();
  const std::vector<float> tv{999, 500, 40, 19, 5};
  const std::vector<float> tpv{979, 480, 20, -1, -1};
  const int64_t N = int64_t(tv.size()), m = 32768;
  const Tensor x = normal({N, m}, 1), eps = normal({N, m}, 2, 0.f, 0.5f);
  for (double eta : {0.0, 0.7, 1.0}) {
    for (bool clip : {false, true}) {
      CAPTURE(eta);
      CAPTURE(clip);
      std::vector<double> got, want(size_t(N * m));
      for (int64_t i = 0; i < N; ++i) {
        const int64_t t = int64_t(tv[size_t(i)]), tp = int64_t(tpv[size_t(i)]);
        auto [y, noise] = run_with_zero("sampler.ddim", {{"eta", eta}, {"clip_x0", clip}},
                                        step_inputs(rows(x, i), rows(eps, i), one_step(table, t, tp), 0), 0);
        const std::vector<double> d = minus(y, noise);
        got.insert(got.end(), d.begin(), d.end());
        const double at = S.abar[size_t(t)], ap = tp >= 0 ? S.abar[size_t(tp)] : 1.0;
        const double sigma = eta * std::sqrt((1 - ap) / (1 - at)) * std::sqrt(1 - at / ap);
        for (int64_t k = 0; k < m; ++k) {
          const int64_t j = i * m + k;
          double x0 = (x[j] - std::sqrt(1 - at) * eps[j]) / std::sqrt(at), e = eps[j];
          if (clip) {
            x0 = std::clamp(x0, -1.0, 1.0);
            e = (x[j] - std::sqrt(at) * x0) / std::sqrt(1 - at);
          }
          want[size_t(j)] = std::sqrt(ap) * x0 + std::sqrt(1 - ap - sigma * sigma) * e;
        }
        // The noise part: sigma z, z ~ N(0, 1) (5 standard errors); none for eta = 0 or t_prev = -1.
        CAPTURE(t);
        if (sigma == 0.0) {
          bool all_zero = true;
          for (int64_t k = 0; k < m; ++k) all_zero = all_zero && noise[k] == 0.f;
          CHECK(all_zero);
        } else {
          auto [mean, v] = standardised(noise, 0, m, sigma);
          INFO("z mean ", mean, ", z variance ", v);
          CHECK(std::fabs(mean) < 5 / std::sqrt(double(m)));
          CHECK(std::fabs(v - 1) < 5 * std::sqrt(2.0 / double(m - 1)));
        }
      }
      check_close(got, want, 5e-5, 5e-5);
    }
  }
  // eta = 0 and any noise draw (another seed): the same output; t_prev = -1 and any eta: x0_hat, the
  // same whatever the draw.
  for (double eta : {0.0, 1.0}) {
    for (int64_t i = 0; i < N; ++i) {
      const NamedTensors in = step_inputs(rows(x, i), rows(eps, i), one_step(table, int64_t(tv[size_t(i)]),
                                                                              int64_t(tpv[size_t(i)])), 0);
      NodeHarness a("sampler.ddim", {{"eta", eta}}, in, 1), b("sampler.ddim", {{"eta", eta}}, in, 2);
      a.forward(0);
      b.forward(0);
      const std::vector<float> ya = a.output().to_vector(), yb = b.output().to_vector();
      CHECK((ya == yb) == (eta == 0.0 || tpv[size_t(i)] == -1.f));
    }
  }
}

TEST_CASE("sampler.ddim with eta = 1 over all T steps (t_prev = t - 1) is sampler.ddpm with the posterior variance") {
  const Tensor points = timesteps_points(schedule_table(), "ddim", 1000);
  const std::vector<float> tv{1, 2, 50, 400, 999};
  const int64_t N = int64_t(tv.size()), inner = 256;
  const Tensor x = normal({N, inner}, 1), eps = normal({N, inner}, 2);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t tick = 999 - int64_t(tv[size_t(i)]);
    CAPTURE(tick);
    // Both harness nodes are called "node" with seed 5: the same z at the same tick.
    const NamedTensors in = step_inputs(rows(x, i), rows(eps, i), points, tick);
    NodeHarness ddim("sampler.ddim", {{"eta", 1.0}}, in, 5);
    NodeHarness ddpm("sampler.ddpm", {{"variance", "posterior"}}, in, 5);
    ddim.forward(tick);
    ddpm.forward(tick);
    check_close(as_double(ddim.output()), as_double(ddpm.output()), 1e-5, 1e-5);
  }
}
