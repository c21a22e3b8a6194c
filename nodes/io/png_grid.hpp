// nodes/io/png_grid.hpp — composing images [N, C, H, W] in [-1, 1] into one
// padded PNG grid and writing it atomically (PATH.tmp, then rename).
//
//   +--+--+--+   cols columns (0: ceil(sqrt(N))), `padding` pixels of
//   |0 |1 |2 |   `pad_value` around and between the cells, empty cells
//   +--+--+--+   filled with it too, the whole grid upscaled `scale` times
//   |3 |4 |  |   (nearest neighbour). Values are clamped to [-1, 1] and
//   +--+--+--+   mapped to 0..255.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/node.hpp"

namespace noiseflow::nodes::io {

/// [-1, 1] -> 0..255 (clamped; NaN -> 0).
unsigned char to_byte(float v);
/// `pattern` with every "{tick}" replaced by the tick, zero-padded to 6 digits.
std::string expand_path(const std::string& pattern, int64_t tick);

/// A grid layout planned once; write() composes and saves one PNG.
class PngGrid {
 public:
  /// Validates and sizes the grid; fails on `field_cols`/`scale` through ctx. `label_chars` > 0 leaves a
  /// margin on the left for row labels of up to that many characters (digits and '-').
  void plan(runtime::Context& ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cols, int64_t padding,
            float pad_value, int64_t scale, int64_t label_chars = 0);
  /// Composes images (N*C*H*W floats, NCHW) and writes `path` atomically; records the artifact. With a
  /// margin, `row_labels` (one per row) are drawn in it, white, in a 3x5 pixel font at three times its size.
  void write(runtime::Context& ctx, const float* images, const std::string& path,
             const std::vector<std::string>& row_labels = {});
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 private:
  int64_t n_ = 0, c_ = 1, h_ = 0, w_ = 0, pad_ = 0, scale_ = 1, cols_ = 1, rows_ = 1, grid_w_ = 0, grid_h_ = 0,
          label_w_ = 0;
  unsigned char pad_byte_ = 0;
  std::vector<unsigned char> grid_, scaled_;
};

}  // namespace noiseflow::nodes::io
