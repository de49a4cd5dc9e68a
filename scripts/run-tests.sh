#!/usr/bin/env bash
# The whole test suite: C++ tests (Catch2 through ctest), the PyTorch reference against the
# golden vectors, and the bad-input tests again under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export OMP_WAIT_POLICY=PASSIVE
jobs=$(nproc)

scripts/build.sh
ctest --test-dir build --output-on-failure -j1

golden="${MOESCOPE_GOLDEN_DIR:-$(pwd)/tests/golden}"
OMP_NUM_THREADS=1 /usr/bin/python3 tests/reference/check_reference_against_golden.py "$golden" -q
OMP_NUM_THREADS=1 /usr/bin/python3 tests/reference/self_check.py

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMOESCOPE_SANITIZE=address \
  -DMOESCOPE_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs" --target moescope_tests moescope
ASAN_OPTIONS=detect_leaks=0 build-asan/tests/moescope_tests "[bad-input]"
echo "all tests passed"
