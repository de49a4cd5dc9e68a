#!/usr/bin/env bash
# Regenerates gui/screenshots/ (shown in docs/gui.md): a trace of the bundled model over five
# eval domains of datasets/corpus, every view exported with --export-views (the ablation panel
# after a run, --ablate), and the whole window with --screenshot. Needs xvfb-run. BUILD: the
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
mkdir -p "$work/config"
XDG_CONFIG_HOME="$work/config" xvfb-run -a -s "-screen 0 1800x1200x24" "$studio" "$trace" \
  --screenshot gui/screenshots/app.png --size 1700x1000 --layer 1 --expert 5 --document 3
ls -l gui/screenshots
