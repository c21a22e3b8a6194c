// nodes/data/dataset.hpp — what the dataset loaders (data.mnist, data.idx,
// data.images) share: an in-memory image set, the stateless epoch order,
// batch filling, a base node for the loaders with labels, the common
// attributes, and small file helpers.
//
// Batching scheme. Sample j of tick k sits at position p = k * batch + j of
// an endless stream of epochs: epoch e = p / N, slot i = p % N. Without
// shuffle, slot i is image i. With shuffle, epoch e uses a permutation drawn
// by Fisher-Yates from runtime/random keyed by (ctx.random_key(), e). So a
// batch is a pure function of (seed, node id, tick): resuming at tick k
// gives the same data with no saved state, every epoch visits every image
// exactly once, and a batch that straddles two epochs (or a batch larger
// than the dataset) simply continues into the next epoch's order.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/node.hpp"
#include "runtime/random.hpp"

namespace noiseflow::nodes::data {

using runtime::Context;
using runtime::Tensor;

/// Images in [-1, 1] (N x C x H x W, row-major) with one float label each.
struct Dataset {
  int64_t count = 0, channels = 1, height = 0, width = 0;
  std::vector<float> pixels;  ///< count * channels * height * width
  std::vector<float> labels;  ///< count (zeros when the source has none)

  int64_t image_size() const { return channels * height * width; }
};

/// Keeps images [offset, offset + limit) (limit 0 = all from offset on).
/// Fails on `offset` when it is past the end.
inline void select_range(Context& ctx, Dataset& ds, int64_t offset, int64_t limit, const std::string& source) {
  if (offset < 0 || offset >= ds.count)
    ctx.fail("offset", "offset " + std::to_string(offset) + " is past the end of " + source + " (" +
                           std::to_string(ds.count) + " images)");
  int64_t end = limit > 0 ? std::min(ds.count, offset + limit) : ds.count;
  if (offset == 0 && end == ds.count) return;
  const int64_t sz = ds.image_size();
  ds.pixels.erase(ds.pixels.begin() + end * sz, ds.pixels.end());
  ds.pixels.erase(ds.pixels.begin(), ds.pixels.begin() + offset * sz);
  ds.labels.erase(ds.labels.begin() + end, ds.labels.end());
  ds.labels.erase(ds.labels.begin(), ds.labels.begin() + offset);
  ds.count = end - offset;
}

/// The stateless epoch order described at the top of this file. Caches the
/// permutations of the last two epochs it was asked about.
class EpochOrder {
 public:
  EpochOrder() = default;
  EpochOrder(int64_t n, bool shuffle, uint64_t key) : n_(n), shuffle_(shuffle), key_(key) {}

  int64_t size() const { return n_; }

  /// The dataset index at stream position p (p >= 0).
  int64_t index(int64_t p) {
    const int64_t e = p / n_, i = p % n_;
    return shuffle_ ? permutation(e)[size_t(i)] : i;
  }

  /// Epoch e's permutation of [0, n): Fisher-Yates, swap i with below(i+1) drawn at (key, e, i).
  const std::vector<uint32_t>& permutation(int64_t e) {
    for (auto& c : cache_)
      if (c.first == e) return c.second;
    auto& slot = cache_[next_];
    next_ ^= 1;
    slot.first = e;
    slot.second.resize(size_t(n_));
    for (int64_t i = 0; i < n_; ++i) slot.second[size_t(i)] = uint32_t(i);
    for (int64_t i = n_ - 1; i > 0; --i)
      std::swap(slot.second[size_t(i)],
                slot.second[size_t(runtime::random::below(uint64_t(i + 1), key_, uint64_t(e), uint64_t(i)))]);
    return slot.second;
  }

 private:
  int64_t n_ = 1;
  bool shuffle_ = false;
  uint64_t key_ = 0;
  std::pair<int64_t, std::vector<uint32_t>> cache_[2] = {{-1, {}}, {-1, {}}};
  int next_ = 0;
};

/// Fills `images` ([batch, C, H, W]) and, when given, `labels` ([batch]) for tick `tick`. Under data
/// parallelism over `ranks` ranks `images` holds rank `rank`'s slice of the global batch (batch x ranks):
/// stream positions tick x global + rank x batch + j, so the ranks together take one process's batch.
inline void fill_batch(const Dataset& ds, EpochOrder& order, int64_t tick, Tensor& images, Tensor* labels,
                       int rank = 0, int ranks = 1) {
  const int64_t batch = images.dim(0), sz = ds.image_size(), global = batch * ranks, first = batch * rank;
  float* out = images.data();
  for (int64_t j = 0; j < batch; ++j) {
    const int64_t idx = order.index(tick * global + first + j);
    std::memcpy(out + j * sz, ds.pixels.data() + idx * sz, size_t(sz) * sizeof(float));
    if (labels) (*labels)[j] = ds.labels[size_t(idx)];
  }
}

/// The base of the loaders with an `images` and a `labels` output: plan() fills ds_ and ends with
/// start_epochs(); forward() copies tick k's batch and its labels.
class LabeledLoader : public runtime::Node {
 public:
  void forward(Context& ctx) override {
    fill_batch(ds_, order_, ctx.tick(), ctx.output("images"), &ctx.output("labels"), ctx.rank(), ctx.ranks());
  }

 protected:
  /// Ends plan(), once ds_ holds the selected images: their epoch order (`shuffle` attribute, node's random key).
  void start_epochs(Context& ctx) { order_ = EpochOrder(ds_.count, ctx.attr_bool("shuffle"), ctx.random_key()); }

  Dataset ds_;
  EpochOrder order_;
};

/// Bytes a loader holding `count` images of `pixels` floats keeps: pixels, labels and the epoch order.
inline int64_t dataset_bytes(int64_t count, int64_t pixels) {
  return count * (pixels + 1) * int64_t(sizeof(float)) + count * int64_t(sizeof(int64_t));
}

/// Adds the attributes every loader shares: batch, shuffle, limit, offset.
inline runtime::Schema& batching_attrs(runtime::Schema& s) {
  return s
      .attr_int("batch", 64, 1, {}, "images per tick (the global batch under data parallelism)")
      .batch_attr("batch")
      .attr_bool("shuffle", true,
                 "draw each epoch in a fresh random order (seeded by the pipeline seed and node id); "
                 "false: dataset order")
      .attr_int("limit", 0, 0, {}, "use only this many images (from `offset` on); 0 = all")
      .attr_int("offset", 0, 0, {}, "index of the first image used, in dataset order");
}

/// Checks that the loader's shared attributes and the plan's output shapes agree.
inline void check_batching_attrs(Context& ctx) {
  if (ctx.attr_int("batch") < 1) ctx.fail("batch", "must be >= 1, got " + std::to_string(ctx.attr_int("batch")));
  if (ctx.attr_int("limit") < 0) ctx.fail("limit", "must be >= 0, got " + std::to_string(ctx.attr_int("limit")));
  if (ctx.attr_int("offset") < 0) ctx.fail("offset", "must be >= 0, got " + std::to_string(ctx.attr_int("offset")));
}

/// The whole file as bytes; fails on `field` naming the path and the OS error.
inline std::string read_file(Context& ctx, const std::string& field, const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) ctx.fail(field, path.string() + ": cannot open: " + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool bad = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (bad) ctx.fail(field, path.string() + ": read error: " + std::strerror(err));
  return bytes;
}

/// Maps 8-bit pixel values to [-1, 1]: v / 255 * 2 - 1.
inline float byte_to_unit(uint8_t v) { return float(v) * (2.f / 255.f) - 1.f; }

}  // namespace noiseflow::nodes::data
