#!/bin/sh
# Stores the trained models in the repository (issue 4, step 6): the float32 training outputs in
# datasets/work/{dense,moe} become bfloat16 folders datasets/models/dense and datasets/models/default
# (moescope convert --dtype BF16: every tensor rounded to nearest even, about 17 MB each), with
# their train_summary.json, and the training curves are drawn for the model card.
# Usage: sh datasets/ship_models.sh [MOESCOPE_BINARY]   (default build/cli/moescope)
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/cli/moescope}
for pair in "dense dense" "moe default"; do
    set -- $pair
    $bin convert --dtype BF16 "datasets/work/$1" "datasets/models/$2"
    cp "datasets/work/$1/train_summary.json" "datasets/models/$2/"
done
/usr/bin/python3 datasets/plot_training.py --work datasets/work \
    --out datasets/models/default/training_curves.png
du -sh datasets/models/dense datasets/models/default
