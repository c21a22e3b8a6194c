// tests/nodes/draw/test_plot.cpp — the canvas, font and line chart of nodes/draw/plot.hpp, and the loss curve
// drawn from a log.csv (nodes/draw/loss_plot.hpp), read back with stb_image.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "nodes/draw/loss_plot.hpp"
#include "nodes/draw/plot.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::nodes::draw;
using noiseflow::test::TempDir;
namespace fs = std::filesystem;

namespace {

int lit_cells(char c) {
  int n = 0;
  for (uint8_t row : font::glyph(c)) n += std::popcount(row);
  return n;
}

/// Pixels of exactly colour `c` in the rectangle [x0, x1) x [y0, y1) of a canvas.
int count(const Canvas& cv, Rgb c, int x0 = 0, int y0 = 0, int x1 = 1 << 20, int y1 = 1 << 20) {
  int n = 0;
  for (int y = std::max(y0, 0); y < std::min(y1, cv.height()); ++y)
    for (int x = std::max(x0, 0); x < std::min(x1, cv.width()); ++x) n += cv.get(x, y) == c;
  return n;
}

const Rgb kBlack{0, 0, 0}, kWhite{255, 255, 255}, kRed{255, 0, 0};

}  // namespace

TEST_CASE("font: every printable character has its own glyph, others are drawn as '?'") {
  // 'A' as designed: .###. #...# #...# #...# ##### #...# #...# and an empty descender row.
  CHECK(font::glyph('A') == std::array<uint8_t, 8>{0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0});
  CHECK(font::glyph('g')[7] == 0b01110);  // a descender
  std::set<std::array<uint8_t, 8>> seen;
  for (int c = 33; c <= 126; ++c) {
    CAPTURE(char(c));
    CHECK(lit_cells(char(c)) > 0);
    CHECK(seen.insert(font::glyph(char(c))).second);  // no two characters look the same
  }
  CHECK(lit_cells(' ') == 0);
  CHECK(font::glyph('\n') == font::glyph('?'));
  CHECK(font::glyph(char(200)) == font::glyph('?'));
  CHECK(font::text_width("t=999", 1) == 29);
  CHECK(font::text_width("t=999", 2) == 58);
  CHECK(font::text_width("", 2) == 0);
}

TEST_CASE("canvas: text, upright text and lines land on the pixels they should") {
  Canvas cv(40, 30, 3);
  cv.text(3, 4, "1", kBlack, 2);
  // Each lit font pixel is a 2 x 2 block: '1' has 10 lit cells.
  CHECK(lit_cells('1') == 10);
  CHECK(count(cv, kBlack) == 10 * 4);
  // Its top row is ..#..: pixels (3 + 2*2, 4) and (3 + 2*2 + 1, 5) lit, (3, 4) not.
  CHECK(cv.get(7, 4) == kBlack);
  CHECK(cv.get(8, 5) == kBlack);
  CHECK(cv.get(3, 4) == kWhite);

  Canvas up(30, 40, 1);
  up.text_up(5, 30, "L", kBlack, 1);  // 'L' read bottom to top: its stem is the bottom row of pixels
  CHECK(count(up, kBlack) == lit_cells('L'));
  for (int x = 5; x < 5 + 7; ++x) CHECK(up.get(x, 29) == kBlack);  // rows 0..6 of column 0
  CHECK(up.get(5, 30) == kWhite);
  CHECK(up.get(5 + 6, 29 - 4) == kBlack);  // the foot: row 6, column 4

  Canvas ln(20, 20, 3);
  ln.line(2, 5, 12, 5, kRed, 1);
  CHECK(count(ln, kRed) == 11);
  ln.line(2, 10, 12, 10, kRed, 3);  // a 3 x 3 pen: 13 x 3 pixels
  CHECK(count(ln, kRed) == 11 + 13 * 3);
  ln.line(0, 0, 19, 19, kRed, 1);  // the diagonal: one pixel per column
  CHECK(ln.get(7, 7) == kRed);
  Canvas gray(4, 4, 1, {255, 255, 255});
  gray.set(1, 1, {0, 128, 0});  // luma
  CHECK(gray.get(1, 1) == Rgb{75, 75, 75});
  gray.set(9, 9, kBlack);  // clipped
  CHECK(count(gray, kWhite) == 15);
}

TEST_CASE("axis ticks: 1-2-5 steps on linear axes, powers of ten on log axes unless the range is narrow") {
  CHECK(linear_ticks(0, 3838) == std::vector<double>{0, 1000, 2000, 3000});
  CHECK(linear_ticks(0, 2000) == std::vector<double>{0, 500, 1000, 1500, 2000});
  CHECK(linear_ticks(1, 40) == std::vector<double>{10, 20, 30, 40});
  CHECK(log_ticks(0.005, 2) == std::vector<double>{0.01, 0.1, 1});
  CHECK(log_ticks(0.02, 0.09) == std::vector<double>{0.02, 0.05});
  CHECK(log_ticks(0.045, 0.085) == std::vector<double>{0.05, 0.06, 0.07, 0.08});
  CHECK(tick_label(1000) == "1000");
  CHECK(tick_label(0.05) == "0.05");
  CHECK(tick_label(0.1) == "0.1");
  CHECK(tick_label(2.5e-5) == "2.5e-05");
  CHECK(tick_label(999.5) == "1e+03");
}

TEST_CASE("line chart: a known series sits on its tick's grid line, labels around the plot area") {
  LineChart c;
  c.title = "title";
  c.x_title = "step";
  c.y_title = "loss";
  std::vector<double> x, y;
  for (int i = 0; i <= 100; ++i) x.push_back(i), y.push_back(i < 50 ? 0.1 : 1.0);
  c.series.push_back({x, y, kRed, 1, ""});
  ChartLayout L;
  const Canvas cv = draw_chart(c, &L);
  CHECK(cv.width() == 900);
  CHECK(cv.height() == 560);
  CHECK(L.y_ticks == std::vector<double>{0.1, 1});
  CHECK(L.x_ticks == std::vector<double>{0, 20, 40, 60, 80, 100});
  // The y range is the data's, 4% of it (in decades) above and below.
  CHECK(L.y_min == doctest::Approx(std::pow(10.0, -1.04)));
  CHECK(L.y_max == doctest::Approx(std::pow(10.0, 0.04)));
  // The series: 0.1 from x = 0 to 49, a step up, 1.0 from 50 to 100; each flat part on one pixel row.
  const int row01 = int(std::lround(L.py(0.1))), row1 = int(std::lround(L.py(1.0)));
  const int x0 = int(std::lround(L.px(0))), x49 = int(std::lround(L.px(49))), x100 = int(std::lround(L.px(100)));
  // (The frame is drawn over the series: its first and last pixels are the frame's.)
  CHECK(x0 == L.left);
  CHECK(x100 == L.right - 1);
  CHECK(count(cv, kRed, x0, row01, x49 + 1, row01 + 1) == x49 - x0);
  CHECK(count(cv, kRed, int(std::lround(L.px(50))), row1, x100 + 1, row1 + 1) == x100 - int(std::lround(L.px(50))));
  CHECK(cv.get(x0, row01) == Rgb{40, 40, 40});
  // Nothing red outside the plot area.
  CHECK(count(cv, kRed) == count(cv, kRed, L.left, L.top, L.right, L.bottom));
  // The tick label "0.1" left of its tick: dark pixels in the margin on that row, the title above the plot.
  const Rgb ink{40, 40, 40};
  CHECK(count(cv, ink, 0, row01 - 7, L.left - 6, row01 + 8) >= lit_cells('0') + lit_cells('1'));
  CHECK(count(cv, ink, 0, 0, cv.width(), L.top - 1) == 3 * 3 * (lit_cells('t') * 2 + lit_cells('i') + lit_cells('l') +
                                                                  lit_cells('e')));
  // No point to show: an error naming the chart.
  LineChart empty;
  empty.title = "nothing";
  empty.series.push_back({{1, 2}, {0, -1}, kRed, 1, ""});
  CHECK_THROWS_WITH_AS(draw_chart(empty), "the chart \"nothing\" has no point to show", std::invalid_argument);
}

TEST_CASE("loss smoothing: a centred moving average of about n / 40 steps that skips gaps") {
  CHECK(smoothing_window(10) == 1);
  CHECK(smoothing_window(400) == 11);
  CHECK(smoothing_window(3838) == 95);
  CHECK(smoothing_window(100000) == 101);
  CHECK(centred_mean({2, 2, 2}, 3) == std::vector<double>{2, 2, 2});
  CHECK(centred_mean({1, 2, 3, 4, 5}, 3) == std::vector<double>{1.5, 2, 3, 4, 4.5});
  CHECK(centred_mean({1, 2, 3, 4, 5}, 1) == std::vector<double>{1, 2, 3, 4, 5});
  const auto n = centred_mean({NAN, 4, 6, NAN}, 3);
  CHECK(std::isnan(n[0]));
  CHECK(n[1] == 5);
  CHECK(n[2] == 5);
  CHECK(std::isnan(n[3]));
}

TEST_CASE("loss plot: log.csv -> loss.png, every row drawn, written atomically, bad logs name the file") {
  TempDir dir;
  // A resumed run's log: rows from before the resume and after, one with a NaN loss, one cut short.
  std::string csv = "tick,loss,lr,grad_norm,seconds,fd\n";
  for (int t = 0; t < 200; ++t) csv += std::to_string(t) + "," + (t == 7 ? "nan" : "0.05") + ",0.001,1,0.5,\n";
  csv += "200,";
  const std::string log = dir.write("log.csv", csv), png = dir / "out/loss.png";
  std::vector<double> steps, loss;
  read_loss_log(log, steps, loss);
  REQUIRE(steps.size() == 201);
  CHECK(steps.front() == 1);
  CHECK(steps[199] == 200);
  CHECK(std::isnan(loss[7]));
  CHECK(std::isnan(loss[200]));
  CHECK(write_loss_plot(log, png, "run: training loss") == 199);
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(png.c_str(), &w, &h, &c, 0);
  REQUIRE(px != nullptr);
  CHECK(w == 900);
  CHECK(h == 560);
  CHECK(c == 3);
  // The smoothed curve of a constant loss is one flat line of its colour (20, 70, 160), 3 pixels
  // thick, from step 1 to step 200 (broken at the NaN row); plus the legend's sample line.
  int dark_blue = 0;
  for (int i = 0; i < w * h; ++i) dark_blue += px[3 * i] == 20 && px[3 * i + 1] == 70 && px[3 * i + 2] == 160;
  stbi_image_free(px);
  CHECK(dark_blue > 3 * 600);
  CHECK(dark_blue < 3 * 900);
  CHECK_FALSE(fs::exists(png + ".tmp"));

  // No loss to draw: nothing written.
  CHECK(write_loss_plot(dir.write("empty.csv", "tick,loss\n"), dir / "empty.png", "x") == 0);
  CHECK_FALSE(fs::exists(dir / "empty.png"));
  CHECK_THROWS_WITH_AS(write_loss_plot(dir.write("nolos.csv", "tick,lr\n1,2\n"), dir / "x.png", "x"),
                       (dir / "nolos.csv" + ": the header names no \"tick\" and \"loss\" columns: tick,lr").c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(write_loss_plot(dir / "missing.csv", dir / "x.png", "x"),
                       (dir / "missing.csv" + ": cannot read the run's log").c_str(), std::runtime_error);
}
