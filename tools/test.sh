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

# Warnings are errors here (NOISEFLOW_WERROR): the build is warning-free under -Wall -Wextra and CI keeps it so.
NOISEFLOW_WERROR=ON tools/setup.sh

# The studio's browser test (tests/web/) drives Debian's chromium with playwright-core, which must download no
# browser of its own.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "test: installing Debian's chromium (the studio's browser test)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f tests/web/node_modules/playwright-core/package.json ]; then
  echo "test: installing playwright-core into tests/web/"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix tests/web --no-audit --no-fund --loglevel=error >/dev/null
fi

# The ComfyUI protocol test (tests/comfy/) drives the server with two stock ComfyUI clients from npm.
if [ ! -f tests/comfy/node_modules/@stable-canvas/comfyui-client/package.json ] ||
   [ ! -f tests/comfy/node_modules/@saintno/comfyui-sdk/package.json ]; then
  echo "test: installing the ComfyUI clients into tests/comfy/"
  npm ci --prefix tests/comfy --no-audit --no-fund --loglevel=error >/dev/null
fi

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
