#!/usr/bin/python3
"""Per-domain next-token NLL of corpus files with the PyTorch reference, in the evaluation protocol
of datasets/training_common.py and of `moescope score`: every document is [BOS] + SentencePiece ids
(no EOS; `moescope score` adds none), cut into windows of at most C + 1 tokens with stride C (C =
max_position_embeddings), each window run alone from position 0; every token but the leading BOS
is predicted exactly once. Weights of any dtype are computed in float32; with --bf16 the forward
runs under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's own bf16 inference, which rounds
the inputs (and outputs) of every matmul to bf16 (compare `moescope score --bf16-activations`).

usage: score_reference.py MODEL_DIR FILE.jsonl... [--json OUT.json] [--bf16]
Prints one line per domain and "all": tokens, mean NLL, perplexity.
"""
import argparse
import contextlib
import json
import math
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import family_reference  # noqa: E402
from llama_moe_reference import LlamaMoEReference  # noqa: E402


def documents(files):
    for path in files:
        with open(path) as f:
            for line in f:
                if line.strip():
                    doc = json.loads(line)
                    yield doc.get("domain", "text"), doc["text"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--json", help="also write {domain: {tokens, nll_sum}} here")
    parser.add_argument("--bf16", action="store_true", help="run under bf16 autocast")
    args = parser.parse_args()
    precision = (torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16
                 else contextlib.nullcontext())
    torch.set_num_threads(1)
    # The other families (Mixtral, Qwen-MoE, ...) through their own reference.
    with open(os.path.join(args.model_dir, "config.json")) as f:
        family = json.load(f).get("model_type") in family_reference.FAMILIES
    reference = family_reference.FamilyReference if family else LlamaMoEReference
    model = reference.from_dir(args.model_dir)
    context = model.config.max_position_embeddings
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.model_dir, "tokenizer.model"))
    sums = {}
    with torch.no_grad(), precision:
        for domain, text in documents(args.files):
            if not text.strip():
                continue
            ids = [sp.bos_id()] + sp.encode(text)
            nll_sum, tokens = sums.setdefault(domain, [0.0, 0])
            for start in range(0, len(ids) - 1, context):
                window = ids[start:start + context + 1]
                inputs = torch.tensor([window[:-1]])
                logits = model.forward(inputs)["logits"][0].float().double()
                targets = torch.tensor(window[1:])
                nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
                nll_sum += nll
                tokens += len(window) - 1
            sums[domain] = [nll_sum, tokens]
    total = [sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())]
    for name, (nll_sum, tokens) in sorted(sums.items()) + [("all", total)]:
        mean = nll_sum / max(tokens, 1)
        print(f"{name:16s} tokens {tokens:8d}  nll {mean:.6f}  ppl {math.exp(mean):.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: {"tokens": v[1], "nll_sum": v[0]} for k, v in sums.items()}, f, indent=1)


if __name__ == "__main__":
    main()
