// nodes/eval/frechet_distance.cpp — the Fréchet distance between two sets of feature vectors
// (Heusel et al. 2017's FID, here over the penultimate features of the project's own digit
// classifier), and the predicted-class histogram of the samples with its entropy:
//
//   FD = |mu_1 - mu_2|^2 + tr(C_1 + C_2 - 2 (C_1^1/2 C_2 C_1^1/2)^1/2)
//
// with unbiased covariances (divided by N - 1, as numpy.cov). The matrix square roots come from
// Eigen's self-adjoint eigensolver: C_1^1/2 = V diag(sqrt(max(l, 0))) V', and the trace of the
// square root of the symmetric PSD product is the sum of the square roots of its eigenvalues.
// All in double. With scale = whiten every metric is computed on features whitened by the reference's
// mean and covariance (see whiten()).
//
// Beside it, with their uncertainty (each can be switched off by its attribute = 0):
// - fd_se: the standard deviation of FD over `bootstrap` resamplings (with replacement) of both sets;
// - KID (Binkowski et al. 2018): the unbiased MMD^2 with the cubic kernel k(x, y) = (x.y / F + 1)^3 over all
//   pairs (by default of the whitened features: kid_whiten), and kid_se = std / sqrt(B) of the same estimate on B = `kid_blocks` disjoint blocks of each set;
// - precision and recall (Kynkaenniemi et al. 2019) on the first min(N, M) vectors of each set: a sample is
//   "precise" when it lies within the distance of some reference vector to that vector's `pr_k`-th nearest
//   reference neighbour, a reference vector "recalled" when likewise inside some sample's ball; each with its
//   binomial standard error sqrt(p (1 - p) / n).
#include <Eigen/Dense>
#include <cerrno>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
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

Eigen::MatrixXd to_matrix(const Tensor& f) {
  const int64_t rows = f.dim(0), d = f.dim(1);
  Eigen::MatrixXd x(rows, d);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < d; ++j) x(i, j) = f[i * d + j];
  return x;
}

Stats stats_rows(const Eigen::MatrixXd& x) {
  Stats s;
  s.mean = x.colwise().mean();
  const Eigen::MatrixXd c = x.rowwise() - s.mean.transpose();
  s.cov = (c.transpose() * c) / double(x.rows() - 1);
  return s;
}

/// Square root of a symmetric PSD matrix (negative eigenvalues from rounding clamped to 0).
Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& m) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m);
  const Eigen::VectorXd l = es.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return es.eigenvectors() * l.asDiagonal() * es.eigenvectors().transpose();
}

/// Maps both sets into the reference's whitened coordinates, (v - mu_ref) V diag(1 / sqrt(l + floor)) with
/// C_ref = V diag(l) V' and floor = 1e-2 mean(l) + 1e-12 (dead features, a rank-deficient covariance and
/// an outlier along a direction the reference barely spans stay bounded). Every distance is then in units of
/// the reference's own spread, the same (up to the floor) for any invertible linear
/// map of the features. (A floor of 1e-3 let two similar outliers among 2000 real digits dominate KID.)
void whiten(Eigen::MatrixXd& x, Eigen::MatrixXd& y) {
  const Stats r = stats_rows(y);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(r.cov);
  const Eigen::VectorXd l = es.eigenvalues().cwiseMax(0.0);
  const double floor = 1e-2 * l.mean() + 1e-12;
  const Eigen::MatrixXd w = es.eigenvectors() * (l.array() + floor).rsqrt().matrix().asDiagonal();
  x = (x.rowwise() - r.mean.transpose()) * w;
  y = (y.rowwise() - r.mean.transpose()) * w;
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

/// Standard deviation of FD over `reps` bootstrap resamplings of both sets (a fixed seed: reproducible).
double fd_bootstrap_sd(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, int64_t reps) {
  if (reps < 2) return 0.0;
  std::mt19937_64 rng(0x5eedfdULL);
  std::vector<double> v;
  auto resample = [&](const Eigen::MatrixXd& x) {
    std::uniform_int_distribution<Eigen::Index> pick(0, x.rows() - 1);
    Eigen::MatrixXd y(x.rows(), x.cols());
    for (Eigen::Index i = 0; i < x.rows(); ++i) y.row(i) = x.row(pick(rng));
    return y;
  };
  for (int64_t r = 0; r < reps; ++r) {
    const Stats sa = stats_rows(resample(a)), sb = stats_rows(resample(b));
    v.push_back(frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov));
  }
  double m = 0, q = 0;
  for (double x : v) m += x / double(v.size());
  for (double x : v) q += (x - m) * (x - m);
  return std::sqrt(q / double(v.size() - 1));
}

/// Sum of k(x_i, y_j) = (x_i.y_j / F + 1)^3 over all pairs, without the diagonal when `same` (x is y).
/// In row blocks, so large sets need no N x M matrix.
double kernel_sum(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, bool same) {
  const double inv_d = 1.0 / double(x.cols());
  double total = 0;
  constexpr Eigen::Index kRows = 256;
  for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += kRows) {
    const Eigen::Index rows = std::min(kRows, x.rows() - r0);
    Eigen::MatrixXd k = (x.middleRows(r0, rows) * y.transpose()).array() * inv_d + 1.0;
    k = k.array().cube();
    if (same)
      for (Eigen::Index i = 0; i < rows; ++i) k(i, r0 + i) = 0.0;
    total += k.sum();
  }
  return total;
}

/// The unbiased MMD^2 estimate with the cubic polynomial kernel (KID).
double kid_estimate(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y) {
  const double n = double(x.rows()), m = double(y.rows());
  return kernel_sum(x, x, true) / (n * (n - 1)) + kernel_sum(y, y, true) / (m * (m - 1)) -
         2.0 * kernel_sum(x, y, false) / (n * m);
}

/// KID's standard error: std / sqrt(B) of the estimates on B disjoint blocks (rows i with i % B == b).
double kid_block_se(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, int64_t blocks) {
  std::vector<double> v;
  for (int64_t b = 0; b < blocks; ++b) {
    auto rows_of = [&](const Eigen::MatrixXd& z) {
      std::vector<Eigen::Index> idx;
      for (Eigen::Index i = b; i < z.rows(); i += blocks) idx.push_back(i);
      Eigen::MatrixXd out(Eigen::Index(idx.size()), z.cols());
      for (size_t i = 0; i < idx.size(); ++i) out.row(Eigen::Index(i)) = z.row(idx[i]);
      return out;
    };
    v.push_back(kid_estimate(rows_of(x), rows_of(y)));
  }
  double m = 0, q = 0;
  for (double e : v) m += e / double(v.size());
  for (double e : v) q += (e - m) * (e - m);
  return std::sqrt(q / double(v.size() - 1)) / std::sqrt(double(v.size()));
}

/// Squared Euclidean distances between the rows of x[r0, r0 + rows) and all rows of y.
Eigen::MatrixXd sq_dist(const Eigen::MatrixXd& x, Eigen::Index r0, Eigen::Index rows, const Eigen::MatrixXd& y,
                        const Eigen::VectorXd& yy) {
  const Eigen::VectorXd xx = x.middleRows(r0, rows).rowwise().squaredNorm();
  Eigen::MatrixXd d = -2.0 * (x.middleRows(r0, rows) * y.transpose());
  d.colwise() += xx;
  d.rowwise() += yy.transpose();
  return d.cwiseMax(0.0);
}

/// The squared distance from each row of x to its k-th nearest other row.
Eigen::VectorXd knn_radii(const Eigen::MatrixXd& x, int64_t k) {
  const Eigen::VectorXd xx = x.rowwise().squaredNorm();
  Eigen::VectorXd r(x.rows());
  constexpr Eigen::Index kRows = 256;
  std::vector<double> row;
  for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += kRows) {
    const Eigen::Index rows = std::min(kRows, x.rows() - r0);
    const Eigen::MatrixXd d = sq_dist(x, r0, rows, x, xx);
    for (Eigen::Index i = 0; i < rows; ++i) {
      row.clear();
      for (Eigen::Index j = 0; j < x.rows(); ++j)
        if (j != r0 + i) row.push_back(d(i, j));
      std::nth_element(row.begin(), row.begin() + (k - 1), row.end());
      r(r0 + i) = row[size_t(k - 1)];
    }
  }
  return r;
}

/// The share of the rows of x inside the k-NN ball of some row of y (balls from y's own k-NN radii).
double coverage(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, const Eigen::VectorXd& radii) {
  const Eigen::VectorXd yy = y.rowwise().squaredNorm();
  int64_t inside = 0;
  constexpr Eigen::Index kRows = 256;
  for (Eigen::Index r0 = 0; r0 < x.rows(); r0 += kRows) {
    const Eigen::Index rows = std::min(kRows, x.rows() - r0);
    const Eigen::MatrixXd d = sq_dist(x, r0, rows, y, yy);
    for (Eigen::Index i = 0; i < rows; ++i) {
      bool in = false;
      for (Eigen::Index j = 0; j < y.rows() && !in; ++j) in = d(i, j) <= radii(j);
      inside += in;
    }
  }
  return double(inside) / double(x.rows());
}

struct Extras {
  double fd_se = 0, kid = 0, kid_se = 0, precision = 0, recall = 0, precision_se = 0, recall_se = 0;
  int64_t pr_n = 0;       ///< vectors of each set precision and recall used; 0: not computed
  int64_t kid_blocks = 0;  ///< blocks KID's standard error used; under 2: no KID
};

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
        .output("kid", "[1] the kernel inception distance (unbiased MMD^2, cubic kernel); 0 when kid_blocks = 0")
        .output("precision", "[1] share of samples within the reference's k-NN balls; 0 when pr_k = 0")
        .output("recall", "[1] share of reference vectors within the samples' k-NN balls; 0 when pr_k = 0")
        .attr_int("bootstrap", 20, 0, 10000,
                  "bootstrap resamplings of both sets for FD's standard deviation (fd_se); 0: none")
        .attr_int("kid_blocks", 10, 0, 1000,
                  "disjoint blocks for KID's standard error, at most; fewer when a set has under 2 vectors a block "
                  "(no KID under 2 blocks); 0: no KID")
        .attr_int("pr_k", 3, 0, 1000,
                  "k of the k-NN balls of precision and recall (Kynkaanniemi et al. use 3); 0, or sets of k vectors "
                  "or fewer: none")
        .attr_bool("kid_whiten", true,
                   "KID on whitened features (as scale = whiten) whatever `scale` is: its cubic kernel (x.y / F + 1)^3 "
                   "needs features of unit scale, and on raw ReLU features its standard error exceeds its value")
        .attr_string("scale", "none", {"none", "whiten"},
                     "none: the features as they are; whiten: every metric (FD, precision and recall, the per-class FD; "
                     "KID always unless kid_whiten is false) on features whitened by the reference's mean and covariance (eigenvalues floored "
                     "at 1e-2 of their mean): distances in units of the reference's spread, the same for any "
                     "invertible linear map of the features")
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
          if (c.attr_int("kid_blocks") == 1)
            c.fail("kid_blocks", "need 0 (no KID) or at least 2 blocks for a standard error");
          c.set_output("fd", {1});
          c.set_output("entropy", {1});
          c.set_output("kid", {1});
          c.set_output("precision", {1});
          c.set_output("recall", {1});
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
    Eigen::MatrixXd x = to_matrix(features), y = to_matrix(reference);  // once, for every metric
    if (ctx.attr_string("scale") == "whiten") whiten(x, y);
    const Stats a = stats_rows(x), b = stats_rows(y);
    const double fd = frechet_distance(a.mean, a.cov, b.mean, b.cov);
    ctx.output("fd")[0] = float(fd);
    const Extras ex = extras(ctx, x, y);
    ctx.output("kid")[0] = float(ex.kid);
    ctx.output("precision")[0] = float(ex.precision);
    ctx.output("recall")[0] = float(ex.recall);

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
    if (ctx.has_input("labels")) per_class = class_report(ctx, x, y, asked);
    if (ctx.run_state()) {
      ctx.run_state()->scalar("fd", ctx.tick(), fd);
      ctx.run_state()->scalar("class_entropy", ctx.tick(), entropy);
      if (asked >= 0) ctx.run_state()->scalar("accuracy", ctx.tick(), asked);
      if (ctx.attr_int("bootstrap") > 1) ctx.run_state()->scalar("fd_se", ctx.tick(), ex.fd_se);
      if (ex.kid_blocks > 1) {
        ctx.run_state()->scalar("kid", ctx.tick(), ex.kid);
        ctx.run_state()->scalar("kid_se", ctx.tick(), ex.kid_se);
      }
      if (ex.pr_n > 0) {
        ctx.run_state()->scalar("precision", ctx.tick(), ex.precision);
        ctx.run_state()->scalar("recall", ctx.tick(), ex.recall);
      }
    }
    if (!ctx.attr_string("path").empty())
      write_report(ctx, fd, entropy, features.dim(0), reference.dim(0), hist, per_class, asked, ex);
  }

 private:
  /// FD's bootstrap deviation, KID with its standard error, precision and recall, as the attributes ask.
  static Extras extras(Context& ctx, const Eigen::MatrixXd& x, const Eigen::MatrixXd& y) {
    Extras ex;
    ex.fd_se = fd_bootstrap_sd(x, y, ctx.attr_int("bootstrap"));
    ex.kid_blocks = std::min<int64_t>(ctx.attr_int("kid_blocks"), std::min(x.rows(), y.rows()) / 2);
    if (ex.kid_blocks > 1) {
      Eigen::MatrixXd xk = x, yk = y;
      if (ctx.attr_bool("kid_whiten") && ctx.attr_string("scale") != "whiten") whiten(xk, yk);
      ex.kid = kid_estimate(xk, yk);
      ex.kid_se = kid_block_se(xk, yk, ex.kid_blocks);
    }
    if (const int64_t k = ctx.attr_int("pr_k"); k > 0 && std::min(x.rows(), y.rows()) > k) {
      ex.pr_n = std::min(x.rows(), y.rows());
      const Eigen::MatrixXd xs = x.topRows(ex.pr_n), ys = y.topRows(ex.pr_n);
      ex.precision = coverage(xs, ys, knn_radii(ys, k));
      ex.recall = coverage(ys, xs, knn_radii(xs, k));
      const double n = double(ex.pr_n);
      ex.precision_se = std::sqrt(ex.precision * (1 - ex.precision) / n);
      ex.recall_se = std::sqrt(ex.recall * (1 - ex.recall) / n);
    }
    return ex;
  }

  /// Per class k: the FD between the samples asked to be k and the reference vectors of class k (classes with
  /// fewer than 2 of either are left out), and with logits the share of those samples classified as k.
  /// `asked` gets the share over all samples (-1 without logits).
  nlohmann::json class_report(Context& ctx, const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, double& asked) const {
    const Tensor labels = ctx.input("labels").to_plain(), ref_labels = ctx.input("reference_labels").to_plain();
    const int64_t n = x.rows(), m = y.rows();
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
        auto pick = [&](const Eigen::MatrixXd& src, const std::vector<int64_t>& rows) {
          Eigen::MatrixXd t(Eigen::Index(rows.size()), src.cols());
          for (size_t r = 0; r < rows.size(); ++r) t.row(Eigen::Index(r)) = src.row(rows[r]);
          return t;
        };
        const Stats a = stats_rows(pick(x, si)), b = stats_rows(pick(y, ri));
        e["fd"] = frechet_distance(a.mean, a.cov, b.mean, b.cov);
      }
      out.push_back(e);
    }
    asked = logits ? double(right) / double(n) : -1.0;
    return out;
  }

  void write_report(Context& ctx, double fd, double entropy, int64_t n, int64_t m, const Tensor& hist,
                    const nlohmann::json& per_class, double asked, const Extras& ex) const {
    nlohmann::json j{{"label", ctx.attr_string("label")}, {"tick", ctx.tick()}, {"fd", fd},
                     {"class_entropy", entropy}, {"n", n}, {"reference_n", m}, {"scale", ctx.attr_string("scale")}};
    if (ex.kid_blocks > 1) j["kid_whitened"] = ctx.attr_bool("kid_whiten") || ctx.attr_string("scale") == "whiten";
    if (ctx.attr_int("bootstrap") > 1) j["fd_se"] = ex.fd_se, j["bootstrap"] = ctx.attr_int("bootstrap");
    if (ex.kid_blocks > 1) j["kid"] = ex.kid, j["kid_se"] = ex.kid_se, j["kid_blocks"] = ex.kid_blocks;
    if (ex.pr_n > 0)
      j["precision"] = ex.precision, j["precision_se"] = ex.precision_se, j["recall"] = ex.recall,
      j["recall_se"] = ex.recall_se, j["pr_k"] = ctx.attr_int("pr_k"), j["pr_n"] = ex.pr_n;
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
