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
  CHECK(node_error("data.images", attrs) == "dir: " + tmp / "big.png" +
                                               " (image 0 of 1): image is 6x8 (height x width) but the node expects 3x4 "
                                               "(set \"resize\": true to resize)");

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
  CHECK(node_error("data.images", {{"dir", tmp.path.string()}}) ==
        "dir: " + tmp / "b.png" + " (image 1 of 2): not a PNG file (it does not start with the PNG signature)");
  CHECK_THROWS_AS(NodeHarness("data.images", {{"dir", tmp.path.string()}, {"channels", 2}}, {}), noiseflow::graph::ShapeError);
  std::filesystem::remove(tmp / "b.png");
  CHECK(node_error("data.images", {{"dir", tmp.path.string()}}) == "");
}

TEST_CASE("data.images names the damaged file and its index, and never crashes on one") {
  TempDir tmp;
  const Json attrs{{"dir", tmp.path.string()}, {"height", 6}, {"width", 5}, {"batch", 1}};
  std::vector<unsigned char> px;
  for (int i = 0; i < 30; ++i) px.push_back((unsigned char)(i * 8));
  write_png(tmp / "a.png", 5, 6, 1, px);
  write_png(tmp / "b.png", 5, 6, 1, px);
  const std::string good = noiseflow::test::read_bytes(tmp / "a.png");
  const std::string c = tmp / "c.png";
  auto error_with = [&](const std::string& bytes, const Json& a) {
    noiseflow::test::write_bytes(c, bytes);
    return node_error("data.images", a);
  };
  auto error_of = [&](const std::string& bytes) { return error_with(bytes, attrs); };
  const std::string pre = "dir: " + c + " (image 2 of 3): ";
  REQUIRE(error_of(good) == "");
  // Big-endian uint32 at `at` replaced.
  auto with_u32 = [&](size_t at, uint32_t v) {
    std::string b = good;
    for (int i = 0; i < 4; ++i) b[at + size_t(i)] = char(v >> (24 - 8 * i));
    return b;
  };

  SUBCASE("truncated") {
    CHECK(error_of("") == pre + "not a PNG file: the file is empty");
    CHECK(error_of(good.substr(0, 5)) == pre + "not a PNG file (it does not start with the PNG signature; the file ends inside it)");
    CHECK(error_of(good.substr(0, 8)) == pre + "truncated: the file ends at byte 8, before the IHDR chunk");
    CHECK(error_of(good.substr(0, 20)) ==
          pre + "truncated: the file (20 bytes) ends inside chunk IHDR, which starts at byte 8 and needs 25");
    CHECK(error_of(good.substr(0, 33)) == pre + "truncated: the file ends at byte 33, before the IEND chunk");
    const std::string cut = good.substr(0, good.size() - 20);
    CHECK(error_of(cut).rfind(pre + "truncated: the file (" + std::to_string(cut.size()) + " bytes) ends inside chunk IDAT", 0) == 0);
    CHECK(error_of(good.substr(0, good.size() - 12)) ==
          pre + "truncated: the file ends at byte " + std::to_string(good.size() - 12) + ", before the IEND chunk");
  }
  SUBCASE("not a PNG, or a damaged header") {
    CHECK(error_of("\xff\xd8\xff\xe0 JFIF") == pre + "not a PNG file (it does not start with the PNG signature; it looks like a JPEG)");
    CHECK(error_of("GIF89a....") == pre + "not a PNG file (it does not start with the PNG signature; it looks like a GIF)");
    CHECK(error_of("BM......") == pre + "not a PNG file (it does not start with the PNG signature; it looks like a BMP)");
    // stb_image would try its other decoders on it: its PNM reader overflowed an int on this one (fuzzing).
    CHECK(error_of("P555555555555") == pre + "not a PNG file (it does not start with the PNG signature)");
    std::string b = good;
    b.replace(12, 4, "IDAT");
    CHECK(error_of(b) == pre + "damaged: the first chunk is IDAT of 13 bytes, not the 13-byte IHDR");
    b.replace(12, 4, std::string("\x01I\xffR", 4));
    CHECK(error_of(b) == pre + "damaged: the first chunk is \\x01I\\xffR of 13 bytes, not the 13-byte IHDR");
    CHECK(error_of(with_u32(8, 14)) == pre + "damaged: the first chunk is IHDR of 14 bytes, not the 13-byte IHDR");
    CHECK(error_of(with_u32(8, 0xfffffff0u)) == pre + "damaged: the chunk at byte 8 declares 4294967280 bytes (PNG allows at most 2^31 - 1)");
    CHECK(error_of(with_u32(16, 0)) == pre + "damaged: the IHDR chunk declares a 6x0 image (height x width)");
    CHECK(error_of(with_u32(20, 0x80000000u)) == pre + "damaged: the IHDR chunk declares a 2147483648x5 image (height x width)");
  }
  SUBCASE("absurd sizes are refused before anything is decoded") {
    CHECK(error_of(with_u32(20, 7)) ==
          pre + "image is 7x5 (height x width) but the node expects 6x5 (set \"resize\": true to resize)");
    Json r = attrs;
    r["resize"] = true;
    std::string huge = with_u32(16, 100000);
    huge.replace(20, 4, std::string("\x00\x01\x86\xa0", 4));  // 100000 x 100000
    CHECK(error_with(huge, r) == pre + "image is 100000x100000 (height x width), more than the 2^26 pixels this node decodes");
  }
  SUBCASE("damaged image data") {
    std::string b = good;
    const size_t idat = b.find("IDAT");
    REQUIRE(idat != std::string::npos);
    b[idat + 4] = char(0x77);  // the zlib header's first byte: no longer deflate
    CHECK(error_of(b) == pre + "cannot decode PNG: bad zlib header");
    b = good;
    b[idat + 6] = char(0xff);  // the first deflate block: type 3, which does not exist (stb_image gives no reason)
    CHECK(error_of(b) == pre + "cannot decode PNG: the image data is damaged (stb_image gives no reason)");
  }
  SUBCASE("every prefix and every byte flipped: loaded, or an error naming the file and its index") {
    for (size_t len = 0; len < good.size(); ++len) {
      const std::string err = error_of(good.substr(0, len));
      CHECK_MESSAGE(err.rfind(pre, 0) == 0, "prefix of ", len, " bytes: ", err);
    }
    for (size_t i = 0; i < good.size(); ++i) {
      std::string b = good;
      b[i] = char(b[i] ^ 0xff);
      const std::string err = error_of(b);
      CHECK_MESSAGE((err.empty() || err.rfind(pre, 0) == 0), "byte ", i, " flipped: ", err);
    }
  }
}
