// nodes/io/write_images.cpp — a sink writing a batch of images as one PNG grid.
//
//   images [N, C, H, W] in [-1, 1]  ->  path (PNG, C = 1 gray or 3 RGB)
//
// The grid layout (nodes/draw/png_grid.hpp): `cols` columns, `padding` pixels of
// `pad_value` around and between the cells, upscaled `scale` times; rows labelled
// on the left (`labels`), columns above (`col_labels`, after `col_prefix`).
//
// `{tick}` in the path becomes the tick, zero-padded to 6 digits. The file is
// written to PATH.tmp and renamed over PATH, so readers never see half a PNG;
// parent folders are created. stb_image_write comes from Debian's libstb.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nodes/draw/png_grid.hpp"
#include "runtime/node.hpp"
#include "runtime/node_files.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct WriteImages final : Node {
  static Schema schema() {
    return Schema("io.write_images",
                  "Writes a batch of images [N, C, H, W] in [-1, 1] (C = 1 or 3) as one PNG grid; `{tick}` in the "
                  "path becomes the tick (6 digits). Written atomically (PATH.tmp, then renamed).")
        .input("images", "[N, C, H, W], C = 1 (grayscale) or 3 (RGB), values in [-1, 1] (clamped)")
        .optional_input("labels", "[N] (integers as floats): each row is labelled, in a margin on the left, with "
                                  "the label of its first image (e.g. the class of conditional samples)")
        .optional_input("col_labels", "[N] (numbers): each column is labelled, above it, with the value of its "
                                      "first image after `col_prefix` (e.g. the t of a forward-process strip)")
        .attr_string("col_prefix", "", {}, "text before each column label, e.g. \"t=\"")
        .attr_string("path", std::nullopt, {},
                     "PNG file to write, e.g. runs/x/samples_{tick}.png; parent folders are created")
        .attr_int("cols", 0, 0, {}, "images per row; 0 = ceil(sqrt(N))")
        .attr_int("padding", 2, 0, 256, "pixels between and around the images")
        .attr_float("pad_value", -1.0, -1.0, 1.0, "padding colour in image range [-1, 1] (-1 = black)")
        .attr_int("scale", 1, 1, 64, "integer upscaling of the whole grid (nearest neighbour)")
        .attr_int("count", 0, 0, {}, "write only the first `count` images (0: all of them)")
        .sink()
        .shape([](graph::ShapeContext& c) {
          const auto& s = c.input_rank("images", 4);
          if (s[1] != 1 && s[1] != 3)
            c.fail("images", "expected 1 or 3 channels (grayscale or RGB), got shape " + graph::shape_str(s));
          if (c.attr_string("path").empty()) c.fail("path", "must not be empty");
          if (c.has_input("labels") && (c.input("labels").size() != 1 || c.input("labels")[0] != s[0]))
            c.fail("labels", "expected one label per image, [" + std::to_string(s[0]) + "], got " +
                                 graph::shape_str(c.input("labels")));
          if (c.has_input("col_labels") && (c.input("col_labels").size() != 1 || c.input("col_labels")[0] != s[0]))
            c.fail("col_labels", "expected one label per image, [" + std::to_string(s[0]) + "], got " +
                                     graph::shape_str(c.input("col_labels")));
        });
  }

  void plan(Context& ctx) override {
    const Shape& s = ctx.input("images").shape();
    if (s.size() != 4 || (s[1] != 1 && s[1] != 3))
      ctx.fail("images", "expected [N, 1 or 3, H, W], got " + graph::shape_str(s));
    if (ctx.attr_string("path").empty()) ctx.fail("path", "must not be empty");
    const int64_t count = ctx.attr_int("count") > 0 ? std::min(ctx.attr_int("count"), s[0]) : s[0];
    labelled_ = ctx.has_input("labels");
    col_labelled_ = ctx.has_input("col_labels");
    grid_.plan(ctx, count, s[1], s[2], s[3], ctx.attr_int("cols"), ctx.attr_int("padding"),
               float(ctx.attr_float("pad_value")), ctx.attr_int("scale"),
               {.row_label_chars = labelled_ ? 3 : 0,
                .col_label_chars = col_labelled_ ? int64_t(ctx.attr_string("col_prefix").size()) + 4 : 0});
  }

  void forward(Context& ctx) override {
    std::vector<std::string> rows;
    if (labelled_) {
      const Tensor& l = ctx.input("labels");
      for (int64_t r = 0; r < grid_.rows(); ++r) {
        const float v = l[std::min(r * grid_.cols(), l.numel() - 1)];
        rows.push_back(std::to_string(int64_t(std::lround(std::clamp(v, -99.f, 999.f)))));
      }
    }
    std::vector<std::string> cols;
    if (col_labelled_) {
      const Tensor& l = ctx.input("col_labels");
      for (int64_t c = 0; c < std::min(grid_.cols(), l.numel()); ++c)
        cols.push_back(ctx.attr_string("col_prefix") + draw::tick_label(l[c]));
    }
    grid_.write(ctx, ctx.input("images").data(), runtime::expand_path(ctx.attr_string("path"), ctx.tick()), rows, cols);
  }

 private:
  draw::PngGrid grid_;
  bool labelled_ = false, col_labelled_ = false;
};

NOISEFLOW_REGISTER_NODE(WriteImages);

}  // namespace
}  // namespace noiseflow::nodes
