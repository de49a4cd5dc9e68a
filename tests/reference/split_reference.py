#!/usr/bin/python3
"""Reference expert construction: dense LLaMA checkpoint -> LLaMA-MoE checkpoint by a random split
(docs/llama-moe-spec.md §5.1 "Independent_Random" and §5.3 "Convert"). The C++
`moescope split --method random` is tested against this file, so every random number comes from a
small portable generator that is easy to reproduce in C++:

SplitMix64 (Steele et al.; Vigna's reference code), 64-bit unsigned arithmetic mod 2^64:
    state  = seed * 0x9E3779B97F4A7C15 + (stream << 32) + layer
    next():  state += 0x9E3779B97F4A7C15; z = state
             z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
             z = (z ^ (z >> 27)) * 0x94D049BB133111EB
             return z ^ (z >> 31)
    uniform(): (next() >> 11) * 2^-53                                  in [0, 1)
    normal():  u1 = uniform(), u2 = uniform()                           (one value per two draws)
               sqrt(-2 ln(1 - u1)) * cos(2 pi u2)                       computed in double
Streams: 1 = neuron permutation, 2 = router gate_network.0, 3 = router gate_network.2.

Random split of layer l (I = intermediate_size, E experts, m = I / E):
    perm = [0, 1, ..., I-1]; for i = I-1 down to 1: j = next() % (i + 1); swap(perm[i], perm[j])
    expert e gets neurons sorted(perm[e*m : (e+1)*m])  (ascending original order, as upstream)
    weight_gate.e = gate_proj[neurons, :], weight_up.e = up_proj[neurons, :],
    weight_down.e = down_proj[:, neurons]
Router (gate_network "mlp"): gate_network.0.weight [E, H] and gate_network.2.weight [E, E] filled
row-major with 0.02 * normal() from streams 2 and 3 of the layer; gate.weight_noise.weight [E, H]
= 0 (upstream's converter); everything else copied unchanged. Config: model_type llama_moe,
num_experts E, num_selects K, size_experts [[m] * E] * L, score_scale_factor E / K unless given,
multiply_gate_scores, gate_add_noise true, balance loss weight 0.01, the dense fields copied.

Usage:
    /usr/bin/python3 tests/reference/split_reference.py DENSE_DIR OUT_DIR --experts 8 --top-k 2 [--seed 0]
        [--score-scale-factor SF] [--no-multiply-gate-scores] [--check]
--check also verifies that the split with K = E and multiply_gate_scores false reproduces the
dense logits (max abs difference printed) and that each layer's experts partition the neurons.
Writes OUT_DIR/split.json (method, seed, neuron lists per layer and expert) beside the model.
"""

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402
import safetensors_io  # noqa: E402

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
STREAM_PERMUTATION, STREAM_GATE0, STREAM_GATE2 = 1, 2, 3


class SplitMix64:
    def __init__(self, seed, stream, layer):
        self.state = (seed * GOLDEN + (stream << 32) + layer) & MASK64

    def next(self):
        self.state = (self.state + GOLDEN) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * (1.0 / (1 << 53))

    def normal(self):
        u1, u2 = self.uniform(), self.uniform()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


def permutation(n, seed, layer):
    rng = SplitMix64(seed, STREAM_PERMUTATION, layer)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def random_split(intermediate, experts, seed, layer):
    """Neuron index lists (ascending) of each expert of one layer."""
    if intermediate % experts:
        raise ValueError(f"{experts} experts do not divide intermediate_size {intermediate}")
    m = intermediate // experts
    perm = permutation(intermediate, seed, layer)
    return [sorted(perm[e * m:(e + 1) * m]) for e in range(experts)]


def gate_matrix(rows, cols, seed, stream, layer, std=0.02):
    rng = SplitMix64(seed, stream, layer)
    return np.array([[std * rng.normal() for _ in range(cols)] for _ in range(rows)], dtype=np.float32)


def moe_config_from_dense(dense, experts, top_k, score_scale_factor=None, multiply_gate_scores=True):
    if dense.get("model_type") != "llama":
        raise ValueError(f"not a dense LLaMA checkpoint (model_type {dense.get('model_type')!r})")
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
            "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range",
            "attention_bias", "pretraining_tp", "hidden_act")
    overrides = {k: dense[k] for k in keep if k in dense}
    if overrides.get("num_key_value_heads") is None:
        overrides["num_key_value_heads"] = dense["num_attention_heads"]
    m = dense["intermediate_size"] // experts
    overrides.update(
        architectures=["LlamaMoEForCausalLM"], model_type="llama_moe", num_experts=experts,
        num_selects=top_k, size_experts=[[m] * experts for _ in range(dense["num_hidden_layers"])],
        score_scale_factor=float(experts / top_k if score_scale_factor is None else score_scale_factor),
        multiply_gate_scores=multiply_gate_scores, gate_network="mlp", gate_add_noise=True,
        gate_use_softmax=True, gate_use_balance=True, gate_balance_loss_weight=0.01,
        torch_dtype="float32")
    return mb.moe_config(**overrides)


def split_weights(dense_weights, config, seed):
    """(MoE weights dict, neuron lists [layer][expert])."""
    experts, h = config["num_experts"], config["hidden_size"]
    out, neurons = {}, []
    for name, value in dense_weights.items():
        if ".mlp." not in name and not name.endswith("rotary_emb.inv_freq"):
            out[name] = value
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}.mlp."
        gate, up, down = (dense_weights[p + n] for n in ("gate_proj.weight", "up_proj.weight", "down_proj.weight"))
        lists = random_split(gate.shape[0], experts, seed, layer)
        neurons.append(lists)
        for e, idx in enumerate(lists):
            q = p + "calculator.experts."
            out[q + f"weight_gate.{e}"] = np.ascontiguousarray(gate[idx, :])
            out[q + f"weight_up.{e}"] = np.ascontiguousarray(up[idx, :])
            out[q + f"weight_down.{e}"] = np.ascontiguousarray(down[:, idx])
        out[p + "gate.gate_network.0.weight"] = gate_matrix(experts, h, seed, STREAM_GATE0, layer)
        out[p + "gate.gate_network.2.weight"] = gate_matrix(experts, experts, seed, STREAM_GATE2, layer)
        out[p + "gate.weight_noise.weight"] = np.zeros((experts, h), dtype=np.float32)
    return out, neurons


def split_dir(dense_dir, out_dir, experts, top_k, seed=0, score_scale_factor=None, multiply_gate_scores=True):
    with open(os.path.join(dense_dir, "config.json")) as f:
        dense = json.load(f)
    config = moe_config_from_dense(dense, experts, top_k, score_scale_factor, multiply_gate_scores)
    weights, neurons = split_weights(safetensors_io.load_model_dir(dense_dir), config, seed)
    os.makedirs(out_dir, exist_ok=True)
    mb.write_safetensors_model(out_dir, weights)
    mb.write_json(os.path.join(out_dir, "config.json"), config)
    mb.write_json(os.path.join(out_dir, "split.json"),
                  {"method": "random", "seed": seed, "generator": "splitmix64 (see split_reference.py)",
                   "dense": os.path.basename(os.path.normpath(dense_dir)), "neurons": neurons})
    for extra in ("tokenizer.model", "generation_config.json"):
        if os.path.exists(os.path.join(dense_dir, extra)):
            shutil.copyfile(os.path.join(dense_dir, extra), os.path.join(out_dir, extra))
    return config, neurons


def check(dense_dir, seed, experts, tmp_dir):
    """K = E, multiply_gate_scores off reproduces the dense logits; neurons are partitioned."""
    import torch

    from llama_moe_reference import LlamaMoEReference

    _, neurons = split_dir(dense_dir, tmp_dir, experts, experts, seed, multiply_gate_scores=False)
    for lists in neurons:
        flat = sorted(i for lst in lists for i in lst)
        assert flat == list(range(len(flat))), "experts do not partition the neurons"
    dense = LlamaMoEReference.from_dir(dense_dir, torch.float64)
    moe = LlamaMoEReference.from_dir(tmp_dir, torch.float64)
    ids = torch.from_numpy(np.random.default_rng(seed).integers(3, dense.config.vocab_size, (2, 24)))
    a, b = dense.forward(ids)["logits"], moe.forward(ids)["logits"]
    diff = float((a - b).abs().max())
    print(f"K=E={experts}, multiply_gate_scores false: max |dense - moe| logits = {diff:.3g} (float64)")
    return diff


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dense_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score-scale-factor", type=float, default=None, help="default E / K")
    parser.add_argument("--no-multiply-gate-scores", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    config, _ = split_dir(args.dense_dir, args.out_dir, args.experts, args.top_k, args.seed,
                          args.score_scale_factor, not args.no_multiply_gate_scores)
    print(f"wrote {args.out_dir}: {args.experts} experts of {config['size_experts'][0][0]}, top-{args.top_k}, "
          f"score_scale_factor {config['score_scale_factor']}")
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            diff = check(args.dense_dir, args.seed, args.experts, tmp)
        if diff > 1e-9:
            sys.exit("check failed")


if __name__ == "__main__":
    main()
