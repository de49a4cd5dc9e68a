"""Regenerate the end-to-end family models under tests/fixtures/families_e2e/ (Mixtral, OLMoE,
Qwen2-MoE, Qwen3-MoE, Granite-MoE, dots1): tiny random models the CLI can run on text.

Usage: /usr/bin/python3 tests/reference/make_family_e2e_models.py [--out tests/fixtures/families_e2e]
       [--no-check] [FAMILY ...]

Each folder <family>/ holds config.json (the family's full key set, as make_family_fixtures.py writes
it), model.safetensors (float32, seeded numpy PCG64 weights under the family's own checkpoint names,
make_family_fixtures.random_weights) and a copy of tests/fixtures/tiny_moe/tokenizer.model
(SentencePiece, 512 pieces), so vocab_size is 512 and bos/eos/pad are 1/2/0 as in tiny_moe.
Router weights are N(0, ROUTER_STD^2) per element so that the tokens of a text go to many different
experts. Unlike the fixtures, draws are not margin-checked: these models are for trace -> stats ->
ablate -> app runs, not for numerics. Output is deterministic (same bytes every run).

Unless --no-check, every model is then run with family_reference.py (float32) on the tokenized
sample text, on a 160-token id sequence and for 8 greedy steps through the KV cache; the script
fails on NaN/Inf and prints, per MoE layer, how many experts received tokens.
"""

import argparse
import os
import shutil
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402
from family_reference import FamilyConfig, FamilyReference, route_sigmoid_grouped  # noqa: E402
from make_family_fixtures import (REPO_ROOT, dots1_config, granitemoe_config, mixtral_config,  # noqa: E402
                                  olmoe_config, qwen2_moe_config, qwen3_moe_config, random_weights)

DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "families_e2e")
TOKENIZER = os.path.join(REPO_ROOT, "tests", "fixtures", "tiny_moe", "tokenizer.model")
ROUTER_STD = 0.5  # per-element std of the router weights
SIZE_LIMIT = 750 * 1000  # bytes per folder (the 128-expert model is the largest, about 700 kB)
SAMPLE_TEXT = ("The mixture of experts routes every token to a few experts. "
               "Copyright 2024: permission is granted to copy, modify and distribute this software.")

# Shared by all six: vocabulary and special ids of tests/fixtures/tiny_moe (its config.json and
# generation_config.json: bos 1, eos 2, pad 0), 4 query / 2 KV heads, 256 positions.
E2E_COMMON = {"vocab_size": 512, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
              "max_position_embeddings": 256, "num_attention_heads": 4, "num_key_value_heads": 2}


def models():
    """(family, seed, config) of every end-to-end model."""
    return [
        ("mixtral", 31000, mixtral_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=2, intermediate_size=32,
            num_local_experts=8, num_experts_per_tok=2, sliding_window=64)),
        ("olmoe", 32000, olmoe_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=2, intermediate_size=16,
            num_experts=16, num_experts_per_tok=4, clip_qkv=2.0, norm_topk_prob=False)),
        ("qwen2_moe", 33000, qwen2_moe_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=3, max_window_layers=3, intermediate_size=64,
            moe_intermediate_size=16, shared_expert_intermediate_size=32, num_experts=8,
            num_experts_per_tok=2, mlp_only_layers=[1], norm_topk_prob=False)),
        ("qwen3_moe", 34000, qwen3_moe_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=2, max_window_layers=2, head_dim=16,
            intermediate_size=64, moe_intermediate_size=12, num_experts=16, num_experts_per_tok=4,
            mlp_only_layers=[], norm_topk_prob=True)),
        ("granitemoe", 35000, granitemoe_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=3, intermediate_size=16,
            num_local_experts=8, num_experts_per_tok=2, embedding_multiplier=12.0, logits_scaling=8.0,
            residual_multiplier=0.22, attention_multiplier=0.125, tie_word_embeddings=True)),
        ("dots1", 36000, dots1_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=3, intermediate_size=64,
            moe_intermediate_size=12, n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2,
            n_shared_experts=1, first_k_dense_replace=1, routed_scaling_factor=2.5)),
        # 128 experts top-8 (Qwen3-30B-A3B's router width): the app's views and the set statistics
        # at E > 64, on narrow experts to keep the folder small.
        ("qwen3_moe_128", 37000, qwen3_moe_config(
            **E2E_COMMON, hidden_size=32, num_hidden_layers=2, max_window_layers=2, head_dim=16,
            intermediate_size=64, moe_intermediate_size=4, num_experts=128, num_experts_per_tok=8,
            mlp_only_layers=[], norm_topk_prob=True)),
    ]


def model_weights(config, seed):
    rng = np.random.default_rng(seed)
    h = config["hidden_size"]
    # random_weights scales the router by router_std / sqrt(H); this makes the element std ROUTER_STD
    return random_weights(config, rng, router_std=ROUTER_STD * np.sqrt(h), bias_std=0.2)


def write_model(folder, config, weights):
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    mb.write_json(os.path.join(folder, "config.json"), config)
    mb.write_safetensors_model(folder, weights)
    shutil.copyfile(TOKENIZER, os.path.join(folder, "tokenizer.model"))
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))


def sample_ids():
    """The sample text tokenized with tokenizer.model (BOS prepended), or None without sentencepiece."""
    try:
        import sentencepiece
    except ImportError:
        return None
    sp = sentencepiece.SentencePieceProcessor(model_file=TOKENIZER)
    return [1] + sp.encode(SAMPLE_TEXT)


def check_model(folder):
    """Run the reference from the written folder; return a one-line summary or raise on NaN/Inf."""
    model = FamilyReference.from_dir(folder)
    cfg = model.config
    rng = np.random.default_rng(0)
    runs = {"long": torch.tensor(rng.integers(3, cfg.vocab_size, size=(1, 160)))}
    text = sample_ids()
    if text is not None:
        runs["text"] = torch.tensor([text])
    used, extra = {}, ""
    for name, ids in runs.items():
        record = {}
        logits = model.forward(ids, record=record)["logits"]
        if not torch.isfinite(logits).all():
            raise RuntimeError(f"{folder}: non-finite logits on the {name} run")
        if name == "text" or text is None:
            used = {l: int((record[f"layers.{l}.load"] > 0).sum())
                    for l in range(cfg.num_layers) if cfg.moe_layers[l]}
            extra = coverage(model, record)
    prompt = runs.get("text", runs["long"][:, :16])
    gen = model.greedy_generate(prompt, 8)
    if not torch.isfinite(gen["step_logits"]).all():
        raise RuntimeError(f"{folder}: non-finite logits during generation")
    tokens = runs.get("text", runs["long"]).shape[1]
    return (f"{tokens} text tokens: experts used per MoE layer "
            + ", ".join(f"L{l} {n}/{cfg.num_experts}" for l, n in used.items())
            + extra + "; 160-token run and 8 greedy steps finite")


def coverage(model, record):
    """olmoe: q/k/v values clamped by clip_qkv; dots1: rows whose selected set the bias changes."""
    cfg = model.config
    if cfg.clip_qkv is not None:
        q, k, v = (sum(c[i] for c in record["_clipped"]) for i in range(3))
        return f"; clip_qkv clamped q/k/v {q}/{k}/{v} values"
    if cfg.selection_bias:
        changed, rows = 0, 0
        for layer in range(cfg.num_layers):
            if not cfg.moe_layers[layer]:
                continue
            logits = record[f"layers.{layer}.gate_logits"]
            biased = torch.sort(record[f"layers.{layer}.topk_indices"], -1)[0]
            plain = torch.sort(route_sigmoid_grouped(logits, None, cfg.num_experts_per_tok, cfg.n_group,
                                                     cfg.topk_group, cfg.renormalize, cfg.renorm_eps)[4], -1)[0]
            changed += int((biased != plain).any(-1).sum())
            rows += logits.shape[0]
        return f"; e_score_correction_bias changes the selection of {changed}/{rows} rows"
    return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("families", nargs="*", help="families (default: all)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default tests/fixtures/families_e2e)")
    parser.add_argument("--no-check", action="store_true", help="skip the reference run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    selected = [m for m in models() if not args.families or m[0] in args.families]
    unknown = set(args.families) - {m[0] for m in selected}
    if unknown:
        sys.exit(f"unknown families: {sorted(unknown)}")
    for family, seed, config in selected:
        FamilyConfig(config)  # validate before writing
        folder = os.path.join(args.out, family)
        total = write_model(folder, config, model_weights(config, seed))
        if total > SIZE_LIMIT:
            sys.exit(f"{family}: {total} bytes exceeds {SIZE_LIMIT}")
        line = f"{family:11s} seed {seed}, {total / 1024:6.1f} KiB"
        if not args.no_check:
            line += "; " + check_model(folder)
        print(line)


if __name__ == "__main__":
    main()
