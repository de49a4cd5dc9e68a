#!/usr/bin/env bash
# Engine vs PyTorch reference on the benchmark shapes: prefill and decode tokens/s for f32 and
# bf16 weights at 1 and 2 threads, with the ratio engine/PyTorch per row (see bench/README.md).
#
#   bench/run_engine_vs_pytorch.sh [--out FILE.jsonl] [--build DIR] [--wait-policy POLICY]
#                                  [--shapes "S M"] [--families "mixtral olmoe ..."]
#                                  [--dtypes "f32 bf16"] [--threads "1 2"]
#                                  [--prefill 512] [--decode 64] [--repeats 3] [--torch-full]
#                                  [--weights "mapped huge"] [--summary FILE.jsonl]
#                                  [--corpus-rounds 3] [--corpus-warmup 1] [--corpus "FILES"]
#                                  [--no-corpus-jobs]
#
# 1. makes bench/models/shape-{s,m,full}-{f32,bf16} with bench/make_bench_model.py when missing
#    (shape full exists in bf16 only: its f32 rows are skipped), and with --families the family
#    shapes bench/models/family-<family>-<dtype> (mixtral olmoe qwen2_moe qwen3_moe granitemoe
#    dots1, or "all"; --shapes then defaults to none, the PyTorch side is
#    tests/reference/family_reference.py, mapping the checkpoint);
# 2. builds moescope_bench_engine and moescope_bench_corpus_jobs in the build folder (default
#    build-bench) when missing;
# 3. for every shape, dtype and thread count runs the engine, then PyTorch (interleaved, so both
#    see the same machine load; separate processes, one at a time, so they never hold a model
#    in memory together), with OMP_WAIT_POLICY set explicitly (--wait-policy, else
#    $OMP_WAIT_POLICY, else PASSIVE). PyTorch runs on shape full only with --torch-full (it
#    then maps the checkpoint, --load mmap, instead of copying it to float32: 25 GiB). The
#    engine runs once per weight placement in --weights: mapped (the checkpoint read in place,
#    every command's default) and huge (copied into 2 MiB pages, --huge-pages); default mapped;
# 4. prints a table and appends every result (plus the shape or family and the 1-minute load
#    average after the run) as JSON lines to --out (default bench/models/engine_vs_pytorch.jsonl,
#    overwritten); then one JSON line per table row with the same-run ratios engine/PyTorch,
#    in <out>.ratios.jsonl (overwritten);
# 5. unless --no-corpus-jobs, runs moescope_bench_corpus_jobs (the bundled model over
#    datasets/sample, or --corpus FILES) once per thread count, its lines in
#    <out>.corpus_jobs.jsonl (overwritten);
# 6. prints the summary (bench/summary_lines.py), also written to --summary (default
#    <out>.summary.jsonl, overwritten): one JSON line per shape, dtype, thread count and weight
#    placement with the engine's prefill (default and bf16 activations) and decode, PyTorch's of
#    the same run, their ratios and the engine's fractions of the read bandwidth and bf16 GEMM
#    peak measured in its process; then one line per corpus-jobs run with the jobs' ratios.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
OUT="$ROOT/bench/models/engine_vs_pytorch.jsonl"
BUILD="$ROOT/build-bench"
POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
SHAPES=default
FAMILIES=""
ALL_FAMILIES="mixtral olmoe qwen2_moe qwen3_moe granitemoe dots1"
DTYPES="f32 bf16"
THREADS="1 2"
PREFILL=512
DECODE=64
REPEATS=3
TORCH_FULL=0
WEIGHTS=mapped
SUMMARY=""
CORPUS_JOBS=1
CORPUS_ROUNDS=3
CORPUS_WARMUP=1
CORPUS_FILES=""

usage() { sed -n '2,38p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --wait-policy) POLICY="$2"; shift 2 ;;
    --shapes) SHAPES="$2"; shift 2 ;;
    --families) FAMILIES="$2"; shift 2 ;;
    --dtypes) DTYPES="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --prefill) PREFILL="$2"; shift 2 ;;
    --decode) DECODE="$2"; shift 2 ;;
    --repeats) REPEATS="$2"; shift 2 ;;
    --torch-full) TORCH_FULL=1; shift ;;
    --weights) WEIGHTS="$2"; shift 2 ;;
    --summary) SUMMARY="$2"; shift 2 ;;
    --corpus-rounds) CORPUS_ROUNDS="$2"; shift 2 ;;
    --corpus-warmup) CORPUS_WARMUP="$2"; shift 2 ;;
    --corpus) CORPUS_FILES="$2"; shift 2 ;;
    --no-corpus-jobs) CORPUS_JOBS=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_engine_vs_pytorch.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$POLICY" in
  PASSIVE|ACTIVE|passive|active) ;;
  *) echo "run_engine_vs_pytorch.sh: --wait-policy must be PASSIVE or ACTIVE, got '$POLICY'" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY="$POLICY"
[[ "$FAMILIES" == all ]] && FAMILIES="$ALL_FAMILIES"
if [[ "$SHAPES" == default ]]; then
  SHAPES="S M"
  [[ -n "$FAMILIES" ]] && SHAPES=""
fi
SHAPES="${SHAPES,,}"  # S, M, full in any case; the folders are lower-case
for family in $FAMILIES; do
  case " $ALL_FAMILIES " in
    *" $family "*) ;;
    *) echo "run_engine_vs_pytorch.sh: --families takes $ALL_FAMILIES (or all), got '$family'" >&2; exit 2 ;;
  esac
done
# Every model to run as kind:name (shape:s, family:mixtral); its folders are kind-name-dtype.
TARGETS=""
for shape in $SHAPES; do TARGETS+=" shape:$shape"; done
for family in $FAMILIES; do TARGETS+=" family:$family"; done
[[ -n "$TARGETS" ]] || { echo "run_engine_vs_pytorch.sh: nothing to run (--shapes and --families empty)" >&2; exit 2; }
folder() { echo "$MODELS/${1%%:*}-${1#*:}-$2"; }
for shape in $SHAPES; do
  case "$shape" in
    s|m|full) ;;
    *) echo "run_engine_vs_pytorch.sh: --shapes takes S, M and full, got '$shape'" >&2; exit 2 ;;
  esac
done
for dtype in $DTYPES; do
  case "$dtype" in
    f32|bf16) ;;
    *) echo "run_engine_vs_pytorch.sh: --dtypes takes f32 and bf16, got '$dtype'" >&2; exit 2 ;;
  esac
done
for placement in $WEIGHTS; do
  case "$placement" in
    mapped|huge) ;;
    *) echo "run_engine_vs_pytorch.sh: --weights takes mapped and huge, got '$placement'" >&2; exit 2 ;;
  esac
done

MODELS="$ROOT/bench/models"
mkdir -p "$MODELS" "$(dirname "$OUT")"
# Shape full is bf16 only (f32 would not fit in memory; make_bench_model.py refuses it).
runs_dtype() { [[ "$1" != shape:full || "$2" == bf16 ]]; }
# A complete folder has its single checkpoint or its index; the generator writes the index last.
have_model() { [[ -f "$1/model.safetensors" || -f "$1/model.safetensors.index.json" ]]; }
for target in $TARGETS; do
  for dtype in $DTYPES; do
    runs_dtype "$target" "$dtype" || continue
    model="$(folder "$target" "$dtype")"
    if ! have_model "$model"; then
      echo "== making $model (shape full: about 13.5 GB, several minutes)" >&2
      "$PYTHON" "$ROOT/bench/make_bench_model.py" "$model" "--${target%%:*}" "${target#*:}" --dtype "$dtype" >&2
    fi
  done
done

ENGINE="$BUILD/bench/moescope_bench_engine"
JOBS_BIN="$BUILD/bench/moescope_bench_corpus_jobs"
for program in "$ENGINE" "$JOBS_BIN"; do
  [[ "$program" == "$JOBS_BIN" && "$CORPUS_JOBS" != 1 ]] && continue
  if [[ ! -x "$program" ]]; then
    echo "== building $program" >&2
    [[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$BUILD" --target "$(basename "$program")" -j2 >&2
  fi
done

load1() { cut -d' ' -f1 /proc/loadavg; }
# Appends a JSON line with the shape, load1 and (for PyTorch) the wait policy added.
record() {
  "$PYTHON" -c '
import json, sys
r = json.loads(sys.argv[1])
r["shape"], r["load1"] = sys.argv[2], float(sys.argv[3])
r.setdefault("omp_wait_policy", sys.argv[4])
print(json.dumps(r))' "$1" "$2" "$3" "$OMP_WAIT_POLICY" >> "$OUT"
}

: > "$OUT"
echo "== OMP_WAIT_POLICY=$OMP_WAIT_POLICY, shapes $SHAPES, families $FAMILIES, prefill $PREFILL, decode $DECODE, repeats $REPEATS; load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for target in $TARGETS; do
  shape="${target#*:}"  # the shape or family name, as the JSON lines' "shape"
  for dtype in $DTYPES; do
    if ! runs_dtype "$target" "$dtype"; then
      echo "== $shape, $dtype: skipped (shape full is bf16 only)" >&2
      continue
    fi
    model="$(folder "$target" "$dtype")"
    for t in $THREADS; do
      # bf16 weights run twice: fp32-accurate activations (every command's default) and
      # activations rounded to bf16 (--activations bf16), which is what PyTorch's bf16 run does.
      acts=f32
      [[ "$dtype" == bf16 ]] && acts="f32 bf16"
      for placement in $WEIGHTS; do
        huge_flag=""
        [[ "$placement" == huge ]] && huge_flag="--huge-pages"
        for act in $acts; do
          echo "== $shape, $dtype, $t thread(s): engine, $act activations, weights $placement" >&2
          line="$("$ENGINE" --model "$model" --threads "$t" --prefill "$PREFILL" --decode "$DECODE" --repeats "$REPEATS" --activations "$act" $huge_flag | tail -n 1)"
          record "$line" "$shape" "$(load1)"
        done
      done
      if [[ "$target" == shape:full && "$TORCH_FULL" != 1 ]]; then
        echo "== $shape, $dtype, $t thread(s): pytorch skipped (give --torch-full)" >&2
        continue
      fi
      # Copying shape full to float32 would need 25 GiB; mapping it needs none beyond the
      # page cache. S and M keep the reference's own loader, as in earlier runs; the family
      # shapes are mapped too (same values, and no untimed 10-20 s copy per run).
      load=copy
      [[ "$target" == shape:full || "$target" == family:* ]] && load=mmap
      echo "== $shape, $dtype, $t thread(s): pytorch (--load $load)" >&2
      line="$("$PYTHON" "$ROOT/bench/torch_reference_bench.py" --model "$model" --dtype "$dtype" --threads "$t" --prefill "$PREFILL" --decode "$DECODE" --load "$load" | tail -n 1)"
      record "$line" "$shape" "$(load1)"
    done
  done
done

JOBS_OUT="${OUT%.jsonl}.corpus_jobs.jsonl"
: > "$JOBS_OUT"
if [[ "$CORPUS_JOBS" == 1 ]]; then
  corpus_args=()
  [[ -n "$CORPUS_FILES" ]] && corpus_args=(--corpus $CORPUS_FILES)
  for t in $THREADS; do
    echo "== corpus jobs, $t thread(s), $CORPUS_ROUNDS round(s) after $CORPUS_WARMUP warm-up" >&2
    "$JOBS_BIN" --threads "$t" --rounds "$CORPUS_ROUNDS" --warmup "$CORPUS_WARMUP" \
      "${corpus_args[@]}" | grep '^{' >> "$JOBS_OUT"
  done
fi
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

RATIOS="${OUT%.jsonl}.ratios.jsonl"
"$PYTHON" - "$OUT" "$RATIOS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ratio_lines = []
torch, engine = {}, []
for r in rows:
    key = (r["shape"], r["dtype"], r["threads"])
    if r["engine"] == "pytorch":
        torch[key] = r
    else:
        engine.append((key, r))
policy = rows[0].get("omp_wait_policy", "?") if rows else "?"
print(f"OMP_WAIT_POLICY={policy}; tokens/s, medians; ratio = engine / PyTorch; act = the engine's "
      "activations with bf16 weights (f32: fp32-accurate, bf16: rounded like PyTorch's bf16); "
      "weights = the engine's mapped checkpoint or its copy in 2 MiB pages (--huge-pages); "
      "roofline = decode / (read bandwidth measured in the same process / bytes a step reads), "
      "and against 32 GB/s; load s, peak RSS GiB and the 1-min load average after each run as "
      "engine/PyTorch")
head = ("shape", "dtype", "act", "weights", "thr", "engine prefill", "torch prefill", "ratio",
        "engine decode", "torch decode", "ratio", "of roofline", "of 32 GB/s", "load s",
        "peak RSS GiB", "load1")
print("| " + " | ".join(head) + " |")
print("|" + "|".join("---" for _ in head) + "|")
for (shape, dtype, threads), e in engine:
    p = torch.get((shape, dtype, threads), {})
    def cell(d, k):
        return f"{d[k]:.1f}" if k in d else "-"
    def both(k, digits):
        return "/".join(f"{d[k]:.{digits}f}" if k in d else "-" for d in (e, p))
    def ratio_value(k):
        return round(e[k] / p[k], 3) if k in e and k in p and p[k] else None
    def ratio(k):
        return "-" if ratio_value(k) is None else f"{ratio_value(k):.2f}"
    mode = f" ({p['bf16_mode']})" if "bf16_mode" in p else ""
    finite = "" if e.get("logits_finite", True) else " (non-finite logits!)"
    roof = f"{e['decode_of_roofline']:.2f}" if "decode_of_roofline" in e else "-"
    roof32 = f"{e['decode_of_32gbs_roofline']:.2f}" if "decode_of_32gbs_roofline" in e else "-"
    print(f"| {shape.upper() if shape in ('s', 'm') else shape} | {dtype} | {e.get('activations', 'f32')} "
          f"| {e.get('weights', 'mapped')} | {threads} "
          f"| {cell(e, 'prefill_tok_s')}{finite} | {cell(p, 'prefill_tok_s')}{mode} | {ratio('prefill_tok_s')} "
          f"| {cell(e, 'decode_tok_s')} | {cell(p, 'decode_tok_s')} | {ratio('decode_tok_s')} | {roof} | {roof32} "
          f"| {both('load_s', 2)} | {both('peak_rss_gib', 1)} | {both('load1', 2)} |")
    ratio_lines.append({
        "shape": shape, "model_type": p.get("model_type"), "dtype": dtype, "threads": threads,
        "activations": e.get("activations", "f32"), "weights": e.get("weights", "mapped"),
        "prefill_tokens": e.get("prefill_tokens"), "decode_tokens": e.get("decode_tokens"),
        "engine_prefill_tok_s": e.get("prefill_tok_s"), "torch_prefill_tok_s": p.get("prefill_tok_s"),
        "prefill_ratio": ratio_value("prefill_tok_s"),
        "engine_decode_tok_s": e.get("decode_tok_s"), "torch_decode_tok_s": p.get("decode_tok_s"),
        "decode_ratio": ratio_value("decode_tok_s"),
        "torch_bf16_mode": p.get("bf16_mode"), "logits_finite": e.get("logits_finite"),
        "prefill_cpu_util": [e.get("prefill_cpu_util"), p.get("prefill_cpu_util")],
        "decode_cpu_util": [e.get("decode_cpu_util"), p.get("decode_cpu_util")],
        "load1": [e.get("load1"), p.get("load1")], "omp_wait_policy": policy})
with open(sys.argv[2], "w") as f:
    for line in ratio_lines:
        f.write(json.dumps(line) + "\n")
PY

SUMMARY="${SUMMARY:-${OUT%.jsonl}.summary.jsonl}"
"$PYTHON" "$ROOT/bench/summary_lines.py" "$OUT" --corpus-jobs "$JOBS_OUT" --out "$SUMMARY"
echo "results: $OUT, ratios: $RATIOS, corpus jobs: $JOBS_OUT, summary: $SUMMARY" >&2
