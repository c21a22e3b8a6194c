// tests/fuzz/replay_main.cpp — runs every file of the fuzz corpora (and of the kept findings) through
// the fuzz targets, without libFuzzer, in the default test suite.
//
//   fuzz_replay ROOT...          every file under ROOT/<target>/ for each target (missing folders skipped)
//   fuzz_replay TARGET FILE...   the given files through one target (to reproduce a finding)
//
// A target returns 0 for an input it read or rejected with an expected error; an exception escaping it
// is reported with the file and counted, a broken contract aborts (as under the fuzzer).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/targets.hpp"

namespace fs = std::filesystem;
using noiseflow::fuzz::TargetInfo;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Runs one file through one target; false (after printing why) when something escaped.
bool replay(const TargetInfo& t, const fs::path& file) {
  const std::string bytes = read_all(file);
  try {
    t.run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s: uncaught exception: %s\n", t.name, file.c_str(), e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: %s: uncaught exception of an unknown type\n", t.name, file.c_str());
  }
  return false;
}

const TargetInfo* find_target(const std::string& name) {
  for (auto& t : noiseflow::fuzz::targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_replay ROOT...  |  fuzz_replay TARGET FILE...\n");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  int inputs = 0, failures = 0;
  if (const TargetInfo* t = find_target(argv[1])) {
    for (int i = 2; i < argc; ++i, ++inputs) failures += !replay(*t, argv[i]);
  } else {
    for (int i = 1; i < argc; ++i) {
      if (!fs::is_directory(argv[i])) {  // no findings kept yet, say
        std::printf("fuzz_replay: no folder %s (skipped)\n", argv[i]);
        continue;
      }
      for (auto& t : noiseflow::fuzz::targets()) {
        const fs::path dir = fs::path(argv[i]) / t.name;
        if (!fs::is_directory(dir)) continue;
        std::vector<fs::path> files;
        for (auto& e : fs::recursive_directory_iterator(dir))
          if (e.is_regular_file()) files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (auto& f : files) failures += !replay(t, f), ++inputs;
      }
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz_replay: %d inputs, %d failures, %.2f s\n", inputs, failures, s);
  return failures ? 1 : 0;
}
