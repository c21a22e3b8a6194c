#!/usr/bin/env bash
# Sets up (tools/setup.sh) and runs every test through ctest.
#
#   tools/test.sh [--sanitize]
#
# With --sanitize, or when CI=true, it then also builds build-asan/ with NOISEFLOW_SANITIZE (AddressSanitizer,
# UndefinedBehaviorSanitizer and LeakSanitizer; docs/RELIABILITY.md, "Sanitizers") and runs the whole suite
# there. Both suites run; the exit status is non-zero when either fails.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=false
[ "${CI:-}" = true ] && sanitize=true
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=true ;;
    *) echo "usage: tools/test.sh [--sanitize]" >&2; exit 2 ;;
  esac
done

tools/setup.sh
status=0
(cd build && OMP_WAIT_POLICY=passive ctest --output-on-failure --timeout 600 -j"$(nproc)") || status=1

if $sanitize; then
  # -O1 -g1 (line tables for the reports' stack traces): half the compile time of RelWithDebInfo's -O2 -g.
  if [ ! -f build-asan/CMakeCache.txt ]; then
    cmake -S . -B build-asan -DNOISEFLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" >/dev/null
  fi
  echo "test: building the sanitized suite (build-asan/)"
  if cmake --build build-asan -j"$(nproc)" >build-asan/build.log 2>&1; then
    (cd build-asan && OMP_WAIT_POLICY=passive ctest --output-on-failure --timeout 1200 -j"$(nproc)") || status=1
  else
    grep -E -A5 "error|Error" build-asan/build.log | head -100
    echo "test: the sanitized build failed (build-asan/build.log)"
    status=1
  fi
fi
exit $status
