#!/bin/sh
# The cost of a merged trace over many shards (docs/distributed.md, "Scaling model"): writes
# SHARDS synthetic traces (bench/make_synthetic_trace.cpp, the bundled model's shape), joins them
# with `moescope merge`, and times opening the merged file and reading it whole the first time,
# with h5py and with TraceReader. Prints JSON lines. Not part of the test suite.
#   bench/vds_open_cost.sh [BUILD_DIR] [WORK_DIR] [SHARDS] [TOKENS_PER_SHARD]
set -eu
build=$(cd "${1:-build}" && pwd)
work=${2:-$(mktemp -d)}
shards=${3:-1024}
per_shard=${4:-2000}
mkdir -p "$work/shards"
rm -f "$work"/shards/*.h5 "$work/merged.h5"

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
start=$(now)
"$build/bench/moescope_make_synthetic_trace" "$work/shards/t.h5" $((shards * per_shard)) "$shards" >/dev/null
made=$(now)
"$build/cli/moescope" merge "$work"/shards/t.shard-*.h5 -o "$work/merged.h5" >"$work/merge.log" 2>&1
merged=$(now)
printf '{"step": "make shards", "shards": %s, "tokens_per_shard": %s, "seconds": %.2f}\n' \
  "$shards" "$per_shard" "$(calc "$made - $start")"
printf '{"step": "moescope merge", "shards": %s, "seconds": %.2f, "merged_bytes": %s, "shard_bytes": %s}\n' \
  "$shards" "$(calc "$merged - $made")" "$(stat -c %s "$work/merged.h5")" \
  "$(stat -c %s "$work/shards/t.shard-0000.h5")"
/usr/bin/python3 - "$work/merged.h5" <<'PY'
import json, sys, time
import h5py
t0 = time.perf_counter()
f = h5py.File(sys.argv[1], "r")
ids = f["/routing/topk_ids"]
t1 = time.perf_counter()
a = f["/tokens/id"][:]
b = ids[:]
t2 = time.perf_counter()
print(json.dumps({"reader": "h5py", "open_s": round(t1 - t0, 4), "read_s": round(t2 - t1, 4),
                  "tokens": int(a.shape[0]), "virtual_sources": ids.virtual_sources().__len__()}))
PY
"$build/bench/moescope_bench_trace_open" "$work/merged.h5"
