#!/usr/bin/env bash
# Regenerates gui/screenshots/ (shown in docs/gui.md): a trace of the bundled model over five
# eval domains of datasets/corpus, every view exported with --export-views (the ablation panel
# after a run, --ablate), the result views over prune-curve, cache-sim and replay exports made
# here, and the whole window with --screenshot. Needs xvfb-run. BUILD: the
# build folder (default build); TRACE: reuse this trace instead of making one (it takes a few
# minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
studio="$build/gui/moescope-studio"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trace=${TRACE:-$work/eval.h5}
if [ ! -f "$trace" ]; then
  "${MOESCOPE:-$build/cli/moescope}" trace -o "$trace" --record-logits --logit-sample-rate 0.2 \
    --corpus datasets/corpus/eval/{books,code,legal,math,multilingual}.jsonl
fi
xvfb-run -a -s "-screen 0 1800x1200x24" "$studio" --export-views "$work/views" "$trace" \
  --size 1280x800 --layer 1 --expert 3 --document 200 >/dev/null
cp "$work"/views/*.png gui/screenshots/
# The ablation panel with results: expert 3 of layer 1 re-routed over one domain's documents
# (all five would take minutes).
xvfb-run -a -s "-screen 0 1800x1200x24" "$studio" --export-views "$work/ablation" "$trace" \
  --size 1280x800 --layer 1 --expert 3 --domain legal --ablate >/dev/null
cp "$work"/ablation/ablation.png gui/screenshots/
# The result views: prune-curve, cache-sim and replay exports beside a link to the trace. The
# pruning curve and the replay run over 4 documents per domain of the bundled sample corpus (the
# eval corpus would take long); cache-sim replays the trace.
cli="${MOESCOPE:-$build/cli/moescope}"
res="$work/results"
mkdir -p "$res"
ln -s "$(realpath "$trace")" "$res/eval.h5"
small=(--corpus datasets/sample/*.jsonl --max-documents-per-domain 4 --max-tokens-per-document 256)
"$cli" importance "${small[@]}" -o "$res/importance.json" >/dev/null
"$cli" prune-curve "${small[@]}" --importance "$res/importance.json" \
  --scores frequency,reap,output_change --ratios 0.125,0.25,0.5 --random-controls 3 \
  -o "$res/prune.h5" >/dev/null
"$cli" cache-sim "$trace" -o "$res/cache" >/dev/null
"$cli" replay "${small[@]}" --precision -o "$res/replay.csv" >/dev/null
xvfb-run -a -s "-screen 0 1800x1200x24" "$studio" --export-views "$work/results-views" \
  "$res/eval.h5" --size 1280x800 --layer 1 >/dev/null
cp "$work"/results-views/{prune_curve,cache_curves,replay}.png gui/screenshots/
mkdir -p "$work/config"
XDG_CONFIG_HOME="$work/config" xvfb-run -a -s "-screen 0 1800x1200x24" "$studio" "$trace" \
  --screenshot gui/screenshots/app.png --size 1700x1000 --layer 1 --expert 5 --document 3
ls -l gui/screenshots
