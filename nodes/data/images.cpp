// nodes/data/images.cpp — a folder of PNG images as batches in [-1, 1].
//
// Every *.png (any case) directly in `dir` is decoded once at plan time with
// stb_image (Debian's libstb exports the implementation, so no
// STB_IMAGE_IMPLEMENTATION here), in file-name order, converted to the
// requested channels (stb_image's luminance for grayscale). Images of another
// size are an error unless `resize` is set (stb_image_resize). Decoding runs
// in parallel; errors are reported for the first bad file in name order.
// Batching follows nodes/data/dataset.hpp.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <string>
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
             "A folder of PNG images (sorted by file name; other files ignored) as batches scaled to [-1, 1]. "
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
      int fw = 0, fh = 0, fc = 0;
      StbiPixels img(stbi_load(path.c_str(), &fw, &fh, &fc, c));
      if (!img) {
        const char* why = stbi_failure_reason();
        errors[size_t(k)] = path + ": cannot read PNG: " + (why ? why : "unknown error");
        return;
      }
      const unsigned char* src = img.get();
      std::vector<unsigned char> resized;
      if (fw != w || fh != h) {
        if (!resize) {
          errors[size_t(k)] = path + ": image is " + std::to_string(fh) + "x" + std::to_string(fw) +
                              " (height x width) but the node expects " + std::to_string(h) + "x" + std::to_string(w) +
                              " (set \"resize\": true to resize)";
          return;
        }
        resized.resize(size_t(hw * c));
        if (!stbir_resize_uint8(src, fw, fh, 0, resized.data(), w, h, 0, c)) {
          errors[size_t(k)] = path + ": resizing from " + std::to_string(fh) + "x" + std::to_string(fw) + " failed";
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

  void forward(Context& ctx) override { data::fill_batch(ds_, order_, ctx.tick(), ctx.output("images"), nullptr); }

 private:
  data::Dataset ds_;
  data::EpochOrder order_;
};

NOISEFLOW_REGISTER_NODE(Images);

}  // namespace
}  // namespace noiseflow::nodes
