#!/usr/bin/env bash
# The unit suites under a sanitizer (not part of run-tests.sh: slow; docs/testing.md).
#   scripts/sanitize.sh address   AddressSanitizer + UBSan (build-sanitize): the whole Catch2
#                                 suite and the app's tests (they start their own Xvfb)
#   scripts/sanitize.sh thread    ThreadSanitizer (build-tsan): the trace writer's threads
#                                 ([trace]) and the app's background jobs with one OpenMP
#                                 thread, then the OpenMP forward pass with several threads
#                                 under LLVM's Archer tool, which tells TSan about libomp's
#                                 barriers and tasks
# Extra arguments go to the test binaries (Catch2 test specs), e.g. "[stats]".
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/sanitize.sh address|thread [TEST-SPEC...]}
shift
jobs=$(nproc)
export OMP_WAIT_POLICY=PASSIVE

case "$mode" in
  address)
    scripts/sanitize-build.sh -DMOESCOPE_BUILD_GUI=ON >/dev/null
    cmake --build build-sanitize -j"$jobs" --target moescope_tests moescope moescope_gui_tests \
      moescope-studio
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # Leaks inside libraries the project does not build (Qt's and Mesa's one-off allocations).
    export LSAN_OPTIONS="suppressions=$(pwd)/scripts/sanitize/lsan.supp:print_suppressions=0"
    build-sanitize/tests/moescope_tests "$@"
    if [ "$#" -gt 0 ]; then
      build-sanitize/tests/gui/moescope_gui_tests "$@"
    else
      build-sanitize/tests/gui/moescope_gui_tests "~[xvfb]"
      # The app processes the [xvfb] tests start open an OpenGL context: Mesa's GL driver is
      # loaded with dlopen and unloaded before exit, leaving 112 bytes LeakSanitizer cannot
      # attribute (frames in an "<unknown module>", so no suppression can name them). Leak
      # checking is off for those processes only; ASan and UBSan stay on.
      ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 build-sanitize/tests/gui/moescope_gui_tests "[xvfb]"
    fi
    ;;
  thread)
    cmake -S . -B build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
      "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
      -DMOESCOPE_SANITIZE=thread -DMOESCOPE_BUILD_GUI=ON -DMOESCOPE_BUILD_BENCH=OFF \
      -DMOESCOPE_BUILD_PYTHON=OFF >/dev/null
    cmake --build build-tsan -j"$jobs" --target moescope_tests moescope moescope_gui_tests \
      moescope-studio
    supp="$(pwd)/scripts/sanitize/tsan.supp"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp"
    # OpenBLAS's own threads synchronize by spinning, which TSan cannot see; one BLAS thread.
    export OPENBLAS_NUM_THREADS=1
    if [ "$#" -gt 0 ]; then
      OMP_NUM_THREADS=1 build-tsan/tests/moescope_tests "$@"
      exit
    fi
    # The project's own threads (trace writer, app jobs), OpenMP regions run by one thread.
    # ignore_noninstrumented_modules: libomp is not instrumented (without it TSan prints a
    # warning line into every process's stderr, which the one-line error checks would see).
    single="$TSAN_OPTIONS:ignore_noninstrumented_modules=1"
    TSAN_OPTIONS="$single" OMP_NUM_THREADS=1 build-tsan/tests/moescope_tests "[trace]"
    TSAN_OPTIONS="$single" OMP_NUM_THREADS=1 build-tsan/tests/gui/moescope_gui_tests
    # The OpenMP forward pass on several threads: Archer (libomp's OMPT tool, in libomp-dev)
    # annotates libomp's synchronization for TSan, without which every parallel region reports.
    archer="$(clang++ -print-resource-dir)/../../libarcher.so"
    [ -e "$archer" ] || archer=/usr/lib/llvm-14/lib/libarcher.so
    OMP_NUM_THREADS=4 OMP_TOOL_LIBRARIES="$archer" \
      build-tsan/tests/moescope_tests "[golden],[fixtures],[linear],[model],[hooks]"
    ;;
  *)
    echo "usage: scripts/sanitize.sh address|thread [TEST-SPEC...]" >&2
    exit 2
    ;;
esac
echo "sanitize $mode: passed"
