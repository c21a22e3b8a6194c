// nodes/io/write_images.cpp — a sink writing a batch of images as one PNG grid.
//
//   images [N, C, H, W] in [-1, 1]  ->  path (PNG, C = 1 gray or 3 RGB)
//
//   +--+--+--+   cols columns (0: ceil(sqrt(N))), `padding` pixels of
//   |0 |1 |2 |   `pad_value` around and between the cells, empty cells
//   +--+--+--+   filled with it too, the whole grid upscaled `scale` times
//   |3 |4 |  |   (nearest neighbour). Values are clamped to [-1, 1] and
//   +--+--+--+   mapped to 0..255.
//
// `{tick}` in the path becomes the tick, zero-padded to 6 digits. The file is
// written to PATH.tmp and renamed over PATH, so readers never see half a PNG;
// parent folders are created. stb_image_write comes from Debian's libstb.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "runtime/node.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace fs = std::filesystem;

/// [-1, 1] -> 0..255 (clamped; NaN -> 0).
inline unsigned char to_byte(float v) {
  if (!(v > -1.f)) return 0;
  if (v >= 1.f) return 255;
  return (unsigned char)std::lround((v + 1.f) * 127.5f);
}

/// `pattern` with every "{tick}" replaced by the tick, zero-padded to 6 digits.
std::string expand_path(const std::string& pattern, int64_t tick) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", (long long)tick);
  std::string out = pattern;
  for (size_t at = out.find("{tick}"); at != std::string::npos; at = out.find("{tick}", at + std::strlen(digits)))
    out.replace(at, 6, digits);
  return out;
}

struct WriteImages final : Node {
  static Schema schema() {
    return Schema("io.write_images",
                  "Writes a batch of images [N, C, H, W] in [-1, 1] (C = 1 or 3) as one PNG grid; `{tick}` in the "
                  "path becomes the tick (6 digits). Written atomically (PATH.tmp, then renamed).")
        .input("images", "[N, C, H, W], C = 1 (grayscale) or 3 (RGB), values in [-1, 1] (clamped)")
        .attr_string("path", std::nullopt, {},
                     "PNG file to write, e.g. runs/x/samples_{tick}.png; parent folders are created")
        .attr_int("cols", 0, 0, {}, "images per row; 0 = ceil(sqrt(N))")
        .attr_int("padding", 2, 0, 256, "pixels between and around the images")
        .attr_float("pad_value", -1.0, -1.0, 1.0, "padding colour in image range [-1, 1] (-1 = black)")
        .attr_int("scale", 1, 1, 64, "integer upscaling of the whole grid (nearest neighbour)")
        .sink()
        .shape([](graph::ShapeContext& c) {
          const auto& s = c.input_rank("images", 4);
          if (s[1] != 1 && s[1] != 3)
            c.fail("images", "expected 1 or 3 channels (grayscale or RGB), got shape " + graph::shape_str(s));
          if (c.attr_string("path").empty()) c.fail("path", "must not be empty");
        });
  }

  void plan(Context& ctx) override {
    const Shape& s = ctx.input("images").shape();
    if (s.size() != 4 || (s[1] != 1 && s[1] != 3))
      ctx.fail("images", "expected [N, 1 or 3, H, W], got " + graph::shape_str(s));
    if (ctx.attr_string("path").empty()) ctx.fail("path", "must not be empty");
    const int64_t cols = ctx.attr_int("cols"), padding = ctx.attr_int("padding"), scale = ctx.attr_int("scale");
    if (cols < 0) ctx.fail("cols", "must be >= 0, got " + std::to_string(cols));
    if (padding < 0) ctx.fail("padding", "must be >= 0, got " + std::to_string(padding));
    if (scale < 1) ctx.fail("scale", "must be >= 1, got " + std::to_string(scale));

    n_ = s[0], c_ = s[1], h_ = s[2], w_ = s[3];
    pad_ = padding;
    scale_ = scale;
    cols_ = cols > 0 ? std::min(cols, n_) : int64_t(std::ceil(std::sqrt(double(n_))));
    rows_ = (n_ + cols_ - 1) / cols_;
    grid_w_ = cols_ * (w_ + pad_) + pad_;
    grid_h_ = rows_ * (h_ + pad_) + pad_;
    if (grid_w_ * scale_ > 1 << 16 || grid_h_ * scale_ > 1 << 16)
      ctx.fail("scale", "the grid would be " + std::to_string(grid_w_ * scale_) + "x" + std::to_string(grid_h_ * scale_) +
                            " pixels; keep it within 65536x65536");
    pad_byte_ = to_byte(float(ctx.attr_float("pad_value")));
    grid_.resize(size_t(grid_w_ * grid_h_ * c_));
    scaled_.resize(scale_ > 1 ? size_t(grid_w_ * scale_ * grid_h_ * scale_ * c_) : 0);
  }

  void forward(Context& ctx) override {
    // Compose the grid (interleaved HWC bytes).
    std::fill(grid_.begin(), grid_.end(), pad_byte_);
    const float* x = ctx.input("images").data();
    const int64_t hw = h_ * w_;
    for (int64_t k = 0; k < n_; ++k) {
      const int64_t top = pad_ + (k / cols_) * (h_ + pad_), left = pad_ + (k % cols_) * (w_ + pad_);
      for (int64_t ch = 0; ch < c_; ++ch) {
        const float* src = x + (k * c_ + ch) * hw;
        for (int64_t y = 0; y < h_; ++y) {
          unsigned char* row = grid_.data() + ((top + y) * grid_w_ + left) * c_ + ch;
          for (int64_t i = 0; i < w_; ++i) row[i * c_] = to_byte(src[y * w_ + i]);
        }
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
    const fs::path path = expand_path(ctx.attr_string("path"), ctx.tick());
    std::error_code ec;
    if (path.has_parent_path()) {
      fs::create_directories(path.parent_path(), ec);
      if (ec) ctx.fail("path", "cannot create folder '" + path.parent_path().string() + "': " + ec.message());
    }
    const std::string tmp = path.string() + ".tmp";
    errno = 0;
    if (!stbi_write_png(tmp.c_str(), int(out_w), int(out_h), int(c_), out, int(out_w * c_))) {
      const int err = errno;
      fs::remove(tmp, ec);
      ctx.fail("path", "cannot write PNG '" + tmp + "'" + (err ? std::string(": ") + std::strerror(err) : std::string()));
    }
    fs::rename(tmp, path, ec);
    if (ec) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      ctx.fail("path", "cannot rename '" + tmp + "' to '" + path.string() + "': " + ec.message());
    }
    if (ctx.run_state()) ctx.run_state()->artifact("image", path.string());
  }

 private:
  int64_t n_ = 0, c_ = 1, h_ = 0, w_ = 0, pad_ = 0, scale_ = 1, cols_ = 1, rows_ = 1, grid_w_ = 0, grid_h_ = 0;
  unsigned char pad_byte_ = 0;
  std::vector<unsigned char> grid_, scaled_;
};

NOISEFLOW_REGISTER_NODE(WriteImages);

}  // namespace
}  // namespace noiseflow::nodes
