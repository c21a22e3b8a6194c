#include "nodes/io/png_grid.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <stb/stb_image_write.h>

#include "nodes/io/atomic_file.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes::io {

namespace fs = std::filesystem;
using runtime::Context;

unsigned char to_byte(float v) {
  if (!(v > -1.f)) return 0;
  if (v >= 1.f) return 255;
  return (unsigned char)std::lround((v + 1.f) * 127.5f);
}

std::string expand_path(const std::string& pattern, int64_t tick) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", (long long)tick);
  std::string out = pattern;
  for (size_t at = out.find("{tick}"); at != std::string::npos; at = out.find("{tick}", at + std::strlen(digits)))
    out.replace(at, 6, digits);
  return out;
}

namespace {

// 3x5 glyphs, one row of 3 bits per byte (bit 2 = left): '0'..'9', then '-'.
constexpr unsigned char kGlyphs[11][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
    {7, 4, 7, 5, 7}, {7, 1, 2, 2, 2}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, {0, 0, 7, 0, 0}};
constexpr int kGlyphScale = 3, kGlyphAdvance = 4 * kGlyphScale;

}  // namespace

void PngGrid::plan(Context& ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cols, int64_t padding,
                   float pad_value, int64_t scale, int64_t label_chars) {
  if (cols < 0) ctx.fail("cols", "must be >= 0, got " + std::to_string(cols));
  if (padding < 0) ctx.fail("padding", "must be >= 0, got " + std::to_string(padding));
  if (scale < 1) ctx.fail("scale", "must be >= 1, got " + std::to_string(scale));
  n_ = n, c_ = c, h_ = h, w_ = w;
  pad_ = padding;
  scale_ = scale;
  cols_ = cols > 0 ? std::min(cols, n_) : int64_t(std::ceil(std::sqrt(double(n_))));
  rows_ = (n_ + cols_ - 1) / cols_;
  label_w_ = label_chars > 0 ? label_chars * kGlyphAdvance + 2 * kGlyphScale : 0;
  grid_w_ = label_w_ + cols_ * (w_ + pad_) + pad_;
  grid_h_ = rows_ * (h_ + pad_) + pad_;
  if (grid_w_ * scale_ > 1 << 16 || grid_h_ * scale_ > 1 << 16)
    ctx.fail("scale", "the grid would be " + std::to_string(grid_w_ * scale_) + "x" + std::to_string(grid_h_ * scale_) +
                          " pixels; keep it within 65536x65536");
  pad_byte_ = to_byte(pad_value);
  grid_.resize(size_t(grid_w_ * grid_h_ * c_));
  scaled_.resize(scale_ > 1 ? size_t(grid_w_ * scale_ * grid_h_ * scale_ * c_) : 0);
}

void PngGrid::write(Context& ctx, const float* images, const std::string& path_str,
                    const std::vector<std::string>& row_labels) {
  const fs::path path = path_str;

    // Compose the grid (interleaved HWC bytes).
    std::fill(grid_.begin(), grid_.end(), pad_byte_);
    const float* x = images;
    const int64_t hw = h_ * w_;
    for (int64_t k = 0; k < n_; ++k) {
      const int64_t top = pad_ + (k / cols_) * (h_ + pad_), left = label_w_ + pad_ + (k % cols_) * (w_ + pad_);
      for (int64_t ch = 0; ch < c_; ++ch) {
        const float* src = x + (k * c_ + ch) * hw;
        for (int64_t y = 0; y < h_; ++y) {
          unsigned char* row = grid_.data() + ((top + y) * grid_w_ + left) * c_ + ch;
          for (int64_t i = 0; i < w_; ++i) row[i * c_] = to_byte(src[y * w_ + i]);
        }
      }
    }

    // Row labels, right-aligned in the margin and centred on their row.
    for (size_t r = 0; label_w_ > 0 && r < row_labels.size() && int64_t(r) < rows_; ++r) {
      const std::string& text = row_labels[r];
      const int64_t top = pad_ + int64_t(r) * (h_ + pad_) + (h_ - 5 * kGlyphScale) / 2;
      int64_t left = label_w_ - kGlyphScale - int64_t(text.size()) * kGlyphAdvance + kGlyphScale;
      for (char ch : text) {
        const int g = ch == '-' ? 10 : (ch >= '0' && ch <= '9') ? ch - '0' : -1;
        for (int gy = 0; g >= 0 && gy < 5 * kGlyphScale; ++gy)
          for (int gx = 0; gx < 3 * kGlyphScale; ++gx)
            if (kGlyphs[g][gy / kGlyphScale] >> (2 - gx / kGlyphScale) & 1) {
              const int64_t y = top + gy, x = left + gx;
              if (y < 0 || y >= grid_h_ || x < 0 || x >= grid_w_) continue;
              for (int64_t ch2 = 0; ch2 < c_; ++ch2) grid_[size_t((y * grid_w_ + x) * c_ + ch2)] = 255;
            }
        left += kGlyphAdvance;
      }
    }

    // Upscale (nearest neighbour).
    const unsigned char* out = grid_.data();
    int64_t out_w = grid_w_, out_h = grid_h_;
    if (scale_ > 1) {
      out_w *= scale_, out_h *= scale_;
      for (int64_t y = 0; y < out_h; ++y)
        for (int64_t i = 0; i < out_w; ++i)
          std::memcpy(&scaled_[size_t((y * out_w + i) * c_)], &grid_[size_t(((y / scale_) * grid_w_ + i / scale_) * c_)],
                      size_t(c_));
      out = scaled_.data();
    }

    // Write PATH.tmp, then rename it over PATH.
    make_parent_folder(ctx, path);
    const std::string tmp = path.string() + ".tmp";
    errno = 0;
    if (!stbi_write_png(tmp.c_str(), int(out_w), int(out_h), int(c_), out, int(out_w * c_))) {
      const int err = errno;
      std::error_code ec;
      fs::remove(tmp, ec);
      ctx.fail("path", "cannot write PNG '" + tmp + "'" + (err ? std::string(": ") + std::strerror(err) : std::string()));
    }
    commit_temp_file(ctx, tmp, path);
    if (ctx.run_state()) ctx.run_state()->artifact("image", path.string());
  }

}  // namespace noiseflow::nodes::io
