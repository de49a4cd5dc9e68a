#!/usr/bin/env bash
# A longer fuzzing run than the test suite's (not part of it): every fuzz target for MINUTES
# (default 10) from its seed corpus, in the AddressSanitizer + UBSan build (build-sanitize).
# The corpus each run grows stays in build-sanitize/fuzz/corpus/ and seeds the next soak. A
# crash stops the soak; its input is in build-sanitize/fuzz/artifacts/<target>/ (docs/testing.md,
# Fuzzing, says what to do with it).
#   scripts/fuzz-soak.sh [MINUTES] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
shift || true
scripts/sanitize-build.sh >/dev/null
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(safetensors torch_bin config policy_json corpus tokenizer trace_reader)
fi
cmake --build build-sanitize -j"$(nproc)" --target moescope "${targets[@]/#/fuzz_}"
fuzz/run.sh build-sanitize $((minutes * 60)) "${targets[@]}"
