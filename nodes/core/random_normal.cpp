// nodes/core/random_normal.cpp — Gaussian noise, a fresh draw every tick.
//
// y[i] = mean + std * z, z ~ N(0, 1) from Philox keyed by (seed, node id),
// stream = tick, counter = element index: identical whatever the thread count. Under data parallelism
// a `like` tensor is the rank's slice of the batch and draws the elements of the whole batch it covers;
// so does attribute `batch` (the global batch, a data source's batch attribute: loading for N ranks divides
// it), which prepends dimension 0 to `shape`: y[batch / N, shape...] holds the rank's samples.
// Offset noise (Guttenberg 2023; diffusers' noise_offset): with `offset` o > 0 and y of shape
// [N, C, ...], y[n, c, ...] += o * u[n, c] with u ~ N(0, 1) drawn once per (n, c) from a second key,
// so the model also learns to change an image's mean brightness.
#include <string>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct RandomNormal final : Node {
  static Schema schema() {
    return Schema("random.normal",
                  "Gaussian noise y ~ N(mean, std^2), elementwise, drawn afresh every tick; the shape comes from "
                  "input `like` or attribute `shape` (exactly one of them), with attribute `batch` in front")
        .optional_input("like", "any tensor; y takes its shape (its values are not read)")
        .output("y", "the noise")
        .attr_ints("shape", std::vector<int64_t>{}, "shape of y when `like` is not connected; [] when it is")
        .attr_int("batch", 0, 0, {},
                  "> 0: y is [batch, shape...], a batch of samples that data parallelism splits between the ranks "
                  "(each draws its slice of the whole batch's noise); 0: y is `shape`")
        .batch_attr("batch")
        .attr_float("mean", 0.0, {}, {}, "mean of the distribution")
        .attr_float("std", 1.0, 0.0, {}, "standard deviation (>= 0)")
        .attr_float("offset", 0.0, 0.0, {},
                    "offset noise: add offset * u[n, c], one N(0, 1) draw per sample and channel (needs [N, C, ...]; "
                    "0.1 is the usual value; 0: off)")
        .shape([](graph::ShapeContext& c) {
          std::vector<int64_t> shape = c.attr_ints("shape");
          const bool has_like = c.has_input("like");
          const int64_t batch = c.attr_int("batch");
          if (batch > 0) {
            if (has_like) c.fail("batch", "`like` sets the whole shape; give `batch` with attribute `shape` only");
            shape.insert(shape.begin(), batch);
          }
          if (has_like && !shape.empty())
            c.fail("shape", "give either input `like` or attribute `shape`, not both (like is " +
                                graph::shape_str(c.input("like")) + ", shape is " + graph::shape_str(shape) + ")");
          if (!has_like && shape.empty())
            c.fail("shape", "give either input `like` or a non-empty attribute `shape` to set the output shape");
          const graph::Shape out = has_like ? c.input("like") : graph::Shape(shape);
          if (out.empty()) c.fail("like", "cannot take the shape of a scalar shape []; a scalar is shape [1]");
          for (auto d : out)
            if (d <= 0) c.fail(has_like ? "like" : "shape", "every dimension must be positive, got " + graph::shape_str(out));
          if (c.attr_float("offset") > 0 && out.size() < 2)
            c.fail("offset", "offset noise needs y of shape [N, C, ...], got " + graph::shape_str(out));
          c.set_output("y", out);
        });
  }

  void plan(Context& ctx) override {
    key_ = ctx.random_key();
    per_sample_ = ctx.has_input("like") || ctx.attr_int("batch") > 0;
    mean_ = float(ctx.attr_float("mean"));
    std_ = float(ctx.attr_float("std"));
    offset_ = float(ctx.attr_float("offset"));
  }

  void forward(Context& ctx) override {
    Tensor& y = ctx.output("y");
    // With `like` or `batch`, dimension 0 is the batch: under data parallelism this rank's slice of it,
    // drawn as the same elements of the whole batch's tensor.
    const int64_t first = per_sample_ ? ctx.sample_offset(1) * y.numel() : 0;
    random::fill_normal(y.data(), y.numel(), key_, uint64_t(ctx.tick()), mean_, std_, first);
    if (offset_ > 0.f) {
      const int64_t nc = y.dim(0) * y.dim(1), per = y.numel() / nc;
      u_.resize(size_t(nc));
      random::fill_normal(u_.data(), nc, random::mix(key_, random::hash("offset")), uint64_t(ctx.tick()), 0.f, offset_,
                          per_sample_ ? ctx.sample_offset(nc) : 0);
      for (int64_t k = 0; k < nc; ++k) {
        float* row = y.data() + k * per;
        for (int64_t i = 0; i < per; ++i) row[i] += u_[size_t(k)];
      }
    }
  }

 private:
  uint64_t key_ = 0;
  bool per_sample_ = false;  // dimension 0 is a batch (`like` or `batch`)
  float mean_ = 0.f, std_ = 1.f, offset_ = 0.f;
  std::vector<float> u_;
};

NOISEFLOW_REGISTER_NODE(RandomNormal);

}  // namespace
}  // namespace noiseflow::nodes
