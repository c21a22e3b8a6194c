// tests/fuzz/targets.hpp — the fuzz entry points: one per loader, each fed one input as bytes.
//
//   fuzz input ──> file(s) in a per-process temp folder (/dev/shm) ──> the real loader
//        (pipeline text, safetensors, data.idx, data.images, data.mnist, ComfyUI API-format prompts)
//        ──> read, or rejected with noiseflow's own error type naming the file
//
// libFuzzer executables (tests/fuzz/fuzz_main.cpp, NOISEFLOW_FUZZ) and the corpus replay of the
// default test suite (tests/fuzz/replay_main.cpp) call the same functions. An expected error is caught
// inside; an error message that breaks its loader's contract (does not name the file, a diagnostic
// without a code) aborts as a finding; anything else escapes to the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace noiseflow::fuzz {

/// Every entry point's signature: 0 when the input was loaded or rejected with an expected error.
using Target = int (*)(const uint8_t* data, size_t size);

/// Pipeline JSON text -> validated, shape-checked graph (what `noiseflow check` does; nothing runs).
/// The text is named pipelines/fuzz_input.json, so includes resolve against the repository's pipelines/.
int fuzz_pipeline(const uint8_t* data, size_t size);
/// A safetensors file -> read_safetensors, then loaded into a tiny training pipeline (weights, resume
/// and EMA modes).
int fuzz_safetensors(const uint8_t* data, size_t size);
/// An IDX images file, optionally followed by kNextFile and a labels file -> data.idx (plan, two ticks).
int fuzz_idx(const uint8_t* data, size_t size);
/// One to four PNG files separated by kNextFile, in a folder -> data.images (grey and RGB, one tick).
int fuzz_png_folder(const uint8_t* data, size_t size);
/// One to three digit JSON files separated by kNextFile (0.json, 1.json, ...) -> data.mnist.
int fuzz_mnist_json(const uint8_t* data, size_t size);

/// A POST /prompt body in ComfyUI's API format (or its "prompt" alone) -> the studio's translation to a
/// pipeline document (tools/studio/comfy_prompt.hpp), then validated and shape-checked; refusals must be
/// ComfyUI's node_errors naming the prompt's nodes.
int fuzz_comfy_prompt(const uint8_t* data, size_t size);

/// Separates the files of one input for the targets that read several.
inline constexpr std::string_view kNextFile = "~~next-file~~";

/// A target by name.
struct TargetInfo {
  const char* name;  ///< pipeline, safetensors, idx, png_folder, mnist_json, comfy_prompt
  Target run;
};

/// Every target, in the order above.
const std::vector<TargetInfo>& targets();

}  // namespace noiseflow::fuzz
