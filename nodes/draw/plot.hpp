// nodes/draw/plot.hpp — pictures with words on them: an 8-bit canvas (gray or RGB), a 5x7 pixel font for
// printable ASCII, lines, and a line chart with a logarithmic or linear y axis; PNGs written atomically.
// The picture library (nodes/draw/: this file, png_grid.hpp, loss_plot.hpp) is support code for the node
// library and the tools, not node types.
//
//            title
//        +-----------------------+
//   1    |\        ----- series  |   y tick labels at powers of ten (1-2-5 or 1..9 steps inside a
//  y     | \___                  |   narrow range), x ticks at 1-2-5 steps, light grid lines,
//  title |     \_______          |   the y title drawn upwards, a legend in the top-right corner
//   0.1  |             \_______  |
//        +-----------------------+
//        0        x title       1000
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace noiseflow::nodes::draw {

/// An 8-bit colour.
struct Rgb {
  unsigned char r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

/// The built-in font: glyphs 5 pixels wide and 8 tall (rows 0-6 above the baseline, row 7 for descenders),
/// one per printable ASCII character (' ' to '~'); anything else is drawn as '?'.
namespace font {
inline constexpr int kWidth = 5, kHeight = 8, kAdvance = 6, kLineHeight = 10;
/// A glyph's rows, top first; bit 4 is the leftmost column.
const std::array<uint8_t, kHeight>& glyph(char c);
/// Width in pixels of `text` drawn at `scale` (no trailing gap).
int text_width(std::string_view text, int scale = 1);
}  // namespace font

/// Pixels to draw on: 1 (gray) or 3 (RGB) interleaved 8-bit channels, row-major. Drawing outside is clipped.
class Canvas {
 public:
  Canvas(int width, int height, int channels = 3, Rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  int channels() const { return c_; }
  unsigned char* data() { return px_.data(); }
  const unsigned char* data() const { return px_.data(); }

  /// Sets one pixel (a gray canvas takes the colour's luma).
  void set(int x, int y, Rgb c);
  /// The pixel's colour (gray canvases: r = g = b).
  Rgb get(int x, int y) const;
  void fill_rect(int x, int y, int w, int h, Rgb c);
  /// A straight line between pixel centres, `thickness` pixels wide (a square pen).
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  /// `text` with its top-left corner at (x, y), each font pixel a `scale` x `scale` block.
  void text(int x, int y, std::string_view text, Rgb c, int scale = 1);
  /// `text` turned a quarter left (read bottom to top), its first character's bottom-left corner at (x, y).
  void text_up(int x, int y, std::string_view text, Rgb c, int scale = 1);
  /// `text` centred horizontally on x, top at y.
  void text_centred(int x, int y, std::string_view text, Rgb c, int scale = 1);

  /// The canvas as PNG bytes.
  std::string png() const;
  /// Writes the PNG to PATH.tmp, then renames it over `path` (folders created); throws std::runtime_error
  /// naming the file on failure.
  void write_png(const std::string& path) const;

 private:
  int w_, h_, c_;
  std::vector<unsigned char> px_;
};

/// One curve of a chart: points (x, y) joined in order; points with a non-finite y (or y <= 0 on a log
/// axis) break the curve.
struct Series {
  std::vector<double> x, y;
  Rgb colour;
  int thickness = 1;
  std::string label;  ///< shown in the legend unless empty
};

/// A line chart.
struct LineChart {
  std::string title, x_title, y_title;
  bool log_y = true;
  bool x_from_zero = false;  ///< the x axis starts at 0 when every x is positive
  int width = 900, height = 560;
  int text_scale = 2;  ///< tick labels, axis titles and legend; the title is one step larger
  std::vector<Series> series;
};

/// Where a chart's axes ended up: data coordinates to pixels, and the tick values drawn.
struct ChartLayout {
  int left = 0, top = 0, right = 0, bottom = 0;  ///< the plot area, pixels (right and bottom exclusive)
  double x_min = 0, x_max = 1, y_min = 1, y_max = 10;  ///< data range shown (y in data units, also when log)
  bool log_y = true;
  std::vector<double> x_ticks, y_ticks;
  double px(double x) const;  ///< pixel column of data x
  double py(double y) const;  ///< pixel row of data y
};

/// Draws the chart. Throws std::invalid_argument when no series has a point to show.
Canvas draw_chart(const LineChart& chart, ChartLayout* layout = nullptr);

/// Tick values for a linear axis over [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of them.
std::vector<double> linear_ticks(double lo, double hi, int target = 6);
/// Tick values for a log axis over [lo, hi] (lo > 0): powers of ten; where that gives fewer than two,
/// 1-2-5 steps; where those give fewer than two, every 1..9 x 10^k.
std::vector<double> log_ticks(double lo, double hi);
/// A tick label: integers as integers, others with up to 3 significant digits ("0.05", "2.5e-05").
std::string tick_label(double v);

}  // namespace noiseflow::nodes::draw
