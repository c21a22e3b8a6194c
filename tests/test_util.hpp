// tests/test_util.hpp — helpers shared by every test suite: a scratch folder, load options.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>

#include "graph/pipeline.hpp"
#include "runtime/node.hpp"

namespace noiseflow::test {

/// A fresh folder under the system temp dir (unique per process and instance), removed on destruction.
struct TempDir {
  std::filesystem::path path;

  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("noiseflow-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path);  // left over from an earlier process with the same pid
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The folder itself, as a string.
  std::string str() const { return path.string(); }
  /// The path of `name` inside the folder (nothing is created).
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::string operator/(const std::string& name) const { return file(name); }
  /// Writes `text` to `name` inside the folder (creating its parent folders); returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::filesystem::path p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

/// Load options over the global node registry, with param overrides.
inline graph::LoadOptions load_options(std::map<std::string, graph::Json> overrides = {}) {
  graph::LoadOptions o;
  o.schemas = &runtime::Registry::global();
  o.overrides = std::move(overrides);
  return o;
}

}  // namespace noiseflow::test
