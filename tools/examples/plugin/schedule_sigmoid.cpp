// tools/examples/plugin/schedule_sigmoid.cpp — an example plugin: a node type in a library of its own,
// loaded at run time with `noiseflow --plugin libnoiseflow_example_plugin.so run ...`.
//
// example.schedule_sigmoid is the sigmoid noise schedule of Jabri, Fleet & Chen 2022 ("Scalable Adaptive
// Computation for Iterative Generation", the gamma function of their Algorithm; also lucidrains'
// sigmoid_beta_schedule): with s(x) = 1 / (1 + e^-x),
//
//   g(u)        = (s(end / tau) - s((u (end - start) + start) / tau)) / (s(end / tau) - s(start / tau)),  u in [0, 1]
//   beta_t      = min(1 - g((t + 1) / T) / g(t / T), max_beta),  t = 0 .. T-1
//   alpha_bar_t = prod_{s <= t} (1 - beta_s)   (= g((t + 1) / T) wherever no beta was clipped)
//
// g falls from 1 to 0: alpha_bar_{T-1} would be 0, so the last beta is clipped to max_beta. Its outputs are
// laid out like diffusion.schedule's (the [8, T] table of nodes/diffusion/schedule_table.hpp and the six [T]
// rows, filled from the betas and written by that header's schedule_table_from_betas and
// write_schedule_outputs, as diffusion.schedule's are), so add_noise, the timestep samplers and every sampler
// take it unchanged.
//
// The plugin contract (docs/NOTES.md, "Plugins and embedding"): the library registers its node types with
// NOISEFLOW_REGISTER_NODE, which runs when it is loaded; it links no noiseflow library, its references to
// the registry and runtime resolve against the noiseflow executable (ENABLE_EXPORTS).
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"

namespace {

using namespace noiseflow::runtime;
using namespace noiseflow::nodes::diffusion;

// 3, 0.5, 1e-09: a number as an error message shows it.
std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct SigmoidParams {
  int64_t T;
  double start, end, tau, max_beta;
};

// g(u) of the header, clamped to [0, 1] against rounding.
double gamma_of(const SigmoidParams& p, double u) {
  const double v_start = sigmoid(p.start / p.tau), v_end = sigmoid(p.end / p.tau);
  const double g = (v_end - sigmoid((u * (p.end - p.start) + p.start) / p.tau)) / (v_end - v_start);
  return std::clamp(g, 0.0, 1.0);
}

// beta_t, t = 0..T-1, in double.
std::vector<double> make_betas(const SigmoidParams& p) {
  std::vector<double> b(size_t(p.T));
  for (int64_t t = 0; t < p.T; ++t) {
    const double g0 = gamma_of(p, double(t) / double(p.T)), g1 = gamma_of(p, double(t + 1) / double(p.T));
    b[size_t(t)] = g0 > 0.0 ? std::min(1.0 - g1 / g0, p.max_beta) : p.max_beta;
  }
  return b;
}

struct ScheduleSigmoid final : Node {
  static noiseflow::graph::Schema schema() {
    noiseflow::graph::Schema s(
        "example.schedule_sigmoid",
        "Sigmoid noise schedule (Jabri et al. 2022): alpha_bar follows g(u) = (s(end/tau) - s((u (end - start) + "
        "start)/tau)) / (s(end/tau) - s(start/tau)) at u = (t+1)/T, s the logistic sigmoid; beta_t = min(1 - "
        "g((t+1)/T) / g(t/T), max_beta). Outputs as diffusion.schedule: the [8, T] table and six [T] rows. "
        "A node of the example plugin (tools/examples/plugin)");
    s.output("table", "[8, T] schedule table (rows as diffusion.schedule's); connect it to the `schedule` input of "
                      "timesteps, add_noise and the samplers");
    s.output("betas", "[T] beta_t")
        .output("alphas", "[T] alpha_t = 1 - beta_t")
        .output("alpha_bar", "[T] cumulative product of alpha up to t")
        .output("sqrt_alpha_bar", "[T] sqrt(alpha_bar_t)")
        .output("sqrt_one_minus_alpha_bar", "[T] sqrt(1 - alpha_bar_t)")
        .output("posterior_variance", "[T] beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), 0 at t = 0");
    s.attr_int("T", 1000, 1, 100000, "number of diffusion steps")
        .attr_float("start", -3.0, -20.0, 20.0, "the sigmoid's input at u = 0 (before dividing by tau); below end")
        .attr_float("end", 3.0, -20.0, 20.0, "the sigmoid's input at u = 1 (before dividing by tau); above start")
        .attr_float("tau", 1.0, 0.0, 100.0,
                    "temperature: larger is closer to linear in alpha_bar, smaller is steeper in the middle; > 0")
        .attr_float("max_beta", 0.999, 0.0, 1.0, "betas are clipped to at most this (the last one always is); in (0, 1)");
    // Part of how a model is trained: a checkpoint records them, a pipeline loading it is checked against them.
    s.recipe("T", "T").recipe("start", "sigmoid_start").recipe("end", "sigmoid_end").recipe("tau", "sigmoid_tau")
        .recipe("max_beta", "max_beta");
    s.shape([](noiseflow::graph::ShapeContext& c) {
      // The ranges are the schema's (Schema::check_attrs); the open bounds and the relations are not.
      const double start = c.attr_float("start"), end = c.attr_float("end"), tau = c.attr_float("tau");
      const double max_beta = c.attr_float("max_beta");
      if (!(start < end))
        c.fail("end", "end must be greater than start, got start = " + num(start) +
                          ", end = " + num(end));
      if (!(tau > 0.0)) c.fail("tau", "tau must be > 0, got " + num(tau));
      if (!(max_beta > 0.0 && max_beta < 1.0))
        c.fail("max_beta", "max_beta must be in (0, 1), got " + num(max_beta));
      if (!(sigmoid(end / tau) - sigmoid(start / tau) > 1e-9))
        c.fail("tau", "the sigmoid is flat between start / tau = " + num(start / tau) +
                          " and end / tau = " + num(end / tau) + " (bring start and end closer to 0)");
      // A sigmoid saturated over the whole grid leaves steps without noise (beta_t = 0): refused, naming
      // the first such step, rather than a table with 0/0 posterior variances.
      const int64_t T = c.attr_int("T");
      const auto betas = make_betas({T, start, end, tau, max_beta});
      for (int64_t t = 0; t < T; ++t)
        if (!(betas[size_t(t)] > 0.0))
          c.fail("tau", "the sigmoid saturates: beta_" + std::to_string(t) + " = 0 with start / tau = " +
                            num(start / tau) + " and end / tau = " + num(end / tau) +
                            " (raise tau or bring start and end closer to 0)");
      c.set_output("table", {kScheduleRows, T});
      for (auto& [name, row] : kScheduleRowOutputs) c.set_output(name, {T});
    });
    return s;
  }

  void plan(Context& ctx) override {
    const int64_t T = ctx.attr_int("T");
    const std::vector<double> beta = make_betas(
        {T, ctx.attr_float("start"), ctx.attr_float("end"), ctx.attr_float("tau"), ctx.attr_float("max_beta")});
    table_ = schedule_table_from_betas(beta);
    write_schedule_outputs(ctx, table_);
  }

  void forward(Context& ctx) override { write_schedule_outputs(ctx, table_); }

 private:
  std::vector<float> table_;
};

NOISEFLOW_REGISTER_NODE(ScheduleSigmoid);

}  // namespace
