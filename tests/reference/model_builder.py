"""Shared helpers for writing small random LLaMA-MoE / LLaMA model folders: full config
dicts (every LlamaMoEConfig / LlamaConfig key, as save_pretrained writes them), seeded random
weights scaled so activations stay O(1), and the checkpoint writers (single safetensors,
sharded safetensors, sharded torch .bin)."""

import collections
import json
import os

import numpy as np

import safetensors_io
from llama_moe_reference import ModelConfig

# Every LlamaMoEConfig argument with upstream's repo default, plus what save_pretrained adds.
MOE_CONFIG_DEFAULTS = {
    "add_weight_norm": False,
    "architectures": ["LlamaMoEForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_llama_moe.LlamaMoEConfig",
        "AutoModel": "modeling_llama_moe_hf.LlamaMoEModel",
        "AutoModelForCausalLM": "modeling_llama_moe_hf.LlamaMoEForCausalLM",
    },
    "bos_token_id": 1,
    "calculator_type": "UniversalCalculator",
    "capacity_factor": 1.25,
    "drop_tokens": True,
    "dropped_padding": "zero",
    "eos_token_id": 2,
    "gate_add_noise": True,
    "gate_balance_loss_weight": 0.01,
    "gate_network": "mlp",
    "gate_noise_epsilon": 0.01,
    "gate_type": "TopKBalancedNoisyGate",
    "gate_use_balance": True,
    "gate_use_softmax": True,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "max_position_embeddings": 64,
    "model_type": "llama_moe",
    "multiply_gate_scores": True,
    "num_attention_heads": 4,
    "num_experts": 8,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "num_selects": 2,
    "pad_token_id": 0,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "score_scale_factor": 1.0,
    "size_experts": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.36.2",
    "use_cache": True,
    "vocab_size": 257,
}

# A transformers 4.36 LlamaConfig as save_pretrained writes it.
LLAMA_CONFIG_DEFAULTS = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "max_position_embeddings": 64,
    "model_type": "llama",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.36.2",
    "use_cache": True,
    "vocab_size": 257,
}


def moe_config(**overrides):
    """Full LlamaMoEConfig dict with overrides applied (unknown keys are added)."""
    config = json.loads(json.dumps(MOE_CONFIG_DEFAULTS))
    config.update(overrides)
    return config


def llama_config(**overrides):
    """Full LlamaConfig dict with overrides applied."""
    config = json.loads(json.dumps(LLAMA_CONFIG_DEFAULTS))
    config.update(overrides)
    return config


# ---- random weights ---------------------------------------------------------------------------


def _normal(rng, shape, std):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def random_weights(config, rng, with_inv_freq=True):
    """Seeded random state dict {name: float32 array} for config (a dict). Scales: embeddings
    N(0,1), norm weights 1 + N(0, 0.1), projections c / sqrt(fan_in) with c ~ 0.6-1.2."""
    cfg = ModelConfig(config)
    prefix = cfg.body_prefix
    h = cfg.hidden_size
    w = {prefix + "embed_tokens.weight": _normal(rng, (cfg.vocab_size, h), 1.0)}
    for layer in range(cfg.num_layers):
        p = f"{prefix}layers.{layer}."
        w.update(_attention_weights(cfg, rng, p, with_inv_freq))
        w[p + "input_layernorm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
        w[p + "post_attention_layernorm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
        if cfg.is_moe:
            w.update(_moe_weights(cfg, rng, p + "mlp.", layer, config.get("gate_add_noise", True)))
        else:
            w.update(_dense_mlp_weights(cfg, rng, p + "mlp."))
    w[prefix + "norm.weight"] = 1.0 + _normal(rng, (h,), 0.1)
    w.update(_head_weights(cfg, rng))
    return w


def _attention_weights(cfg, rng, p, with_inv_freq):
    h, d = cfg.hidden_size, cfg.head_dim
    w = {
        p + "self_attn.q_proj.weight": _normal(rng, (cfg.num_heads * d, h), 1.2 / np.sqrt(h)),
        p + "self_attn.k_proj.weight": _normal(rng, (cfg.num_kv_heads * d, h), 1.2 / np.sqrt(h)),
        p + "self_attn.v_proj.weight": _normal(rng, (cfg.num_kv_heads * d, h), 0.64 / np.sqrt(h)),
        p + "self_attn.o_proj.weight": _normal(rng, (h, cfg.num_heads * d), 0.64 / np.sqrt(cfg.num_heads * d)),
    }
    if with_inv_freq:  # persistent buffer in upstream checkpoints; loaders must ignore it
        inv = 1.0 / (cfg.rope_theta ** (np.arange(0, d, 2, dtype=np.float32) / d))
        w[p + "self_attn.rotary_emb.inv_freq"] = inv.astype(np.float32)
    return w


def _moe_weights(cfg, rng, p, layer, add_noise):
    h, e_count = cfg.hidden_size, cfg.num_experts
    w = {}
    if cfg.gate_network == "mlp":
        w[p + "gate.gate_network.0.weight"] = _normal(rng, (e_count, h), 1.2 / np.sqrt(h))
        w[p + "gate.gate_network.2.weight"] = _normal(rng, (e_count, e_count), 1.3 / np.sqrt(e_count))
    else:
        w[p + "gate.gate_network.weight"] = _normal(rng, (e_count, h), 1.0 / np.sqrt(h))
    if add_noise:
        w[p + "gate.weight_noise.weight"] = _normal(rng, (e_count, h), 0.02)
    for e, size in enumerate(cfg.size_experts[layer]):
        q = p + "calculator.experts."
        w[q + f"weight_gate.{e}"] = _normal(rng, (size, h), 1.0 / np.sqrt(h))
        w[q + f"weight_up.{e}"] = _normal(rng, (size, h), 1.0 / np.sqrt(h))
        w[q + f"weight_down.{e}"] = _normal(rng, (h, size), 0.7 / np.sqrt(size))
    return w


def _dense_mlp_weights(cfg, rng, p):
    h, i = cfg.hidden_size, cfg.intermediate_size
    return {
        p + "gate_proj.weight": _normal(rng, (i, h), 1.0 / np.sqrt(h)),
        p + "up_proj.weight": _normal(rng, (i, h), 1.0 / np.sqrt(h)),
        p + "down_proj.weight": _normal(rng, (h, i), 1.0 / np.sqrt(i)),
    }


def _head_weights(cfg, rng):
    """lm_head (unless tied), score (sequence classification) or qa_outputs (QA)."""
    h = cfg.hidden_size
    arch = cfg.architecture
    if arch.endswith("ForSequenceClassification"):
        return {"score.weight": _normal(rng, (cfg.num_labels, h), 1.0 / np.sqrt(h))}
    if arch.endswith("ForQuestionAnswering"):
        return {"qa_outputs.weight": _normal(rng, (2, h), 1.0 / np.sqrt(h)),
                "qa_outputs.bias": _normal(rng, (2,), 0.1)}
    if cfg.tie_word_embeddings:
        return {}
    return {"lm_head.weight": _normal(rng, (cfg.vocab_size, h), 0.64 / np.sqrt(h))}


# ---- writers ------------------------------------------------------------------------------------


def write_json(path, obj):
    """Sorted, indent-2 JSON with a trailing newline (the save_pretrained layout)."""
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_safetensors_model(folder, weights, bf16=False):
    """model.safetensors (F32, or BF16 when bf16)."""
    tensors = {n: safetensors_io.BF16(v) if bf16 else v for n, v in weights.items()}
    safetensors_io.save(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})


def shard_split(weights):
    """Two shards: embeddings + first half of the layers, then the rest (norm, heads)."""
    names = sorted(weights, key=_layer_order)
    half = len(names) // 2
    return [names[:half], names[half:]]


def _layer_order(name):
    """Sort key: embeddings, layers by index, then everything else."""
    parts = name.split(".")
    if "layers" in parts:
        return (1, int(parts[parts.index("layers") + 1]), name)
    return (0 if "embed_tokens" in name else 2, 0, name)


def write_sharded_safetensors(folder, weights, bf16=False):
    """model-0000k-of-0000n.safetensors shards + model.safetensors.index.json."""
    shards = shard_split(weights)
    weight_map, total = {}, 0
    for k, names in enumerate(shards, 1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        tensors = {n: safetensors_io.BF16(weights[n]) if bf16 else weights[n] for n in names}
        safetensors_io.save(os.path.join(folder, file), tensors, {"format": "pt"})
        for n in names:
            weight_map[n] = file
            total += weights[n].size * (2 if bf16 else weights[n].itemsize)
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})


def write_sharded_bin(folder, weights):
    """pytorch_model-0000k-of-0000n.bin shards (torch.save zip format, OrderedDict of BF16
    tensors, as the released base checkpoints) + pytorch_model.bin.index.json."""
    import torch

    shards = shard_split(weights)
    weight_map, total = {}, 0
    for k, names in enumerate(shards, 1):
        file = f"pytorch_model-{k:05d}-of-{len(shards):05d}.bin"
        state = collections.OrderedDict()
        for n in names:
            bits = safetensors_io.f32_to_bf16_bits(weights[n]).view(np.int16)
            state[n] = torch.from_numpy(bits.copy()).view(torch.bfloat16)
            weight_map[n] = file
            total += weights[n].size * 2
        torch.save(state, os.path.join(folder, file))
    write_json(os.path.join(folder, "pytorch_model.bin.index.json"),
               {"metadata": {"total_size": total}, "weight_map": weight_map})
