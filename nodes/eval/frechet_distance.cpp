// nodes/eval/frechet_distance.cpp — the Fréchet distance between two sets of feature vectors
// (Heusel et al. 2017's FID, here over the penultimate features of the project's own digit
// classifier), and the predicted-class histogram of the samples with its entropy:
//
//   FD = |mu_1 - mu_2|^2 + tr(C_1 + C_2 - 2 (C_1^1/2 C_2 C_1^1/2)^1/2)
//
// with unbiased covariances (divided by N - 1, as numpy.cov). The matrix square roots come from
// Eigen's self-adjoint eigensolver: C_1^1/2 = V diag(sqrt(max(l, 0))) V', and the trace of the
// square root of the symmetric PSD product is the sum of the square roots of its eigenvalues.
// All in double.
#include <Eigen/Dense>
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/node.hpp"
#include "runtime/node_files.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Stats {
  Eigen::VectorXd mean;
  Eigen::MatrixXd cov;
};

Stats stats_of(const Tensor& f) {
  const int64_t n = f.dim(0), d = f.dim(1);
  Eigen::MatrixXd x(n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) x(i, j) = f[i * d + j];
  Stats s;
  s.mean = x.colwise().mean();
  const Eigen::MatrixXd c = x.rowwise() - s.mean.transpose();
  s.cov = (c.transpose() * c) / double(n - 1);
  return s;
}

/// Square root of a symmetric PSD matrix (negative eigenvalues from rounding clamped to 0).
Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& m) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m);
  const Eigen::VectorXd l = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return es.eigenvectors() * l.asDiagonal() * es.eigenvectors().transpose();
}

/// The Fréchet distance between two Gaussians.
double frechet_distance(const Eigen::VectorXd& mu1, const Eigen::MatrixXd& c1, const Eigen::VectorXd& mu2,
                        const Eigen::MatrixXd& c2) {
  const Eigen::MatrixXd s1 = sqrt_psd(c1);
  const Eigen::MatrixXd m = s1 * c2 * s1;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es((m + m.transpose()) / 2.0, Eigen::EigenvaluesOnly);
  const double tr_sqrt = es.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  return (mu1 - mu2).squaredNorm() + c1.trace() + c2.trace() - 2.0 * tr_sqrt;
}

struct FrechetDistance final : Node {
  static Schema schema() {
    return Schema("eval.frechet_distance",
                  "Frechet distance between the feature vectors of samples and of reference data: |mu1 - mu2|^2 + "
                  "tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2) (FID's formula; covariance square roots by a self-adjoint "
                  "eigensolver, in double); with the samples' logits also the predicted-class histogram and its "
                  "entropy. Recorded as run scalars fd and class_entropy; optionally written as a JSON report")
        .input("features", "[N, F] features of the samples (N >= 2)")
        .input("reference", "[M, F] features of the reference data (M >= 2)")
        .optional_input("logits", "[N, C] the classifier's logits for the samples: histogram of the argmax")
        .optional_input("labels", "[N] the class each sample was asked to be (conditional sampling): with "
                                  "reference_labels, the FD per class; with logits, the share classified as asked")
        .optional_input("reference_labels", "[M] the class of each reference vector (with labels)")
        .output("fd", "[1] the Frechet distance")
        .output("entropy", "[1] entropy (nats) of the predicted-class histogram; 0 without logits")
        .output("histogram", "[C] share of the samples predicted as each class ([1] zeros without logits)")
        .attr_string("path", "", {}, "JSON report to write (atomically), e.g. runs/mnist/fd.json; empty: none")
        .attr_string("label", "", {}, "a name for the report (e.g. the sampler and step count)")
        .sink()
        .shape([](graph::ShapeContext& c) {
          const auto& f = c.input_rank("features", 2);
          const auto& r = c.input_rank("reference", 2);
          if (f[1] != r[1])
            c.fail("reference", "reference features have " + std::to_string(r[1]) + " dimensions, the samples' " +
                                    std::to_string(f[1]));
          if (f[0] < 2) c.fail("features", "need at least 2 samples for a covariance, got " + std::to_string(f[0]));
          if (r[0] < 2) c.fail("reference", "need at least 2 vectors for a covariance, got " + std::to_string(r[0]));
          int64_t classes = 1;
          if (c.has_input("logits")) {
            const auto& l = c.input_rank("logits", 2);
            if (l[0] != f[0])
              c.fail("logits", "logits for " + std::to_string(l[0]) + " samples, features for " + std::to_string(f[0]));
            classes = l[1];
          }
          if (c.has_input("labels") != c.has_input("reference_labels"))
            c.fail(c.has_input("labels") ? "reference_labels" : "labels",
                   "labels and reference_labels go together (the per-class FD needs both)");
          if (c.has_input("labels") && c.input("labels") != Shape{f[0]})
            c.fail("labels", "expected one label per sample, [" + std::to_string(f[0]) + "], got " +
                                 graph::shape_str(c.input("labels")));
          if (c.has_input("reference_labels") && c.input("reference_labels") != Shape{r[0]})
            c.fail("reference_labels", "expected one label per reference vector, [" + std::to_string(r[0]) +
                                           "], got " + graph::shape_str(c.input("reference_labels")));
          c.set_output("fd", {1});
          c.set_output("entropy", {1});
          c.set_output("histogram", {classes});
        });
  }

  void forward(Context& ctx) override {
    const Tensor features = ctx.input("features").to_plain(), reference = ctx.input("reference").to_plain();
    for (const Tensor* t : {&features, &reference})
      for (int64_t i = 0; i < t->numel(); ++i)
        if (!std::isfinite((*t)[i]))
          ctx.fail(t == &features ? "features" : "reference",
                   "feature " + std::to_string(i) + " is not finite: the samples or the classifier hold NaN or Inf");
    const Stats a = stats_of(features), b = stats_of(reference);
    const double fd = frechet_distance(a.mean, a.cov, b.mean, b.cov);
    ctx.output("fd")[0] = float(fd);

    Tensor& hist = ctx.output("histogram");
    hist.fill(0.f);
    double entropy = 0.0;
    if (ctx.has_input("logits")) {
      const Tensor logits = ctx.input("logits").to_plain();
      const int64_t n = logits.dim(0), C = logits.dim(1);
      std::vector<int64_t> count(size_t(C), 0);
      for (int64_t i = 0; i < n; ++i) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; ++c)
          if (logits[i * C + c] > logits[i * C + best]) best = c;
        ++count[size_t(best)];
      }
      for (int64_t c = 0; c < C; ++c) {
        const double p = double(count[size_t(c)]) / double(n);
        hist[c] = float(p);
        if (p > 0.0) entropy -= p * std::log(p);
      }
    }
    ctx.output("entropy")[0] = float(entropy);
    nlohmann::json per_class = nlohmann::json::array();
    double asked = -1;  // share of the samples classified as the class they were asked to be
    if (ctx.has_input("labels")) per_class = class_report(ctx, features, reference, asked);
    if (ctx.run_state()) {
      ctx.run_state()->scalar("fd", ctx.tick(), fd);
      ctx.run_state()->scalar("class_entropy", ctx.tick(), entropy);
      if (asked >= 0) ctx.run_state()->scalar("accuracy", ctx.tick(), asked);
    }
    if (!ctx.attr_string("path").empty())
      write_report(ctx, fd, entropy, features.dim(0), reference.dim(0), hist, per_class, asked);
  }

 private:
  /// Per class k: the FD between the samples asked to be k and the reference vectors of class k (classes with
  /// fewer than 2 of either are left out), and with logits the share of those samples classified as k.
  /// `asked` gets the share over all samples (-1 without logits).
  nlohmann::json class_report(Context& ctx, const Tensor& features, const Tensor& reference, double& asked) const {
    const Tensor labels = ctx.input("labels").to_plain(), ref_labels = ctx.input("reference_labels").to_plain();
    const int64_t n = features.dim(0), m = reference.dim(0), d = features.dim(1);
    const bool logits = ctx.has_input("logits");
    const Tensor lg = logits ? ctx.input("logits").to_plain() : Tensor();
    const int64_t C = logits ? lg.dim(1) : 0;
    int64_t top = 0;
    for (int64_t i = 0; i < n; ++i) top = std::max<int64_t>(top, int64_t(labels[i]));
    nlohmann::json out = nlohmann::json::array();
    int64_t right = 0;
    for (int64_t k = 0; k <= top; ++k) {
      std::vector<int64_t> si, ri;
      for (int64_t i = 0; i < n; ++i)
        if (int64_t(labels[i]) == k) si.push_back(i);
      for (int64_t i = 0; i < m; ++i)
        if (int64_t(ref_labels[i]) == k) ri.push_back(i);
      if (si.empty()) continue;
      nlohmann::json e{{"class", k}, {"n", si.size()}, {"reference_n", ri.size()}};
      if (logits) {
        int64_t hits = 0;
        for (int64_t i : si) {
          int64_t best = 0;
          for (int64_t c = 1; c < C; ++c)
            if (lg[i * C + c] > lg[i * C + best]) best = c;
          hits += best == k;
        }
        right += hits;
        e["accuracy"] = double(hits) / double(si.size());
      }
      if (si.size() >= 2 && ri.size() >= 2) {
        auto pick = [&](const Tensor& src, const std::vector<int64_t>& rows) {
          Tensor t({int64_t(rows.size()), d});
          for (size_t r = 0; r < rows.size(); ++r)
            std::memcpy(t.data() + int64_t(r) * d, src.data() + rows[r] * d, size_t(d) * sizeof(float));
          return t;
        };
        const Stats a = stats_of(pick(features, si)), b = stats_of(pick(reference, ri));
        e["fd"] = frechet_distance(a.mean, a.cov, b.mean, b.cov);
      }
      out.push_back(e);
    }
    asked = logits ? double(right) / double(n) : -1.0;
    return out;
  }

  void write_report(Context& ctx, double fd, double entropy, int64_t n, int64_t m, const Tensor& hist,
                    const nlohmann::json& per_class, double asked) const {
    nlohmann::json j{{"label", ctx.attr_string("label")}, {"tick", ctx.tick()}, {"fd", fd},
                     {"class_entropy", entropy}, {"n", n}, {"reference_n", m}};
    if (!per_class.empty()) j["per_class"] = per_class;
    if (asked >= 0) j["accuracy"] = asked;
    if (ctx.has_input("logits")) {
      std::vector<double> h(hist.data(), hist.data() + hist.numel());
      j["class_histogram"] = h;
    }
    const std::filesystem::path path = ctx.attr_string("path");
    runtime::write_file_atomically(ctx, path, j.dump(2) + "\n");
    if (ctx.run_state()) ctx.run_state()->artifact("metrics", path.string(), ctx.id());
  }
};

NOISEFLOW_REGISTER_NODE(FrechetDistance);

}  // namespace
}  // namespace noiseflow::nodes
