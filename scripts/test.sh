#!/usr/bin/env bash
# Builds blurb and runs every test: the normal build (CUDA when nvcc is found;
# GPU tests skip visibly without a device), then the CPU code again under
# AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# ctest runs tests side by side: OpenMP threads that spin at barriers while
# another test holds the cores slow the CPU backend down many times over.
export OMP_WAIT_POLICY=PASSIVE

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLURB_SANITIZE=ON -DBLURB_CUDA=OFF
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
