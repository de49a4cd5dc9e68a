"""Independent checks of reference features the upstream golden cases do not cover.

Usage: /usr/bin/python3 tests/reference/self_check.py [FIXTURES_DIR]

Each check recomputes something a second way (naive loops, complex-number RoPE, a MoE built by
slicing a dense MLP) and compares with the reference or with the fixture files. Exits 1 on failure.
"""

import cmath
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from llama_moe_reference import LlamaMoEReference, ModelConfig, apply_rope, rope_cos_sin  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO_ROOT, "tests", "fixtures")
RESULTS = []


def report(name, diff, tol=1e-5):
    RESULTS.append(diff <= tol)
    print(f"{'ok ' if diff <= tol else 'BAD'} {name}: max diff {diff:.2e}")


def fixture(case):
    folder = os.path.join(FIXTURES, case)
    with open(os.path.join(folder, "inputs.json")) as f:
        inputs = json.load(f)
    return LlamaMoEReference.from_dir(folder, torch.float64), inputs, \
        safetensors_io.load(os.path.join(folder, "expected.safetensors"))


def naive_rope(vec, pos, d, theta):
    """Pair (j, j + d/2) as a complex number rotated by pos * theta^(-2j/d)."""
    out = np.empty(d)
    for j in range(d // 2):
        z = complex(vec[j], vec[j + d // 2]) * cmath.exp(1j * pos * theta ** (-2 * j / d))
        out[j], out[j + d // 2] = z.real, z.imag
    return out


def check_rope():
    """RoPE none / linear / dynamic against the complex-number formula."""
    d, max_pos, length = 16, 16, 24
    vec = np.random.default_rng(0).standard_normal(d)
    for scaling in (None, {"type": "linear", "factor": 2.0}, {"type": "dynamic", "factor": 2.0}):
        cfg = ModelConfig({"model_type": "llama", "vocab_size": 8, "hidden_size": d, "intermediate_size": 8,
                           "num_hidden_layers": 1, "num_attention_heads": 1, "rope_scaling": scaling,
                           "max_position_embeddings": max_pos})
        cos, sin = rope_cos_sin(cfg, torch.arange(length)[None], length, torch.float64)
        got = apply_rope(torch.tensor(vec).expand(1, 1, length, d), cos, sin)[0, 0].numpy()
        theta, scale = 10000.0, 1.0
        if scaling and scaling["type"] == "linear":
            scale = 1 / scaling["factor"]
        if scaling and scaling["type"] == "dynamic":
            theta *= (2.0 * length / max_pos - 1) ** (d / (d - 2))
        want = np.stack([naive_rope(vec, p * scale, d, theta) for p in range(length)])
        report(f"rope {scaling and scaling['type']}", float(np.abs(got - want).max()), 1e-12)


def check_moe_equals_sliced_dense():
    """dense_llama's MLP split into 4 uneven experts, all selected, unweighted = dense model."""
    dense, inputs, _ = fixture("dense_llama")
    sizes = [64, 32, 96, 64]
    config = dict(dense.config.raw, model_type="llama_moe", architectures=["LlamaMoEForCausalLM"],
                  num_experts=4, num_selects=4, size_experts=[sizes] * 2, gate_network="linear",
                  multiply_gate_scores=False)
    weights = {n: v.numpy() for n, v in dense.weights.items() if ".mlp." not in n}
    for layer in range(2):
        p = f"model.layers.{layer}.mlp."
        gate, up, down = (dense.weights[p + k].numpy() for k in ("gate_proj.weight", "up_proj.weight", "down_proj.weight"))
        weights[p + "gate.gate_network.weight"] = np.random.default_rng(layer).standard_normal((4, 64))
        start = 0
        for e, size in enumerate(sizes):
            q = p + "calculator.experts."
            weights[q + f"weight_gate.{e}"] = gate[start:start + size]
            weights[q + f"weight_up.{e}"] = up[start:start + size]
            weights[q + f"weight_down.{e}"] = down[:, start:start + size]
            start += size
    moe = LlamaMoEReference(config, weights, torch.float64)
    ids = torch.tensor(inputs["input_ids"])
    report("MoE (K=E, unweighted, sliced) == dense", float((moe.forward(ids)["logits"] - dense.forward(ids)["logits"]).abs().max()), 1e-10)


def check_kv_cache():
    """generation_gqa: every cached step's logits equal the no-cache logits at that position."""
    _, inputs, exp = fixture("generation_gqa")
    prompt = len(inputs["input_ids"][0])
    full = exp["full_logits"][:, prompt - 1:]
    report("KV-cache step_logits == full recompute", float(np.abs(exp["step_logits"] - full).max()))


def check_heads():
    """Tied lm_head, sequence-classification pooling and QA head by naive loops."""
    model, _, exp = fixture("tied_embeddings")
    emb = model.weights["model.embed_tokens.weight"].numpy()
    scale = float(np.abs(exp["logits"]).max())  # tied logits reach ~20: compare relative
    report("tied lm_head (relative)", float(np.abs(exp["final_hidden"] @ emb.T - exp["logits"]).max()) / scale)

    model, inputs, exp = fixture("seq_classification")
    score = model.weights["score.weight"].numpy()
    diff = 0.0
    for b, row in enumerate(inputs["input_ids"]):
        index = row.index(0) - 1 if 0 in row else len(row) - 1
        diff = max(diff, abs(index - int(exp["pooled_index"][b])))
        diff = max(diff, float(np.abs(exp["final_hidden"][b, index] @ score.T - exp["cls_logits"][b]).max()))
    report("sequence-classification pooling", diff)

    model, _, exp = fixture("question_answering")
    w, bias = model.weights["qa_outputs.weight"].numpy(), model.weights["qa_outputs.bias"].numpy()
    qa = exp["final_hidden"] @ w.T + bias
    report("QA head", float(max(np.abs(qa[..., 0] - exp["start_logits"]).max(), np.abs(qa[..., 1] - exp["end_logits"]).max())))


def check_routing_stats():
    """load / importance / topk from gate_logits by a per-token loop (softmax_off, uneven_experts)."""
    for case in ("softmax_off", "uneven_experts"):
        model, _, exp = fixture(case)
        cfg = model.config
        diff = 0.0
        for layer in range(cfg.num_layers):
            logits = exp[f"layers.{layer}.gate_logits"].astype(np.float64)
            load, importance = np.zeros(cfg.num_experts), np.zeros(cfg.num_experts)
            for t, row in enumerate(logits):
                chosen = sorted(range(cfg.num_experts), key=lambda e: (-row[e], e))[:cfg.num_selects]
                vals = row[chosen]
                scores = np.exp(vals - vals.max()) / np.exp(vals - vals.max()).sum() if cfg.gate_use_softmax else vals
                diff = max(diff, abs(len(set(chosen) ^ set(exp[f"layers.{layer}.topk_indices"][t].tolist()))))
                diff = max(diff, float(np.abs(scores - exp[f"layers.{layer}.topk_scores"][t]).max()))
                load[chosen] += scores > 0
                importance[chosen] += scores
            diff = max(diff, float(np.abs(load - exp[f"layers.{layer}.load"]).max()))
            diff = max(diff, float(np.abs(importance - exp[f"layers.{layer}.importance"]).max()))
        report(f"routing statistics by loop ({case})", diff)


def check_bf16_storage():
    """BF16 files hold exactly the values the expected tensors were computed from."""
    folder = os.path.join(FIXTURES, "bf16_weights")
    kinds = set(safetensors_io.dtypes(os.path.join(folder, "model.safetensors")).values())
    from_bin = safetensors_io.load_model_dir(os.path.join(FIXTURES, "sharded_bin"))
    exact = all(np.array_equal(v, safetensors_io.round_to_bf16(v)) for v in from_bin.values())
    report("bf16 storage (safetensors BF16 only, .bin values bf16-exact)", 0.0 if kinds == {"BF16"} and exact else 1.0, 0.0)


def main():
    torch.set_num_threads(1)
    check_rope()
    check_moe_equals_sliced_dense()
    check_kv_cache()
    check_heads()
    check_routing_stats()
    check_bf16_storage()
    print(f"{sum(RESULTS)}/{len(RESULTS)} checks pass")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
