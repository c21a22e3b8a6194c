// nodes/data/idx.cpp — images (and labels) from IDX files, the format of the
// original MNIST distribution (train-images-idx3-ubyte, train-labels-idx1-ubyte).
//
// IDX: two zero bytes, a type byte (0x08 = unsigned byte, the only one read
// here), the number of dimensions, one big-endian uint32 per dimension, then
// the data row-major. Images: 3 dimensions [N, H, W] (channels = 1) or
// 4 dimensions [N, H, W, C] (pixel-interleaved, like image files; converted to
// NCHW). Labels: 1 dimension [N]. Files are loaded and validated once at plan
// time; batching follows nodes/data/dataset.hpp.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "nodes/data/dataset.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace fs = std::filesystem;

/// A parsed IDX file of unsigned bytes.
struct IdxFile {
  std::vector<int64_t> dims;
  std::string bytes;  ///< the whole file
  size_t data_offset = 0;
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(bytes.data()) + data_offset; }
};

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? " x " : "") + std::to_string(d[i]);
  return s;
}

/// Reads and checks an IDX file: magic, type, dimension count (one of
/// `ranks`), and that its size matches its header exactly.
IdxFile read_idx(Context& ctx, const std::string& field, const std::string& path, std::vector<int> ranks) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    ctx.fail(field, "IDX file '" + path + (fs::exists(path, ec) ? "' is not a regular file" : "' not found"));
  IdxFile f;
  f.bytes = data::read_file(ctx, field, path);
  const auto* b = reinterpret_cast<const uint8_t*>(f.bytes.data());
  const size_t size = f.bytes.size();
  if (size >= 2 && b[0] == 0x1f && b[1] == 0x8b)
    ctx.fail(field, path + ": is gzip-compressed; decompress it first (gunzip " + path + ")");
  if (size < 4) ctx.fail(field, path + ": truncated: " + std::to_string(size) + " bytes, shorter than the 4-byte IDX magic");
  char magic[16];
  std::snprintf(magic, sizeof magic, "0x%02x%02x%02x%02x", b[0], b[1], b[2], b[3]);
  if (b[0] != 0 || b[1] != 0)
    ctx.fail(field, path + ": not an IDX file (bad magic number " + magic + ", expected 0x0000TTDD)");
  if (b[2] != 0x08)
    ctx.fail(field, path + ": magic number " + magic + ": IDX element type 0x" + std::string(magic + 6, 2) +
                        " is not supported (only 0x08, unsigned byte)");
  const int rank = b[3];
  bool rank_ok = false;
  std::string wanted;
  for (int r : ranks) rank_ok |= r == rank, wanted += (wanted.empty() ? "" : " or ") + std::to_string(r);
  if (!rank_ok) {
    std::string hint = rank == 1 ? " (is this a labels file?)" : ranks == std::vector<int>{1} ? " (is this an images file?)" : "";
    ctx.fail(field, path + ": magic number " + magic + ": the IDX file has " + std::to_string(rank) +
                        " dimensions, expected " + wanted + hint);
  }
  f.data_offset = 4 + 4 * size_t(rank);
  if (size < f.data_offset)
    ctx.fail(field, path + ": truncated: the header needs " + std::to_string(f.data_offset) + " bytes, the file has " +
                        std::to_string(size));
  // The product of the dimensions, checked before each multiplication so that it cannot wrap around.
  constexpr uint64_t kMaxBytes = uint64_t(1) << 40;
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    const int64_t v = be32(b + 4 + 4 * i);
    if (v == 0) ctx.fail(field, path + ": dimension " + std::to_string(i) + " is 0 (no data)");
    f.dims.push_back(v);
    if (count > kMaxBytes / uint64_t(v)) {
      for (int j = i + 1; j < rank; ++j) f.dims.push_back(int64_t(be32(b + 4 + 4 * j)));
      ctx.fail(field, path + ": dimensions " + dims_str(f.dims) + " are implausibly large (over 2^40 bytes of data)");
    }
    count *= uint64_t(v);
  }
  const uint64_t expected = f.data_offset + count;
  if (size < expected)
    ctx.fail(field, path + ": truncated: the header declares " + dims_str(f.dims) + " = " + std::to_string(count) +
                        " bytes of data (file size " + std::to_string(expected) + "), the file has " +
                        std::to_string(size) + " bytes");
  if (size > expected)
    ctx.fail(field, path + ": " + std::to_string(size - expected) + " unexpected bytes after the " + dims_str(f.dims) +
                        " data the header declares; the file is corrupt or not an IDX file");
  return f;
}

struct Idx final : data::LabeledLoader {
  static Schema schema() {
    Schema s("data.idx",
             "Images (and optional labels) from IDX files, the original MNIST format (idx3-ubyte images "
             "[N, H, W], or idx4 [N, H, W, C]; idx1-ubyte labels), as batches scaled to [-1, 1]. Shuffled "
             "epochs are drawn from (seed, node id, epoch), so tick k's batch depends only on (seed, node id, k).");
    s.output("images", "[batch, channels, height, width] in [-1, 1]")
        .output("labels", "[batch], the label of each image (float); zeros without a labels file")
        .attr_string("images", std::nullopt, {}, "path to the images file (idx3-ubyte, or idx4 for channels > 1)")
        .attr_string("labels", "", {}, "path to the labels file (idx1-ubyte); \"\" = none")
        .attr_int("height", 28, 1, {}, "image height the file must have")
        .attr_int("width", 28, 1, {}, "image width the file must have")
        .attr_int("channels", 1, 1, 4, "channels the file must have (1: idx3 [N, H, W]; >1: idx4 [N, H, W, C])");
    data::batching_attrs(s);
    s.shape([](graph::ShapeContext& c) {
      const int64_t b = c.attr_int("batch");
      c.set_output("images", {b, c.attr_int("channels"), c.attr_int("height"), c.attr_int("width")});
      c.set_output("labels", {b});
    });
    return s;
  }

  void plan(Context& ctx) override {
    data::check_batching_attrs(ctx);
    const std::string images_path = ctx.attr_string("images"), labels_path = ctx.attr_string("labels");
    const int64_t c = ctx.attr_int("channels"), h = ctx.attr_int("height"), w = ctx.attr_int("width");

    // Images: check the dims against the attributes, convert NHWC bytes to NCHW floats.
    IdxFile img = read_idx(ctx, "images", images_path, {3, 4});
    const auto& d = img.dims;
    const int64_t file_c = d.size() == 4 ? d[3] : 1;
    if (d[1] != h || d[2] != w || file_c != c)
      ctx.fail("images", images_path + ": images are " + std::to_string(d[1]) + "x" + std::to_string(d[2]) + " with " +
                             std::to_string(file_c) + " channel(s), but the node's attributes say " + std::to_string(h) +
                             "x" + std::to_string(w) + " with " + std::to_string(c) +
                             " (set height, width and channels to match the file)");
    ds_.count = d[0];
    ds_.channels = c;
    ds_.height = h;
    ds_.width = w;
    ds_.pixels.resize(size_t(ds_.count * c * h * w));
    const uint8_t* src = img.data();
    const int64_t hw = h * w;
    for (int64_t n = 0; n < ds_.count; ++n)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t ch = 0; ch < c; ++ch)
          ds_.pixels[size_t((n * c + ch) * hw + i)] = data::byte_to_unit(src[(n * hw + i) * c + ch]);
    img = {};

    // Labels: one byte per image, or zeros.
    ds_.labels.assign(size_t(ds_.count), 0.f);
    if (!labels_path.empty()) {
      IdxFile lab = read_idx(ctx, "labels", labels_path, {1});
      if (lab.dims[0] != ds_.count)
        ctx.fail("labels", labels_path + ": holds " + std::to_string(lab.dims[0]) + " labels but " + images_path +
                               " holds " + std::to_string(ds_.count) + " images");
      for (int64_t n = 0; n < ds_.count; ++n) ds_.labels[size_t(n)] = float(lab.data()[n]);
    }

    data::select_range(ctx, ds_, ctx.attr_int("offset"), ctx.attr_int("limit"), images_path);
    start_epochs(ctx);
  }
};

NOISEFLOW_REGISTER_NODE(Idx);

}  // namespace
}  // namespace noiseflow::nodes
