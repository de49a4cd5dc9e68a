#!/usr/bin/env bash
# Configures and builds moescope into build/ (Release): library, CLI, Python module, benchmarks,
# tests and the desktop app moescope-studio. Extra arguments go to cmake (they come after the
# defaults, so -DMOESCOPE_BUILD_GUI=OFF turns the app off).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMOESCOPE_BUILD_GUI=ON "$@" >/dev/null
cmake --build build -j"$jobs"
