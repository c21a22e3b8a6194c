// nodes/draw/png_grid.hpp — composing images [N, C, H, W] in [-1, 1] into one padded PNG grid and
// writing it atomically (PATH.tmp, then rename). Support code of the picture library (nodes/draw/), not a
// node type: the image writers (io.write_images, io.trajectory, eval.sample_grid) and the studio use it.
//
//          title                 an optional title line on top, an optional label
//       t=999 t=500 t=0          above each column and left of each row, in the
//     +-----+-----+-----+        5x7 font of nodes/draw/plot.hpp (white on a dark
//   7 |  0  |  1  |  2  |        padding colour, black on a light one);
//     +-----+-----+-----+        cols columns (0: ceil(sqrt(N))), `padding` pixels of
//   1 |  3  |  4  |     |        `pad_value` around and between the cells, empty cells
//     +-----+-----+-----+        filled with it too, the images upscaled `scale` times
//                                (nearest neighbour). Values are clamped to [-1, 1] and mapped to 0..255.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodes/draw/plot.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes::draw {

/// [-1, 1] -> 0..255 (clamped; NaN -> 0).
unsigned char to_byte(float v);

/// The text margins a grid leaves room for.
struct GridText {
  int64_t row_label_chars = 0;  ///< > 0: a margin on the left for row labels of up to this many characters
  int64_t col_label_chars = 0;  ///< > 0: a line above the grid for column labels of up to this many characters
  int64_t title_chars = 0;      ///< > 0: a title line on top, the picture at least as wide as that many characters
};

/// A grid layout planned once; write() composes and saves one PNG.
class PngGrid {
 public:
  /// Validates and sizes the grid; fails on `cols`, `padding` and `scale` through ctx.
  void plan(runtime::Context& ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cols, int64_t padding,
            float pad_value, int64_t scale, GridText text = {});
  /// Composes images (N*C*H*W floats, NCHW) and writes `path` atomically; records the artifact. Labels and
  /// the title are drawn where plan() left room for them: `row_labels` right-aligned and centred on each row,
  /// `col_labels` centred above each column, `title` centred on top.
  void write(runtime::Context& ctx, const float* images, const std::string& path,
             const std::vector<std::string>& row_labels = {}, const std::vector<std::string>& col_labels = {},
             const std::string& title = {});
  /// The composed picture of the last write().
  const Canvas& canvas() const { return canvas_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Pixel position of the top-left corner of cell k in the written PNG.
  int64_t cell_x(int64_t k) const { return left_ + (pad_ + (k % cols_) * (w_ + pad_)) * scale_; }
  int64_t cell_y(int64_t k) const { return top_ + (pad_ + (k / cols_) * (h_ + pad_)) * scale_; }
  /// Font scale of the row labels and title, and of the column labels (of the last write()).
  int text_scale() const { return text_scale_; }
  int col_text_scale() const { return col_text_scale_; }

 private:
  int64_t n_ = 0, c_ = 1, h_ = 0, w_ = 0, pad_ = 0, scale_ = 1, cols_ = 1, rows_ = 1, out_w_ = 0, out_h_ = 0,
          left_ = 0, top_ = 0, title_h_ = 0;
  int text_scale_ = 2, col_text_scale_ = 2;
  unsigned char pad_byte_ = 0;
  Canvas canvas_{1, 1, 1};
};

}  // namespace noiseflow::nodes::draw
