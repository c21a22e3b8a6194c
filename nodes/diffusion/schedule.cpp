// nodes/diffusion/schedule.cpp — the DDPM noise schedule as a constant table.
//
// Betas by kind (computed in double, stored as float):
//   linear   beta_t = linspace(beta_start, beta_end, T)                  (Ho et al. 2020)
//   cosine   abar(t) = f(t)/f(0), f(t) = cos(((t/T)+s)/(1+s) * pi/2)^2,
//            beta_t = min(1 - abar(t+1)/abar(t), max_beta)               (Nichol & Dhariwal 2021)
//   sigmoid  beta_t = sigmoid(linspace(-6, 6, T)) * (beta_end - beta_start) + beta_start  (GeoDiff)
// and everything the forward process and the samplers derive from them
// (row layout in schedule_table.hpp). With zero_terminal_snr the betas are
// rescaled so that alpha_bar_{T-1} = 0 exactly (Lin et al. 2023, Algorithm 1):
// sqrt(abar) is shifted by its last value and scaled to keep its first,
//   sqrt(abar)' = (sqrt(abar) - sqrt(abar_{T-1})) sqrt(abar_0) / (sqrt(abar_0) - sqrt(abar_{T-1})),
// and beta_t = 1 - abar'_t / abar'_{t-1}. The last step is then pure noise
// (x_{T-1} = eps): train such a schedule with v (or x0) prediction, since eps
// prediction cannot recover x0 there.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// Linear grid of n points from a to b inclusive (a when n == 1), like numpy.linspace.
double linspace_at(double a, double b, int64_t n, int64_t i) {
  return n == 1 ? a : a + (b - a) * double(i) / double(n - 1);
}

// betas_t, t = 0..T-1, in double.
std::vector<double> make_betas(const std::string& kind, int64_t T, double beta_start, double beta_end, double s,
                               double max_beta) {
  std::vector<double> b(static_cast<size_t>(T));
  if (kind == "linear") {
    for (int64_t t = 0; t < T; ++t) b[t] = linspace_at(beta_start, beta_end, T, t);
  } else if (kind == "cosine") {
    auto f = [&](double t) {
      double c = std::cos((t / double(T) + s) / (1.0 + s) * std::numbers::pi / 2.0);
      return c * c;
    };
    for (int64_t t = 0; t < T; ++t) b[t] = std::min(1.0 - f(double(t + 1)) / f(double(t)), max_beta);
  } else {  // sigmoid
    for (int64_t t = 0; t < T; ++t) {
      double x = linspace_at(-6.0, 6.0, T, t);
      b[t] = 1.0 / (1.0 + std::exp(-x)) * (beta_end - beta_start) + beta_start;
    }
  }
  return b;
}

// Lin et al. 2023, Algorithm 1: betas whose alpha_bar ends at exactly 0.
std::vector<double> zero_terminal_snr(const std::vector<double>& beta) {
  const size_t T = beta.size();
  std::vector<double> s(T);
  double abar = 1.0;
  for (size_t t = 0; t < T; ++t) s[t] = std::sqrt(abar *= 1.0 - beta[t]);
  const double s0 = s[0], sT = s[T - 1];
  std::vector<double> out(T);
  double prev = 1.0;
  for (size_t t = 0; t < T; ++t) {
    const double r = (s[t] - sT) * s0 / (s0 - sT), ab = t + 1 == T ? 0.0 : r * r;
    out[t] = 1.0 - ab / prev;
    prev = ab;
  }
  return out;
}

struct Schedule final : Node {
  static Schema schema() {
    Schema s("diffusion.schedule",
             "Noise schedule of the diffusion forward process (linear, cosine or sigmoid betas) as a constant "
             "[8, T] table: rows beta, alpha = 1 - beta, alpha_bar = cumprod(alpha), sqrt(alpha_bar), "
             "sqrt(1 - alpha_bar), posterior variance beta (1 - alpha_bar_prev) / (1 - alpha_bar), alpha_bar_prev, "
             "1 / sqrt(alpha); the first six rows are also separate [T] outputs");
    s.output("table", "[8, T] schedule table (row layout in nodes/diffusion/schedule_table.hpp); "
                      "connect it to the `schedule` input of timesteps, add_noise and the samplers");
    s.output("betas", "[T] beta_t")
        .output("alphas", "[T] alpha_t = 1 - beta_t")
        .output("alpha_bar", "[T] cumulative product of alpha up to t")
        .output("sqrt_alpha_bar", "[T] sqrt(alpha_bar_t)")
        .output("sqrt_one_minus_alpha_bar", "[T] sqrt(1 - alpha_bar_t)")
        .output("posterior_variance", "[T] beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), 0 at t = 0");
    s.attr_string("kind", "linear", {"linear", "cosine", "sigmoid"},
                  "beta schedule: linear (Ho et al. 2020), cosine (Nichol & Dhariwal 2021) or sigmoid (GeoDiff)")
        .attr_int("T", 1000, 1, 100000, "number of diffusion steps")
        .attr_float("beta_start", 1e-4, 0.0, 1.0, "first beta (linear, sigmoid); must be > 0")
        .attr_float("beta_end", 0.02, 0.0, 1.0, "last beta (linear), upper asymptote (sigmoid); must be > 0 and < 1")
        .attr_float("cosine_s", 0.008, 0.0, 1.0, "offset s of the cosine schedule")
        .attr_float("max_beta", 0.999, 0.0, 1.0, "cosine: betas are clipped to at most this; must be > 0 and < 1")
        .attr_bool("zero_terminal_snr", false,
                   "rescale the betas so alpha_bar_{T-1} = 0 (Lin et al. 2023): the last step is pure noise; "
                   "train with v prediction and sample with trailing spacing");
    s.recipe("kind", "schedule").recipe("T", "T").recipe("beta_start", "beta_start").recipe("beta_end", "beta_end")
        .recipe("cosine_s", "cosine_s").recipe("max_beta", "max_beta").recipe("zero_terminal_snr", "zero_snr");
    s.shape([](graph::ShapeContext& c) {
      // kind and T are the schema's (Schema::check_attrs); the betas' open bounds are not.
      const int64_t T = c.attr_int("T");
      if (c.attr_bool("zero_terminal_snr") && T < 2)
        c.fail("zero_terminal_snr", "the zero-terminal-SNR rescale needs T >= 2, got T = " + std::to_string(T));
      for (const char* a : {"beta_start", "beta_end", "max_beta"}) {
        double v = c.attr_float(a);
        if (!(v > 0.0 && v < 1.0)) c.fail(a, std::string(a) + " must be in (0, 1), got " + std::to_string(v));
      }
      c.set_output("table", {kScheduleRows, T});
      for (auto& [name, row] : kScheduleRowOutputs) c.set_output(name, {T});
    });
    return s;
  }

  void plan(Context& ctx) override {
    const int64_t T = ctx.attr_int("T");
    std::vector<double> beta = make_betas(ctx.attr_string("kind"), T, ctx.attr_float("beta_start"),
                                          ctx.attr_float("beta_end"), ctx.attr_float("cosine_s"),
                                          ctx.attr_float("max_beta"));
    if (ctx.attr_bool("zero_terminal_snr")) beta = zero_terminal_snr(beta);
    table_ = schedule_table_from_betas(beta);
    write_schedule_outputs(ctx, table_);
  }

  void forward(Context& ctx) override { write_schedule_outputs(ctx, table_); }

 private:
  std::vector<float> table_;
};

NOISEFLOW_REGISTER_NODE(Schedule);

}  // namespace
}  // namespace noiseflow::nodes
