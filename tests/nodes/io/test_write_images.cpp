// tests/nodes/io/test_write_images.cpp — io.write_images and io.trajectory grids read back with stb_image.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "nodes/draw/plot.hpp"
#include "runtime/harness.hpp"
#include "runtime/run_state.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::TempDir;
namespace fs = std::filesystem;

namespace {

/// A PNG read back: width, height, channels and interleaved bytes.
struct Png {
  int w = 0, h = 0, c = 0;
  std::vector<unsigned char> px;
  int at(int x, int y, int ch = 0) const { return px[size_t((y * w + x) * c + ch)]; }
};

Png read_png(const std::string& path) {
  Png p;
  unsigned char* data = stbi_load(path.c_str(), &p.w, &p.h, &p.c, 0);
  REQUIRE_MESSAGE(data != nullptr, "cannot read " << path);
  p.px.assign(data, data + p.w * p.h * p.c);
  stbi_image_free(data);
  return p;
}

/// Lit pixels of a character of the 5x7 font.
int lit_cells(char c) {
  int n = 0;
  for (uint8_t row : noiseflow::nodes::draw::font::glyph(c)) n += std::popcount(row);
  return n;
}

int byte_of(float v) { return int(std::lround((std::clamp(v, -1.f, 1.f) + 1.f) * 127.5f)); }

/// [n, c, 2, 2] images; value of (k, ch, i) = -1 + 0.5 k + 0.1 i + 0.05 ch.
Tensor test_images(int n, int c) {
  Tensor t({n, c, 2, 2});
  for (int k = 0; k < n; ++k)
    for (int ch = 0; ch < c; ++ch)
      for (int i = 0; i < 4; ++i) t[(k * c + ch) * 4 + i] = -1.f + 0.5f * float(k) + 0.1f * float(i) + 0.05f * float(ch);
  return t;
}

/// Leftover PATH.tmp files in a folder tree.
int tmp_files(const fs::path& dir) {
  int n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) n += e.path().extension() == ".tmp";
  return n;
}

}  // namespace

TEST_CASE("io.write_images writes a padded grid") {
  TempDir tmp;
  const std::string path = tmp / "grid.png";
  Tensor x = test_images(3, 1);
  x[0] = -5.f;  // clamped to -1
  x[3] = 7.f;   // clamped to 1
  NodeHarness h("io.write_images", {{"path", path}, {"padding", 1}}, {{"images", x}});
  h.forward(0);
  const Png p = read_png(path);
  // cols = ceil(sqrt(3)) = 2, rows = 2: (2 + 1) * 2 + 1 = 7 pixels each way.
  REQUIRE(p.w == 7);
  REQUIRE(p.h == 7);
  REQUIRE(p.c == 1);
  for (int i = 0; i < 7; ++i) {  // the padding rows and columns are black
    CHECK(p.at(i, 0) == 0);
    CHECK(p.at(0, i) == 0);
    CHECK(p.at(3, i) == 0);
    CHECK(p.at(i, 6) == 0);
  }
  const int cell[3][2] = {{1, 1}, {4, 1}, {1, 4}};  // (x, y) of each image's top-left pixel
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 4; ++i) CHECK(p.at(cell[k][0] + i % 2, cell[k][1] + i / 2) == byte_of(x[k * 4 + i]));
  CHECK(p.at(1, 1) == 0);
  CHECK(p.at(2, 2) == 255);
  for (int i = 0; i < 4; ++i) CHECK(p.at(4 + i % 2, 4 + i / 2) == 0);  // the empty fourth cell
  CHECK(tmp_files(tmp.path) == 0);
}

TEST_CASE("io.write_images: RGB, columns, pad value and upscaling") {
  TempDir tmp;
  const std::string path = tmp / "rgb.png";
  const Tensor x = test_images(2, 3);
  NodeHarness h("io.write_images", {{"path", path}, {"cols", 1}, {"padding", 2}, {"pad_value", 1.0}, {"scale", 3}},
                {{"images", x}});
  h.forward(0);
  const Png p = read_png(path);
  // One column: width 2 + 2 * 2 = 6, height 2 * (2 + 2) + 2 = 10, times 3.
  REQUIRE(p.w == 18);
  REQUIRE(p.h == 30);
  REQUIRE(p.c == 3);
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(p.at(0, 0, ch) == 255);    // white padding
    CHECK(p.at(17, 29, ch) == 255);
    for (int k = 0; k < 2; ++k)
      for (int i = 0; i < 4; ++i) {
        const int gx = 2 + i % 2, gy = 2 + k * 4 + i / 2;  // grid pixel, before scaling
        for (int d = 0; d < 9; ++d)
          CHECK(p.at(gx * 3 + d % 3, gy * 3 + d / 3, ch) == byte_of(x[(k * 3 + ch) * 4 + i]));
      }
  }
}

TEST_CASE("io.write_images substitutes {tick}, creates folders, records the artifact") {
  TempDir tmp;
  RunState rs;
  NodeHarness h("io.write_images", {{"path", tmp / "a/b/samples_{tick}.png"}}, {{"images", test_images(4, 1)}});
  h.ctx().run_state_ = &rs;
  h.forward(42);
  h.forward(1234567);
  h.forward(42);  // overwrites
  const std::string first = tmp / "a/b/samples_000042.png", second = tmp / "a/b/samples_1234567.png";
  CHECK(fs::exists(first));
  CHECK(fs::exists(second));
  CHECK(read_png(first).w == 2 * (2 + 2) + 2);
  CHECK(tmp_files(tmp.path) == 0);
  const auto arts = rs.artifacts();
  REQUIRE(arts.size() == 2);  // RunState lists each file once
  CHECK(arts[0] == std::make_pair(std::string("image"), first));
  CHECK(arts[1] == std::make_pair(std::string("image"), second));
}

TEST_CASE("io.write_images reports bad inputs and unwritable paths") {
  TempDir tmp;
  CHECK_THROWS_AS(NodeHarness("io.write_images", {{"path", tmp / "x.png"}}, {{"images", Tensor({1, 2, 4, 4})}}),
                  noiseflow::graph::ShapeError);
  CHECK_THROWS_AS(NodeHarness("io.write_images", {{"path", tmp / "x.png"}}, {{"images", Tensor({4, 4})}}),
                  noiseflow::graph::ShapeError);
  noiseflow::test::write_bytes(tmp / "file", "a file, not a folder");
  NodeHarness h("io.write_images", {{"path", tmp / "file/sub/x.png"}}, {{"images", test_images(1, 1)}});
  try {
    h.forward(0);
    FAIL("expected an error");
  } catch (const NodeError& e) {
    CHECK(e.field == "path");
    CHECK(std::string(e.what()).rfind("cannot create folder '" + tmp / "file/sub" + "': ", 0) == 0);
  }
  CHECK(tmp_files(tmp.path) == 0);
}

TEST_CASE("io.write_images labels each row in a left margin with its first image's label") {
  TempDir tmp;
  const std::string path = tmp / "labelled.png";
  // 4 images of 20 x 20 in 2 columns: rows labelled 7 and 1 (the labels of images 0 and 2).
  Tensor x({4, 1, 20, 20});
  x.fill(-1.f);
  const Tensor labels({4}, {7.f, 7.f, 1.f, 1.f});
  NodeHarness h("io.write_images", {{"path", path}, {"padding", 2}, {"cols", 2}}, {{"images", x}, {"labels", labels}});
  h.forward(0);
  const Png p = read_png(path);
  // The margin: 3 characters of the 5x7 font at twice its size (6 x 2 pixels each), plus 2 x 2: 40 pixels
  // before the grid of 2 x 22 + 2.
  REQUIRE(p.w == 40 + 46);
  REQUIRE(p.h == 46);
  // Glyphs 10 x 14 pixels (rows 0-6 of the font), right-aligned at x = 40 - 4 - 10 = 26 .. 35, centred on
  // each 20-pixel row (y 2 + 10 - 7 = 5 and 24 + 10 - 7 = 27).
  auto lit = [&](int x0, int y0) {
    int n = 0;
    for (int y = y0; y < y0 + 14; ++y)
      for (int xx = x0; xx < x0 + 10; ++xx) n += p.at(xx, y) == 255;
    return n;
  };
  // Each lit font pixel is 2 x 2: "7" = #####,....#,...#.,..#..,.#...,.#...,.#...: 11; "1": 10.
  CHECK(lit_cells('7') == 11);
  CHECK(lit_cells('1') == 10);
  CHECK(lit(26, 5) == 11 * 4);
  CHECK(lit(26, 27) == 10 * 4);
  // Nothing is drawn over the images or elsewhere in the margin.
  int other = 0;
  for (int y = 0; y < p.h; ++y)
    for (int xx = 0; xx < p.w; ++xx)
      if (p.at(xx, y) == 255 && !(xx >= 26 && xx < 36 && ((y >= 5 && y < 19) || (y >= 27 && y < 41)))) ++other;
  CHECK(other == 0);
  CHECK(noiseflow::test::shape_error_field("io.write_images", {{"path", path}}, {{"images", x}, {"labels", Tensor({3})}}) ==
        "labels");
}

TEST_CASE("io.write_images labels each column above it with its first image's value after col_prefix") {
  TempDir tmp;
  const std::string path = tmp / "strip.png";
  // A forward-process strip: 2 digits x 3 timesteps (interleaved), t = 0, 5, 9 per column.
  Tensor x({6, 1, 20, 20});
  x.fill(-1.f);
  const Tensor t({6}, {0.f, 5.f, 9.f, 0.f, 5.f, 9.f});
  NodeHarness h("io.write_images", {{"path", path}, {"padding", 2}, {"cols", 3}, {"scale", 2}, {"col_prefix", "t="}},
                {{"images", x}, {"col_labels", t}});
  h.forward(0);
  const Png p = read_png(path);
  // A line of 10 x 2 + 2 pixels on top of the grid of (3 x 22 + 2) x 2 by (2 x 22 + 2) x 2.
  REQUIRE(p.w == 136);
  REQUIRE(p.h == 22 + 92);
  // Each label at twice the font's size ("t=0" is 34 pixels wide, its column 44), centred on its column.
  const std::string want[3] = {"t=0", "t=5", "t=9"};
  for (int c = 0; c < 3; ++c) {
    CAPTURE(c);
    const int left = (2 + c * 22) * 2, centre = left + 20;
    int n = 0, outside = 0;
    for (int y = 0; y < 22; ++y)
      for (int xx = left - 2; xx < left + 42; ++xx) {
        const bool on = p.at(xx, y) == 255;
        n += on;
        outside += on && (xx < centre - 17 || xx >= centre + 17 || y < 1 || y >= 15);
      }
    CHECK(n == 4 * (lit_cells('t') + lit_cells('=') + lit_cells(want[c][2])));
    CHECK(outside == 0);
  }
  CHECK(noiseflow::test::shape_error_field("io.write_images", {{"path", path}}, {{"images", x}, {"col_labels", Tensor({2})}}) ==
        "col_labels");
}

TEST_CASE("io.trajectory labels each column with the t its images are at, the last x0") {
  TempDir tmp;
  const std::string path = tmp / "traj.png";
  Tensor x({1, 1, 20, 20}), t({1});
  x.fill(-1.f);
  // Three ticks at t = 999, 500, 0, a snapshot after each and x_T first: 4 columns.
  NodeHarness h("io.trajectory", {{"path", path}, {"rows", 1}, {"interval", 1}, {"scale", 2}},
                {{"images", x}, {"initial", x}, {"t", t}}, 1, 3);
  const float ts[3] = {999.f, 500.f, 0.f};
  for (int k = 0; k < 3; ++k) {
    h.set_input("t", Tensor({1}, {ts[k]}));
    h.forward(k);
  }
  const Png p = read_png(path);
  REQUIRE(p.w == (4 * 22 + 2) * 2);
  // "t=999" at twice the size (58 pixels) would not fit a 44-pixel column: the font's own size, 29 pixels.
  const std::string want[4] = {"t=999", "t=500", "t=0", "x0"};
  const int top = p.h - (22 + 2) * 2;
  CHECK(top == 22);
  for (int c = 0; c < 4; ++c) {
    CAPTURE(want[c]);
    int n = 0, expected = 0;
    for (int y = 0; y < top; ++y)
      for (int xx = (2 + c * 22) * 2 - 2; xx < (2 + c * 22) * 2 + 42; ++xx) n += p.at(xx, y) == 255;
    for (char ch : want[c]) expected += lit_cells(ch);
    CHECK(n == expected);
  }
}
