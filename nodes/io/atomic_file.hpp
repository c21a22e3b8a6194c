// nodes/io/atomic_file.hpp — writing a file so readers never see half of it: write PATH.tmp, then rename it
// over PATH (shared by the image writers and io.write_metrics).
#pragma once

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/node.hpp"

namespace noiseflow::nodes::io {

/// Creates the folder `path` goes into; fails naming the node's `path` attribute.
inline void make_parent_folder(runtime::Context& ctx, const std::filesystem::path& path) {
  std::error_code ec;
  if (!path.has_parent_path()) return;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) ctx.fail("path", "cannot create folder '" + path.parent_path().string() + "': " + ec.message());
}

/// Renames the finished `tmp` over `path`; on failure removes `tmp` and fails naming the `path` attribute.
inline void commit_temp_file(runtime::Context& ctx, const std::string& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (!ec) return;
  std::error_code ignored;
  std::filesystem::remove(tmp, ignored);
  ctx.fail("path", "cannot rename '" + tmp + "' to '" + path.string() + "': " + ec.message());
}

/// Writes `text` to PATH.tmp and renames it over `path` (folders created); fails naming `path`.
inline void write_file_atomically(runtime::Context& ctx, const std::filesystem::path& path, const std::string& text) {
  make_parent_folder(ctx, path);
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) ctx.fail("path", "cannot write '" + tmp + "': " + std::strerror(errno));
  }
  commit_temp_file(ctx, tmp, path);
}

}  // namespace noiseflow::nodes::io
