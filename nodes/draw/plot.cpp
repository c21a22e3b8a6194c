// nodes/draw/plot.cpp — the font, canvas and line chart of plot.hpp.
#include "nodes/draw/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include <stb/stb_image_write.h>

#include "runtime/atomic_write.hpp"

namespace noiseflow::nodes::draw {

// ---- font ------------------------------------------------------------------------------------------

namespace font {
namespace {

// The glyphs of ' ' to '~' in bands of 12, 8 rows each ('#' lit), cells 5 wide, one space apart.
constexpr std::string_view kArt[8][kHeight] = {
    // ' '   !     "     #     $     %     &     '     (     )     *     +
    {"..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... .....",
     "..... ..#.. .#.#. ##### .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#..",
     "..... ..#.. ..... .#.#. #.#.. ...#. #.#.. ..... .#... ...#. #.#.# ..#..",
     "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. #####",
     "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#..",
     "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#..",
     "..... ..#.. ..... ..... ..#.. ...## .##.# ..... ...#. .#... ..... .....",
     "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ....."},
    // ,     -     .     /     0     1     2     3     4     5     6     7
    {"..... ..... ..... ..... .###. ..#.. .###. .###. ...#. ##### ..##. #####",
     "..... ..... ..... ....# #...# .##.. #...# #...# ..##. #.... .#... ....#",
     "..... ..... ..... ...#. #..## ..#.. ....# ....# .#.#. ####. #.... ...#.",
     "..... ##### ..... ..#.. #.#.# ..#.. ...#. ..##. #..#. ....# ####. ..#..",
     "..... ..... ..... .#... ##..# ..#.. ..#.. ....# ##### ....# #...# .#...",
     ".##.. ..... .##.. #.... #...# ..#.. .#... #...# ...#. #...# #...# .#...",
     "..#.. ..... .##.. ..... .###. .###. ##### .###. ...#. .###. .###. .#...",
     ".#... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ....."},
    // 8     9     :     ;     <     =     >     ?     @     A     B     C
    {".###. .###. ..... ..... ...#. ..... .#... .###. .###. .###. ####. .###.",
     "#...# #...# .##.. .##.. ..#.. ..... ..#.. #...# #...# #...# #...# #...#",
     "#...# #...# .##.. .##.. .#... ##### ...#. ....# #.### #...# #...# #....",
     ".###. .#### ..... ..... #.... ..... ....# ...#. #.#.# ##### ####. #....",
     "#...# ....# .##.. .##.. .#... ##### ...#. ..#.. #.### #...# #...# #....",
     "#...# ...#. .##.. ..#.. ..#.. ..... ..#.. ..... #.... #...# #...# #...#",
     ".###. .##.. ..... .#... ...#. ..... .#... ..#.. .###. #...# ####. .###.",
     "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ....."},
    // D     E     F     G     H     I     J     K     L     M     N     O
    {"####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
     "#...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
     "#...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
     "#...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
     "#...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
     "#...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
     "####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
     "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ....."},
    // P     Q     R     S     T     U     V     W     X     Y     Z     [
    {"####. .###. ####. .###. ##### #...# #...# #...# #...# #...# ##### .###.",
     "#...# #...# #...# #...# ..#.. #...# #...# #...# #...# #...# ....# .#...",
     "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#...",
     "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#...",
     "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#...",
     "#.... #..#. #..#. #...# ..#.. #...# .#.#. ##.## #...# ..#.. #.... .#...",
     "#.... .##.# #...# .###. ..#.. .###. ..#.. #...# #...# ..#.. ##### .###.",
     "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ....."},
    // \     ]     ^     _     `     a     b     c     d     e     f     g
    {"..... .###. ..#.. ..... .#... ..... #.... ..... ....# ..... ..##. .....",
     "#.... ...#. .#.#. ..... ..#.. ..... #.... ..... ....# ..... .#..# .....",
     ".#... ...#. #...# ..... ..... .###. #.##. .###. .##.# .###. .#... .####",
     "..#.. ...#. ..... ..... ..... ....# ##..# #.... #..## #...# ###.. #...#",
     "...#. ...#. ..... ..... ..... .#### #...# #.... #...# ##### .#... #...#",
     "....# ...#. ..... ..... ..... #...# #...# #...# #...# #.... .#... .####",
     "..... .###. ..... ##### ..... .#### ####. .###. .#### .###. .#... ....#",
     "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .###."},
    // h     i     j     k     l     m     n     o     p     q     r     s
    {"#.... ..#.. ...#. #.... .##.. ..... ..... ..... ..... ..... ..... .....",
     "#.... ..... ..... #.... ..#.. ..... ..... ..... ..... ..... ..... .....",
     "#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###. ####. .#### #.##. .####",
     "##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...# #...# #...# ##..# #....",
     "#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...# #...# #...# #.... .###.",
     "#...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...# ####. .#### #.... ....#",
     "#...# .###. #..#. #..#. .###. #.#.# #...# .###. #.... ....# #.... ####.",
     "..... ..... .##.. ..... ..... ..... ..... ..... #.... ....# ..... ....."},
    // t     u     v     w     x     y     z     {     |     }     ~     (unused)
    {".#... ..... ..... ..... ..... ..... ..... ...#. ..#.. .#... ..... .....",
     ".#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. ..... .....",
     "####. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#... .....",
     ".#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.# .....",
     ".#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. .....",
     ".#..# #..## .#.#. #.#.# .#.#. .#### .#... ..#.. ..#.. ..#.. ..... .....",
     "..##. .##.# ..#.. .#.#. #...# ....# ##### ...#. ..#.. .#... ..... .....",
     "..... ..... ..... ..... ..... .###. ..... ..... ..#.. ..... ..... ....."},
};

using Glyphs = std::array<std::array<uint8_t, kHeight>, 95>;

Glyphs parse_art() {
  Glyphs g{};
  for (int k = 0; k < 95; ++k)
    for (int row = 0; row < kHeight; ++row) {
      const std::string_view line = kArt[k / 12][row];
      uint8_t bits = 0;
      for (int col = 0; col < kWidth; ++col) bits = uint8_t(bits << 1 | (line[size_t((k % 12) * 6 + col)] == '#'));
      g[size_t(k)][size_t(row)] = bits;
    }
  return g;
}

}  // namespace

const std::array<uint8_t, kHeight>& glyph(char c) {
  static const Glyphs glyphs = parse_art();
  const unsigned char u = static_cast<unsigned char>(c);
  return glyphs[size_t(u >= 32 && u <= 126 ? u - 32 : '?' - 32)];
}

int text_width(std::string_view text, int scale) {
  return text.empty() ? 0 : (int(text.size()) * kAdvance - 1) * scale;
}

}  // namespace font

// ---- canvas ----------------------------------------------------------------------------------------

Canvas::Canvas(int width, int height, int channels, Rgb background)
    : w_(std::max(width, 1)), h_(std::max(height, 1)), c_(channels == 1 ? 1 : 3), px_(size_t(w_) * size_t(h_) * size_t(c_)) {
  fill_rect(0, 0, w_, h_, background);
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  unsigned char* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * size_t(c_)];
  if (c_ == 1) {
    p[0] = (unsigned char)std::lround(0.299 * c.r + 0.587 * c.g + 0.114 * c.b);
  } else {
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
}

Rgb Canvas::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return {};
  const unsigned char* p = &px_[(size_t(y) * size_t(w_) + size_t(x)) * size_t(c_)];
  return c_ == 1 ? Rgb{p[0], p[0], p[0]} : Rgb{p[0], p[1], p[2]};
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  for (int yy = std::max(y, 0); yy < std::min(y + h, h_); ++yy)
    for (int xx = std::max(x, 0); xx < std::min(x + w, w_); ++xx) set(xx, yy, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  // Step along the longer axis one pixel at a time; a square pen of `thickness` pixels at each step.
  const double dx = x1 - x0, dy = y1 - y0;
  const double len = std::max(std::fabs(dx), std::fabs(dy));
  if (!std::isfinite(len) || len > 1e6) return;
  const int steps = std::max(1, int(std::ceil(len)));
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int i = 0; i <= steps; ++i) {
    const int x = int(std::lround(x0 + dx * i / steps)), y = int(std::lround(y0 + dy * i / steps));
    for (int a = lo; a <= hi; ++a)
      for (int b = lo; b <= hi; ++b) set(x + a, y + b, c);
  }
}

void Canvas::text(int x, int y, std::string_view text, Rgb c, int scale) {
  for (char ch : text) {
    const auto& g = font::glyph(ch);
    for (int row = 0; row < font::kHeight; ++row)
      for (int col = 0; col < font::kWidth; ++col)
        if (g[size_t(row)] >> (font::kWidth - 1 - col) & 1) fill_rect(x + col * scale, y + row * scale, scale, scale, c);
    x += font::kAdvance * scale;
  }
}

void Canvas::text_up(int x, int y, std::string_view text, Rgb c, int scale) {
  // Glyph pixel (col, row) goes to (x + row, y - col): the text's baseline faces right.
  for (char ch : text) {
    const auto& g = font::glyph(ch);
    for (int row = 0; row < font::kHeight; ++row)
      for (int col = 0; col < font::kWidth; ++col)
        if (g[size_t(row)] >> (font::kWidth - 1 - col) & 1)
          fill_rect(x + row * scale, y - (col + 1) * scale, scale, scale, c);
    y -= font::kAdvance * scale;
  }
}

void Canvas::text_centred(int x, int y, std::string_view t, Rgb c, int scale) {
  text(x - font::text_width(t, scale) / 2, y, t, c, scale);
}

std::string Canvas::png() const {
  std::string out;
  auto append = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(size)); };
  if (!stbi_write_png_to_func(append, &out, w_, h_, c_, px_.data(), w_ * c_))
    throw std::runtime_error("cannot encode a " + std::to_string(w_) + "x" + std::to_string(h_) + " PNG");
  return out;
}

void Canvas::write_png(const std::string& path) const {
  const std::string bytes = png();
  runtime::write_file_atomically(path, {bytes}, [&](const std::string& m) { throw std::runtime_error(path + ": " + m); });
}

// ---- axes ------------------------------------------------------------------------------------------

std::vector<double> linear_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) ticks.push_back(k * step == 0 ? 0 : k * step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  const auto in_range = [&](double v) { return v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9); };
  for (const std::vector<double>& mantissas : {std::vector<double>{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    ticks.clear();
    for (int e = int(std::floor(std::log10(lo))) - 1; e <= int(std::ceil(std::log10(hi))); ++e)
      for (double m : mantissas) {
        // m * 10^e computed from a decimal string, so 0.3 is the double nearest 0.3.
        char s[32];
        std::snprintf(s, sizeof s, "%ge%d", m, e);
        const double v = std::strtod(s, nullptr);
        if (in_range(v)) ticks.push_back(v);
      }
    if (ticks.size() >= 2) break;
  }
  return ticks;
}

std::string tick_label(double v) {
  char s[32];
  if (v == std::round(v) && std::fabs(v) < 1e7) std::snprintf(s, sizeof s, "%.0f", v);
  else std::snprintf(s, sizeof s, "%.3g", v);
  return s;
}

double ChartLayout::px(double x) const {
  return left + (x - x_min) / (x_max - x_min) * (right - 1 - left);
}

double ChartLayout::py(double y) const {
  const double f = log_y ? (std::log10(y) - std::log10(y_min)) / (std::log10(y_max) - std::log10(y_min))
                         : (y - y_min) / (y_max - y_min);
  return bottom - 1 - f * (bottom - 1 - top);
}

Canvas draw_chart(const LineChart& chart, ChartLayout* layout_out) {
  const Rgb ink{40, 40, 40}, grid{225, 225, 225}, minor_grid{242, 242, 242};
  const int s = std::max(chart.text_scale, 1);
  const auto shown = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!chart.log_y || y > 0); };

  // The data range.
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const Series& se : chart.series)
    for (size_t i = 0; i < std::min(se.x.size(), se.y.size()); ++i)
      if (shown(se.x[i], se.y[i])) {
        x_min = std::min(x_min, se.x[i]), x_max = std::max(x_max, se.x[i]);
        y_min = std::min(y_min, se.y[i]), y_max = std::max(y_max, se.y[i]);
      }
  if (!(x_min <= x_max)) throw std::invalid_argument("the chart \"" + chart.title + "\" has no point to show");
  ChartLayout L;
  L.log_y = chart.log_y;
  if (chart.x_from_zero && x_min > 0) x_min = 0;
  if (x_max == x_min) x_min -= 0.5, x_max += 0.5;
  L.x_min = x_min, L.x_max = x_max;
  if (chart.log_y) {
    // At least a factor of 2 tall, 4% of the span of margin above and below.
    double a = std::log10(y_min), b = std::log10(y_max);
    if (b - a < 0.3) a = (a + b) / 2 - 0.15, b = a + 0.3;
    const double pad = 0.04 * (b - a);
    L.y_min = std::pow(10.0, a - pad), L.y_max = std::pow(10.0, b + pad);
    L.y_ticks = log_ticks(L.y_min, L.y_max);
  } else {
    if (y_max == y_min) y_min -= 0.5, y_max += 0.5;
    const double pad = 0.04 * (y_max - y_min);
    L.y_min = y_min - pad, L.y_max = y_max + pad;
    L.y_ticks = linear_ticks(L.y_min, L.y_max);
  }
  L.x_ticks = linear_ticks(L.x_min, L.x_max);

  // Margins: the y tick labels' width and the upright y title on the left; tick labels and the x
  // title below; the title above.
  int label_w = 0;
  for (double t : L.y_ticks) label_w = std::max(label_w, font::text_width(tick_label(t), s));
  const int line_h = font::kLineHeight * s, title_s = s + 1;
  L.left = 8 * s + (chart.y_title.empty() ? 0 : line_h + 4 * s) + label_w + 4 * s;
  L.top = font::kLineHeight * title_s + 8 * s;
  L.right = chart.width - 8 * s - font::text_width(tick_label(L.x_ticks.empty() ? 0 : L.x_ticks.back()), s) / 2;
  L.bottom = chart.height - (4 * s + line_h + (chart.x_title.empty() ? 0 : line_h + 2 * s) + 4 * s);
  if (L.right - L.left < 20 || L.bottom - L.top < 20)
    throw std::invalid_argument("the chart \"" + chart.title + "\" is too small for its labels");

  Canvas cv(chart.width, chart.height);
  // Grid lines: minor ones at 2..9 x 10^k on a log axis whose ticks are powers of ten.
  if (chart.log_y && L.y_ticks.size() >= 2 && L.y_ticks[1] / L.y_ticks[0] > 9.9)
    for (int e = int(std::floor(std::log10(L.y_min))); e <= int(std::ceil(std::log10(L.y_max))); ++e)
      for (int m = 2; m <= 9; ++m) {
        const double v = m * std::pow(10.0, e);
        if (v > L.y_min && v < L.y_max) cv.line(L.left, L.py(v), L.right - 1, L.py(v), minor_grid);
      }
  for (double t : L.y_ticks) cv.line(L.left, L.py(t), L.right - 1, L.py(t), grid);
  for (double t : L.x_ticks) cv.line(L.px(t), L.top, L.px(t), L.bottom - 1, grid);

  // The series, clipped to the plot area (points are inside it by construction).
  for (const Series& se : chart.series) {
    bool have_prev = false;
    double px0 = 0, py0 = 0;
    for (size_t i = 0; i < std::min(se.x.size(), se.y.size()); ++i) {
      if (!shown(se.x[i], se.y[i])) {
        have_prev = false;
        continue;
      }
      const double px = L.px(se.x[i]), py = L.py(se.y[i]);
      if (have_prev) cv.line(px0, py0, px, py, se.colour, se.thickness);
      else cv.line(px, py, px, py, se.colour, se.thickness);
      px0 = px, py0 = py, have_prev = true;
    }
  }

  // The frame, ticks and their labels.
  cv.line(L.left, L.top, L.right - 1, L.top, ink);
  cv.line(L.left, L.bottom - 1, L.right - 1, L.bottom - 1, ink);
  cv.line(L.left, L.top, L.left, L.bottom - 1, ink);
  cv.line(L.right - 1, L.top, L.right - 1, L.bottom - 1, ink);
  const int glyph_h = 7 * s;  // cap height
  for (double t : L.y_ticks) {
    const int y = int(std::lround(L.py(t)));
    cv.line(L.left - 3 * s, y, L.left - 1, y, ink);
    const std::string lab = tick_label(t);
    cv.text(L.left - 4 * s - font::text_width(lab, s) - s, y - glyph_h / 2, lab, ink, s);
  }
  for (double t : L.x_ticks) {
    const int x = int(std::lround(L.px(t)));
    cv.line(x, L.bottom, x, L.bottom + 3 * s - 1, ink);
    cv.text_centred(x, L.bottom + 4 * s, tick_label(t), ink, s);
  }
  // Titles.
  cv.text_centred((L.left + L.right) / 2, 4 * s, chart.title, ink, title_s);
  if (!chart.x_title.empty()) cv.text_centred((L.left + L.right) / 2, L.bottom + 4 * s + line_h + 2 * s, chart.x_title, ink, s);
  if (!chart.y_title.empty())
    cv.text_up(8 * s, (L.top + L.bottom) / 2 + font::text_width(chart.y_title, s) / 2, chart.y_title, ink, s);

  // The legend: a short line of each labelled series' colour and its label, top right, on white.
  int legend_w = 0, legend_n = 0;
  for (const Series& se : chart.series)
    if (!se.label.empty()) legend_w = std::max(legend_w, font::text_width(se.label, s)), ++legend_n;
  if (legend_n > 0) {
    const int sample_w = 12 * s, pad = 4 * s, row_h = line_h;
    const int box_w = pad + sample_w + 3 * s + legend_w + pad, box_h = pad + legend_n * row_h - 3 * s + pad;
    const int bx = L.right - 1 - 6 * s - box_w, by = L.top + 6 * s;
    cv.fill_rect(bx, by, box_w, box_h, {255, 255, 255});
    cv.line(bx, by, bx + box_w - 1, by, grid);
    cv.line(bx, by + box_h - 1, bx + box_w - 1, by + box_h - 1, grid);
    cv.line(bx, by, bx, by + box_h - 1, grid);
    cv.line(bx + box_w - 1, by, bx + box_w - 1, by + box_h - 1, grid);
    int row = 0;
    for (const Series& se : chart.series) {
      if (se.label.empty()) continue;
      const int ty = by + pad + row * row_h;
      cv.line(bx + pad, ty + glyph_h / 2, bx + pad + sample_w - 1, ty + glyph_h / 2, se.colour, std::max(se.thickness, 2));
      cv.text(bx + pad + sample_w + 3 * s, ty, se.label, ink, s);
      ++row;
    }
  }
  if (layout_out) *layout_out = L;
  return cv;
}

}  // namespace noiseflow::nodes::draw
