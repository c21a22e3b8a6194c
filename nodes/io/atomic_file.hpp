// nodes/io/atomic_file.hpp — writing a node's output file so readers never see half of it: runtime's atomic
// writer with its failures reported on the node's `path` attribute (the image writers, io.write_metrics).
#pragma once

#include <filesystem>
#include <string>

#include "runtime/atomic_write.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes::io {

/// Creates the folder `path` goes into; fails naming the node's `path` attribute.
inline void make_parent_folder(runtime::Context& ctx, const std::filesystem::path& path) {
  std::error_code ec;
  if (!path.has_parent_path()) return;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) ctx.fail("path", "cannot create folder '" + path.parent_path().string() + "': " + ec.message());
}

/// Writes `bytes` atomically to `path` (runtime/atomic_write: PATH.tmp, fsync, rename; folders created);
/// fails naming the node's `path` attribute.
inline void write_file_atomically(runtime::Context& ctx, const std::filesystem::path& path, const std::string& bytes) {
  make_parent_folder(ctx, path);
  runtime::write_file_atomically(path.string(), {bytes}, [&](const std::string& m) { ctx.fail("path", m); });
}

}  // namespace noiseflow::nodes::io
