#!/usr/bin/env bash
# The whole test suite: C++ tests (Catch2 through ctest), the PyTorch reference against the
# golden vectors, then one clang build under AddressSanitizer + UndefinedBehaviorSanitizer that
# runs the bad-input tests and every fuzz target (replaying fuzz/regressions/, then ~10 s each
# from the seed corpora; docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export OMP_WAIT_POLICY=PASSIVE
jobs=$(nproc)

scripts/build.sh
ctest --test-dir build --output-on-failure -j"$jobs"

golden="${MOESCOPE_GOLDEN_DIR:-$(pwd)/tests/golden}"
OMP_NUM_THREADS=1 /usr/bin/python3 tests/reference/check_reference_against_golden.py "$golden" -q
OMP_NUM_THREADS=1 /usr/bin/python3 tests/reference/self_check.py

scripts/sanitize-build.sh >/dev/null
cmake --build build-sanitize -j"$jobs" --target moescope_bad_input_tests moescope \
  fuzz_safetensors fuzz_torch_bin fuzz_config fuzz_policy_json fuzz_corpus fuzz_tokenizer \
  fuzz_trace_reader fuzz_trace_bytes
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
  build-sanitize/tests/moescope_bad_input_tests "[bad-input]"
fuzz/run.sh build-sanitize "${MOESCOPE_FUZZ_SECONDS:-10}"
echo "all tests passed"
