"""Independent checks of tests/reference/family_reference.py and the family fixtures.

Usage: /usr/bin/python3 tests/reference/family_self_check.py [FIXTURES_DIR]

Each check recomputes something a second way and prints PASS or FAIL; the script exits 1 on any
failure.
  (a) Mixtral with the weights of a LLaMA-MoE linear-gate model (softmax on, scale 1) gives the same
      selected experts, combine weights and logits as llama_moe_reference.py
      (docs/model-families.md section 2).
  (b) Granite routing (top-k of the logits, softmax over the k) equals the softmax over all experts
      restricted to the top-k and renormalized.
  (c) dots1 routing with n_group 1 (and with topk_group = n_group) and zero bias equals plain sigmoid
      top-k renormalized; the dots1 fixture's routing equals a per-row loop over its gate_logits and
      bias.
  (d) A sliding window >= the sequence length changes nothing; a window of 5 does; the windowed KV
      cache (mixtral_generation step_logits) equals the recomputation without cache (full_logits).
  (e) Shared experts: shared_out (and shared_gate) of qwen2_moe_shared and dots1_router equal the
      shared MLP run by hand on moe_in (times the sigmoid gate), and moe_out equals shared_out plus the
      routed experts summed by hand.
  (f) attn_out of every layer of six family fixtures equals attention written as loops (OLMoE
      full-width q/k norm and clip_qkv, Qwen3/dots1 per-head norm, q/k/v bias, GQA, RoPE as a complex
      rotation, Mixtral's sliding window, Granite's attention_multiplier, padding).
  (g) Granite by hand: embeddings x embedding_multiplier, fused experts split gate-then-up,
      residual_multiplier on both branches, tied logits divided by logits_scaling.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402
import safetensors_io  # noqa: E402
from family_reference import (FamilyReference, route_logits_softmax_k, route_sigmoid_grouped,  # noqa: E402
                              route_softmax_all)
from llama_moe_reference import LlamaMoEReference  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO_ROOT, "tests", "fixtures")
RESULTS = []


def report(name, diff, tol, extra_ok=True):
    ok = bool(diff <= tol and extra_ok)
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: max diff {diff:.2e} (tol {tol:.0e})")


def load_case(case):
    folder = os.path.join(FIXTURES, case)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(folder, "inputs.json")) as f:
        inputs = json.load(f)
    return (config, safetensors_io.load_model_dir(folder), inputs,
            safetensors_io.load(os.path.join(folder, "expected.safetensors")))


def silu(x):
    return x / (1.0 + np.exp(-x))


def mlp_by_hand(u, gate, up, down):
    """down (silu(gate u) * up u) with [out, in] weights, float64 numpy."""
    return (silu(u @ gate.T.astype(np.float64)) * (u @ up.T.astype(np.float64))) @ down.T.astype(np.float64)


# ---- (a) ---------------------------------------------------------------------------------------


def check_mixtral_equals_llama_moe_linear_gate():
    e_count, k, f = 8, 2, 32
    llama_cfg = mb.moe_config(gate_network="linear", num_experts=e_count, num_selects=k,
                              intermediate_size=e_count * f, score_scale_factor=1.0, num_key_value_heads=2,
                              rms_norm_eps=1e-5, rope_theta=10000.0, gate_add_noise=False)
    weights = mb.random_weights(llama_cfg, np.random.default_rng(7), with_inv_freq=False)
    mixtral = {}
    for name, value in weights.items():
        if ".mlp.gate.gate_network.weight" in name:
            mixtral[name.replace("mlp.gate.gate_network.weight", "block_sparse_moe.gate.weight")] = value
        elif ".mlp.calculator.experts." in name:
            head, tail = name.split(".mlp.calculator.experts.")
            kind, e = tail.split(".")
            new = {"weight_gate": "w1", "weight_up": "w3", "weight_down": "w2"}[kind]
            mixtral[f"{head}.block_sparse_moe.experts.{e}.{new}.weight"] = value
        else:
            mixtral[name] = value
    mixtral_cfg = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "vocab_size": 257,
                   "hidden_size": 64, "intermediate_size": f, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": None,
                   "num_local_experts": e_count, "num_experts_per_tok": k, "tie_word_embeddings": False}
    ids = torch.from_numpy(np.random.default_rng(8).integers(3, 257, size=(2, 10)))
    ids[:, 0] = 1
    ref_l, ref_m = {}, {}
    LlamaMoEReference(llama_cfg, weights, torch.float64).forward(ids, record=ref_l)
    FamilyReference(mixtral_cfg, mixtral, torch.float64).forward(ids, record=ref_m)
    same_idx = all(torch.equal(ref_l[f"layers.{l}.topk_indices"], ref_m[f"layers.{l}.topk_indices"]) for l in range(2))
    diff_w = max(float((ref_l[f"layers.{l}.topk_scores"] - ref_m[f"layers.{l}.topk_scores"]).abs().max())
                 for l in range(2))
    report("(a) Mixtral == LLaMA-MoE linear gate (softmax on, scale 1): combine weights, same experts "
           f"{same_idx}", diff_w, 1e-12, same_idx)
    report("(a) Mixtral == LLaMA-MoE linear gate: logits", float((ref_l["logits"] - ref_m["logits"]).abs().max()),
           1e-10)


# ---- (b) ---------------------------------------------------------------------------------------


def check_granite_equals_restricted_softmax():
    logits = torch.from_numpy(np.random.default_rng(11).standard_normal((500, 8)) * 2.0)
    for k in (1, 2, 3, 8):
        gi, gw, _ = route_logits_softmax_k(logits, k)
        mi, mw, _ = route_softmax_all(logits, k, renormalize=True)
        report(f"(b) Granite routing == softmax over all, top-{k}, renormalized (same experts "
               f"{torch.equal(gi, mi)})", float((gw - mw).abs().max()), 1e-12, torch.equal(gi, mi))


# ---- (c) ---------------------------------------------------------------------------------------


def check_dots1_plain_sigmoid():
    logits = torch.from_numpy(np.random.default_rng(12).standard_normal((500, 16)) * 1.5)
    k = 4
    s = torch.sigmoid(logits)
    want_w, want_i = torch.topk(s, k, dim=-1)
    want_w = want_w / (want_w.sum(-1, keepdim=True) + 1e-20)
    for n_group, topk_group, bias in ((1, 1, None), (1, 1, torch.zeros(16, dtype=torch.float64)), (4, 4, None)):
        idx, w, _, _, _ = route_sigmoid_grouped(logits, bias, k, n_group, topk_group, True)
        same = torch.equal(idx, want_i)
        report(f"(c) dots1 n_group {n_group} topk_group {topk_group} bias {'zero' if bias is not None else 'none'} "
               f"== sigmoid top-{k} renormalized (same experts {same})", float((w - want_w).abs().max()), 1e-12, same)


def dots1_row_by_loops(z, b, k, n_group, topk_group):
    """One row of the DeepSeek-V3 router with Python loops: (indices by descending weight, weights)."""
    e_count = len(z)
    s = [1.0 / (1.0 + np.exp(-v)) for v in z]
    c = [s[e] + b[e] for e in range(e_count)]
    size = e_count // n_group
    scores = []
    for g in range(n_group):
        top = sorted((c[e] for e in range(g * size, (g + 1) * size)), reverse=True)
        scores.append(top[0] + top[1])
    groups = sorted(range(n_group), key=lambda g: (-scores[g], g))[:topk_group]
    eligible = [e for g in groups for e in range(g * size, (g + 1) * size)]
    chosen = sorted(eligible, key=lambda e: (-c[e], e))[:k]
    total = sum(s[e] for e in chosen) + 1e-20
    weights = {e: s[e] / total for e in chosen}
    order = sorted(range(k), key=lambda r: (-weights[chosen[r]], r))
    return [chosen[r] for r in order], [weights[chosen[r]] for r in order]


def check_dots1_fixture_by_loops():
    config, weights, _, expected = load_case("dots1_router")
    k, n_group, topk_group = config["num_experts_per_tok"], config["n_group"], config["topk_group"]
    worst, same = 0.0, True
    for layer in range(config["first_k_dense_replace"], config["num_hidden_layers"]):
        logits = expected[f"layers.{layer}.gate_logits"].astype(np.float64)
        bias = weights[f"model.layers.{layer}.mlp.gate.e_score_correction_bias"].astype(np.float64)
        for t in range(logits.shape[0]):
            idx, w = dots1_row_by_loops(logits[t], bias, k, n_group, topk_group)
            same &= idx == expected[f"layers.{layer}.topk_indices"][t].tolist()
            worst = max(worst, float(np.abs(np.array(w) - expected[f"layers.{layer}.topk_scores"][t]).max()))
    report(f"(c) dots1_router fixture routing == per-row loops over gate_logits and bias (same experts {same})",
           worst, 1e-6, same)


# ---- (d) ---------------------------------------------------------------------------------------


def check_sliding_window():
    config, weights, inputs, expected = load_case("mixtral_window")
    ids = torch.tensor(inputs["input_ids"])
    length = ids.shape[1]

    def logits(window):
        return FamilyReference(dict(config, sliding_window=window), weights, torch.float64).forward(ids)["logits"]

    none = logits(None)
    report(f"(d) sliding_window {length} (= sequence length) == no window", float((logits(length) - none).abs().max()),
           0.0)
    report("(d) sliding_window 64 (> sequence length) == no window", float((logits(64) - none).abs().max()), 0.0)
    changed = float((logits(5) - none).abs().max())
    RESULTS.append(changed > 1e-3)
    print(f"{'PASS' if changed > 1e-3 else 'FAIL'} (d) sliding_window 5 changes the logits: max diff {changed:.2e}")
    w = config["sliding_window"]
    keys_seen = [sum(1 for j in range(length) if i - w < j <= i) for i in range(length)]
    ok = keys_seen == [min(i + 1, w) for i in range(length)]
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} (d) window rule i - W < j <= i gives W keys per query once i >= W - 1: "
          f"{keys_seen}")
    _, _, gen_inputs, gen = load_case("mixtral_generation")
    prompt = len(gen_inputs["input_ids"][0])
    steps = gen["step_logits"].shape[1]
    diff = float(np.abs(gen["step_logits"][0] - gen["full_logits"][0, prompt - 1: prompt - 1 + steps]).max())
    report("(d) mixtral_generation: KV-cache step_logits == no-cache full_logits with sliding_window 6", diff, 1e-4)


# ---- (e) ---------------------------------------------------------------------------------------


def check_shared_experts():
    for case, pre, gated in (("qwen2_moe_shared", "mlp.shared_expert.", True),
                             ("dots1_router", "mlp.shared_experts.", False)):
        config, weights, _, expected = load_case(case)
        model = FamilyReference(config, weights)
        scale = config.get("routed_scaling_factor", 1.0)
        for layer in range(config["num_hidden_layers"]):
            if not model.config.moe_layers[layer]:
                continue
            p = f"model.layers.{layer}."
            u = expected[f"layers.{layer}.moe_in"].reshape(-1, config["hidden_size"]).astype(np.float64)
            shared = mlp_by_hand(u, weights[p + pre + "gate_proj.weight"], weights[p + pre + "up_proj.weight"],
                                 weights[p + pre + "down_proj.weight"])
            if gated:
                gate = 1.0 / (1.0 + np.exp(-(u @ weights[p + "mlp.shared_expert_gate.weight"].T.astype(np.float64))))
                report(f"(e) {case} layer {layer}: shared_gate == sigmoid(shared_expert_gate u)",
                       float(np.abs(gate - expected[f"layers.{layer}.shared_gate"]).max()), 1e-5)
                shared = gate * shared
            got = expected[f"layers.{layer}.shared_out"].reshape(shared.shape)
            report(f"(e) {case} layer {layer}: shared_out == shared MLP by hand{' x gate' if gated else ''}",
                   float(np.abs(shared - got).max()), 1e-5)
            routed = np.zeros_like(shared)
            idx = expected[f"layers.{layer}.topk_indices"]
            w = expected[f"layers.{layer}.topk_scores"].astype(np.float64) * scale
            for t in range(u.shape[0]):
                for j, e in enumerate(idx[t]):
                    q = p + f"mlp.experts.{e}."
                    routed[t] += w[t, j] * mlp_by_hand(u[t:t + 1], weights[q + "gate_proj.weight"],
                                                       weights[q + "up_proj.weight"], weights[q + "down_proj.weight"])[0]
            moe_out = expected[f"layers.{layer}.moe_out"].reshape(shared.shape)
            report(f"(e) {case} layer {layer}: moe_out == shared_out + routed experts by hand"
                   + (f" (x routed_scaling_factor {scale})" if scale != 1.0 else ""),
                   float(np.abs(routed + got - moe_out).max()), 1e-5)


# ---- (f) ---------------------------------------------------------------------------------------


def rms(x, weight, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * weight.astype(np.float64)


def naive_attention(config, weights, layer, h, mask):
    """attn_out of one layer by loops, float64: input norm, projections (+ bias), full-width or
    per-head q/k norm, clip_qkv, RoPE as complex rotation of pairs (j, j + d/2), GQA, causal +
    padding + sliding-window mask, scale, o_proj. h: [S, H] stream entering the layer (one sequence)."""
    mt = config["model_type"]
    nh, hid = config["num_attention_heads"], config["hidden_size"]
    nkv = config.get("num_key_value_heads") or nh
    d = config.get("head_dim") or hid // nh
    eps = config["rms_norm_eps"]
    theta = config.get("rope_theta", 10000.0)
    p = f"model.layers.{layer}."
    wt = {n[len(p):]: v.astype(np.float64) for n, v in weights.items() if n.startswith(p)}
    u = rms(h, wt["input_layernorm.weight"], eps)
    proj = {}
    for name in ("q", "k", "v"):
        proj[name] = u @ wt[f"self_attn.{name}_proj.weight"].T
        if f"self_attn.{name}_proj.bias" in wt:
            proj[name] = proj[name] + wt[f"self_attn.{name}_proj.bias"]
    if mt == "olmoe":
        proj["q"] = rms(proj["q"], wt["self_attn.q_norm.weight"], eps)
        proj["k"] = rms(proj["k"], wt["self_attn.k_norm.weight"], eps)
        if config.get("clip_qkv") is not None:
            c = config["clip_qkv"]
            proj = {n: np.clip(v, -c, c) for n, v in proj.items()}
    q = proj["q"].reshape(len(h), nh, d)
    k = proj["k"].reshape(len(h), nkv, d)
    v = proj["v"].reshape(len(h), nkv, d)
    if mt in ("qwen3_moe", "dots1"):
        q = rms(q, wt["self_attn.q_norm.weight"], eps)
        k = rms(k, wt["self_attn.k_norm.weight"], eps)

    def rope(vec, pos):
        out = np.empty(d)
        for j in range(d // 2):
            z = complex(vec[j], vec[j + d // 2]) * np.exp(1j * pos * theta ** (-2 * j / d))
            out[j], out[j + d // 2] = z.real, z.imag
        return out

    q = np.array([[rope(q[i, a], i) for a in range(nh)] for i in range(len(h))])
    k = np.array([[rope(k[i, a], i) for a in range(nkv)] for i in range(len(h))])
    scale = config["attention_multiplier"] if mt == "granitemoe" else d ** -0.5
    window = config.get("sliding_window") if mt == "mixtral" else None
    out = np.zeros((len(h), nh * d))
    for i in range(len(h)):
        keys = [j for j in range(i + 1) if mask[j] and (window is None or j > i - window)]
        for a in range(nh):
            kv = a // (nh // nkv)
            scores = np.array([q[i, a] @ k[j, kv] * scale for j in keys])
            probs = np.exp(scores - scores.max())
            probs /= probs.sum()
            out[i, a * d:(a + 1) * d] = sum(pr * v[j, kv] for pr, j in zip(probs, keys))
    return out @ wt["self_attn.o_proj.weight"].T


def check_attention_by_loops():
    for case in ("mixtral_window", "olmoe_clip", "qwen2_moe_shared", "qwen3_moe", "granitemoe", "dots1_router"):
        config, weights, _, expected = load_case(case)
        worst = 0.0
        for b in range(expected["input_ids"].shape[0]):
            mask = expected["attention_mask"][b]
            real = mask.astype(bool)
            for layer in range(config["num_hidden_layers"]):
                stream = expected["embeddings"] if layer == 0 else expected[f"layers.{layer - 1}.hidden_out"]
                got = naive_attention(config, weights, layer, stream[b].astype(np.float64), mask)
                want = expected[f"layers.{layer}.attn_out"][b]
                worst = max(worst, float(np.abs(got[real] - want[real]).max()))
        report(f"(f) {case}: attn_out of every layer == attention by loops (norms, clip, RoPE, GQA, window, scale)",
               worst, 1e-5)


# ---- (g) ---------------------------------------------------------------------------------------


def check_granite_stream_by_hand():
    config, weights, _, expected = load_case("granitemoe")
    emb = weights["model.embed_tokens.weight"].astype(np.float64)
    ids = expected["input_ids"]
    rm, f = config["residual_multiplier"], config["intermediate_size"]
    report("(g) granitemoe: embeddings == embed_tokens[ids] x embedding_multiplier",
           float(np.abs(emb[ids] * config["embedding_multiplier"] - expected["embeddings"]).max()), 1e-5)
    worst_moe = worst_res = 0.0
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}.block_sparse_moe."
        u = expected[f"layers.{layer}.moe_in"].reshape(-1, config["hidden_size"]).astype(np.float64)
        fused, out_w = weights[p + "input_linear.weight"], weights[p + "output_linear.weight"]
        routed = np.zeros_like(u)
        for t in range(u.shape[0]):
            for j, e in enumerate(expected[f"layers.{layer}.topk_indices"][t]):
                y = mlp_by_hand(u[t:t + 1], fused[e][:f], fused[e][f:], out_w[e])[0]
                routed[t] += expected[f"layers.{layer}.topk_scores"][t, j] * y
        worst_moe = max(worst_moe, float(np.abs(routed - expected[f"layers.{layer}.moe_out"].reshape(u.shape)).max()))
        prev = expected["embeddings"] if layer == 0 else expected[f"layers.{layer - 1}.hidden_out"]
        mid = prev.astype(np.float64) + rm * expected[f"layers.{layer}.attn_out"]
        hidden = mid + rm * expected[f"layers.{layer}.moe_out"]
        worst_res = max(worst_res, float(np.abs(hidden - expected[f"layers.{layer}.hidden_out"]).max()))
    report("(g) granitemoe: moe_out == fused experts by hand (input_linear rows [0, F) gate, [F, 2F) up)",
           worst_moe, 1e-5)
    report("(g) granitemoe: hidden_out == h + residual_multiplier (attn_out + moe_out)", worst_res, 1e-5)
    logits = expected["final_hidden"].astype(np.float64) @ emb.T / config["logits_scaling"]
    report("(g) granitemoe: logits == final_hidden @ embed_tokens^T / logits_scaling (tied)",
           float(np.abs(logits - expected["logits"]).max()), 1e-5)


def main():
    torch.set_num_threads(1)
    for check in (check_mixtral_equals_llama_moe_linear_gate, check_granite_equals_restricted_softmax,
                  check_dots1_plain_sigmoid, check_dots1_fixture_by_loops, check_sliding_window,
                  check_shared_experts, check_attention_by_loops,
                  check_granite_stream_by_hand):
        try:
            check()
        except Exception as exc:  # a crash is a failure, not a silent skip
            RESULTS.append(False)
            print(f"FAIL {check.__name__}: {type(exc).__name__}: {exc}")
    print(f"{sum(RESULTS)}/{len(RESULTS)} checks pass")
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
