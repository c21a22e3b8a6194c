// tests/nodes/test_data_util.hpp — helpers for the data/io node tests:
// scratch folders and "what error did this node raise".
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "runtime/harness.hpp"

namespace noiseflow::test {

/// A fresh folder under the system temp dir, removed on destruction.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("noiseflow_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Writes `bytes` to `path`.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

/// Reads the whole file.
inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// The error a node raises while planning (or at `tick`'s forward when
/// `run` is true): "field: message", or "" when there is none.
inline std::string node_error(const std::string& op, const runtime::Json& attrs, bool run = false, int64_t tick = 0) {
  try {
    runtime::NodeHarness h(op, attrs, {});
    if (run) h.forward(tick);
  } catch (const runtime::NodeError& e) {
    return e.field + ": " + e.what();
  }
  return "";
}

}  // namespace noiseflow::test
