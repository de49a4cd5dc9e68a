#!/usr/bin/env bash
# Writes the exports the notebooks read (notebooks/README.md):
#   trace.h5              moescope trace of the bundled sample corpus, router logits for 1/4 of the tokens
#   stats/                moescope stats of that trace (stats.h5, stats.csv, ...)
#   ablate_top_r.h5/.csv  moescope ablate --top-r-max R (DeepSeekMoE top-r sweep) over the same documents,
#                         each cut to its first 1200 characters (ablate_corpus/)
#   splits/               expert_construction.ipynb: the dense model split three ways (moescope split),
#                         each scored (per document) and traced on the second halves of all sample
#                         documents (8 per domain); co-activations measured on their first halves;
#                         the dense model scored on the same text
#                         (skipped, with a SKIPPED file, when `moescope split --help` fails)
#   acting/               acting_on_routing.ipynb: importance.json(.csv), prune_curve.h5/.csv/.h5.vs-random.csv
#                         (ratios 0.25 and 0.5 by frequency and REAP, random controls), dynamic_k.h5/.csv
#                         (threshold sweep), cache/ (cache-sim of trace.h5), replay_precision.csv, all but
#                         cache/ on the first ACTING_DOCS cut documents of each domain
#   prepare.json          what was run, on which model, and how long each step took
#
# Usage: notebooks/prepare_exports.sh [--model DIR] [--dense DIR] MOESCOPE_BIN [OUT_DIR]
#   --model DIR   LLaMA-MoE model to trace and ablate (default: moescope's default, the bundled model)
#   --dense DIR   dense LLaMA to split for expert_construction.ipynb (default: datasets/models/dense)
#   OUT_DIR       default: notebooks/data (gitignored); the notebooks read $MOESCOPE_NOTEBOOK_DATA
# Env: MOESCOPE_NB_TOP_R_MAX  largest r of the top-r sweep (default: E - K, at most 4)
#      MOESCOPE_NB_ABLATE_CHARS characters kept of each document for the sweep (default 1200)
#      MOESCOPE_NB_ACTING_DOCS documents per domain for acting/ (default 2)
#      MOESCOPE_NB_PRUNE_CONTROLS random controls per pruned set in acting/prune_curve (default 2)
#      MOESCOPE_NB_SPLIT_DOCS documents per domain the split models are run on (default: all)
#      MOESCOPE_NB_COACT_DOCS documents per domain whose first halves calibrate the co-activation split (default: all)
#      MOESCOPE_NB_SPLIT_EXPERTS, MOESCOPE_NB_SPLIT_TOP_K  experts and top-k of the splits (8, 2)
# Every step runs on one thread (--threads 1, OMP_WAIT_POLICY=PASSIVE), the co-activation split beside the
# other expert-construction steps: about 2.7 minutes of CPU time, 3 minutes on 2 cores.
set -euo pipefail

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "prepare_exports: $*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODEL=""
DENSE="$ROOT/datasets/models/dense"
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --model) [ $# -ge 2 ] || usage; MODEL="$2"; shift 2 ;;
        --dense) [ $# -ge 2 ] || usage; DENSE="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        -*) echo "prepare_exports: unknown option $1" >&2; usage ;;
        *) args+=("$1"); shift ;;
    esac
done
[ ${#args[@]} -ge 1 ] && [ ${#args[@]} -le 2 ] || usage
BIN="${args[0]}"
OUT="${args[1]:-$ROOT/notebooks/data}"
[ -x "$BIN" ] || die "moescope binary '$BIN' is not an executable file"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY (Debian's Python, with h5py) is needed"

export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
MODEL_ARGS=()
if [ -n "$MODEL" ]; then
    [ -f "$MODEL/config.json" ] || die "--model $MODEL: no config.json there"
    MODEL="$(cd "$MODEL" && pwd)"
    MODEL_ARGS=(--model "$MODEL")
fi
shopt -s nullglob
CORPUS=("$ROOT"/datasets/sample/*.jsonl)
[ ${#CORPUS[@]} -gt 0 ] || die "no sample corpus in $ROOT/datasets/sample/*.jsonl"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$ROOT"   # corpus paths are recorded relative to the repository root
CORPUS=("${CORPUS[@]#"$ROOT/"}")

TIMES="$OUT/.prepare_times.tsv"
: > "$TIMES"
t_all=$EPOCHREALTIME
step() {   # step NAME CMD... : runs CMD, records its wall time
    local name="$1"; shift
    echo "== $name: $*" >&2
    local t0=$EPOCHREALTIME
    "$@"
    printf '%s\t%s\n' "$name" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')" >> "$TIMES"
}

# --- trace + stats (trace_tour, load_and_specialization, routing_consistency) --------------------
rm -rf "$OUT/trace.h5" "$OUT/stats"
step trace "$BIN" trace "${MODEL_ARGS[@]}" --threads 1 --corpus "${CORPUS[@]}" -o "$OUT/trace.h5" \
    --record-logits --logit-sample-rate 0.25
step stats "$BIN" stats "$OUT/trace.h5" -o "$OUT/stats"

# --- top-r ablation sweep (ablations) --------------------------------------------------------------
# Every policy reruns the model over the corpus, so the sweep runs on the sample documents cut to
# their first ABLATE_CHARS characters (at a line or word end): all 56 documents stay (the intervals
# are bootstrapped over documents) at a fraction of the tokens.
read -r E K < <("$PY" -c 'import h5py,sys; f=h5py.File(sys.argv[1]); print(int(f.attrs["num_experts"]), int(f.attrs["top_k"]))' "$OUT/trace.h5")
R="${MOESCOPE_NB_TOP_R_MAX:-$(( E - K < 4 ? E - K : 4 ))}"
[ "$R" -ge 1 ] || R=1
ABLATE_CHARS="${MOESCOPE_NB_ABLATE_CHARS:-1200}"
rm -rf "$OUT/ablate_top_r.h5" "$OUT/ablate_top_r.csv" "$OUT/ablate_corpus"
mkdir -p "$OUT/ablate_corpus"
"$PY" - "$ABLATE_CHARS" "$OUT/ablate_corpus" "${CORPUS[@]}" <<'PYEOF'
import json, os, sys
limit, out = int(sys.argv[1]), sys.argv[2]
for path in sys.argv[3:]:
    with open(path, encoding="utf-8") as src, open(os.path.join(out, os.path.basename(path)), "w", encoding="utf-8") as dst:
        for line in src:
            doc = json.loads(line)
            text = doc["text"]
            if len(text) > limit:
                cut = text.rfind("\n", 0, limit)
                if cut < limit // 2:
                    cut = text.rfind(" ", 0, limit)
                doc["text"] = text[: cut if cut > 0 else limit]
            dst.write(json.dumps(doc, ensure_ascii=False) + "\n")
PYEOF
ABLATE_CORPUS=()
for f in "${CORPUS[@]}"; do ABLATE_CORPUS+=("$OUT/ablate_corpus/$(basename "$f")"); done
step ablate "$BIN" ablate "${MODEL_ARGS[@]}" --threads 1 --corpus "${ABLATE_CORPUS[@]}" \
    -o "$OUT/ablate_top_r.h5" --top-r-max "$R"

# --- acting on routing (acting_on_routing) -----------------------------------------------------------
# Importance, the pruning curve, the dynamic-k sweep and the fp32/bf16 replay rerun the model, so they
# run on ACTING_DOCS documents per domain of the cut corpus above (the replay on their first 256 tokens:
# it runs whole documents in one window); the cache simulation replays the trace of the whole corpus.
ACTING="$OUT/acting"
ACTING_DOCS="${MOESCOPE_NB_ACTING_DOCS:-2}"
PRUNE_CONTROLS="${MOESCOPE_NB_PRUNE_CONTROLS:-2}"
rm -rf "$ACTING"
mkdir -p "$ACTING/corpus"
ACT_CORPUS=()
for f in "${ABLATE_CORPUS[@]}"; do
    head -n "$ACTING_DOCS" "$f" > "$ACTING/corpus/$(basename "$f")"
    ACT_CORPUS+=("$ACTING/corpus/$(basename "$f")")
done
step importance "$BIN" importance "${MODEL_ARGS[@]}" --threads 1 --corpus "${ACT_CORPUS[@]}" \
    -o "$ACTING/importance.json" > /dev/null
step prune_curve "$BIN" prune-curve "${MODEL_ARGS[@]}" --threads 1 --corpus "${ACT_CORPUS[@]}" \
    --importance "$ACTING/importance.json" --scores frequency,reap --ratios 0.25,0.5 \
    --random-controls "$PRUNE_CONTROLS" -o "$ACTING/prune_curve.h5" > /dev/null
step dynamic_k "$BIN" ablate "${MODEL_ARGS[@]}" --threads 1 --corpus "${ACT_CORPUS[@]}" \
    --dynamic-k threshold=0.9,0.95,0.98,0.995 -o "$ACTING/dynamic_k.h5" > /dev/null
step cache_sim "$BIN" cache-sim "$OUT/trace.h5" -o "$ACTING/cache" > /dev/null
step replay_precision "$BIN" replay "${MODEL_ARGS[@]}" --threads 1 --corpus "${ACT_CORPUS[@]}" \
    --precision --max-tokens-per-document 256 -o "$ACTING/replay_precision.csv" > /dev/null

# --- expert construction (expert_construction) ------------------------------------------------------
# `moescope split --method M` turns the dense model into SPLIT_E experts (top-SPLIT_K) three ways. Every
# sample document (SPLIT_DOCS per domain, default all 8) is cut in two at a line (or word) end near
# its middle: the co-activation split measures its neuron co-activations on the first halves of
# COACT_DOCS documents per domain, and every model is evaluated on the second halves of all of them,
# so no evaluated text was seen by any split while it was made. Each MoE, and the dense model itself,
# is scored with `moescope score` (same windows for all; per document: perplexity and the paired
# comparisons over documents), and each MoE is traced and its statistics computed (specialization).
SPLITS="$OUT/splits"
rm -rf "$SPLITS"
mkdir -p "$SPLITS"
split_help="$("$BIN" split --help 2>&1)" && split_rc=0 || split_rc=$?
# An unknown subcommand with --help prints the top-level help and exits 0, so look for split's options.
if [ "$split_rc" -ne 0 ] || ! grep -q -- '--method' <<<"$split_help"; then
    reason="'$BIN split --help' failed (this moescope has no split command), so the expert-construction exports were not made"
    echo "prepare_exports: SKIPPED expert construction: $reason" >&2
    printf '%s\n' "$reason" > "$SPLITS/SKIPPED"
    split_status="skipped"
else
    [ -f "$DENSE/config.json" ] || die "dense model $DENSE not found (datasets/train_dense.py writes it; --dense DIR)"
    SPLIT_E="${MOESCOPE_NB_SPLIT_EXPERTS:-8}"
    SPLIT_K="${MOESCOPE_NB_SPLIT_TOP_K:-2}"
    DOCS="${MOESCOPE_NB_SPLIT_DOCS:-0}"          # 0 = every document of the domain
    COACT_DOCS="${MOESCOPE_NB_COACT_DOCS:-0}"   # 0 = all; measuring co-activations costs ~0.4 CPU s per window
    mkdir -p "$SPLITS/corpus" "$SPLITS/coactivation_corpus"
    "$PY" - "$DOCS" "$COACT_DOCS" "$SPLITS" "${CORPUS[@]}" <<'PYEOF'
import json, os, sys
docs, coact, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for path in sys.argv[4:]:
    name = os.path.basename(path)
    lines = open(path, encoding="utf-8").read().splitlines()
    if docs > 0:
        lines = lines[:docs]
    with open(os.path.join(out, "corpus", name), "w", encoding="utf-8") as ev, \
         open(os.path.join(out, "coactivation_corpus", name), "w", encoding="utf-8") as ca:
        for i, line in enumerate(lines):
            doc = json.loads(line)
            text = doc["text"]
            mid = len(text) // 2
            cut = text.rfind("\n", 0, mid)
            if cut < mid // 2:
                cut = text.rfind(" ", 0, mid)
            if cut <= 0:
                cut = mid
            first, second = dict(doc), dict(doc)
            first["text"], second["text"] = text[:cut], text[cut:].lstrip("\n ")
            ev.write(json.dumps(second, ensure_ascii=False) + "\n")
            if coact <= 0 or i < coact:
                first["id"] = str(doc["id"]) + " (first half)"
                ca.write(json.dumps(first, ensure_ascii=False) + "\n")
PYEOF
    SUB=()
    COACT=()
    for f in "${CORPUS[@]}"; do
        SUB+=("$SPLITS/corpus/$(basename "$f")")
        [ -s "$SPLITS/coactivation_corpus/$(basename "$f")" ] && COACT+=("$SPLITS/coactivation_corpus/$(basename "$f")")
    done
    [ ${#COACT[@]} -gt 0 ] || die "no co-activation documents (MOESCOPE_NB_COACT_DOCS=$COACT_DOCS)"
    printf 'model\tdomain\ttokens\tnll\tppl\n' > "$SPLITS/scores.tsv"
    printf 'model\tdomain\tdoc\ttokens\tnll\n' > "$SPLITS/scores_docs.tsv"
    score_model() {   # NAME DIR: one `moescope score` per domain file: its documents and its "all" line
        local name="$1" dir="$2" f d out="$SPLITS/.score_output"
        for f in "${SUB[@]}"; do
            d="$(basename "$f" .jsonl)"
            "$BIN" score --model "$dir" --threads 1 -f "$f" > "$out"
            "$PY" - "$name" "$d" "$f" "$SPLITS/scores.tsv" "$SPLITS/scores_docs.tsv" "$out" <<'PYEOF' || die "moescope score --model $dir -f $f: unexpected output"
import json, re, sys
name, domain, corpus, per_domain, per_doc, output = sys.argv[1:]
ids = [str(json.loads(l)["id"]) for l in open(corpus, encoding="utf-8") if l.strip()]
row = re.compile(r"^(.*\S)\s+tokens\s+(\d+)\s+nll\s+(\S+)\s+ppl\s+(\S+)$")
lines = [row.match(l) for l in open(output, encoding="utf-8").read().splitlines() if l.strip()]
assert all(lines) and len(lines) >= len(ids), "unexpected score output"
docs = lines[:len(ids)]
assert [m.group(1) for m in docs] == ids, "score rows are not the corpus documents in order"
total = lines[-1] if len(ids) > 1 else lines[0]
assert len(ids) == 1 or total.group(1) == "all"
with open(per_domain, "a") as f:
    f.write(f"{name}\t{domain}\t{total.group(2)}\t{total.group(3)}\t{total.group(4)}\n")
with open(per_doc, "a") as f:
    for m in docs:
        f.write(f"{name}\t{domain}\t{m.group(1)}\t{m.group(2)}\t{m.group(3)}\n")
PYEOF
        done
        rm -f "$out"
    }
    # The co-activation split, the slow one (it runs the dense model over its calibration text), runs
    # on a second core beside the scoring of the dense model and the other two splits.
    step split_coactivation "$BIN" split --method coactivation --experts "$SPLIT_E" --top-k "$SPLIT_K" \
        --seed 0 --threads 1 --corpus "${COACT[@]}" "$DENSE" "$SPLITS/coactivation/model" &
    coact_pid=$!
    step score_dense score_model dense "$DENSE"
    for m in random clustering coactivation; do
        if [ "$m" = coactivation ]; then
            wait "$coact_pid" || die "moescope split --method coactivation failed"
        else
            step "split_$m" "$BIN" split --method "$m" --experts "$SPLIT_E" --top-k "$SPLIT_K" --seed 0 \
                --threads 1 "$DENSE" "$SPLITS/$m/model"
        fi
        step "score_$m" score_model "$m" "$SPLITS/$m/model"
        step "trace_$m" "$BIN" trace --model "$SPLITS/$m/model" --threads 1 --corpus "${SUB[@]}" \
            -o "$SPLITS/$m/trace.h5"
        step "stats_$m" "$BIN" stats "$SPLITS/$m/trace.h5" -o "$SPLITS/$m/stats"
    done
    split_status="done"
fi

# --- provenance ----------------------------------------------------------------------------------
total="$(awk -v a="$t_all" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
"$PY" - "$OUT/prepare.json" "$TIMES" "$BIN" "$("$BIN" --version 2>&1)" "${MODEL:-default}" "$DENSE" \
    "$R" "$split_status" "$total" <<'PYEOF'
import json, sys
out, times, binary, version, model, dense, r, splits, total = sys.argv[1:]
seconds = {k: float(v) for k, v in (line.split("\t") for line in open(times).read().splitlines())}
json.dump({"moescope": binary, "version": version, "model": model, "dense": dense,
           "corpus": "datasets/sample/*.jsonl", "top_r_max": int(r), "splits": splits,
           "seconds": seconds, "total_seconds": float(total)}, open(out, "w"), indent=1)
PYEOF
rm -f "$TIMES"
echo "prepare_exports: wrote $OUT in $total s" >&2
