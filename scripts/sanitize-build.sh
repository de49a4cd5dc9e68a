#!/usr/bin/env bash
# Configures build-sanitize: clang with AddressSanitizer + UndefinedBehaviorSanitizer (a UBSan
# finding aborts) and the fuzz targets (libFuzzer coverage in every library). Used by
# run-tests.sh, fuzz-soak.sh and sanitize.sh; extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
# -O1 keeps the sanitizers' reports readable and the fuzzers fast; asserts stay on.
cmake -S . -B build-sanitize -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
  -DMOESCOPE_SANITIZE=address,undefined -DMOESCOPE_FUZZ=ON \
  -DMOESCOPE_BUILD_BENCH=OFF -DMOESCOPE_BUILD_PYTHON=OFF "$@"
