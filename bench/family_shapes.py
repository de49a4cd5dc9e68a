"""Benchmark shapes of the MoE families beyond LLaMA-MoE: about the size of shape S (8 layers,
hidden 1024, vocab 32000, 16 query heads of 64), each family's own router, expert count and top-k
scaled down (bench/README.md has the table).

Configs are the fixtures' (tests/reference/make_family_fixtures.py: every key of the family's
transformers configuration class) with the overrides below, and the weights are its random_weights
(the family's own checkpoint names; embeddings N(0, 1), norms 1 + N(0, 0.1), projections
c / sqrt(fan_in), routers 2 / sqrt(H)), so nothing here knows a family's tensor names.
"""

import math
import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
import make_family_fixtures as fixtures  # noqa: E402

FAMILIES = ("mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "granitemoe", "dots1")

# What every family shape shares with shape S. The special ids are LLaMA-2's tokenizer's (the
# tokenizer.model copied into the folder, as for S).
COMMON = {"vocab_size": 32000, "hidden_size": 1024, "num_hidden_layers": 8, "num_attention_heads": 16,
          "max_position_embeddings": 2048, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

# Per family: (config builder, overrides). Expert counts and top-k keep each family's character
# (Mixtral few wide experts; OLMoE/Qwen3 many narrow ones) with about 2816-4096 routed
# intermediate width per layer, as S's 8 x 352.
SHAPES = {
    "mixtral": (fixtures.mixtral_config, {
        "num_key_value_heads": 4, "intermediate_size": 352, "num_local_experts": 8,
        "num_experts_per_tok": 2, "sliding_window": None}),
    "olmoe": (fixtures.olmoe_config, {
        "num_key_value_heads": 16, "intermediate_size": 64, "num_experts": 64, "num_experts_per_tok": 8,
        "norm_topk_prob": False, "clip_qkv": None}),
    "qwen2_moe": (fixtures.qwen2_moe_config, {
        "num_key_value_heads": 16, "intermediate_size": 2816, "moe_intermediate_size": 176,
        "shared_expert_intermediate_size": 704, "num_experts": 16, "num_experts_per_tok": 4,
        "norm_topk_prob": False, "mlp_only_layers": [], "max_window_layers": 8}),
    "qwen3_moe": (fixtures.qwen3_moe_config, {
        "num_key_value_heads": 4, "head_dim": 64, "intermediate_size": 2816, "moe_intermediate_size": 64,
        "num_experts": 64, "num_experts_per_tok": 8, "norm_topk_prob": True, "mlp_only_layers": [],
        "max_window_layers": 8}),
    "granitemoe": (fixtures.granitemoe_config, {
        "num_key_value_heads": 8, "intermediate_size": 128, "num_local_experts": 32,
        "num_experts_per_tok": 8, "embedding_multiplier": 12.0, "logits_scaling": 6.0,
        "residual_multiplier": 0.22, "attention_multiplier": 0.015625, "tie_word_embeddings": True}),
    "dots1": (fixtures.dots1_config, {
        "num_key_value_heads": 4, "intermediate_size": 2816, "moe_intermediate_size": 128,
        "n_routed_experts": 32, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
        "n_shared_experts": 1, "first_k_dense_replace": 1, "routed_scaling_factor": 2.5}),
}


def family_config(family, dtype="f32"):
    """config.json of a family's benchmark shape."""
    builder, overrides = SHAPES[family]
    return builder(**COMMON, **overrides, torch_dtype="bfloat16" if dtype == "bf16" else "float32")


def family_weights(family, seed):
    """Seeded float32 weights {name: array} under the family's checkpoint names."""
    return fixtures.random_weights(family_config(family), np.random.default_rng(seed))


def parameter_count(weights):
    return sum(math.prod(v.shape) for v in weights.values())


def check_finite(folder, tokens=32):
    """A forward of `tokens` random ids through the written folder with the family reference
    (float32): raises unless every logit is finite; returns (max |logit|, experts used per MoE
    layer)."""
    import torch

    from family_reference import FamilyReference

    model = FamilyReference.from_dir(folder)
    cfg = model.config
    ids = torch.tensor(np.random.default_rng(0).integers(3, cfg.vocab_size, size=(1, tokens)))
    record = {}
    with torch.inference_mode():
        logits = model.forward(ids, record=record)["logits"]
    if not torch.isfinite(logits).all():
        raise RuntimeError(f"{folder}: non-finite logits from the family reference")
    used = [int((record[f"layers.{l}.load"] > 0).sum()) for l in range(cfg.num_layers) if cfg.moe_layers[l]]
    return float(logits.abs().max()), used
