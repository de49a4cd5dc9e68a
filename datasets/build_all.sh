#!/bin/sh
# Rebuild corpus, tokenizer, dense LLaMA, expert split and LLaMA-MoE end to end (issue 4), then
# store both models in bf16 under datasets/models/ (dense/ and default/).
# Every step is skipped when its output exists; the two trainers resume from their checkpoints in
# datasets/work/ when interrupted, so re-running this script continues where it stopped.
# Usage: sh datasets/build_all.sh            (as root for the apt-get step, or after it)
# Needs:  build/cli/moescope (scripts/build.sh) for the split and the bf16 conversion.
# Env:   SPLIT="cmd DENSE OUT"  expert-split command (default: moescope split --method random,
#        8 experts, top-2, seed 0; tests/reference/split_reference.py gives the same bytes)
set -eu
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
t0=$(date +%s)
step() { echo "== $(date '+%F %T') $* ($(( $(date +%s) - t0 )) s since start)"; }
step corpus
[ -f datasets/corpus/manifest.json ] || $PY datasets/build_corpus.py
step tokenizer
[ -f datasets/work/tokenizer.model ] || $PY datasets/train_tokenizer.py
step dense
[ -f datasets/work/dense/train_summary.json ] || nice -n 10 $PY datasets/train_dense.py
step split
if [ ! -f datasets/work/moe_split/model.safetensors ]; then
    ${SPLIT:-build/cli/moescope split --method random --experts 8 --top-k 2 --seed 0} \
        datasets/work/dense datasets/work/moe_split
fi
step moe
[ -f datasets/work/moe/train_summary.json ] || nice -n 10 $PY datasets/train_moe.py --init datasets/work/moe_split
step ship
sh datasets/ship_models.sh
step done
