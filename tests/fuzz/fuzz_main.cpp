// tests/fuzz/fuzz_main.cpp — libFuzzer's entry point for one target of targets.hpp, chosen at compile
// time (NOISEFLOW_FUZZ_TARGET, set by tests/fuzz/CMakeLists.txt).
#include <cstdlib>
#include <memory>

#include <tbb/global_control.h>

#include "tests/fuzz/targets.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // One thread everywhere: the fuzzer shares the machine, and OpenMP threads must not spin between inputs.
  setenv("OMP_WAIT_POLICY", "passive", 0);
  setenv("OMP_NUM_THREADS", "1", 0);
  static const auto one_thread =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return noiseflow::fuzz::NOISEFLOW_FUZZ_TARGET(data, size);
}
