"""Regenerate the MoE-family cases under tests/fixtures/ (Mixtral, OLMoE, Qwen2-MoE, Qwen3-MoE,
Granite-MoE, dots1) from fixed seeds with tests/reference/family_reference.py.

Usage: /usr/bin/python3 tests/reference/make_family_fixtures.py [--out tests/fixtures] [CASE ...]

Each case folder has the golden layout (tests/golden/README.md): config.json with the family's own
keys (every argument of its transformers 4.5x configuration class), weights under the family's own
checkpoint names, inputs.json, expected.safetensors and README.md. Weights and inputs come from
numpy's PCG64 with a per-case seed; a draw is rejected (seed + 1) until, for every routed row of the
forward pass (and, for generation, of the no-cache pass over the whole sequence):
  - the k-th and (k+1)-th selection keys differ by >= MIN_MARGIN (softmax probability for
    Mixtral/OLMoE/Qwen, logit for Granite, bias-corrected sigmoid score among the eligible
    experts for dots1),
  - consecutive combine weights inside the top-k differ by >= MIN_MARGIN,
  - dots1: the topk_group-th and next group scores differ by >= MIN_MARGIN, and the k-th selected
    key is >= MIN_MARGIN (so upstream's 0.0 masking of discarded groups selects the same experts),
  - greedy steps: best and second-best logit differ by >= MIN_MARGIN,
plus per-case coverage conditions (clip_qkv clamps q, k and v; the dots1 bias changes some
selections).
"""

import argparse
import collections
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402
import safetensors_io  # noqa: E402
from family_reference import (FamilyConfig, FamilyReference, expected_tensors, grouped_selection,  # noqa: E402
                              route_sigmoid_grouped)
from make_fixtures import _name_order, generation_inputs, plain_inputs, right_padded_inputs, write_inputs  # noqa: E402

MIN_MARGIN = 1e-3
MAX_ATTEMPTS = 2000
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures")
TRANSFORMERS_VERSION = "4.53.0"  # nominal: the 4.5x configuration classes these key sets follow

# --------------------------------------------------------------------------------------------
# Configs: every __init__ argument of the family's transformers 4.5x configuration class, plus
# what save_pretrained adds (architectures, model_type, torch_dtype, transformers_version).
# --------------------------------------------------------------------------------------------

COMMON = {
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "use_cache": True,
    "torch_dtype": "float32",
    "transformers_version": TRANSFORMERS_VERSION,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "vocab_size": 301,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
}


def _config(base, overrides):
    config = json.loads(json.dumps(COMMON))
    config.update(base)
    config.update(overrides)
    return config


def mixtral_config(**o):
    """MixtralConfig (configuration_mixtral.py)."""
    return _config({
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "intermediate_size": 32, "num_hidden_layers": 2, "head_dim": None, "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0, "sliding_window": None, "num_experts_per_tok": 2, "num_local_experts": 8,
        "output_router_logits": False, "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0,
    }, o)


def olmoe_config(**o):
    """OlmoeConfig (configuration_olmoe.py)."""
    return _config({
        "architectures": ["OlmoeForCausalLM"], "model_type": "olmoe",
        "intermediate_size": 24, "num_hidden_layers": 2, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
        "rope_scaling": None, "attention_bias": False, "clip_qkv": None, "num_experts_per_tok": 4,
        "num_experts": 16, "output_router_logits": False, "router_aux_loss_coef": 0.01, "norm_topk_prob": False,
    }, o)


def qwen2_moe_config(**o):
    """Qwen2MoeConfig (configuration_qwen2_moe.py)."""
    return _config({
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "intermediate_size": 128, "num_hidden_layers": 3, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "rope_scaling": None, "use_sliding_window": False, "sliding_window": None, "max_window_layers": 3,
        "decoder_sparse_step": 1, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64,
        "num_experts_per_tok": 2, "num_experts": 8, "norm_topk_prob": False, "output_router_logits": False,
        "router_aux_loss_coef": 0.001, "mlp_only_layers": [], "qkv_bias": True,
    }, o)


def qwen3_moe_config(**o):
    """Qwen3MoeConfig (configuration_qwen3_moe.py)."""
    return _config({
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "intermediate_size": 96, "num_hidden_layers": 3, "head_dim": 24, "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0, "rope_scaling": None, "attention_bias": False, "use_sliding_window": False,
        "sliding_window": None, "max_window_layers": 3, "decoder_sparse_step": 1, "moe_intermediate_size": 16,
        "num_experts_per_tok": 4, "num_experts": 16, "norm_topk_prob": True, "output_router_logits": False,
        "router_aux_loss_coef": 0.001, "mlp_only_layers": [0],
    }, o)


def granitemoe_config(**o):
    """GraniteMoeConfig (configuration_granitemoe.py)."""
    return _config({
        "architectures": ["GraniteMoeForCausalLM"], "model_type": "granitemoe",
        "intermediate_size": 32, "num_hidden_layers": 2, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
        "rope_scaling": None, "attention_bias": False, "embedding_multiplier": 12.0, "logits_scaling": 8.0,
        "residual_multiplier": 0.22, "attention_multiplier": 0.015625, "num_local_experts": 8,
        "num_experts_per_tok": 2, "output_router_logits": False, "router_aux_loss_coef": 0.001,
        "tie_word_embeddings": True,
    }, o)


def dots1_config(**o):
    """Dots1Config (configuration_dots1.py, 4.5x: rope_theta/rope_scaling, sliding_window,
    max_window_layers, layer_types)."""
    layers = o.get("num_hidden_layers", 3)
    return _config({
        "architectures": ["Dots1ForCausalLM"], "model_type": "dots1",
        "intermediate_size": 96, "moe_intermediate_size": 16, "num_hidden_layers": layers,
        "n_shared_experts": 1, "n_routed_experts": 16, "n_group": 4, "topk_group": 2, "num_experts_per_tok": 4,
        "first_k_dense_replace": 1, "norm_topk_prob": True, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
        "rope_scaling": None, "attention_bias": False, "routed_scaling_factor": 2.5, "sliding_window": None,
        "max_window_layers": layers, "layer_types": ["full_attention"] * layers,
    }, o)


# --------------------------------------------------------------------------------------------
# Random weights under each family's checkpoint names
# --------------------------------------------------------------------------------------------


def _normal(rng, shape, std):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def _swiglu_weights(rng, p, h, f, names=("gate_proj", "up_proj", "down_proj")):
    g, u, d = names
    return {p + g + ".weight": _normal(rng, (f, h), 1.0 / np.sqrt(h)),
            p + u + ".weight": _normal(rng, (f, h), 1.0 / np.sqrt(h)),
            p + d + ".weight": _normal(rng, (h, f), 0.7 / np.sqrt(f))}


def random_weights(config, rng, router_std=2.0, bias_std=0.1):
    """Seeded random state dict {name: float32 array}: embeddings N(0,1), norm weights 1 + N(0, 0.1),
    projections c / sqrt(fan_in), routers router_std / sqrt(H) (spread logits keep routing margins
    large), dots1 e_score_correction_bias N(0, bias_std)."""
    cfg = FamilyConfig(config)
    mt, h, d = cfg.model_type, cfg.hidden_size, cfg.head_dim
    nq, nkv, e_count = cfg.num_heads * d, cfg.num_kv_heads * d, cfg.num_experts
    w = {"model.embed_tokens.weight": _normal(rng, (cfg.vocab_size, h), 1.0)}
    for layer in range(cfg.num_layers):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        w[a + "q_proj.weight"] = _normal(rng, (nq, h), 1.2 / np.sqrt(h))
        w[a + "k_proj.weight"] = _normal(rng, (nkv, h), 1.2 / np.sqrt(h))
        w[a + "v_proj.weight"] = _normal(rng, (nkv, h), 0.64 / np.sqrt(h))
        w[a + "o_proj.weight"] = _normal(rng, (h, nq), 0.64 / np.sqrt(nq))
        if cfg.qkv_bias:
            for proj, width in (("q_proj", nq), ("k_proj", nkv), ("v_proj", nkv)):
                w[a + proj + ".bias"] = _normal(rng, (width,), 0.2)
        if cfg.o_bias:
            w[a + "o_proj.bias"] = _normal(rng, (h,), 0.1)
        if cfg.qk_norm == "full_width":
            w[a + "q_norm.weight"] = 1.0 + _normal(rng, (nq,), 0.1)
            w[a + "k_norm.weight"] = 1.0 + _normal(rng, (nkv,), 0.1)
        elif cfg.qk_norm == "per_head":
            w[a + "q_norm.weight"] = 1.0 + _normal(rng, (d,), 0.1)
            w[a + "k_norm.weight"] = 1.0 + _normal(rng, (d,), 0.1)
        w[p + "input_layernorm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
        w[p + "post_attention_layernorm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
        if not cfg.moe_layers[layer]:
            w.update(_swiglu_weights(rng, p + "mlp.", h, cfg.dense_width))
            continue
        f = cfg.expert_width
        router = _normal(rng, (e_count, h), router_std / np.sqrt(h))
        if mt == "mixtral":
            w[p + "block_sparse_moe.gate.weight"] = router
            for e in range(e_count):
                w.update(_swiglu_weights(rng, p + f"block_sparse_moe.experts.{e}.", h, f, ("w1", "w3", "w2")))
        elif mt == "granitemoe":
            w[p + "block_sparse_moe.router.layer.weight"] = router
            w[p + "block_sparse_moe.input_linear.weight"] = _normal(rng, (e_count, 2 * f, h), 1.0 / np.sqrt(h))
            w[p + "block_sparse_moe.output_linear.weight"] = _normal(rng, (e_count, h, f), 0.7 / np.sqrt(f))
        else:
            w[p + "mlp.gate.weight"] = router
            for e in range(e_count):
                w.update(_swiglu_weights(rng, p + f"mlp.experts.{e}.", h, f))
            if mt == "dots1":
                w[p + "mlp.gate.e_score_correction_bias"] = _normal(rng, (e_count,), bias_std)
        if cfg.shared == "gated":
            w.update(_swiglu_weights(rng, p + "mlp.shared_expert.", h, cfg.shared_width))
            w[p + "mlp.shared_expert_gate.weight"] = _normal(rng, (1, h), 1.0 / np.sqrt(h))
        elif cfg.shared == "ungated":
            w.update(_swiglu_weights(rng, p + "mlp.shared_experts.", h, cfg.shared_width))
    w["model.norm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
    if not cfg.tie_word_embeddings:
        w["lm_head.weight"] = _normal(rng, (cfg.vocab_size, h), 0.64 / np.sqrt(h))
    return w


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


class Case:
    def __init__(self, name, seed, config, make_inputs, covers, storage="safetensors", require=None,
                 weight_kwargs=None):
        self.name = name
        self.seed = seed
        self.config = config
        self.make_inputs = make_inputs
        self.covers = covers
        self.storage = storage  # safetensors | sharded_safetensors | bin
        self.require = require  # extra acceptance test on the stats dict
        self.weight_kwargs = weight_kwargs or {}


def cases():
    return [
        Case("mixtral_window", 20000, mixtral_config(sliding_window=5),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type mixtral (MixtralForCausalLM): router `block_sparse_moe.gate`, softmax over all 8 "
              "experts in float32, top-2, always renormalized; experts `block_sparse_moe.experts.{e}.w1/w3/w2` "
              "(w1 = gate, w3 = up, w2 = down)",
              "sliding_window 5 on every layer with 12 tokens: query i sees keys j with i - 5 < j <= i "
              "(absolute positions), so the window is active from position 5 on",
              "4 query heads / 2 KV heads (head_dim 16), rope_theta 1e6, untied lm_head"],
             ),
        Case("llama_moe_v2_scale", 20500, mixtral_config(scale_factor=4.0, num_moe_contract_layers=0,
                                                         moe_type="modulelist"),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["LLaMA-MoE-v2 in the Mixtral architecture: the Mixtral router (softmax over all 8, top-2, "
              "renormalized) with LLaMA-MoE-v2's scale_factor 4.0 multiplying every combine weight "
              "(topk_scores are before the factor)",
              "num_moe_contract_layers 0 and moe_type modulelist: the only values the engine accepts"]),
        Case("mixtral_generation", 21000, mixtral_config(sliding_window=6),
             lambda r, c: generation_inputs(r, c, 8, 10),
             ["greedy decoding of 10 new tokens from an 8-token prompt through the KV cache with "
              "sliding_window 6: the cache keeps every key, the mask hides keys at or before i - 6",
              "expected adds step_logits [1, 10, V], generated_ids [1, 10], sequence_ids [1, 18] and "
              "full_logits [1, 17, V] (one forward without cache over sequence_ids[:, :-1], window applied); "
              "per-layer tensors are those of the prefill",
              "Mixtral router (softmax over 8, top-2, renormalized), 4 query / 2 KV heads, rope_theta 1e6"]),
        Case("olmoe_clip", 22000, olmoe_config(clip_qkv=1.2),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type olmoe: q_norm over the full q projection [nh*d = 64] and k_norm over the full k "
              "projection [nkv*d = 32] (self_attn.q_norm.weight / k_norm.weight) before RoPE",
              "clip_qkv 1.2 clamps q and k after the norms and v after its projection, before RoPE "
              "(OlmoeAttention.forward); the clamp counts are listed below",
              "router mlp.gate, softmax over 16, top-4, norm_topk_prob false (weights are the raw "
              "probabilities); experts mlp.experts.{e}.gate_proj/up_proj/down_proj",
              "weights as two safetensors shards + model.safetensors.index.json",
              "4 query / 2 KV heads"],
             storage="sharded_safetensors", require=lambda s: all(n > 0 for n in s["clipped"])),
        Case("olmoe_norm_bin", 23000, olmoe_config(norm_topk_prob=True),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type olmoe with norm_topk_prob true (top-4 of 16 renormalized), clip_qkv null",
              "weights in a single pytorch_model.bin (torch.save zip format, OrderedDict of float32 tensors)",
              "full-width q/k norm, 4 query / 2 KV heads"],
             storage="bin"),
        Case("qwen2_moe_shared", 24000, qwen2_moe_config(mlp_only_layers=[1]),
             lambda r, c: right_padded_inputs(r, c, [12, 7]),
             ["model_type qwen2_moe: q/k/v biases, no o_proj bias",
              "3 layers, decoder_sparse_step 1, mlp_only_layers [1]: layers 0 and 2 MoE, layer 1 dense "
              "(mlp.gate_proj/up_proj/down_proj, intermediate_size 128; no routing tensors)",
              "MoE layers: router mlp.gate, softmax over 8, top-2, norm_topk_prob false; experts "
              "mlp.experts.{e}.* of moe_intermediate_size 32; shared expert mlp.shared_expert.* of "
              "shared_expert_intermediate_size 64 times sigmoid(mlp.shared_expert_gate(u)) ([1, 64] weight)",
              "expected adds layers.{l}.shared_out [B, S, H] (gated shared output as added to moe_out) and "
              "layers.{l}.shared_gate [T, 1] for the MoE layers",
              "right-padded batch of 2 (lengths 12 and 7, pad id 0): padding rows are routed and counted in "
              "load/importance; load_real_tokens/importance_real_tokens count real rows only",
              "4 query / 2 KV heads"]),
        Case("qwen2_moe_sparse_step", 25000,
             qwen2_moe_config(num_hidden_layers=4, decoder_sparse_step=2, norm_topk_prob=True, max_window_layers=4,
                              intermediate_size=64, moe_intermediate_size=24),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type qwen2_moe, 4 layers, decoder_sparse_step 2, mlp_only_layers []: layer l is MoE iff "
              "(l + 1) % 2 == 0, so layers 1 and 3 are MoE and layers 0 and 2 dense",
              "norm_topk_prob true (top-2 of 8 renormalized), shared expert with sigmoid gate, q/k/v biases",
              "dense width (intermediate_size) 64, expert width (moe_intermediate_size) 24, shared width 64"]),
        Case("qwen3_moe", 26000, qwen3_moe_config(),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type qwen3_moe: explicit head_dim 24 with hidden 64, 4 query / 2 KV heads, so "
              "q_proj is [96, 64], k_proj/v_proj [48, 64], o_proj [64, 96] (nh*d = 96 != 64)",
              "per-head q/k RMSNorm (self_attn.q_norm.weight / k_norm.weight [24], shared by all heads) "
              "before RoPE; attention scale 24^-0.5",
              "mlp_only_layers [0]: layer 0 dense (intermediate_size 96), layers 1 and 2 MoE",
              "router softmax over 16, top-4, norm_topk_prob true; no shared expert"]),
        Case("granitemoe", 27000, granitemoe_config(),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["model_type granitemoe: embeddings x embedding_multiplier 12.0 (the `embeddings` tensor is the "
              "scaled stream), h = h + 0.22 * attn_out and h = h + 0.22 * moe_out (residual_multiplier; "
              "attn_out/moe_out are recorded before it), attention scores x attention_multiplier 0.015625 "
              "instead of 1/sqrt(16), logits / logits_scaling 8.0 (`logits` after the division)",
              "tie_word_embeddings true: no lm_head.weight",
              "router block_sparse_moe.router.layer.weight [8, 64]: top-2 of the logits, softmax over the 2",
              "fused experts: block_sparse_moe.input_linear.weight [8, 64, 64] (rows 0..31 gate, rows 32..63 "
              "up) and block_sparse_moe.output_linear.weight [8, 64, 32]",
              "4 query / 2 KV heads"]),
        Case("dots1_router", 28000, dots1_config(),
             lambda r, c: plain_inputs(r, c, 1, 16),
             ["model_type dots1 (Dots1ForCausalLM): Qwen3-style attention with per-head q/k norm [16], "
              "4 query / 2 KV heads",
              "DeepSeek-V3 router: z = mlp.gate.weight u in float32, s = sigmoid(z), selection key "
              "c = s + mlp.gate.e_score_correction_bias; 4 contiguous groups of 4 experts, group score = sum "
              "of the group's two largest c, keep the best topk_group 2 groups, top-4 of c among their 8 "
              "experts; weights = unbiased s of the selected / (sum + 1e-20) (norm_topk_prob true), "
              "x routed_scaling_factor 2.5 in the combination (topk_scores are before the factor)",
              "n_shared_experts 1: ungated mlp.shared_experts.* of width 16; expected adds "
              "layers.{l}.shared_out (no shared_gate)",
              "first_k_dense_replace 1: layer 0 dense (intermediate_size 96), layers 1 and 2 MoE",
              "nonzero e_score_correction_bias that changes the selected set for some tokens (counted below)"],
             require=lambda s: s["bias_changed"] > 0),
    ]


# --------------------------------------------------------------------------------------------
# Margins and coverage statistics
# --------------------------------------------------------------------------------------------


def routing_stats(model, inputs, expected):
    """Routing margins over the forward pass (and, for generation, the no-cache pass over the whole
    sequence), clip counts (olmoe) and bias effect (dots1)."""
    cfg = model.config
    passes = []
    record = {}
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    model.forward(ids, mask, record=record)
    passes.append(record)
    if "sequence_ids" in expected:
        full = {}
        model.forward(torch.from_numpy(expected["sequence_ids"][:, :-1]).long(), record=full)
        passes.append(full)
    k = cfg.num_experts_per_tok
    stats = {"topk_gap": float("inf"), "inner_gap": float("inf"), "group_gap": float("inf"),
             "kth_key": float("inf"), "bias_changed": 0, "zero_mask_differs": 0, "rows": 0,
             "clipped": [0, 0, 0], "clip_total": [0, 0, 0]}
    for rec in passes:
        for layer in range(cfg.num_layers):
            if not cfg.moe_layers[layer]:
                continue
            rows = rec[f"layers.{layer}.moe_in"].reshape(-1, cfg.hidden_size)
            r = model.route(layer, rows)
            key = r["_key"].double()
            if cfg.router == "sigmoid_grouped":
                _, _, key = grouped_selection(key, k, cfg.n_group, cfg.topk_group)
                g = torch.sort(r["_group_scores"].double(), dim=-1, descending=True)[0]
                if cfg.topk_group < cfg.n_group:
                    stats["group_gap"] = min(stats["group_gap"], float((g[:, cfg.topk_group - 1] - g[:, cfg.topk_group]).min()))
                ordered = torch.sort(key, dim=-1, descending=True)[0]
                stats["kth_key"] = min(stats["kth_key"], float(ordered[:, k - 1].min()))
                # upstream masks discarded groups with 0.0 instead of -inf
                c = r["_key"]
                mine = torch.sort(r["_selection"], dim=-1)[0]
                theirs = torch.sort(grouped_selection(c, k, cfg.n_group, cfg.topk_group, 0.0)[0], dim=-1)[0]
                stats["zero_mask_differs"] += int((mine != theirs).any(-1).sum())
                unbiased = route_sigmoid_grouped(r["gate_logits"], None, k, cfg.n_group, cfg.topk_group,
                                                 cfg.renormalize, cfg.renorm_eps)[4]
                stats["bias_changed"] += int((torch.sort(unbiased, -1)[0] != mine).any(-1).sum()) \
                    if rec is passes[0] else 0
            else:
                ordered = torch.sort(key, dim=-1, descending=True)[0]
            if k < cfg.num_experts:
                stats["topk_gap"] = min(stats["topk_gap"], float((ordered[:, k - 1] - ordered[:, k]).min()))
            if k > 1:
                w = r["topk_scores"].double()
                stats["inner_gap"] = min(stats["inner_gap"], float((w[:, :-1] - w[:, 1:]).min()))
            stats["rows"] += rows.shape[0] if rec is passes[0] else 0
    for layer_counts in passes[0].get("_clipped", []):
        stats["clipped"] = [a + b for a, b in zip(stats["clipped"], layer_counts)]
    if cfg.clip_qkv is not None:
        t = int(ids.numel())
        stats["clip_total"] = [cfg.num_layers * t * n * cfg.head_dim
                               for n in (cfg.num_heads, cfg.num_kv_heads, cfg.num_kv_heads)]
    stats["unused"] = [(l, e) for l in range(cfg.num_layers) if cfg.moe_layers[l] for e in range(cfg.num_experts)
                       if expected[f"layers.{l}.load"][e] == 0]
    return stats


def argmax_margin(expected):
    if "step_logits" not in expected:
        return None
    top2 = -np.sort(-expected["step_logits"].astype(np.float64), axis=-1)[..., :2]
    return float((top2[..., 0] - top2[..., 1]).min())


def margins_ok(model, stats, greedy_gap):
    checks = [stats["topk_gap"], stats["inner_gap"]]
    if model.config.router == "sigmoid_grouped":
        checks += [stats["group_gap"], stats["kth_key"]]
        checks.append(MIN_MARGIN if stats["zero_mask_differs"] == 0 else 0.0)
    if greedy_gap is not None:
        checks.append(greedy_gap)
    return all(c >= MIN_MARGIN for c in checks)


def draw(case, seed):
    rng = np.random.default_rng(seed)
    weights = random_weights(case.config, rng, **case.weight_kwargs)
    inputs = case.make_inputs(rng, case.config)
    return weights, inputs


def find_stable_draw(case):
    for attempt in range(MAX_ATTEMPTS):
        seed = case.seed + attempt
        weights, inputs = draw(case, seed)
        model = FamilyReference(case.config, weights)
        expected = expected_tensors(model, inputs)
        stats = routing_stats(model, inputs, expected)
        greedy_gap = argmax_margin(expected)
        if margins_ok(model, stats, greedy_gap) and (case.require is None or case.require(stats)):
            return seed, attempt, weights, inputs, model, expected, stats, greedy_gap
    raise RuntimeError(f"{case.name}: no acceptable draw in {MAX_ATTEMPTS} seeds")


# --------------------------------------------------------------------------------------------
# Writing a case
# --------------------------------------------------------------------------------------------


def write_weights(case, folder, weights):
    if case.storage == "sharded_safetensors":
        mb.write_sharded_safetensors(folder, weights)
    elif case.storage == "bin":
        state = collections.OrderedDict((n, torch.from_numpy(weights[n].copy())) for n in sorted(weights))
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
    else:
        mb.write_safetensors_model(folder, weights)


def float64_diffs(case, weights, inputs, expected):
    ref64 = expected_tensors(FamilyReference(case.config, weights, torch.float64), inputs)
    groups, same_routing = {}, True
    for name, want in expected.items():
        if want.dtype.kind != "f":
            same_routing &= bool(np.array_equal(want, ref64[name]))
            continue
        group = "layers.*." + name.split(".", 2)[2] if name.startswith("layers.") else name
        diff = float(np.abs(want.astype(np.float64) - ref64[name].astype(np.float64)).max())
        groups[group] = max(groups.get(group, 0.0), diff)
    return groups, same_routing


def _fmt(x):
    return "n/a" if x == float("inf") else f"{x:.2e}"


def readme_text(case, seed, attempts, stats, greedy_gap, errors, same_routing, files, expected):
    cfg = FamilyConfig(case.config)
    c = case.config
    kinds = ", ".join(f"{l}: {'MoE' if m else 'dense'}" for l, m in enumerate(cfg.moe_layers))
    lines = [f"# Fixture `{case.name}`", "",
             "Generated by `tests/reference/make_family_fixtures.py` with the project's PyTorch reference "
             "(`tests/reference/family_reference.py`, float32); not produced by upstream code. File formats "
             "as in `tests/golden/README.md`; config keys and tensor names are the family's own "
             f"(`model_type: {c['model_type']}`, `architectures: {c['architectures']}`).", "",
             "## What it covers", ""]
    lines += [f"- {x}" for x in case.covers]
    lines += ["", "## Shape", "",
              f"{cfg.num_layers} layers ({kinds}), hidden {cfg.hidden_size}, {cfg.num_heads} heads / "
              f"{cfg.num_kv_heads} KV heads, head_dim {cfg.head_dim}, vocab {cfg.vocab_size}, "
              f"{cfg.num_experts} experts top-{cfg.num_experts_per_tok} of width {cfg.expert_width}"
              + (f", dense width {cfg.dense_width}" if not all(cfg.moe_layers) else "")
              + (f", shared width {cfg.shared_width}" if cfg.shared else "")
              + f"; input {list(expected['input_ids'].shape)}. numpy PCG64 seed {seed} "
              f"({attempts} earlier seeds rejected).", "",
              "## Routing margins", "",
              "Over every routed row (padding rows included) of the forward pass"
              + (" and of the no-cache pass over the whole generated sequence" if "sequence_ids" in expected else "")
              + ":", "",
              f"- smallest gap between the k-th and (k+1)-th selection key: {_fmt(stats['topk_gap'])} "
              f"(key: {_key_name(cfg)})",
              f"- smallest gap between consecutive combine weights inside a top-k: {_fmt(stats['inner_gap'])}"]
    if cfg.router == "sigmoid_grouped":
        lines += [f"- smallest gap between the group scores ranked {cfg.topk_group} and {cfg.topk_group + 1} "
                  f"(topk_group {cfg.topk_group} of n_group {cfg.n_group}): {_fmt(stats['group_gap'])}",
                  f"- smallest k-th selected key (c of the last selected expert): {_fmt(stats['kth_key'])}; rows "
                  f"where upstream's 0.0 masking of discarded groups would select differently: "
                  f"{stats['zero_mask_differs']}",
                  f"- rows of the forward pass whose selected set differs from the bias-free selection "
                  f"(same groups rule, zero bias): {stats['bias_changed']} of {stats['rows']}"]
    lines += [f"- experts that received no row (layer, expert): {stats['unused'] or 'none'}", ""]
    if cfg.clip_qkv is not None:
        q, k, v = stats["clipped"]
        tq, tk, tv = stats["clip_total"]
        lines += [f"clip_qkv {cfg.clip_qkv}: values clamped over all layers: q {q} of {tq}, k {k} of {tk}, "
                  f"v {v} of {tv}.", ""]
    if greedy_gap is not None:
        lines += [f"Smallest gap between the best and second-best logit at any greedy step: {greedy_gap:.2e}", ""]
    lines += ["## Tolerances", "",
              f"Max |float32 - float64| of the reference on the same weights (routing "
              f"{'identical' if same_routing else 'DIFFERENT'}):", "",
              "| tensor | max abs diff |", "|---|---|"]
    shown = ("logits", "final_hidden", "embeddings", "layers.*.hidden_out", "layers.*.attn_out", "layers.*.gate_logits",
             "layers.*.topk_scores", "layers.*.moe_out", "layers.*.shared_out", "layers.*.shared_gate",
             "step_logits", "full_logits")
    lines += [f"| {g} | {d:.2e} |" for g, d in sorted(errors.items()) if g in shown]
    lines += ["", "Suggested check: `|got - want| <= 1e-4 + 1e-4 * |want|` for float tensors, integer tensors "
              "exactly equal" + ("; compare per-position tensors on real tokens (attention_mask == 1)"
                                 if (expected["attention_mask"] == 0).any() else "") + ".", "",
              "## Files", "", "| file | bytes |", "|---|---|"]
    lines += [f"| {name} | {size} |" for name, size in files]
    lines += ["", "expected.safetensors holds:", "", "| name | dtype | shape |", "|---|---|---|"]
    lines += [f"| `{n}` | {'I32' if v.dtype == np.int32 else 'F32'} | {list(v.shape)} |"
              for n, v in sorted(expected.items(), key=lambda kv: _name_order(kv[0]))]
    return "\n".join(lines) + "\n"


def _key_name(cfg):
    return {"softmax_all": "softmax probability over all experts (float32)",
            "logits_softmax_k": "router logit",
            "sigmoid_grouped": "sigmoid score + e_score_correction_bias among the eligible groups"}[cfg.router]


def build_case(case, out_dir):
    seed, attempts, weights, inputs, model, expected, stats, greedy_gap = find_stable_draw(case)
    if "sequence_ids" in expected:
        inputs["generated_ids"] = expected["generated_ids"].tolist()
        inputs["sequence_ids"] = expected["sequence_ids"].tolist()
    folder = os.path.join(out_dir, case.name)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))
    mb.write_json(os.path.join(folder, "config.json"), case.config)
    write_weights(case, folder, weights)
    write_inputs(os.path.join(folder, "inputs.json"), inputs)
    safetensors_io.save(os.path.join(folder, "expected.safetensors"), expected,
                        {"format": "pt", "generator": "moescope tests/reference/make_family_fixtures.py",
                         "case": case.name})
    errors, same_routing = float64_diffs(case, weights, inputs, expected)
    files = [(f, os.path.getsize(os.path.join(folder, f))) for f in sorted(os.listdir(folder)) if f != "README.md"]
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(readme_text(case, seed, attempts, stats, greedy_gap, errors, same_routing, files, expected))
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    return seed, total, stats, errors, same_routing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default tests/fixtures)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    selected = [c for c in cases() if not args.cases or c.name in args.cases]
    unknown = set(args.cases) - {c.name for c in selected}
    if unknown:
        sys.exit(f"unknown cases: {sorted(unknown)}")
    for case in selected:
        seed, total, stats, errors, same = build_case(case, args.out)
        extra = ""
        if stats["clip_total"][0]:
            extra += f", clipped q/k/v {stats['clipped']}"
        if case.config["model_type"] == "dots1":
            extra += f", bias changed {stats['bias_changed']}/{stats['rows']} rows"
        print(f"{case.name:24s} seed {seed:6d}, {total / 1024:7.1f} KiB, top-k gap {_fmt(stats['topk_gap'])}, "
              f"inner {_fmt(stats['inner_gap'])}, f64 logits diff {errors.get('logits', 0):.1e}"
              f"{'' if same else ', ROUTING DIFFERS IN F64'}{extra}")


if __name__ == "__main__":
    main()
