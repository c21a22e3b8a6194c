// nodes/data/images.cpp — a folder of PNG images as batches in [-1, 1].
//
// Every *.png (any case) directly in `dir` is decoded once at plan time with
// stb_image (Debian's libstb exports the implementation, so no
// STB_IMAGE_IMPLEMENTATION here), in file-name order, converted to the
// requested channels (stb_image's luminance for grayscale). Images of another
// size are an error unless `resize` is set (stb_image_resize). Decoding runs
// in parallel; errors are reported for the first bad file in name order, with
// its path and its index in that order.
//
// Before stb_image sees a file, its PNG framing is checked here (check_png):
// stb_image would decode any format it knows whatever the file's name (JPEG,
// GIF, PSD, ...: more decoders, more ways to fail), calls a cut-off file
// "outofdata", and allocates the whole image from the header's size before it
// reads the data. Batching follows nodes/data/dataset.hpp.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <tbb/parallel_for.h>

#include "nodes/data/dataset.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace fs = std::filesystem;

struct StbiFree {
  void operator()(unsigned char* p) const { stbi_image_free(p); }
};
using StbiPixels = std::unique_ptr<unsigned char, StbiFree>;

/// Images of more pixels are refused before decoding (stb_image would allocate them from the header alone).
constexpr int64_t kMaxPixels = int64_t(1) << 26;

uint32_t be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 | u[3];
}

/// A chunk type as text, bytes that are not letters as \xNN.
std::string chunk_name(std::string_view t) {
  std::string s;
  for (unsigned char ch : t) {
    char b[8];
    std::snprintf(b, sizeof b, "\\x%02x", ch);
    s += std::isalpha(ch) ? std::string(1, char(ch)) : std::string(b);
  }
  return s;
}

/// Checks a PNG file's framing: the signature, a 13-byte IHDR first, every chunk (length, type, data,
/// CRC) whole up to IEND; CRCs are not compared (stb_image ignores them too). Returns what is wrong, or
/// "" and the header's width and height.
std::string check_png(std::string_view b, int64_t& width, int64_t& height) {
  static constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  if (b.empty()) return "not a PNG file: the file is empty";
  if (b.size() > 0x7fffffffu) return "the file is larger than 2 GiB, more than stb_image reads";
  if (b.substr(0, 8) != kSignature) {
    std::string seems;
    if (b.substr(0, 3) == "\xff\xd8\xff") seems = "; it looks like a JPEG";
    else if (b.substr(0, 4) == "GIF8") seems = "; it looks like a GIF";
    else if (b.substr(0, 2) == "BM") seems = "; it looks like a BMP";
    else if (b.size() < 8 && kSignature.substr(0, b.size()) == b) seems = "; the file ends inside it";
    return "not a PNG file (it does not start with the PNG signature" + seems + ")";
  }
  size_t pos = 8;
  for (bool first = true;; first = false) {
    if (b.size() - pos < 12)
      return "truncated: the file ends at byte " + std::to_string(b.size()) + ", before the " +
             (first ? "IHDR" : "IEND") + " chunk";
    const uint32_t len = be32(b.data() + pos);
    const std::string_view type = b.substr(pos + 4, 4);
    if (len > 0x7fffffffu)
      return "damaged: the chunk at byte " + std::to_string(pos) + " declares " + std::to_string(len) +
             " bytes (PNG allows at most 2^31 - 1)";
    if (b.size() - pos - 12 < len)
      return "truncated: the file (" + std::to_string(b.size()) + " bytes) ends inside chunk " + chunk_name(type) +
             ", which starts at byte " + std::to_string(pos) + " and needs " + std::to_string(12 + uint64_t(len));
    if (first) {
      if (type == "CgBI") return "an Apple-optimised PNG (CgBI chunk), not a standard PNG file";
      if (type != "IHDR" || len != 13)
        return "damaged: the first chunk is " + chunk_name(type) + " of " + std::to_string(len) +
               " bytes, not the 13-byte IHDR";
      width = be32(b.data() + pos + 8);
      height = be32(b.data() + pos + 12);
      if (width == 0 || height == 0 || width > 0x7fffffff || height > 0x7fffffff)
        return "damaged: the IHDR chunk declares a " + std::to_string(height) + "x" + std::to_string(width) +
               " image (height x width)";
    }
    pos += 12 + size_t(len);
    if (type == "IEND") return "";
  }
}

/// Decodes a PNG (already through check_png) to `c` channels; null on failure, with stb_image's reason
/// in `why`, in words where it is terse. stb_image keeps the reason of the thread's last failure and some
/// failures set none (a deflate block of the reserved type 3), so a known reason is recorded first: an
/// empty buffer's "unknown image type", impossible for a file with the PNG signature.
StbiPixels decode_png(const std::string& bytes, int c, int& w, int& h, std::string& why) {
  int ignored = 0;
  stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(""), 0, &ignored, &ignored, &ignored);
  const char* before = stbi_failure_reason();
  int fc = 0;
  StbiPixels img(stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()), &w, &h, &fc, c));
  if (img) return img;
  const char* reason = stbi_failure_reason();
  const std::string r = reason ? reason : "";
  if (r.empty() || reason == before) why = "the image data is damaged (stb_image gives no reason)";
  else if (r == "outofdata") why = "the compressed image data ends early (outofdata)";
  else if (r == "not enough pixels") why = "the image data holds fewer pixels than the header declares (not enough pixels)";
  else why = r;
  return img;
}

bool is_png(const fs::directory_entry& e) {
  std::error_code ec;
  if (!e.is_regular_file(ec)) return false;
  std::string ext = e.path().extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png";
}

struct Images final : Node {
  static Schema schema() {
    Schema s("data.images",
             "A folder of PNG images (sorted by file name; other files ignored; at most 2^26 pixels each) as "
             "batches scaled to [-1, 1]. "
             "Shuffled epochs are drawn from (seed, node id, epoch), so tick k's batch depends only on "
             "(seed, node id, k).");
    s.output("images", "[batch, channels, height, width] in [-1, 1]")
        .attr_string("dir", std::nullopt, {}, "folder holding the .png files")
        .attr_int("channels", 1, 1, 3, "1 = grayscale (luminance of colour images), 3 = RGB (alpha dropped)")
        .attr_int("height", 28, 1, {}, "image height")
        .attr_int("width", 28, 1, {}, "image width")
        .attr_bool("resize", false, "resize images of another size (stb_image_resize); false: they are an error");
    data::batching_attrs(s);
    s.shape([](graph::ShapeContext& c) {
      const int64_t b = c.attr_int("batch"), ch = c.attr_int("channels");
      if (ch != 1 && ch != 3) c.fail("channels", "must be 1 (grayscale) or 3 (RGB), got " + std::to_string(ch));
      c.set_output("images", {b, ch, c.attr_int("height"), c.attr_int("width")});
    });
    return s;
  }

  void plan(Context& ctx) override {
    data::check_batching_attrs(ctx);
    const fs::path dir = ctx.attr_string("dir");
    const int c = int(ctx.attr_int("channels")), h = int(ctx.attr_int("height")), w = int(ctx.attr_int("width"));
    const bool resize = ctx.attr_bool("resize");
    if (c != 1 && c != 3) ctx.fail("channels", "must be 1 (grayscale) or 3 (RGB), got " + std::to_string(c));

    // The PNG files, by name.
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) ctx.fail("dir", "image folder '" + dir.string() + "' not found");
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (is_png(*it)) files.push_back(it->path());
    if (ec) ctx.fail("dir", "cannot list image folder '" + dir.string() + "': " + ec.message());
    if (files.empty()) ctx.fail("dir", "image folder '" + dir.string() + "' holds no .png files");
    std::sort(files.begin(), files.end());

    // Decode (in parallel), check or fix the size, scale to [-1, 1] as CHW.
    const int64_t n = int64_t(files.size()), hw = int64_t(h) * w;
    ds_.count = n;
    ds_.channels = c;
    ds_.height = h;
    ds_.width = w;
    ds_.pixels.resize(size_t(n * c * hw));
    ds_.labels.assign(size_t(n), 0.f);
    std::vector<std::string> errors(static_cast<size_t>(n));
    tbb::parallel_for(int64_t(0), n, [&](int64_t k) {
      const std::string path = files[size_t(k)].string();
      // Errors name the file and its index in name order (the dataset index).
      std::string& error = errors[size_t(k)];
      const std::string where = path + " (image " + std::to_string(k) + " of " + std::to_string(n) + "): ";
      std::string bytes;
      try {
        bytes = data::read_file(ctx, "dir", path);
      } catch (const NodeError& e) {  // "PATH: cannot open: ..." as "PATH (image k of n): cannot open: ..."
        const std::string m = e.what();
        error = where + (m.rfind(path + ": ", 0) == 0 ? m.substr(path.size() + 2) : m);
        return;
      }
      int64_t iw = 0, ih = 0;
      if (std::string bad = check_png(bytes, iw, ih); !bad.empty()) {
        error = where + bad;
        return;
      }
      const std::string size = std::to_string(ih) + "x" + std::to_string(iw);
      if ((iw != w || ih != h) && !resize) {
        error = where + "image is " + size + " (height x width) but the node expects " + std::to_string(h) + "x" +
                std::to_string(w) + " (set \"resize\": true to resize)";
        return;
      }
      if (iw * ih > kMaxPixels) {
        error = where + "image is " + size + " (height x width), more than the 2^26 pixels this node decodes";
        return;
      }
      int fw = 0, fh = 0;
      std::string why;
      StbiPixels img = decode_png(bytes, c, fw, fh, why);
      if (!img) {
        error = where + "cannot decode PNG: " + why;
        return;
      }
      const unsigned char* src = img.get();
      std::vector<unsigned char> resized;
      if (fw != w || fh != h) {
        resized.resize(size_t(hw * c));
        if (!stbir_resize_uint8(src, fw, fh, 0, resized.data(), w, h, 0, c)) {
          error = where + "resizing from " + size + " failed";
          return;
        }
        src = resized.data();
      }
      float* dst = ds_.pixels.data() + k * c * hw;
      for (int64_t i = 0; i < hw; ++i)
        for (int ch = 0; ch < c; ++ch) dst[ch * hw + i] = data::byte_to_unit(src[i * c + ch]);
    });
    for (auto& e : errors)
      if (!e.empty()) ctx.fail("dir", e);

    data::select_range(ctx, ds_, ctx.attr_int("offset"), ctx.attr_int("limit"), "'" + dir.string() + "'");
    order_ = data::EpochOrder(ds_.count, ctx.attr_bool("shuffle"), ctx.random_key());
  }

  void forward(Context& ctx) override {
    data::fill_batch(ds_, order_, ctx.tick(), ctx.output("images"), nullptr, ctx.rank(), ctx.ranks());
  }

 private:
  data::Dataset ds_;
  data::EpochOrder order_;
};

NOISEFLOW_REGISTER_NODE(Images);

}  // namespace
}  // namespace noiseflow::nodes
