// runtime/node_files.hpp — the files a node writes (io.write_images, io.save_tensor, io.write_metrics,
// eval.frechet_distance, ...): `{tick}` in its `path` attribute, the folder, and runtime/atomic_write's
// writer so readers never see half a file, with every failure reported on the node's `path` attribute.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "runtime/atomic_write.hpp"
#include "runtime/node.hpp"

namespace noiseflow::runtime {

/// `pattern` with every "{tick}" replaced by the tick, zero-padded to 6 digits.
inline std::string expand_path(const std::string& pattern, int64_t tick) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%06lld", (long long)tick);
  std::string out = pattern;
  for (size_t at = out.find("{tick}"); at != std::string::npos; at = out.find("{tick}", at + std::strlen(digits)))
    out.replace(at, 6, digits);
  return out;
}

/// Creates the folder `path` goes into; fails naming the node's `path` attribute.
inline void make_parent_folder(Context& ctx, const std::filesystem::path& path) {
  std::error_code ec;
  if (!path.has_parent_path()) return;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) ctx.fail("path", "cannot create folder '" + path.parent_path().string() + "': " + ec.message());
}

/// Writes `bytes` atomically to `path` (runtime/atomic_write: PATH.tmp, fsync, rename; folders created);
/// fails naming the node's `path` attribute.
inline void write_file_atomically(Context& ctx, const std::filesystem::path& path, const std::string& bytes) {
  make_parent_folder(ctx, path);
  write_file_atomically(path.string(), {bytes}, [&](const std::string& m) { ctx.fail("path", m); });
}

}  // namespace noiseflow::runtime
