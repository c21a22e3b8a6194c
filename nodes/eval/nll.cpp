// nodes/eval/nll.cpp — the variational bound in bits per dimension, summed over the ticks of a bound
// evaluation (diffusion.vlb_timesteps -> diffusion.add_noise -> net -> diffusion.vlb_terms -> here):
//
//   mode all      bound_i = L_T,i + sum over the T ticks of the term at t = T-1-tick
//   mode sampled  bound_i = L_T,i + mean over the ticks of T x the term at a uniform t (unbiased)
//
// per sample i; the reported bound is the mean over the samples, with its standard error sd / sqrt(N)
// (over the data and, sampled, the draws of t). Mode all also reports the mean term at every t and the
// split into L_T, sum of L_{t-1} (t >= 1) and L_0. The report is JSON, written after the last tick.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodes/diffusion/schedule_table.hpp"
#include "runtime/node.hpp"
#include "runtime/node_files.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Nll final : Node {
  static Schema schema() {
    return Schema("eval.nll",
                  "Accumulates diffusion.vlb_terms over the ticks into the variational bound on -log p(x0) in "
                  "bits per dimension, per sample: mode all sums the T terms (t = T-1-tick), mode sampled averages "
                  "T x the term at uniform t (an unbiased estimate); reports the mean over the samples with its "
                  "standard error and, mode all, the terms by t and the split L_T + sum L_{t-1} + L_0")
        .input("terms", "[N] diffusion.vlb_terms.terms of this tick")
        .input("prior", "[N] diffusion.vlb_terms.prior")
        .input("t", "[N] the timesteps of this tick (diffusion.vlb_timesteps.t)")
        .input("schedule", "[8, T] schedule table from diffusion.schedule")
        .output("bpd", "[1] the running estimate of the bound, bits per dimension")
        .attr_string("mode", "all", {"all", "sampled"}, "as diffusion.vlb_timesteps' mode")
        .attr_string("path", "", {}, "JSON report to write (atomically) after the last tick; empty: none")
        .attr_string("label", "", {}, "copied into the report")
        .shape([](graph::ShapeContext& c) {
          const graph::Shape& terms = c.input("terms");
          if (terms.size() != 1) c.fail("terms", "expected [N], got " + graph::shape_str(terms));
          for (const char* name : {"prior", "t"})
            if (c.input(name) != terms)
              c.fail(name, std::string("expected ") + graph::shape_str(terms) + " like terms, got " +
                               graph::shape_str(c.input(name)));
          diffusion::schedule_steps(c);
          c.set_output("bpd", {1});
        });
  }

  void plan(Context& ctx) override {
    all_ = ctx.attr_string("mode") == "all";
    const int64_t n = ctx.input("terms").numel(), T = ctx.input("schedule").dim(1);
    sum_.assign(size_t(n), 0.0);
    prior_.assign(size_t(n), 0.0);
    by_t_.assign(size_t(T), 0.0);
    seen_t_.assign(size_t(T), 0);
  }

  void forward(Context& ctx) override {
    const Tensor& terms = ctx.input("terms");
    const Tensor& prior = ctx.input("prior");
    const Tensor& t = ctx.input("t");
    const int64_t n = terms.numel(), T = int64_t(by_t_.size());
    const double scale = all_ ? 1.0 : double(T);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = diffusion::timestep_at(ctx, t, i, T);
      sum_[size_t(i)] += scale * double(terms[i]);
      prior_[size_t(i)] = prior[i];
      by_t_[size_t(k)] += terms[i];
      seen_t_[size_t(k)] += 1;
    }
    ++ticks_;
    double mean = 0, sd = 0;
    summary(mean, sd);
    ctx.output("bpd")[0] = float(mean);
    if (!ctx.last_tick()) return;
    if (RunState* rs = ctx.run_state()) rs->scalar("bpd", ctx.tick(), mean);
    if (!ctx.attr_string("path").empty()) write_report(ctx, mean, sd);
  }

 private:
  // Mean over the samples of their bound, and its standard error.
  void summary(double& mean, double& se) const {
    const size_t n = sum_.size();
    std::vector<double> b(n);
    for (size_t i = 0; i < n; ++i) b[i] = prior_[i] + sum_[i] / (all_ ? 1.0 : double(ticks_));
    mean = 0;
    for (double v : b) mean += v;
    mean /= double(n);
    double ss = 0;
    for (double v : b) ss += (v - mean) * (v - mean);
    se = n > 1 ? std::sqrt(ss / double(n - 1) / double(n)) : 0.0;
  }

  void write_report(Context& ctx, double mean, double se) const {
    const size_t n = sum_.size();
    double prior = 0;
    for (double v : prior_) prior += v;
    prior /= double(n);
    nlohmann::json j{{"label", ctx.attr_string("label")}, {"mode", all_ ? "all" : "sampled"},
                     {"bpd", mean},  {"standard_error", se}, {"n", n}, {"ticks", ticks_},
                     {"T", by_t_.size()}, {"prior_bpd", prior}};
    if (all_) {
      std::vector<double> per_t(by_t_.size(), 0.0);
      double kl = 0;
      for (size_t k = 0; k < by_t_.size(); ++k) {
        per_t[k] = seen_t_[k] ? by_t_[k] / double(seen_t_[k]) : 0.0;
        if (k >= 1) kl += per_t[k];
      }
      j["decoder_bpd"] = per_t[0];
      j["kl_sum_bpd"] = kl;
      j["terms_by_t"] = per_t;
    }
    const std::filesystem::path path = ctx.attr_string("path");
    write_file_atomically(ctx, path, j.dump(2) + "\n");
    if (ctx.run_state()) ctx.run_state()->artifact("metrics", path.string(), ctx.id());
  }

  bool all_ = true;
  int64_t ticks_ = 0;
  std::vector<double> sum_, prior_, by_t_;
  std::vector<int64_t> seen_t_;
};

NOISEFLOW_REGISTER_NODE(Nll);

}  // namespace
}  // namespace noiseflow::nodes
