#!/usr/bin/env bash
# Quick start: install dependencies, build, and run moescope on the bundled model and data:
# generate and score text, then trace the routing of the bundled sample corpus (7 domains) and
# compute its statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export OMP_WAIT_POLICY=PASSIVE
bin=build/cli/moescope
out=build/quickstart
mkdir -p "$out"
echo "== moescope info (bundled model)"
$bin info
echo "== moescope generate"
$bin generate --prompt "This program is free software" --max-new-tokens 24
echo "== moescope score (bundled sample corpus, per domain)"
$bin score -f datasets/sample/*.jsonl | grep -E "^(domain|all)"
echo "== moescope trace + stats (bundled sample corpus)"
$bin trace --corpus datasets/sample/*.jsonl -o "$out/sample.h5" --record-logits --logit-sample-rate 0.25
$bin stats "$out/sample.h5" -o "$out/sample_stats"
echo "== per layer: load balance and the most domain-specialized expert"
/usr/bin/python3 datasets/summarize_routing.py "$out/sample_stats"
