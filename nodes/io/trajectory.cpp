// nodes/io/trajectory.cpp — a denoising trajectory as one PNG: one row per
// sample (the first `rows` of the batch), one column per snapshot, from the
// initial x_T (input `initial`, optional) to the final x_0. With the sampler's
// timestep (input `t`, e.g. ts.t) each column is labelled with the t its images
// are at: the t of the tick after the snapshot, "x0" for the last.
//
//   t=999 t=899 t=799 ...  x0
//   x_T   x_899 x_799 ...  x_0      <- sample 0
//   x_T   x_899 x_799 ...  x_0      <- sample 1
#include <algorithm>
#include <cstring>
#include <vector>

#include "nodes/draw/png_grid.hpp"
#include "runtime/node.hpp"
#include "runtime/node_files.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Trajectory final : Node {
  static Schema schema() {
    return Schema("io.trajectory",
                  "collects snapshots of the first `rows` images every `interval` ticks (and the last tick) and writes "
                  "them as one PNG at the end: a row per sample, a column per snapshot")
        .input("images", "[N, C, H, W] the current images (e.g. the sampler step's output), in [-1, 1]")
        .optional_input("initial", "[N, C, H, W] the starting images (x_T), shown as the first column")
        .optional_input("t", "[N] the timestep the images are at before this tick's step (the sampler's t, e.g. "
                             "ts.t): each column is labelled t=... above it (the last x0)")
        .attr_string("path", std::nullopt, {}, "PNG file written after the last tick")
        .attr_int("rows", 8, 1, {}, "how many samples (rows) to show")
        .attr_int("interval", 100, 0, {}, "take a snapshot every this many ticks; 0: ten snapshots over the run")
        .attr_int("padding", 2, 0, 256, "pixels between and around the images")
        .attr_int("scale", 1, 1, 64, "integer upscaling of the whole grid")
        .sink()
        .shape([](graph::ShapeContext& c) {
          const auto& s = c.input_rank("images", 4);
          if (s[1] != 1 && s[1] != 3) c.fail("images", "expected 1 or 3 channels, got " + graph::shape_str(s));
          if (c.has_input("initial") && c.input("initial") != s)
            c.fail("initial", "shape " + graph::shape_str(c.input("initial")) + " differs from images " + graph::shape_str(s));
          if (c.has_input("t") && (c.input("t").size() != 1 || c.input("t")[0] != s[0]))
            c.fail("t", "expected one timestep per image, [" + std::to_string(s[0]) + "], got " + graph::shape_str(c.input("t")));
        });
  }

  void plan(Context& ctx) override {
    const Shape& s = ctx.input("images").shape();
    rows_ = std::min<int64_t>(ctx.attr_int("rows"), s[0]);
    per_image_ = s[1] * s[2] * s[3];
    const int64_t ticks = ctx.ticks();
    interval_ = ctx.attr_int("interval") > 0 ? ctx.attr_int("interval") : std::max<int64_t>(1, (ticks + 9) / 10);
    const int64_t interval = interval_;
    // ceil(ticks / interval) snapshots (the last tick always is one), after x_T if given.
    cols_ = (ticks + interval - 1) / interval + (ctx.has_input("initial") ? 1 : 0);
    snaps_.assign(size_t(rows_ * cols_ * per_image_), -1.f);
    labels_.assign(ctx.has_input("t") ? size_t(cols_) : 0, std::string());
    pending_ = -1;
    grid_.plan(ctx, rows_ * cols_, s[1], s[2], s[3], cols_, ctx.attr_int("padding"), -1.f, ctx.attr_int("scale"),
               {.col_label_chars = labels_.empty() ? 0 : 6});
  }

  void forward(Context& ctx) override {
    const int64_t interval = interval_;
    const bool has_initial = ctx.has_input("initial");
    // This tick's t is where the images of the previous tick's snapshot (or x_T) are.
    const bool labelled = !labels_.empty();
    if (labelled && ctx.tick() == 0 && has_initial) pending_ = 0;
    if (labelled && pending_ >= 0) labels_[size_t(pending_)] = "t=" + draw::tick_label(ctx.input("t")[0]), pending_ = -1;
    if (has_initial && ctx.tick() == 0) snapshot(ctx.input("initial"), 0);
    const bool last = ctx.last_tick();
    if ((ctx.tick() + 1) % interval == 0 || last) {
      int64_t col = (has_initial ? 1 : 0) + std::min<int64_t>(ctx.tick() / interval, cols_ - 1 - (has_initial ? 1 : 0));
      snapshot(ctx.input("images"), col);
      pending_ = col;
    }
    if (last) {
      if (labelled) labels_[size_t(pending_)] = "x0";
      grid_.write(ctx, snaps_.data(), runtime::expand_path(ctx.attr_string("path"), ctx.tick()), {}, labels_);
    }
  }

 private:
  // Row-major grid: cell (row r, column col) holds sample r at that snapshot.
  void snapshot(const Tensor& x, int64_t col) {
    for (int64_t r = 0; r < rows_; ++r)
      std::memcpy(&snaps_[size_t((r * cols_ + col) * per_image_)], x.data() + r * per_image_, size_t(per_image_) * 4);
  }

  int64_t rows_ = 0, cols_ = 0, per_image_ = 0, interval_ = 1;
  int64_t pending_ = -1;             // the column whose label the next tick's t gives
  std::vector<std::string> labels_;  // one per column when `t` is connected
  std::vector<float> snaps_;
  draw::PngGrid grid_;
};

NOISEFLOW_REGISTER_NODE(Trajectory);

}  // namespace
}  // namespace noiseflow::nodes
