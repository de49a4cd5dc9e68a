#!/bin/sh
# Tokens per second of `moescope trace` and `moescope ablate` on the bundled model and the
# bundled sample corpus: one process without mpirun, then `mpirun -np 1` and `-np 2`, one thread
# per rank, all in the same run, printed as JSON lines with the ratios to the single process,
# and each MPI run's communication line (bytes and messages per rank, counted by the library).
# Not part of the test suite (docs/distributed.md, "Scaling model").
#   bench/mpi_scaling.sh [BUILD_DIR] [WORK_DIR]
# Ablate runs the single-expert sweep of layer 1 over the first DOCS documents per domain
# (environment, default 2): enough documents for the queue, short enough for a shared machine.
set -eu
build=${1:-build}
work=${2:-$(mktemp -d)}
docs=${DOCS:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
moescope=$(cd "$build" && pwd)/cli/moescope
mpirun="mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=PASSIVE"
corpus="$here/datasets/sample/*.jsonl"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$work"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# count FILE KIND: the tokens a finished run processed (trace: tokens; ablate: predictions x
# policies).
count() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
if sys.argv[2] == "trace":
    print(f["/tokens/id"].shape[0])
else:
    print(f["/tokens/doc"].shape[0] * len(f["/policies"]))
PY
}

# run NAME KIND RANKS ARGS...: RANKS 0 = without mpirun.
base_trace=""
base_ablate=""
run() {
  name=$1 kind=$2 ranks=$3
  shift 3
  out="$work/$name.h5"
  rm -f "$work/$name".*
  start=$(now)
  if [ "$ranks" = 0 ]; then
    "$moescope" "$@" -o "$out" >"$work/$name.log" 2>&1
  else
    $mpirun -np "$ranks" "$moescope" "$@" -o "$out" >"$work/$name.log" 2>&1
  fi
  end=$(now)
  n=$(count "$out" "$kind")
  rate=$(calc "$n / ($end - $start)")
  if [ "$ranks" = 0 ]; then
    eval "base_$kind=$rate"
  fi
  eval "base=\$base_$kind"
  comm=$(grep '^communication:' "$work/$name.log" | tail -1 | sed 's/"/\\"/g' || true)
  printf '{"command": "%s", "ranks": %s, "threads_per_rank": 1, "tokens": %s, "seconds": %.2f, "tokens_per_s": %.1f, "ratio_to_single_process": %.3f, "communication": "%s"}\n' \
    "$kind" "$ranks" "$n" "$(calc "$end - $start")" "$rate" "$(calc "$rate / $base")" "$comm"
}

trace_args="trace --corpus $corpus --threads 1 --batch-size 8"
ablate_args="ablate --corpus $corpus --max-documents-per-domain $docs --single-experts --layers 1 --threads 1 --batch-size 1 --bootstrap 100"
# shellcheck disable=SC2086
for ranks in 0 1 2; do run "trace-$ranks" trace "$ranks" $trace_args; done
# shellcheck disable=SC2086
for ranks in 0 1 2; do run "ablate-$ranks" ablate "$ranks" $ablate_args; done
