#!/usr/bin/env bash
# Replays every committed regression input, then runs each fuzz target for SECONDS from its seed
# corpus (all but trace_bytes unless targets are named; docs/testing.md). Exits non-zero on the first crash, leak, timeout or out-of-memory; the input that did
# it is left in BUILD/fuzz/artifacts/<target>/ (copy it to fuzz/regressions/<target>/ once fixed).
#   fuzz/run.sh BUILD SECONDS [TARGET...]
# BUILD is a tree configured with MOESCOPE_FUZZ=ON whose fuzz targets and CLI are built.
set -euo pipefail
build=$1
seconds=$2
shift 2
src="$(cd "$(dirname "$0")/.." && pwd)"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(safetensors torch_bin config policy_json corpus tokenizer trace_reader)
fi

export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Bounds for one input: a parser that hangs or allocates gigabytes on a small file is a finding.
limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10)

# The seeds come from the CLI the build made (built with the fuzz targets, not rebuilt here).
"$src/fuzz/collect-seeds.sh" "$build/fuzz/seeds" "$build/cli/moescope" >/dev/null
# Every target's regressions are replayed, trace_bytes' included.
for folder in "$src"/fuzz/regressions/*/; do
  t=$(basename "$folder")
  bin="$build/fuzz/fuzz_$t"
  regressions=("$folder"*)
  extra=()
  if [ "$t" = trace_bytes ]; then extra=(-detect_leaks=0); fi
  if [ -e "${regressions[0]}" ]; then
    echo "== fuzz_$t: replaying ${#regressions[@]} regression inputs"
    "$bin" "${limits[@]}" "${extra[@]}" "${regressions[@]}" 2>"$build/fuzz/$t.replay.log" ||
      { tail -50 "$build/fuzz/$t.replay.log"; exit 1; }
  fi
done

for t in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_$t"
  corpus="$build/fuzz/corpus/$t"
  artifacts="$build/fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  extra=()
  # HDF5's parser leaks on some damaged files; only fuzz_trace_bytes hands it raw bytes.
  if [ "$t" = trace_bytes ]; then extra=(-detect_leaks=0); fi
  echo "== fuzz_$t: ${seconds}s"
  # New inputs go to the first folder (kept between runs of the same build); seeds are read only.
  if ! "$bin" "${limits[@]}" "${extra[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" "$build/fuzz/seeds/$t" >"$build/fuzz/$t.log" 2>&1; then
    tail -60 "$build/fuzz/$t.log"
    echo "fuzz_$t failed; the input is in $artifacts/" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz/$t.log" | tr '\n' ' '
  echo
done
