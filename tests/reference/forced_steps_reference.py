#!/usr/bin/python3
"""Next-token logits of a prompt and of given continuation tokens fed one at a time through the
KV cache of the PyTorch reference (float32): the prompt is prefilled, then each token is decoded
as one step, as `moescope generate` does. Optionally the cache is a bf16 one (--kv-bf16: keys
after RoPE and values rounded to bf16 before every attention).

usage: forced_steps_reference.py MODEL_DIR --prompt IDS --tokens IDS --out OUT.safetensors [--kv-bf16]
IDS are comma-separated token ids. OUT holds step_logits [1 + len(tokens), V] (F32): row 0 after
the prompt, row i after the i-th given token.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from llama_moe_reference import LlamaMoEReference  # noqa: E402


def ids(text):
    return [int(x) for x in text.split(",") if x]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--prompt", type=ids, required=True)
    parser.add_argument("--tokens", type=ids, default=[])
    parser.add_argument("--out", required=True)
    parser.add_argument("--kv-bf16", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = LlamaMoEReference.from_dir(args.model_dir)
    model.kv_bf16 = args.kv_bf16
    cache = model.new_cache()
    rows = []
    with torch.no_grad():
        step = torch.tensor([args.prompt])
        for token in [None] + args.tokens:
            if token is not None:
                step = torch.tensor([[token]])
            rows.append(model.forward(step, cache=cache)["logits"][0, -1])
    logits = torch.stack(rows).numpy().astype(np.float32)
    safetensors_io.save(args.out, {"step_logits": logits})


if __name__ == "__main__":
    main()
