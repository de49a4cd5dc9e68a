#!/bin/sh
# Stores the qwen2_moe model trained by datasets/train_qwen_moe.py as datasets/models/shared_experts/
# and checks it. The trainer already writes that folder (bfloat16, rounded to nearest even) when
# training ends; this script rebuilds it from the checkpoint datasets/work/qwen_moe/ckpt.pt (final
# float32 evaluation included, a few minutes), compares the training module's logits with
# tests/reference/family_reference.py on one held-out sample document per domain (1e-4 relative),
# and prints the engine's view of the folder when the CLI is built with qwen2_moe support.
# Usage: sh datasets/ship_shared_experts.sh [MOESCOPE_BINARY]   (default build/cli/moescope)
set -eu
cd "$(dirname "$0")/.."
bin=${1:-build/cli/moescope}
nice -n 10 /usr/bin/python3 datasets/train_qwen_moe.py --export-only
nice -n 10 /usr/bin/python3 datasets/train_qwen_moe.py --check datasets/models/shared_experts
if [ -x "$bin" ]; then
    "$bin" info --model datasets/models/shared_experts
    "$bin" score --threads 1 --model datasets/models/shared_experts -f datasets/sample/code.jsonl
fi
du -b datasets/models/shared_experts/model.safetensors
