// nodes/draw/png_grid.cpp — the PNG grid of png_grid.hpp.
#include "nodes/draw/png_grid.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "runtime/node_files.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes::draw {

namespace fs = std::filesystem;
using runtime::Context;

unsigned char to_byte(float v) {
  if (!(v > -1.f)) return 0;
  if (v >= 1.f) return 255;
  return (unsigned char)std::lround((v + 1.f) * 127.5f);
}

void PngGrid::plan(Context& ctx, int64_t n, int64_t c, int64_t h, int64_t w, int64_t cols, int64_t padding,
                   float pad_value, int64_t scale, GridText text) {
  if (cols < 0) ctx.fail("cols", "must be >= 0, got " + std::to_string(cols));
  if (padding < 0) ctx.fail("padding", "must be >= 0, got " + std::to_string(padding));
  if (scale < 1) ctx.fail("scale", "must be >= 1, got " + std::to_string(scale));
  n_ = n, c_ = c, h_ = h, w_ = w;
  pad_ = padding;
  scale_ = scale;
  cols_ = cols > 0 ? std::min(cols, n_) : int64_t(std::ceil(std::sqrt(double(n_))));
  rows_ = (n_ + cols_ - 1) / cols_;
  // Row labels and the title at twice the font's size; column labels too when the widest fits its column
  // with a gap of two pixels either side, else at the font's size (write() decides).
  text_scale_ = 2;
  col_text_scale_ = 2;
  left_ = text.row_label_chars > 0 ? text.row_label_chars * font::kAdvance * text_scale_ + 2 * text_scale_ : 0;
  title_h_ = text.title_chars > 0 ? (font::kLineHeight + 2) * text_scale_ : 0;
  top_ = title_h_ + (text.col_label_chars > 0 ? font::kLineHeight * col_text_scale_ + 2 : 0);
  out_w_ = left_ + (cols_ * (w_ + pad_) + pad_) * scale_;
  // A title wider than the grid widens the picture; the grid is centred below it.
  const int64_t title_w = font::text_width(std::string(size_t(text.title_chars), 'x'), text_scale_) + 4 * text_scale_;
  if (text.title_chars > 0 && title_w > out_w_) left_ += (title_w - out_w_) / 2, out_w_ = title_w;
  out_h_ = top_ + (rows_ * (h_ + pad_) + pad_) * scale_;
  if (out_w_ > 1 << 16 || out_h_ > 1 << 16)
    ctx.fail("scale", "the grid would be " + std::to_string(out_w_) + "x" + std::to_string(out_h_) +
                          " pixels; keep it within 65536x65536");
  pad_byte_ = to_byte(pad_value);
  canvas_ = Canvas(int(out_w_), int(out_h_), int(c_), {pad_byte_, pad_byte_, pad_byte_});
}

void PngGrid::write(Context& ctx, const float* images, const std::string& path_str,
                    const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                    const std::string& title) {
  const fs::path path = path_str;
  const Rgb background{pad_byte_, pad_byte_, pad_byte_};
  canvas_.fill_rect(0, 0, int(out_w_), int(out_h_), background);

  // The images, each pixel a scale x scale block (interleaved channels).
  unsigned char* px = canvas_.data();
  const int64_t hw = h_ * w_;
  for (int64_t k = 0; k < n_; ++k) {
    const int64_t top = cell_y(k), left = cell_x(k);
    for (int64_t ch = 0; ch < c_; ++ch) {
      const float* src = images + (k * c_ + ch) * hw;
      for (int64_t y = 0; y < h_ * scale_; ++y) {
        unsigned char* row = px + ((top + y) * out_w_ + left) * c_ + ch;
        const float* src_row = src + (y / scale_) * w_;
        for (int64_t i = 0; i < w_ * scale_; ++i) row[i * c_] = to_byte(src_row[i / scale_]);
      }
    }
  }

  // Text: white on a dark padding colour, black on a light one.
  const Rgb ink = pad_byte_ < 128 ? Rgb{255, 255, 255} : Rgb{0, 0, 0};
  const int ts = text_scale_, cap = 7;  // cap height of the font, in font pixels
  for (size_t r = 0; left_ > 0 && r < row_labels.size() && int64_t(r) < rows_; ++r) {
    const int64_t cy = cell_y(int64_t(r) * cols_) + h_ * scale_ / 2;
    canvas_.text(int(left_ - 2 * ts - font::text_width(row_labels[r], ts)), int(cy - cap * ts / 2), row_labels[r], ink, ts);
  }
  const int64_t col_top = title_h_;
  int widest = 0;
  for (auto& l : col_labels) widest = std::max(widest, font::text_width(l, 2));
  col_text_scale_ = widest + 4 <= (w_ + pad_) * scale_ ? 2 : 1;
  for (size_t col = 0; top_ > title_h_ && col < col_labels.size() && int64_t(col) < cols_; ++col)
    canvas_.text_centred(int(cell_x(int64_t(col)) + w_ * scale_ / 2), int(col_top + 1), col_labels[col], ink,
                         col_text_scale_);
  if (title_h_ > 0 && !title.empty()) canvas_.text_centred(int(out_w_ / 2), 2 * ts, title, ink, ts);

  std::string bytes;
  try {
    bytes = canvas_.png();
  } catch (const std::exception& e) {
    ctx.fail("path", std::string(e.what()) + " for '" + path.string() + "'");
  }
  runtime::write_file_atomically(ctx, path, bytes);
  if (ctx.run_state()) ctx.run_state()->artifact("image", path.string(), ctx.id());
}

}  // namespace noiseflow::nodes::draw
