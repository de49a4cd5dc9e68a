#!/usr/bin/env bash
# Engine vs PyTorch reference on benchmark shape S: prefill and decode tokens/s for f32 and
# bf16 weights at 1 and 2 threads, with the ratio engine/PyTorch per row (see bench/README.md).
#
#   bench/run_engine_vs_pytorch.sh [--out FILE.jsonl] [--build DIR] [--wait-policy POLICY]
#                                  [--dtypes "f32 bf16"] [--threads "1 2"]
#                                  [--prefill 512] [--decode 64] [--repeats 3]
#
# 1. makes bench/models/shape-s-{f32,bf16} with bench/make_bench_model.py when missing;
# 2. builds moescope_bench_engine in the build folder (default build-bench) when missing;
# 3. for every dtype and thread count runs the engine, then PyTorch (interleaved, so both see
#    the same machine load), with OMP_WAIT_POLICY set explicitly (--wait-policy, else
#    $OMP_WAIT_POLICY, else PASSIVE);
# 4. prints a table and appends every result (plus the 1-minute load average after the run) as
#    JSON lines to --out (default bench/models/engine_vs_pytorch.jsonl, overwritten).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
OUT="$ROOT/bench/models/engine_vs_pytorch.jsonl"
BUILD="$ROOT/build-bench"
POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
DTYPES="f32 bf16"
THREADS="1 2"
PREFILL=512
DECODE=64
REPEATS=3

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --wait-policy) POLICY="$2"; shift 2 ;;
    --dtypes) DTYPES="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --prefill) PREFILL="$2"; shift 2 ;;
    --decode) DECODE="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_engine_vs_pytorch.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$POLICY" in
  PASSIVE|ACTIVE|passive|active) ;;
  *) echo "run_engine_vs_pytorch.sh: --wait-policy must be PASSIVE or ACTIVE, got '$POLICY'" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY="$POLICY"

MODELS="$ROOT/bench/models"
mkdir -p "$MODELS" "$(dirname "$OUT")"
for dtype in $DTYPES; do
  if [[ ! -f "$MODELS/shape-s-$dtype/model.safetensors" ]]; then
    echo "== making $MODELS/shape-s-$dtype" >&2
    "$PYTHON" "$ROOT/bench/make_bench_model.py" "$MODELS/shape-s-$dtype" --dtype "$dtype" >&2
  fi
done

ENGINE="$BUILD/bench/moescope_bench_engine"
if [[ ! -x "$ENGINE" ]]; then
  echo "== building $ENGINE" >&2
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$BUILD" --target moescope_bench_engine -j2 >&2
fi

load1() { cut -d' ' -f1 /proc/loadavg; }
# Appends a JSON line with load1 added.
record() {
  "$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); r["load1"]=float(sys.argv[2]); print(json.dumps(r))' "$1" "$2" >> "$OUT"
}

: > "$OUT"
echo "== OMP_WAIT_POLICY=$OMP_WAIT_POLICY, prefill $PREFILL, decode $DECODE, repeats $REPEATS; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for dtype in $DTYPES; do
  model="$MODELS/shape-s-$dtype"
  for t in $THREADS; do
    echo "== $dtype, $t thread(s): engine" >&2
    line="$("$ENGINE" --model "$model" --threads "$t" --prefill "$PREFILL" --decode "$DECODE" --repeats "$REPEATS" | tail -n 1)"
    record "$line" "$(load1)"
    echo "== $dtype, $t thread(s): pytorch" >&2
    line="$("$PYTHON" "$ROOT/bench/torch_reference_bench.py" --model "$model" --dtype "$dtype" --threads "$t" --prefill "$PREFILL" --decode "$DECODE" | tail -n 1)"
    line="$("$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); r["omp_wait_policy"]=sys.argv[2]; print(json.dumps(r))' "$line" "$OMP_WAIT_POLICY")"
    record "$line" "$(load1)"
  done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["dtype"], r["threads"]), {})[r["engine"]] = r
policy = rows[0].get("omp_wait_policy", "?") if rows else "?"
print(f"OMP_WAIT_POLICY={policy}; tokens/s, medians; ratio = engine / PyTorch; load = 1-min load average after each run (engine/pytorch)")
head = ("dtype", "thr", "engine prefill", "torch prefill", "ratio", "engine decode", "torch decode", "ratio", "load")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for (dtype, threads), pair in by.items():
    e, p = pair.get("moescope", {}), pair.get("pytorch", {})
    def cell(d, k):
        return f"{d[k]:.1f}" if k in d else "-"
    def ratio(k):
        return f"{e[k] / p[k]:.2f}" if k in e and k in p and p[k] else "-"
    mode = f" ({p['bf16_mode']})" if "bf16_mode" in p else ""
    print(f"| {dtype} | {threads} | {cell(e, 'prefill_tok_s')} | {cell(p, 'prefill_tok_s')}{mode} | {ratio('prefill_tok_s')} "
          f"| {cell(e, 'decode_tok_s')} | {cell(p, 'decode_tok_s')} | {ratio('decode_tok_s')} "
          f"| {e.get('load1', '-')}/{p.get('load1', '-')} |")
EOF
echo "results: $OUT" >&2
