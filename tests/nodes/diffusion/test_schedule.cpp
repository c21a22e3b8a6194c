// tests/nodes/diffusion/test_schedule.cpp — diffusion.schedule against the closed forms of the three beta
// schedules, every derived row recomputed here independently in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "graph/schema.hpp"
#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;
using namespace noiseflow::nodes::diffusion;
using noiseflow::graph::ShapeError;

namespace {

NodeHarness run_schedule(const Json& attrs) {
  NodeHarness h("diffusion.schedule", attrs, {});
  h.forward();
  return h;
}

// Value of row r at t in the [8, T] table output.
double row_at(NodeHarness& h, ScheduleRow r, int64_t t) {
  const Tensor& table = h.output("table");
  return table[int64_t(r) * table.dim(1) + t];
}

// Nichol & Dhariwal's f(t) = cos(((t/T) + s)/(1 + s) * pi/2)^2.
double cosine_f(double t, double T, double s) {
  double c = std::cos((t / T + s) / (1.0 + s) * std::numbers::pi / 2.0);
  return c * c;
}

std::vector<double> cosine_betas(int64_t T, double s = 0.008, double max_beta = 0.999) {
  std::vector<double> b(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) b[t] = std::min(1.0 - cosine_f(t + 1, T, s) / cosine_f(t, T, s), max_beta);
  return b;
}

std::vector<double> sigmoid_betas(int64_t T, double b0 = 1e-4, double b1 = 0.02) {
  std::vector<double> b(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    double x = T == 1 ? -6.0 : -6.0 + 12.0 * double(t) / double(T - 1);
    b[t] = 1.0 / (1.0 + std::exp(-x)) * (b1 - b0) + b0;
  }
  return b;
}

// Default-attribute betas of a kind, in double.
std::vector<double> betas_of(const std::string& kind, int64_t T) {
  if (kind == "linear") return linear_betas(T, 1e-4, 0.02);
  if (kind == "cosine") return cosine_betas(T);
  return sigmoid_betas(T);
}

// |a - b| within abs, and within rel of |b| (float storage is ~6e-8 relative).
void check_close(double a, double b, double abs_tol = 1e-6, double rel_tol = 1e-6) {
  CHECK(std::fabs(a - b) <= abs_tol);
  CHECK(std::fabs(a - b) <= rel_tol * std::fabs(b) + 1e-12);
}

ShapeError schedule_error(const Json& attrs) {
  try {
    NodeHarness h("diffusion.schedule", attrs, {});
  } catch (const ShapeError& e) {
    return e;
  }
  FAIL("expected a ShapeError for attrs " << attrs.dump());
  return ShapeError("", "");
}

}  // namespace

TEST_CASE("diffusion.schedule linear: betas = linspace, alpha_bar = cumulative product") {
  auto h = run_schedule({{"kind", "linear"}, {"T", 1000}});
  REQUIRE(h.output("table").shape() == Shape{8, 1000});
  auto beta = linear_betas(1000, 1e-4, 0.02);
  auto abar = cumprod_alpha(beta);
  for (int64_t t : {0, 1, 10, 500, 999}) {
    CAPTURE(t);
    check_close(row_at(h, kBeta, t), beta[t]);
    check_close(row_at(h, kAlpha, t), 1.0 - beta[t]);
    check_close(row_at(h, kAlphaBar, t), abar[t]);
    check_close(row_at(h, kSqrtAlphaBar, t), std::sqrt(abar[t]));
    check_close(row_at(h, kSqrtOneMinusAlphaBar, t), std::sqrt(1.0 - abar[t]));
    check_close(row_at(h, kAlphaBarPrev, t), t == 0 ? 1.0 : abar[t - 1]);
    check_close(row_at(h, kRecipSqrtAlpha, t), 1.0 / std::sqrt(1.0 - beta[t]));
  }
  // Known landmarks of the DDPM schedule: beta_0 = 1e-4, beta_999 = 0.02, abar_999 ~ 4.0e-5.
  CHECK(row_at(h, kBeta, 0) == doctest::Approx(1e-4));
  CHECK(row_at(h, kBeta, 999) == doctest::Approx(0.02));
  CHECK(row_at(h, kAlphaBar, 999) == doctest::Approx(4.04e-5).epsilon(0.01));
}

TEST_CASE("diffusion.schedule posterior variance = beta_t (1 - abar_{t-1}) / (1 - abar_t), 0 at t = 0") {
  const int64_t T = 1000;
  for (std::string kind : {"linear", "cosine", "sigmoid"}) {
    CAPTURE(kind);
    auto h = run_schedule({{"kind", kind}, {"T", T}});
    auto beta = betas_of(kind, T);
    auto abar = cumprod_alpha(beta);
    CHECK(row_at(h, kPosteriorVariance, 0) == 0.0);
    for (int64_t t : {1, 2, 10, 500, 998, 999}) {
      CAPTURE(t);
      check_close(row_at(h, kPosteriorVariance, t), beta[t] * (1.0 - abar[t - 1]) / (1.0 - abar[t]), 1e-6, 1e-5);
      // The posterior variance never exceeds beta_t (abar_{t-1} >= abar_t).
      CHECK(row_at(h, kPosteriorVariance, t) <= row_at(h, kBeta, t) * (1 + 1e-6));
    }
  }
}

TEST_CASE("diffusion.schedule cosine: alpha_bar = f(t+1)/f(0) until beta is clipped at max_beta") {
  for (int64_t T : {1000, 50}) {
    CAPTURE(T);
    const double s = 0.008, max_beta = 0.999;
    auto h = run_schedule({{"kind", "cosine"}, {"T", T}});
    // First t whose unclipped beta exceeds max_beta.
    int64_t clip_from = T;
    for (int64_t t = T - 1; t >= 0; --t)
      if (1.0 - cosine_f(t + 1, T, s) / cosine_f(t, T, s) > max_beta) clip_from = t;
    CHECK(clip_from == T - 1);  // f(T) = cos(pi/2)^2 ~ 0: only the last step clips
    for (int64_t t = 0; t < clip_from; ++t) {
      CAPTURE(t);
      check_close(row_at(h, kAlphaBar, t), cosine_f(t + 1, T, s) / cosine_f(0, T, s), 1e-6, 1e-5);
      check_close(row_at(h, kBeta, t), 1.0 - cosine_f(t + 1, T, s) / cosine_f(t, T, s), 1e-6, 1e-5);
    }
    // Clipping at the end: beta = max_beta, alpha_bar keeps following the product.
    CHECK(row_at(h, kBeta, T - 1) == float(max_beta));
    check_close(row_at(h, kAlphaBar, T - 1), row_at(h, kAlphaBar, T - 2) * (1.0 - max_beta), 1e-9, 1e-5);
  }
  // A lower max_beta clips more steps, all of them exactly max_beta.
  auto h = run_schedule({{"kind", "cosine"}, {"T", 100}, {"max_beta", 0.2}});
  int clipped = 0;
  for (int64_t t = 0; t < 100; ++t) {
    double unclipped = 1.0 - cosine_f(t + 1, 100, 0.008) / cosine_f(t, 100, 0.008);
    if (unclipped > 0.2) {
      ++clipped;
      CHECK(row_at(h, kBeta, t) == float(0.2));
    } else {
      check_close(row_at(h, kBeta, t), unclipped, 1e-6, 1e-5);
    }
  }
  CHECK(clipped > 1);
}

TEST_CASE("diffusion.schedule sigmoid: betas = sigmoid(linspace(-6, 6, T)) * (end - start) + start") {
  for (int64_t T : {1000, 7}) {
    CAPTURE(T);
    const double b0 = 2e-4, b1 = 0.03;
    auto h = run_schedule({{"kind", "sigmoid"}, {"T", T}, {"beta_start", b0}, {"beta_end", b1}});
    auto beta = sigmoid_betas(T, b0, b1);
    auto abar = cumprod_alpha(beta);
    for (int64_t t = 0; t < T; ++t) {
      CAPTURE(t);
      check_close(row_at(h, kBeta, t), beta[t]);
      check_close(row_at(h, kAlphaBar, t), abar[t], 1e-6, 1e-5);
    }
    // Symmetric around the midpoint: beta_t + beta_{T-1-t} = b1 + b0 (sigmoid(x) + sigmoid(-x) = 1).
    check_close(row_at(h, kBeta, 1) + row_at(h, kBeta, T - 2), b1 + b0, 1e-6, 1e-5);
  }
}

TEST_CASE("diffusion.schedule separate outputs equal the table rows, betas in (0, 1)") {
  const std::vector<std::pair<std::string, ScheduleRow>> outs = {
      {"betas", kBeta},
      {"alphas", kAlpha},
      {"alpha_bar", kAlphaBar},
      {"sqrt_alpha_bar", kSqrtAlphaBar},
      {"sqrt_one_minus_alpha_bar", kSqrtOneMinusAlphaBar},
      {"posterior_variance", kPosteriorVariance}};
  for (std::string kind : {"linear", "cosine", "sigmoid"}) {
    for (int64_t T : {1, 2, 1000, 100000}) {
      CAPTURE(kind);
      CAPTURE(T);
      auto h = run_schedule({{"kind", kind}, {"T", T}});
      for (auto& [name, row] : outs) {
        CAPTURE(name);
        const Tensor& o = h.output(name);
        REQUIRE(o.shape() == Shape{T});
        bool equal = true;
        for (int64_t t = 0; t < T; ++t) equal = equal && o[t] == row_at(h, row, t);
        CHECK(equal);
      }
      bool in_range = true, decreasing = true, finite = true;
      for (int64_t t = 0; t < T; ++t) {
        const double b = row_at(h, kBeta, t);
        in_range = in_range && b > 0.0 && b < 1.0;
        if (t > 0) decreasing = decreasing && row_at(h, kAlphaBar, t) <= row_at(h, kAlphaBar, t - 1);
        for (int r = 0; r < kScheduleRows; ++r) finite = finite && std::isfinite(row_at(h, ScheduleRow(r), t));
      }
      CHECK(in_range);
      CHECK(decreasing);
      CHECK(finite);
    }
  }
}

TEST_CASE("diffusion.schedule outputs survive being overwritten (forward rewrites them)") {
  auto h = run_schedule({{"kind", "linear"}, {"T", 10}});
  auto before = h.output("table").to_vector();
  h.output("table").fill(-1.f);
  h.output("betas").fill(-1.f);
  h.forward(1);
  CHECK(h.output("table").to_vector() == before);
  CHECK(h.output("betas")[3] == before[3]);
}

TEST_CASE("diffusion.schedule rejects bad attributes naming the attribute") {
  CHECK(schedule_error({{"kind", "quadratic"}}).field == "kind");
  CHECK(schedule_error({{"T", 0}}).field == "T");
  CHECK(schedule_error({{"T", 100001}}).field == "T");
  CHECK(schedule_error({{"beta_end", 1.0}}).field == "beta_end");
  CHECK(schedule_error({{"beta_start", 0.0}}).field == "beta_start");
  CHECK(schedule_error({{"kind", "cosine"}, {"max_beta", 1.0}}).field == "max_beta");
}

TEST_CASE("diffusion.schedule zero_terminal_snr: sqrt(abar) shifted and scaled, abar_{T-1} = 0, abar_0 kept") {
  const LinearSchedule S;
  NodeHarness h("diffusion.schedule", {{"T", 1000}, {"zero_terminal_snr", true}}, {});
  h.forward();
  const Tensor& abar = h.output("alpha_bar");
  const double s0 = S.a(0), sT = S.a(999);
  for (int64_t t : {0, 1, 10, 500, 900, 998}) {
    // Lin et al. 2023, Algorithm 1, in double.
    const double want = (S.a(t) - sT) * s0 / (s0 - sT);
    CHECK(std::sqrt(double(abar[t])) == doctest::Approx(want).epsilon(1e-5));
  }
  CHECK(abar[999] == 0.f);
  CHECK(h.output("betas")[999] == 1.f);
  CHECK(h.output("sqrt_one_minus_alpha_bar")[999] == 1.f);
  CHECK(abar[0] == doctest::Approx(S.abar[0]).epsilon(1e-6));
  // Everywhere else the betas stay in (0, 1).
  for (int64_t t = 0; t < 999; ++t) {
    CHECK(h.output("betas")[t] > 0.f);
    CHECK(h.output("betas")[t] < 1.f);
  }
}
