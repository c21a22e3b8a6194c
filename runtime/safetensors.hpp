// runtime/safetensors.hpp — safetensors files.
//
// A safetensors file: 8-byte little-endian header length N, N bytes of JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes. Files are
// written to PATH.tmp, fsynced and renamed, so a crash never leaves a
// half-written file in place; reading validates everything.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/tensor.hpp"

namespace noiseflow::runtime {

/// A problem with a safetensors file (or a checkpoint in one); what() starts with the file's path.
struct CheckpointError : std::runtime_error {
  explicit CheckpointError(const std::string& msg) : std::runtime_error(msg) {}
};

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

/// The contents of a safetensors file (F32 tensors; F16/BF16/F64 are converted).
struct SafeTensors {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;
};

/// Writes atomically (PATH.tmp, fsync, rename). Throws CheckpointError.
void write_safetensors(const std::string& path, const NamedTensorList& tensors,
                       const std::map<std::string, std::string>& metadata);
/// Reads and validates. Throws CheckpointError naming the file and the problem.
SafeTensors read_safetensors(const std::string& path);

/// JSON nested deeper than this is refused: nlohmann's copies, comparisons and dump() recurse, and a header
/// with 300,000 nested brackets overflowed the stack (segfault). A header needs three levels.
constexpr int kMaxJsonDepth = 64;

/// nlohmann's parse without exceptions (discarded if not JSON), nullopt if it nests deeper than
/// kMaxJsonDepth; `on_key(depth, key)` sees every object key. For JSON read from files (headers, metadata).
std::optional<nlohmann::json> parse_bounded_json(const std::string& text,
                                                 const std::function<void(int, const std::string&)>& on_key = {});

}  // namespace noiseflow::runtime
