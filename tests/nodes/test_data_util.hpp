// tests/nodes/test_data_util.hpp — helpers for the data/io node tests:
// file bytes and "what error did this node raise" (scratch folders: tests/test_util.hpp).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/harness.hpp"
#include "tests/test_util.hpp"

namespace noiseflow::test {

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
