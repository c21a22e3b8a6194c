// tests/nodes/data/test_images.cpp — data.images on PNGs written here with stb_image_write.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::node_error;
using noiseflow::test::TempDir;

namespace {

float unit(int byte) { return float(byte) * (2.f / 255.f) - 1.f; }

/// Writes an 8-bit PNG of w x h x c interleaved bytes.
void write_png(const std::string& path, int w, int h, int c, const std::vector<unsigned char>& px) {
  REQUIRE(px.size() == size_t(w * h * c));
  REQUIRE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c) != 0);
}

/// A grayscale w x h image whose pixel i is base + i.
std::vector<unsigned char> ramp(int w, int h, int base) {
  std::vector<unsigned char> v;
  for (int i = 0; i < w * h; ++i) v.push_back((unsigned char)(base + i));
  return v;
}

}  // namespace

TEST_CASE("data.images reads a folder of PNGs in name order") {
  TempDir tmp;
  write_png(tmp / "b.png", 3, 4, 1, ramp(3, 4, 100));
  write_png(tmp / "a.png", 3, 4, 1, ramp(3, 4, 0));
  write_png(tmp / "c.PNG", 3, 4, 1, ramp(3, 4, 200));
  noiseflow::test::write_bytes(tmp / "notes.txt", "not an image");
  std::filesystem::create_directory(tmp / "folder.png");  // a directory: ignored
  NodeHarness h("data.images", {{"dir", tmp.path.string()}, {"height", 4}, {"width", 3}, {"batch", 4}, {"shuffle", false}},
                {});
  h.forward(0);
  const Tensor& x = h.output("images");
  REQUIRE(x.shape() == Shape{4, 1, 4, 3});
  for (int k = 0; k < 4; ++k)  // a, b, c, then a again (next epoch)
    for (int i = 0; i < 12; ++i) CHECK(x[k * 12 + i] == doctest::Approx(unit((k % 3) * 100 + i)));

  SUBCASE("shuffled epochs are permutations of the files") {
    NodeHarness s("data.images", {{"dir", tmp.path.string()}, {"height", 4}, {"width", 3}, {"batch", 3}}, {}, 5);
    for (int64_t k = 0; k < 4; ++k) {
      s.forward(k);
      std::vector<int> firsts;
      for (int j = 0; j < 3; ++j) firsts.push_back(int(std::lround((s.output()[j * 12] + 1.f) * 127.5f)));
      std::sort(firsts.begin(), firsts.end());
      CHECK(firsts == std::vector<int>{0, 100, 200});
    }
  }
}

TEST_CASE("data.images converts RGB to CHW, or to grayscale") {
  TempDir tmp;
  // 2x1 RGB: a red pixel and a gray one.
  write_png(tmp / "rgb.png", 2, 1, 3, {255, 0, 0, 90, 90, 90});
  NodeHarness rgb("data.images", {{"dir", tmp.path.string()}, {"channels", 3}, {"height", 1}, {"width", 2}, {"batch", 1}}, {});
  rgb.forward(0);
  CHECK(rgb.output().to_vector() == std::vector<float>{unit(255), unit(90), unit(0), unit(90), unit(0), unit(90)});
  NodeHarness gray("data.images", {{"dir", tmp.path.string()}, {"channels", 1}, {"height", 1}, {"width", 2}, {"batch", 1}}, {});
  gray.forward(0);
  CHECK(gray.output()[0] == doctest::Approx(unit(76)).epsilon(0.02));  // luminance of pure red: ~0.3 * 255
  CHECK(gray.output()[1] == doctest::Approx(unit(90)).epsilon(0.01));
}

TEST_CASE("data.images resizes only when asked") {
  TempDir tmp;
  write_png(tmp / "big.png", 8, 6, 1, std::vector<unsigned char>(48, 200));
  const Json attrs{{"dir", tmp.path.string()}, {"height", 3}, {"width", 4}, {"batch", 1}};
  CHECK(node_error("data.images", attrs) ==
        "dir: " + tmp / "big.png" + ": image is 6x8 (height x width) but the node expects 3x4 (set \"resize\": true to resize)");

  Json r = attrs;
  r["resize"] = true;
  NodeHarness down("data.images", r, {});
  down.forward(0);
  REQUIRE(down.output().shape() == Shape{1, 1, 3, 4});
  for (float v : down.output().span()) CHECK(v == doctest::Approx(unit(200)).epsilon(0.01));

  // Upscaling a dark-left / bright-right image keeps that structure.
  std::filesystem::remove(tmp / "big.png");
  write_png(tmp / "small.png", 2, 2, 1, {0, 255, 0, 255});
  r["height"] = 4, r["width"] = 4;
  NodeHarness up("data.images", r, {});
  up.forward(0);
  const Tensor& x = up.output();
  for (int y = 0; y < 4; ++y) {
    CHECK(x[y * 4 + 0] < -0.5f);
    CHECK(x[y * 4 + 3] > 0.5f);
    CHECK(x[y * 4 + 1] < x[y * 4 + 2]);
  }
}

TEST_CASE("data.images reports bad folders and files clearly") {
  TempDir tmp;
  CHECK(node_error("data.images", {{"dir", tmp / "missing"}}) == "dir: image folder '" + tmp / "missing" + "' not found");
  noiseflow::test::write_bytes(tmp / "readme.txt", "hi");
  CHECK(node_error("data.images", {{"dir", tmp.path.string()}}) ==
        "dir: image folder '" + tmp.path.string() + "' holds no .png files");
  write_png(tmp / "a.png", 28, 28, 1, std::vector<unsigned char>(784, 0));
  noiseflow::test::write_bytes(tmp / "b.png", "\x89PNG garbage");
  const std::string err = node_error("data.images", {{"dir", tmp.path.string()}});
  CHECK(err.rfind("dir: " + tmp / "b.png" + ": cannot read PNG: ", 0) == 0);
  CHECK_THROWS_AS(NodeHarness("data.images", {{"dir", tmp.path.string()}, {"channels", 2}}, {}), noiseflow::graph::ShapeError);
  std::filesystem::remove(tmp / "b.png");
  CHECK(node_error("data.images", {{"dir", tmp.path.string()}}) == "");
}
