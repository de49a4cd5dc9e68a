"""A pruned checkpoint against the PyTorch references: logits of the folder's inputs.json.

Usage: /usr/bin/python3 tests/python/check_prune_reference.py MODEL_DIR ENGINE_LOGITS

MODEL_DIR is a checkpoint folder written by `moescope prune` holding an inputs.json (the format of
tests/golden/README.md); it is loaded by tests/reference/family_reference.py (Mixtral, OLMoE,
Qwen2/3-MoE, Granite-MoE, dots1) or tests/reference/llama_moe_reference.py (LLaMA-MoE) by its
model_type, run in float32 on the inputs, and its logits [B, S, V] are compared on real tokens
with the tensor "logits" of ENGINE_LOGITS (a safetensors file the engine wrote):
|got - want| <= 1e-4 + 1e-4 |want|. Prints the largest difference; exits 1 on a mismatch.
"""

import json
import os
import sys

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
import safetensors_io  # noqa: E402
from family_reference import FAMILIES, FamilyReference  # noqa: E402
from llama_moe_reference import LlamaMoEReference  # noqa: E402


def main():
    model_dir, engine_file = sys.argv[1], sys.argv[2]
    with open(os.path.join(model_dir, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    reference = FamilyReference if model_type in FAMILIES else LlamaMoEReference
    model = reference.from_dir(model_dir, torch.float32)
    with open(os.path.join(model_dir, "inputs.json")) as f:
        inputs = json.load(f)
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    positions = torch.tensor(inputs["position_ids"])
    with torch.no_grad():
        got = model.forward(ids, mask, positions)["logits"].numpy().astype(np.float64)
    want = safetensors_io.load(engine_file)["logits"].astype(np.float64).reshape(got.shape)
    real = mask.numpy().astype(bool)
    diff = np.abs(got - want)[real]
    allowed = 1e-4 + 1e-4 * np.abs(want[real])
    worst = float(diff.max())
    ok = bool((diff <= allowed).all())
    print(f"{model_type}: {real.sum()} tokens, max |logit diff| {worst:.3e} -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
