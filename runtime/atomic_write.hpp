// runtime/atomic_write.hpp — writing a file so that readers see the old contents or the new, never half:
// parent folders created, PATH.tmp written and fsynced, renamed over PATH, the folder fsynced. Shared by the
// checkpoint writer and the ONNX exporter; `fail` raises the caller's own error type (it must throw).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace noiseflow::runtime {

/// Writes the concatenation of `parts` to `path` atomically. On any failure the temporary file is removed
/// and `fail(message)` is called with "cannot create folder ...", "cannot write ...", "fsync failed: ..."
/// or "cannot rename ... into place: ...".
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::function<void(const std::string&)>& fail);

}  // namespace noiseflow::runtime
