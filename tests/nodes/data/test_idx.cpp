// tests/nodes/data/test_idx.cpp — data.idx on small IDX files written here.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::node_error;
using noiseflow::test::TempDir;
using noiseflow::test::write_bytes;

namespace {

/// An IDX file: magic 00 00 08 rank, big-endian dims, then `data`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data, uint8_t type = 0x08) {
  std::string s{char(0), char(0), char(type), char(dims.size())};
  for (uint32_t d : dims) s += {char(d >> 24), char(d >> 16), char(d >> 8), char(d)};
  s.append(data.begin(), data.end());
  return s;
}

float unit(int byte) { return float(byte) * (2.f / 255.f) - 1.f; }

/// n images of h x w whose pixel i of image k is k * 10 + i.
std::vector<uint8_t> ramp(int n, int h, int w) {
  std::vector<uint8_t> v;
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < h * w; ++i) v.push_back(uint8_t(k * 10 + i));
  return v;
}

}  // namespace

TEST_CASE("data.idx reads images and labels back") {
  TempDir tmp;
  write_bytes(tmp / "img.idx3", idx_bytes({5, 2, 3}, ramp(5, 2, 3)));
  write_bytes(tmp / "lab.idx1", idx_bytes({5}, {4, 3, 2, 1, 0}));
  const Json attrs{{"images", tmp / "img.idx3"}, {"labels", tmp / "lab.idx1"}, {"height", 2}, {"width", 3},
                   {"batch", 5}, {"shuffle", false}};
  NodeHarness h("data.idx", attrs, {});
  h.forward(0);
  const Tensor& x = h.output("images");
  REQUIRE(x.shape() == Shape{5, 1, 2, 3});
  for (int k = 0; k < 5; ++k)
    for (int i = 0; i < 6; ++i) CHECK(x[k * 6 + i] == doctest::Approx(unit(k * 10 + i)));
  CHECK(h.output("labels").to_vector() == std::vector<float>{4, 3, 2, 1, 0});

  SUBCASE("without a labels file the labels are zeros") {
    NodeHarness z("data.idx", {{"images", tmp / "img.idx3"}, {"height", 2}, {"width", 3}, {"batch", 3}}, {});
    z.forward(4);
    CHECK(z.output("labels").to_vector() == std::vector<float>{0, 0, 0});
  }
  SUBCASE("offset and limit select a range") {
    Json a = attrs;
    a["offset"] = 1, a["limit"] = 2, a["batch"] = 3;
    NodeHarness r("data.idx", a, {});
    r.forward(0);
    CHECK(r.output("labels").to_vector() == std::vector<float>{3, 2, 3});
    CHECK(r.output("images")[0] == doctest::Approx(unit(10)));
  }
}

TEST_CASE("data.idx converts idx4 [N, H, W, C] to NCHW") {
  TempDir tmp;
  std::vector<uint8_t> px;  // 2 images, 2x2, 3 channels: value = image*100 + pixel*10 + channel
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < 4; ++i)
      for (int c = 0; c < 3; ++c) px.push_back(uint8_t(k * 100 + i * 10 + c));
  write_bytes(tmp / "rgb.idx", idx_bytes({2, 2, 2, 3}, px));
  NodeHarness h("data.idx", {{"images", tmp / "rgb.idx"}, {"height", 2}, {"width", 2}, {"channels", 3}, {"batch", 2},
                             {"shuffle", false}}, {});
  h.forward(0);
  const Tensor& x = h.output("images");
  REQUIRE(x.shape() == Shape{2, 3, 2, 2});
  for (int k = 0; k < 2; ++k)
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < 4; ++i) CHECK(x[(k * 3 + c) * 4 + i] == doctest::Approx(unit(k * 100 + i * 10 + c)));
}

TEST_CASE("data.idx shuffles each epoch into a permutation, reproducibly") {
  TempDir tmp;
  const int n = 7;
  write_bytes(tmp / "img", idx_bytes({n, 1, 1}, ramp(n, 1, 1)));  // image k is the single byte 10k
  const Json attrs{{"images", tmp / "img"}, {"height", 1}, {"width", 1}, {"batch", 3}};
  auto stream = [&](uint64_t seed) {
    NodeHarness h("data.idx", attrs, {}, seed);
    std::vector<int> ids;
    for (int k = 0; k < 7; ++k) {  // 21 positions = 3 epochs; batches straddle epochs
      h.forward(k);
      for (int j = 0; j < 3; ++j) ids.push_back(int(std::lround((h.output("images")[j] + 1.f) * 127.5f)) / 10);
    }
    return ids;
  };
  const auto a = stream(11), b = stream(11), c = stream(12);
  CHECK(a == b);
  CHECK(a != c);
  for (int e = 0; e < 3; ++e) {
    std::set<int> seen(a.begin() + e * n, a.begin() + (e + 1) * n);
    CHECK(seen == std::set<int>{0, 1, 2, 3, 4, 5, 6});
  }
  CHECK(!std::equal(a.begin(), a.begin() + n, a.begin() + n));  // epochs differ
}

TEST_CASE("data.idx reports bad files clearly") {
  TempDir tmp;
  const std::string img = tmp / "img", lab = tmp / "lab";
  const Json attrs{{"images", img}, {"height", 2}, {"width", 3}};
  auto error_with = [&](const std::string& bytes) {
    write_bytes(img, bytes);
    return node_error("data.idx", attrs);
  };
  const std::string good = idx_bytes({4, 2, 3}, ramp(4, 2, 3));
  CHECK(error_with(good) == "");

  CHECK(node_error("data.idx", {{"images", tmp / "none"}}) == "images: IDX file '" + tmp / "none" + "' not found");
  CHECK(error_with("\x12\x34\x56\x78" + good.substr(4)) ==
        "images: " + img + ": not an IDX file (bad magic number 0x12345678, expected 0x0000TTDD)");
  CHECK(error_with("\x1f\x8b\x08\x00" + good.substr(4)) ==
        "images: " + img + ": is gzip-compressed; decompress it first (gunzip " + img + ")");
  CHECK(error_with(idx_bytes({4, 2, 3}, ramp(4, 2, 3), 0x0D)) ==
        "images: " + img + ": magic number 0x00000d03: IDX element type 0x0d is not supported (only 0x08, unsigned byte)");
  CHECK(error_with(idx_bytes({24}, ramp(4, 2, 3))) ==
        "images: " + img + ": magic number 0x00000801: the IDX file has 1 dimensions, expected 3 or 4 (is this a labels file?)");
  CHECK(error_with(good.substr(0, 10)) == "images: " + img + ": truncated: the header needs 16 bytes, the file has 10");
  CHECK(error_with(good.substr(0, good.size() - 5)) ==
        "images: " + img + ": truncated: the header declares 4 x 2 x 3 = 24 bytes of data (file size 40), the file has 35 bytes");
  CHECK(error_with(good + "xy") ==
        "images: " + img + ": 2 unexpected bytes after the 4 x 2 x 3 data the header declares; the file is corrupt or not an IDX file");
  CHECK(error_with(idx_bytes({4, 3, 2}, ramp(4, 3, 2))) ==
        "images: " + img + ": images are 3x2 with 1 channel(s), but the node's attributes say 2x3 with 1 "
                           "(set height, width and channels to match the file)");

  write_bytes(img, good);
  Json with_labels = attrs;
  with_labels["labels"] = lab;
  write_bytes(lab, idx_bytes({3}, {1, 2, 3}));
  CHECK(node_error("data.idx", with_labels) == "labels: " + lab + ": holds 3 labels but " + img + " holds 4 images");
  write_bytes(lab, good);
  CHECK(node_error("data.idx", with_labels) ==
        "labels: " + lab + ": magic number 0x00000803: the IDX file has 3 dimensions, expected 1 (is this an images file?)");
}

TEST_CASE("data.idx refuses damaged headers and short data, naming the file") {
  TempDir tmp;
  const std::string img = tmp / "img", lab = tmp / "lab";
  const Json attrs{{"images", img}, {"labels", lab}, {"height", 2}, {"width", 3}};
  write_bytes(lab, idx_bytes({4}, {1, 2, 3, 4}));
  auto images_error = [&](const std::string& bytes) {
    write_bytes(img, bytes);
    return node_error("data.idx", attrs);
  };
  auto labels_error = [&](const std::string& bytes) {
    write_bytes(img, idx_bytes({4, 2, 3}, ramp(4, 2, 3)));
    write_bytes(lab, bytes);
    return node_error("data.idx", attrs);
  };
  const std::string pre = "images: " + img + ": ";

  SUBCASE("wrong magic numbers") {
    CHECK(images_error("") == pre + "truncated: 0 bytes, shorter than the 4-byte IDX magic");
    CHECK(images_error(std::string("\0\0", 2)) == pre + "truncated: 2 bytes, shorter than the 4-byte IDX magic");
    CHECK(images_error(std::string("\0\x01\x08\x03", 4)) ==
          pre + "not an IDX file (bad magic number 0x00010803, expected 0x0000TTDD)");
    CHECK(images_error("\x89PNG\r\n\x1a\n") == pre + "not an IDX file (bad magic number 0x89504e47, expected 0x0000TTDD)");
    CHECK(images_error(std::string("\0\0\x08\0", 4)) ==
          pre + "magic number 0x00000800: the IDX file has 0 dimensions, expected 3 or 4");
    CHECK(images_error(std::string("\0\0\x08\xff", 4) + std::string(1020, '\1')) ==
          pre + "magic number 0x000008ff: the IDX file has 255 dimensions, expected 3 or 4");
    CHECK(labels_error(std::string("\0\0\x0b\x01", 4) + std::string(8, '\0')) ==
          "labels: " + lab + ": magic number 0x00000b01: IDX element type 0x0b is not supported (only 0x08, unsigned byte)");
  }
  SUBCASE("a zero dimension") {
    CHECK(images_error(idx_bytes({0, 2, 3}, {})) == pre + "dimension 0 is 0 (no data)");
    CHECK(images_error(idx_bytes({4, 0, 3}, {})) == pre + "dimension 1 is 0 (no data)");
    CHECK(labels_error(idx_bytes({0}, {})) == "labels: " + lab + ": dimension 0 is 0 (no data)");
  }
  SUBCASE("absurd sizes, and products that would overflow 64 bits") {
    CHECK(images_error(idx_bytes({0x80000000u, 28, 28}, {})) ==
          pre + "dimensions 2147483648 x 28 x 28 are implausibly large (over 2^40 bytes of data)");
    CHECK(images_error(idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, {})) ==
          pre + "dimensions 4294967295 x 4294967295 x 4294967295 are implausibly large (over 2^40 bytes of data)");
    // 2^16 x 2^24 x 2^24 = 2^64 wraps to 0 in 64 bits: refused, not read as a file without data.
    CHECK(images_error(idx_bytes({1u << 16, 1u << 24, 1u << 24}, {})) ==
          pre + "dimensions 65536 x 16777216 x 16777216 are implausibly large (over 2^40 bytes of data)");
    CHECK(images_error(idx_bytes({1u << 20, 1u << 20, 1u << 24, 1u << 24}, {})) ==
          pre + "dimensions 1048576 x 1048576 x 16777216 x 16777216 are implausibly large (over 2^40 bytes of data)");
    // Large but plausible: the data is missing, and nothing that size is allocated.
    CHECK(images_error(idx_bytes({1000000000u, 2, 3}, {})) ==
          pre + "truncated: the header declares 1000000000 x 2 x 3 = 6000000000 bytes of data (file size 6000000016), "
                "the file has 16 bytes");
  }
  SUBCASE("short data") {
    const std::string good = idx_bytes({4, 2, 3}, ramp(4, 2, 3));
    CHECK(images_error(good.substr(0, 4)) == pre + "truncated: the header needs 16 bytes, the file has 4");
    CHECK(images_error(good.substr(0, 16)) ==
          pre + "truncated: the header declares 4 x 2 x 3 = 24 bytes of data (file size 40), the file has 16 bytes");
    CHECK(labels_error(idx_bytes({4}, {1, 2, 3})) ==
          "labels: " + lab + ": truncated: the header declares 4 = 4 bytes of data (file size 12), the file has 11 bytes");
  }
}

TEST_CASE("data.idx says when the path is not a regular file") {
  TempDir tmp;
  std::filesystem::create_directory(tmp / "folder");
  CHECK(node_error("data.idx", {{"images", tmp / "folder"}}) == "images: IDX file '" + tmp / "folder" + "' is not a regular file");
}
