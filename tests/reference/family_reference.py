"""Standalone PyTorch reference of the MoE families beyond LLaMA-MoE v1, written from
docs/model-families.md and checked against the Hugging Face transformers modeling files named there.

Families (config.json `model_type`):
  mixtral     MixtralForCausalLM: softmax over all E, top-k, always renormalized; optional
              sliding window on every layer.
  olmoe       OlmoeForCausalLM: softmax, top-k, renormalized only with norm_topk_prob; q/k RMSNorm
              over the full projection width, then clip_qkv clamps q, k and v.
  qwen2_moe   Qwen2MoeForCausalLM: q/k/v bias, dense layers by mlp_only_layers/decoder_sparse_step,
              routed experts plus a sigmoid-gated shared expert.
  qwen3_moe   Qwen3MoeForCausalLM: explicit head_dim, per-head q/k RMSNorm, dense-layer rule as qwen2_moe.
  granitemoe  GraniteMoeForCausalLM: embedding/residual/attention multipliers, logits divided by
              logits_scaling, top-k of the logits then softmax over the k, fused expert tensors.
  dots1       Dots1ForCausalLM: Qwen3-style attention, DeepSeek-V3 router (sigmoid scores, selection
              bias, group-limited top-k, renormalized, routed_scaling_factor), ungated shared experts,
              the first first_k_dense_replace layers dense.

Conventions of the recorded tensors (tests/golden/README.md names):
  gate_logits   the router's linear output z [T, E], before softmax/sigmoid
  topk_indices  selected experts in descending combine weight (ties: descending selection key, then
                lower expert index)
  topk_scores   combine weights after renormalization, before routed_scaling_factor
  load          per expert, rows (padding included) that selected it with weight > 0
  importance    per expert, sum of its topk_scores
  moe_out       the whole FFN block output (routed + shared; the dense MLP on dense layers), before
                the residual add and before Granite's residual multiplier
  shared_out    shared expert output as added (after the sigmoid gate for qwen2_moe)
  shared_gate   qwen2_moe: sigmoid(shared_expert_gate(u)) [T, 1]
  embeddings    residual stream entering layer 0 (after Granite's embedding multiplier)
  attn_out      after o_proj, before Granite's residual multiplier
  logits        after Granite's division by logits_scaling
Dense layers record no routing tensors.

Sliding window (mixtral; dots1 layers marked "sliding_attention"): query at absolute cache position i
sees key j iff i - W < j <= i (W keys including itself), as transformers' sliding_window_overlay
(kv_idx > q_idx - W) and the 4.4x/4.5x `_prepare_4d_causal_attention_mask_with_cache_position`
(masks j <= i - W) both do. Padding keys are hidden; masked scores are set to finfo(float32).min as
in llama_moe_reference.py.

DeepSeek-V3/dots1 group masking: experts of discarded groups are excluded outright (-inf). Upstream
(Dots1TopkRouter.get_topk_indices) sets them to 0.0, which differs only when fewer than k eligible
experts have a selection key > 0; `upstream_zero_mask_selection` reproduces upstream's rule for checks.

Usage as a library:
    model = FamilyReference.from_dir("tests/fixtures/mixtral_window")
    out = model.forward(input_ids, attention_mask, position_ids, record={})
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from llama_moe_reference import (  # noqa: E402
    MASK_VALUE, accum_dtype, apply_rope, generation_positions, rms_norm, rope_cos_sin, swiglu)

FAMILIES = ("mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "granitemoe", "dots1")
DEEPSEEK_EPS = 1e-20


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def _required(raw, key):
    if key not in raw or raw[key] is None:
        raise ValueError(f"{raw.get('model_type')}: config key {key!r} is required")
    return raw[key]


class FamilyConfig:
    """The config.json fields of one family that change the forward pass, as a family-independent
    description (the shape of docs/model-families.md section 11.1)."""

    def __init__(self, raw):
        self.raw = dict(raw)
        mt = raw.get("model_type")
        if mt not in FAMILIES:
            raise ValueError(f"model_type {mt!r} is not one of {FAMILIES}")
        self.model_type = mt
        self.architectures = raw.get("architectures") or []
        if raw.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is supported")
        self.vocab_size = raw["vocab_size"]
        self.hidden_size = raw["hidden_size"]
        self.num_layers = raw["num_hidden_layers"]
        self.num_heads = raw["num_attention_heads"]
        self.num_kv_heads = raw.get("num_key_value_heads") or self.num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        head_dim = raw.get("head_dim")
        if mt in ("olmoe", "granitemoe") or head_dim is None:
            if self.hidden_size % self.num_heads:
                raise ValueError("hidden_size must be a multiple of num_attention_heads")
            head_dim = self.hidden_size // self.num_heads
        self.head_dim = head_dim
        self.rms_norm_eps = raw.get("rms_norm_eps", 1e-6)
        self.rope_theta = raw.get("rope_theta", 1e6 if mt == "mixtral" else 10000.0)
        if isinstance(raw.get("rope_parameters"), dict):  # v5 spelling
            self.rope_theta = raw["rope_parameters"].get("rope_theta", self.rope_theta)
        scaling = raw.get("rope_scaling")
        if scaling:
            kind = scaling.get("type", scaling.get("rope_type"))
            if kind not in ("linear", "dynamic", "default"):
                raise ValueError(f"rope_scaling type {kind!r} is not implemented")
            scaling = None if kind == "default" else dict(scaling, type=kind)
        self.rope_scaling = scaling
        self.max_position_embeddings = raw.get("max_position_embeddings", 2048)
        self.tie_word_embeddings = raw.get("tie_word_embeddings", False)

        # attention
        self.qkv_bias = {"qwen2_moe": raw.get("qkv_bias", True)}.get(mt, raw.get("attention_bias", False))
        self.o_bias = False if mt == "qwen2_moe" else raw.get("attention_bias", False)
        self.qk_norm = {"olmoe": "full_width", "qwen3_moe": "per_head", "dots1": "per_head"}.get(mt, "none")
        self.clip_qkv = raw.get("clip_qkv") if mt == "olmoe" else None
        if mt != "olmoe" and raw.get("clip_qkv") is not None:
            raise ValueError("clip_qkv exists only in olmoe")
        self.score_scale = raw["attention_multiplier"] if mt == "granitemoe" else self.head_dim ** -0.5
        self.windows = self._windows(raw)

        # stream multipliers (Granite)
        granite = mt == "granitemoe"
        self.embedding_multiplier = float(_required(raw, "embedding_multiplier")) if granite else 1.0
        self.residual_multiplier = float(_required(raw, "residual_multiplier")) if granite else 1.0
        self.logits_scaling = float(_required(raw, "logits_scaling")) if granite else 1.0

        self._init_moe(raw)

    def _windows(self, raw):
        """Per-layer sliding window (None = full causal attention)."""
        mt, n = self.model_type, self.num_layers
        if mt == "mixtral":
            return [raw.get("sliding_window")] * n
        if mt in ("qwen2_moe", "qwen3_moe"):
            if raw.get("use_sliding_window"):
                raise ValueError(f"{mt}: use_sliding_window true is not implemented (versions disagree)")
            return [None] * n
        if mt == "dots1":
            window = raw.get("sliding_window")
            types = raw.get("layer_types")
            if types is None:
                mwl = raw.get("max_window_layers", n)
                types = ["sliding_attention" if window is not None and i >= mwl else "full_attention"
                         for i in range(n)]
            if len(types) != n:
                raise ValueError("layer_types must have num_hidden_layers entries")
            return [window if t == "sliding_attention" else None for t in types]
        return [None] * n

    def _init_moe(self, raw):
        mt = self.model_type
        self.num_experts_per_tok = _required(raw, "num_experts_per_tok")
        self.renorm_eps = 0.0
        self.scale = 1.0
        self.selection_bias = False
        self.n_group = self.topk_group = 1
        self.shared = None  # None | "gated" | "ungated"
        self.shared_width = 0
        self.dense_width = raw.get("intermediate_size")
        if mt in ("mixtral", "granitemoe"):
            self.num_experts = _required(raw, "num_local_experts")
            self.expert_width = raw["intermediate_size"]
            self.moe_layers = [True] * self.num_layers
            self.router = "softmax_all" if mt == "mixtral" else "logits_softmax_k"
            self.renormalize = mt == "mixtral"
            if mt == "mixtral":  # LLaMA-MoE-v2's MixtralSparseMoeBlock: every weight x scale_factor
                self.scale = float(raw.get("scale_factor", 1.0))
        elif mt in ("olmoe",):
            self.num_experts = _required(raw, "num_experts")
            self.expert_width = raw["intermediate_size"]
            self.moe_layers = [True] * self.num_layers
            self.router = "softmax_all"
            self.renormalize = bool(_required(raw, "norm_topk_prob"))
        elif mt in ("qwen2_moe", "qwen3_moe"):
            self.num_experts = _required(raw, "num_experts")
            self.expert_width = raw["moe_intermediate_size"]
            step = raw.get("decoder_sparse_step", 1)
            if step < 1:
                raise ValueError("decoder_sparse_step must be >= 1")
            only = raw.get("mlp_only_layers") or []
            self.moe_layers = [l not in only and self.num_experts > 0 and (l + 1) % step == 0
                               for l in range(self.num_layers)]
            self.router = "softmax_all"
            self.renormalize = bool(_required(raw, "norm_topk_prob"))
            if mt == "qwen2_moe":
                self.shared = "gated"
                self.shared_width = raw["shared_expert_intermediate_size"]
        elif mt == "dots1":
            self.num_experts = _required(raw, "n_routed_experts")
            self.expert_width = raw["moe_intermediate_size"]
            first_dense = raw.get("first_k_dense_replace", 0)
            self.moe_layers = [l >= first_dense for l in range(self.num_layers)]
            self.router = "sigmoid_grouped"
            self.renormalize = bool(_required(raw, "norm_topk_prob"))
            self.renorm_eps = DEEPSEEK_EPS
            self.scale = float(_required(raw, "routed_scaling_factor"))
            self.selection_bias = True
            self.n_group = raw.get("n_group") or 1
            self.topk_group = raw.get("topk_group") or 1
            if self.num_experts % self.n_group or self.num_experts // self.n_group < 2:
                raise ValueError("n_group must divide n_routed_experts into groups of >= 2")
            if not 1 <= self.topk_group <= self.n_group:
                raise ValueError("topk_group must be in [1, n_group]")
            if self.num_experts_per_tok > self.topk_group * (self.num_experts // self.n_group):
                raise ValueError("num_experts_per_tok exceeds the experts of topk_group groups")
            n_shared = raw.get("n_shared_experts") or 0
            if n_shared:
                self.shared = "ungated"
                self.shared_width = self.expert_width * n_shared
        if not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise ValueError("num_experts_per_tok must be in [1, num_experts]")


# --------------------------------------------------------------------------------------------
# Routing recipes (pure functions of the router logits, reused by the self checks)
# --------------------------------------------------------------------------------------------


def _sorted_desc(values):
    """Stable descending sort: (values, indices), ties to the lower index."""
    return torch.sort(values, dim=-1, descending=True, stable=True)


def _order_by_weight(indices, weights):
    """Reorder the selection (given in selection order) by descending weight; ties keep the
    selection order."""
    w_sorted, order = _sorted_desc(weights)
    return indices.gather(1, order), w_sorted


def route_softmax_all(logits, k, renormalize):
    """Mixtral/OLMoE/Qwen: p = softmax(z) in float32/64, top-k of p, optional renormalization.
    Returns (indices, weights, selection key)."""
    p = torch.softmax(logits.to(accum_dtype(logits.dtype)), dim=-1)
    values, order = _sorted_desc(p)
    idx, w = order[:, :k], values[:, :k]
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    return idx, w.to(logits.dtype), p


def route_logits_softmax_k(logits, k):
    """Granite (JetMoe gating): top-k of the logits, softmax over the k selected."""
    z = logits.to(accum_dtype(logits.dtype))
    values, order = _sorted_desc(z)
    idx = order[:, :k]
    w = torch.softmax(values[:, :k], dim=-1)
    return idx, w.to(logits.dtype), z


def grouped_selection(key, k, n_group, topk_group, masked_value=float("-inf")):
    """DeepSeek-V3 group-limited top-k on the selection key c [N, E]: group score = sum of the group's
    two largest keys, keep the topk_group best groups (ties to the lower group), set the other
    experts to masked_value, then top-k (ties to the lower expert). Returns (indices in
    descending-key order, group scores, masked key)."""
    n, e = key.shape
    grouped = key.view(n, n_group, e // n_group)
    group_scores = _sorted_desc(grouped)[0][..., :2].sum(-1)
    keep_groups = _sorted_desc(group_scores)[1][:, :topk_group]
    group_mask = torch.zeros(n, n_group, dtype=torch.bool).scatter(1, keep_groups, True)
    expert_mask = group_mask[:, :, None].expand(n, n_group, e // n_group).reshape(n, e)
    masked = key.masked_fill(~expert_mask, masked_value)
    idx = _sorted_desc(masked)[1][:, :k]
    return idx, group_scores, masked


def route_sigmoid_grouped(logits, bias, k, n_group, topk_group, renormalize, eps=DEEPSEEK_EPS):
    """DeepSeek-V3/dots1: s = sigmoid(z), c = s + b selects (group-limited), weights = s of the
    selected, renormalized by sum + eps. Returns (indices by descending weight, weights before
    the scale factor, selection key c, group scores, indices in selection order)."""
    s = torch.sigmoid(logits.to(accum_dtype(logits.dtype)))
    c = s + (0 if bias is None else bias.to(s.dtype))
    sel, group_scores, _ = grouped_selection(c, k, n_group, topk_group)
    w = s.gather(1, sel)
    if renormalize:
        w = w / (w.sum(-1, keepdim=True) + eps)
    idx, w = _order_by_weight(sel, w)
    return idx, w.to(logits.dtype), c, group_scores, sel


def upstream_zero_mask_selection(key, k, n_group, topk_group):
    """The selected expert sets with transformers' 0.0 masking of discarded groups (sorted sets)."""
    idx, _, _ = grouped_selection(key, k, n_group, topk_group, masked_value=0.0)
    return torch.sort(idx, dim=-1)[0]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class FamilyReference:
    """Forward pass of one family with optional KV cache and intermediate recording."""

    def __init__(self, config, weights, dtype=torch.float32):
        """config: dict (config.json) or FamilyConfig; weights: {name: numpy array}."""
        self.config = config if isinstance(config, FamilyConfig) else FamilyConfig(config)
        self.dtype = dtype
        self.weights = {n: torch.from_numpy(np.asarray(v)).to(dtype)
                        for n, v in weights.items() if np.asarray(v).dtype.kind == "f"}
        self._check_attention_keys()

    @classmethod
    def from_dir(cls, model_dir, dtype=torch.float32):
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
        return cls(config, safetensors_io.load_model_dir(model_dir), dtype)

    # ---- weight access ----------------------------------------------------------------------

    def body(self, name):
        return self.weights["model." + name]

    def lm_head_weight(self):
        if self.config.tie_word_embeddings and "lm_head.weight" not in self.weights:
            return self.body("embed_tokens.weight")
        return self.weights["lm_head.weight"]

    def _check_attention_keys(self):
        """Biases present exactly where the config says (qkv_bias / attention_bias)."""
        cfg = self.config
        for l in range(cfg.num_layers):
            p = f"model.layers.{l}.self_attn."
            for proj, want in (("q_proj", cfg.qkv_bias), ("k_proj", cfg.qkv_bias), ("v_proj", cfg.qkv_bias),
                               ("o_proj", cfg.o_bias)):
                if (p + proj + ".bias" in self.weights) != bool(want):
                    raise ValueError(f"{p}{proj}.bias presence does not match the config")

    def linear(self, x, name, bias):
        y = x @ self.body(name + ".weight").T
        return y + self.body(name + ".bias") if bias else y

    # ---- attention --------------------------------------------------------------------------

    def attention(self, layer, x, cos, sin, mask, cache, record):
        cfg = self.config
        b, t, _ = x.shape
        d = cfg.head_dim
        p = f"layers.{layer}.self_attn."
        q = self.linear(x, p + "q_proj", cfg.qkv_bias)
        k = self.linear(x, p + "k_proj", cfg.qkv_bias)
        v = self.linear(x, p + "v_proj", cfg.qkv_bias)
        if cfg.qk_norm == "full_width":  # OLMoE: statistics over all heads together
            q = rms_norm(q, self.body(p + "q_norm.weight"), cfg.rms_norm_eps)
            k = rms_norm(k, self.body(p + "k_norm.weight"), cfg.rms_norm_eps)
        if cfg.clip_qkv is not None:  # OlmoeAttention.forward: clamp after the norms, before RoPE
            c = cfg.clip_qkv
            if record is not None:
                record.setdefault("_clipped", []).append(
                    tuple(int((z.abs() > c).sum()) for z in (q, k, v)))
            q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
        q = q.view(b, t, cfg.num_heads, d)
        k = k.view(b, t, cfg.num_kv_heads, d)
        v = v.view(b, t, cfg.num_kv_heads, d)
        if cfg.qk_norm == "per_head":  # Qwen3/dots1: one [d] weight applied to every head
            q = rms_norm(q, self.body(p + "q_norm.weight"), cfg.rms_norm_eps)
            k = rms_norm(k, self.body(p + "k_norm.weight"), cfg.rms_norm_eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if cache[layer] is not None:
                k = torch.cat([cache[layer][0], k], dim=2)
                v = torch.cat([cache[layer][1], v], dim=2)
            cache[layer] = (k, v)
        rep = cfg.num_heads // cfg.num_kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = ((q @ k.transpose(2, 3)) * cfg.score_scale).to(mask.dtype) + mask
        probs = torch.softmax(scores, dim=-1).to(v.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, t, cfg.num_heads * d)
        return self.linear(out, p + "o_proj", cfg.o_bias)

    # ---- feed-forward -----------------------------------------------------------------------

    def router_logits(self, layer, rows):
        """z = W_r u [N, E] (dots1: computed in float32 or float64, as upstream's fp32 F.linear)."""
        mt = self.config.model_type
        name = {"mixtral": "block_sparse_moe.gate.weight",
                "granitemoe": "block_sparse_moe.router.layer.weight"}.get(mt, "mlp.gate.weight")
        w = self.body(f"layers.{layer}.{name}")
        if mt == "dots1":
            acc = accum_dtype(rows.dtype)
            return (rows.to(acc) @ w.to(acc).T).to(rows.dtype)
        return rows @ w.T

    def route(self, layer, rows):
        """Routing tensors for rows [N, H]: gate_logits, topk_indices, topk_scores (pre-scale),
        load, importance; plus `_key` (the selection key) and, for dots1, `_group_scores` and
        `_selection` (selection order)."""
        cfg = self.config
        k = cfg.num_experts_per_tok
        logits = self.router_logits(layer, rows)
        extra = {}
        if cfg.router == "softmax_all":
            idx, w, key = route_softmax_all(logits, k, cfg.renormalize)
        elif cfg.router == "logits_softmax_k":
            idx, w, key = route_logits_softmax_k(logits, k)
        else:
            bias = self.body(f"layers.{layer}.mlp.gate.e_score_correction_bias")
            idx, w, key, groups, sel = route_sigmoid_grouped(logits, bias, k, cfg.n_group, cfg.topk_group,
                                                             cfg.renormalize, cfg.renorm_eps)
            extra = {"_group_scores": groups, "_selection": sel}
        scattered = torch.zeros_like(logits).scatter(1, idx, w)
        out = {"gate_logits": logits, "topk_indices": idx, "topk_scores": w,
               "load": (scattered > 0).sum(0), "importance": scattered.sum(0), "_key": key}
        out.update(extra)
        return out

    def expert_weights(self, layer, e):
        """(gate, up, down) of routed expert e as [F, H], [F, H], [H, F]."""
        mt = self.config.model_type
        if mt == "mixtral":
            p = f"layers.{layer}.block_sparse_moe.experts.{e}."
            return self.body(p + "w1.weight"), self.body(p + "w3.weight"), self.body(p + "w2.weight")
        if mt == "granitemoe":
            p = f"layers.{layer}.block_sparse_moe."
            fused = self.body(p + "input_linear.weight")[e]  # [2F, H]: gate rows first, then up
            f = fused.shape[0] // 2
            return fused[:f], fused[f:], self.body(p + "output_linear.weight")[e]
        p = f"layers.{layer}.mlp.experts.{e}."
        return self.body(p + "gate_proj.weight"), self.body(p + "up_proj.weight"), self.body(p + "down_proj.weight")

    def mlp_weights(self, prefix):
        return (self.body(prefix + "gate_proj.weight"), self.body(prefix + "up_proj.weight"),
                self.body(prefix + "down_proj.weight"))

    def moe(self, layer, x, record):
        """MoE block on x [B, T, H]: routed experts (added in ascending expert order) plus shared."""
        cfg = self.config
        rows = x.reshape(-1, cfg.hidden_size)
        routing = self.route(layer, rows)
        weights = routing["topk_scores"] * cfg.scale
        out = torch.zeros_like(rows)
        for e in range(cfg.num_experts):
            token, slot = (routing["topk_indices"] == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            y = swiglu(rows[token], *self.expert_weights(layer, e))
            out.index_add_(0, token, y * weights[token, slot][:, None])
        tensors = {n: v for n, v in routing.items() if not n.startswith("_")}
        if cfg.shared is not None:
            pre = "mlp.shared_expert." if cfg.shared == "gated" else "mlp.shared_experts."
            shared = swiglu(rows, *self.mlp_weights(f"layers.{layer}.{pre}"))
            if cfg.shared == "gated":
                gate = torch.sigmoid(rows @ self.body(f"layers.{layer}.mlp.shared_expert_gate.weight").T)
                shared = gate * shared
                tensors["shared_gate"] = gate
            tensors["shared_out"] = shared.view_as(x)
            out = out + shared
        if record is not None:
            for name, value in tensors.items():
                record[f"layers.{layer}.{name}"] = value
        return out.view_as(x)

    def decoder_layer(self, layer, h, cos, sin, masks, cache, record):
        cfg = self.config
        eps = cfg.rms_norm_eps
        attn_in = rms_norm(h, self.body(f"layers.{layer}.input_layernorm.weight"), eps)
        attn_out = self.attention(layer, attn_in, cos, sin, masks[cfg.windows[layer]], cache, record)
        h = h + attn_out * cfg.residual_multiplier if cfg.residual_multiplier != 1.0 else h + attn_out
        moe_in = rms_norm(h, self.body(f"layers.{layer}.post_attention_layernorm.weight"), eps)
        if cfg.moe_layers[layer]:
            moe_out = self.moe(layer, moe_in, record)
        else:
            moe_out = swiglu(moe_in, *self.mlp_weights(f"layers.{layer}.mlp."))
        h = h + moe_out * cfg.residual_multiplier if cfg.residual_multiplier != 1.0 else h + moe_out
        if record is not None:
            record[f"layers.{layer}.attn_out"] = attn_out
            record[f"layers.{layer}.moe_in"] = moe_in
            record[f"layers.{layer}.moe_out"] = moe_out
            record[f"layers.{layer}.hidden_out"] = h
        return h

    # ---- whole model ------------------------------------------------------------------------

    def new_cache(self):
        return [None] * self.config.num_layers

    def body_forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, record=None):
        """Embeddings -> layers -> final norm; attention_mask [B, P+T] covers cached and new tokens."""
        cfg = self.config
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
        batch, length = input_ids.shape
        past = 0 if cache is None or cache[0] is None else cache[0][0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, past + length, dtype=torch.long)
        attention_mask = torch.as_tensor(attention_mask, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(past, past + length).expand(batch, length)
        position_ids = torch.as_tensor(position_ids, dtype=torch.long)
        cos, sin = rope_cos_sin(cfg, position_ids, past + length, self.dtype)
        masks = {w: window_mask(attention_mask, length, w, accum_dtype(self.dtype)) for w in set(cfg.windows)}
        h = self.body("embed_tokens.weight")[input_ids]
        if cfg.embedding_multiplier != 1.0:
            h = h * cfg.embedding_multiplier
        if record is not None:
            record["embeddings"] = h
        for layer in range(cfg.num_layers):
            h = self.decoder_layer(layer, h, cos, sin, masks, cache, record)
        h = rms_norm(h, self.body("norm.weight"), cfg.rms_norm_eps)
        if record is not None:
            record["final_hidden"] = h
        return h

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, record=None):
        h = self.body_forward(input_ids, attention_mask, position_ids, cache, record)
        logits = h @ self.lm_head_weight().T
        if self.config.logits_scaling != 1.0:
            logits = logits / self.config.logits_scaling
        if record is not None:
            record["logits"] = logits
        return {"logits": logits}

    def greedy_generate(self, prompt_ids, max_new_tokens, attention_mask=None):
        """Greedy decoding through the KV cache (as LlamaMoEReference.greedy_generate)."""
        ids = torch.as_tensor(prompt_ids, dtype=torch.long)
        mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask, dtype=torch.long)
        cache = self.new_cache()
        step_input = ids
        step_logits, generated = [], []
        for _ in range(max_new_tokens):
            positions = generation_positions(mask)[:, -step_input.shape[1]:]
            logits = self.forward(step_input, mask, positions, cache)["logits"][:, -1]
            token = logits.argmax(-1)
            step_logits.append(logits)
            generated.append(token)
            step_input = token[:, None]
            ids = torch.cat([ids, step_input], dim=1)
            mask = torch.cat([mask, torch.ones_like(step_input)], dim=1)
        return {"step_logits": torch.stack(step_logits, 1), "generated_ids": torch.stack(generated, 1),
                "sequence_ids": ids}


def window_mask(attention_mask, query_length, window, dtype):
    """[B, 1, T, P+T] additive mask: 0 where allowed, finfo(float32).min (set) where the key is in the
    future, is padding, or (window W) lies at or before i - W in absolute cache positions."""
    batch, key_length = attention_mask.shape
    past = key_length - query_length
    q_pos = torch.arange(query_length)[:, None] + past
    k_pos = torch.arange(key_length)[None, :]
    forbidden = k_pos > q_pos
    if window is not None:
        forbidden = forbidden | (k_pos <= q_pos - window)
    forbidden = forbidden[None] | (attention_mask[:, None, :] == 0)
    mask = torch.zeros(batch, 1, query_length, key_length, dtype=dtype)
    return mask.masked_fill(forbidden[:, None], MASK_VALUE)


# --------------------------------------------------------------------------------------------
# Golden-format expected tensors
# --------------------------------------------------------------------------------------------

INT_TENSORS = ("input_ids", "attention_mask", "position_ids", "generated_ids", "sequence_ids")
INT_SUFFIXES = (".topk_indices", ".load", ".load_real_tokens")


def to_numpy(name, value):
    """I32 for ids, indices and loads; F32 for everything else."""
    value = value.detach()
    if name in INT_TENSORS or name.endswith(INT_SUFFIXES):
        return value.numpy().astype(np.int32)
    return value.numpy().astype(np.float32)


def expected_tensors(model, inputs):
    """Everything an expected.safetensors holds for these inputs (an inputs.json dict)."""
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    positions = inputs.get("position_ids_passed_to_forward")
    record = {}
    model.forward(ids, mask, None if positions is None else torch.tensor(positions), record=record)
    record.pop("_clipped", None)
    out = {"input_ids": ids, "attention_mask": mask, "position_ids": torch.tensor(inputs["position_ids"])}
    out.update(record)
    if bool((mask == 0).any()):
        out.update(real_token_routing(model, record, mask))
    if "max_new_tokens" in inputs:
        gen = model.greedy_generate(ids, inputs["max_new_tokens"], mask)
        out.update(gen)
        out["full_logits"] = model.forward(gen["sequence_ids"][:, :-1])["logits"]
    return {name: to_numpy(name, value) for name, value in out.items()}


def real_token_routing(model, record, mask):
    """load_real_tokens / importance_real_tokens of every MoE layer: the router on real rows only."""
    out = {}
    keep = mask.reshape(-1) == 1
    for layer in range(model.config.num_layers):
        if not model.config.moe_layers[layer]:
            continue
        rows = record[f"layers.{layer}.moe_in"].reshape(-1, model.config.hidden_size)[keep]
        routing = model.route(layer, rows)
        out[f"layers.{layer}.load_real_tokens"] = routing["load"]
        out[f"layers.{layer}.importance_real_tokens"] = routing["importance"]
    return out


def main(argv):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("inputs_json", nargs="?", help="defaults to <model_dir>/inputs.json")
    parser.add_argument("--float64", action="store_true")
    args = parser.parse_args(argv)
    model = FamilyReference.from_dir(args.model_dir, torch.float64 if args.float64 else torch.float32)
    with open(args.inputs_json or os.path.join(args.model_dir, "inputs.json")) as f:
        inputs = json.load(f)
    for name, value in expected_tensors(model, inputs).items():
        print(f"{name:40s} {str(value.dtype):8s} {list(value.shape)}")


if __name__ == "__main__":
    main(sys.argv[1:])
