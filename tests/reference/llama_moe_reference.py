"""Standalone PyTorch reference of LLaMA-MoE (v1) and plain LLaMA, written from
docs/llama-moe-spec.md (sections 1, 2 and 4).

Runs in float32 (default) or float64 (bfloat16 works too, for speed measurements only).
Weights stored as BF16/F16 are upcast on load.
What it computes, per layer: RMSNorm -> GQA attention with rotate-half RoPE (none, linear or
dynamic-NTK scaling) and an additive mask -> residual -> RMSNorm -> MoE (or dense SwiGLU MLP)
-> residual; then the final norm and a head (causal LM, sequence classification or extractive
QA). Every intermediate the golden files name can be recorded.

Usage as a library:
    model = LlamaMoEReference.from_dir("tests/fixtures/uneven_experts")
    out = model.forward(input_ids, attention_mask, position_ids, record={})
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

MASK_VALUE = torch.finfo(torch.float32).min  # upstream sets masked scores to this value


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


class ModelConfig:
    """The config.json fields that change the forward pass, with upstream repo defaults."""

    def __init__(self, raw):
        self.raw = dict(raw)
        self.model_type = raw.get("model_type", "llama_moe")
        self.is_moe = self.model_type == "llama_moe"
        self.architectures = raw.get("architectures") or ["LlamaMoEForCausalLM"]
        self.vocab_size = raw["vocab_size"]
        self.hidden_size = raw["hidden_size"]
        self.intermediate_size = raw["intermediate_size"]
        self.num_layers = raw["num_hidden_layers"]
        self.num_heads = raw["num_attention_heads"]
        self.num_kv_heads = raw.get("num_key_value_heads") or self.num_heads
        if self.hidden_size % self.num_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        self.head_dim = self.hidden_size // self.num_heads
        self.rms_norm_eps = raw.get("rms_norm_eps", 1e-6)
        self.rope_theta = raw.get("rope_theta", 10000.0)
        self.rope_scaling = raw.get("rope_scaling")
        self.max_position_embeddings = raw.get("max_position_embeddings", 2048)
        self.tie_word_embeddings = raw.get("tie_word_embeddings", False)
        self.pad_token_id = raw.get("pad_token_id")
        self.num_labels = len(raw["id2label"]) if "id2label" in raw else raw.get("num_labels", 2)
        if raw.get("hidden_act", "silu") != "silu":
            raise ValueError("only hidden_act silu is supported")
        if self.is_moe:
            self._init_moe(raw)

    def _init_moe(self, raw):
        """MoE fields: experts, top-k, expert sizes, gate kind, score handling."""
        self.num_experts = raw.get("num_experts", 16)
        self.num_selects = raw.get("num_selects", 4)
        if self.num_selects > self.num_experts:
            raise ValueError("num_selects must be <= num_experts")
        self.gate_network = str(raw.get("gate_network", "mlp")).lower()
        if self.gate_network not in ("mlp", "linear"):
            raise ValueError(f"unknown gate_network {self.gate_network!r}")
        self.gate_use_softmax = raw.get("gate_use_softmax", True)
        self.multiply_gate_scores = raw.get("multiply_gate_scores", True)
        sizes = raw.get("size_experts")
        if sizes is None:
            if self.intermediate_size % self.num_experts:
                raise ValueError("intermediate_size must divide evenly into num_experts")
            sizes = [[self.intermediate_size // self.num_experts] * self.num_experts] * self.num_layers
        for layer_sizes in sizes:
            if len(layer_sizes) != self.num_experts or sum(layer_sizes) != self.intermediate_size:
                raise ValueError("size_experts rows must have num_experts entries summing to intermediate_size")
        self.size_experts = sizes
        # null score_scale_factor follows the transformers port (E / K); repo default is 1.0
        ssf = raw.get("score_scale_factor", 1.0)
        if ssf is None:
            ssf = self.num_experts / self.num_selects
        self.score_scale_factor = list(ssf) if isinstance(ssf, list) else [float(ssf)] * self.num_layers

    @property
    def architecture(self):
        return self.architectures[0]

    @property
    def body_prefix(self):
        """State-dict prefix of the decoder body ('transformer.' for the QA head)."""
        return "transformer." if self.architecture.endswith("ForQuestionAnswering") else "model."


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def accum_dtype(dtype):
    """Precision for norms, RoPE angles, masks and softmax: float64 in float64 runs, else float32
    (bfloat16 runs keep these in float32, as upstream does)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rms_norm(x, weight, eps):
    """weight * x / sqrt(mean(x^2) + eps); statistics in float32/64, cast back before the weight."""
    x_acc = x.to(accum_dtype(x.dtype))
    variance = x_acc.pow(2).mean(-1, keepdim=True)
    return weight * (x_acc * torch.rsqrt(variance + eps)).to(x.dtype)


def rope_inv_freq(config, key_length, dtype):
    """inverse frequencies, with dynamic-NTK rescaling of theta when key_length > max_pos."""
    d = config.head_dim
    theta = config.rope_theta
    scaling = config.rope_scaling
    if scaling and scaling["type"] == "dynamic" and key_length > config.max_position_embeddings:
        factor = scaling["factor"]
        ratio = factor * key_length / config.max_position_embeddings - (factor - 1)
        theta = theta * ratio ** (d / (d - 2))
    exponents = torch.arange(0, d, 2, dtype=dtype) / d
    return 1.0 / (theta**exponents)


def rope_cos_sin(config, position_ids, key_length, dtype):
    """cos, sin of shape [B, T, head_dim] for the given positions (rotate-half layout), computed
    in float32/64 and returned in dtype."""
    acc = accum_dtype(dtype)
    inv_freq = rope_inv_freq(config, key_length, acc)
    positions = position_ids.to(acc)
    scaling = config.rope_scaling
    if scaling and scaling["type"] == "linear":
        positions = positions / scaling["factor"]
    angles = positions[..., None] * inv_freq  # [B, T, d/2]
    emb = torch.cat([angles, angles], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    """concat(-x[d/2:], x[:d/2]) on the last axis."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x: [B, heads, T, d]; cos/sin: [B, T, d]."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def additive_mask(attention_mask, query_length, dtype):
    """[B, 1, T, P+T] mask: 0 where allowed, finfo(float32).min (set, not added) where the key
    is in the future of the query or is padding. attention_mask: [B, P+T] of 0/1."""
    batch, key_length = attention_mask.shape
    past = key_length - query_length
    q_pos = torch.arange(query_length)[:, None] + past
    k_pos = torch.arange(key_length)[None, :]
    future = k_pos > q_pos  # [T, S]
    padding = attention_mask[:, None, :] == 0  # [B, 1, S]
    forbidden = future[None] | padding  # [B, T, S]
    mask = torch.zeros(batch, 1, query_length, key_length, dtype=dtype)
    return mask.masked_fill(forbidden[:, None], MASK_VALUE)


def swiglu(x, w_gate, w_up, w_down):
    """down(silu(gate x) * up x) with [out, in] weights."""
    return (torch.nn.functional.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def top_k_by_logit(logits, k):
    """Indices and values of the k largest logits per row, descending; ties -> lower index."""
    values, indices = torch.sort(logits, dim=-1, descending=True, stable=True)
    return indices[:, :k], values[:, :k]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class LlamaMoEReference:
    """LLaMA-MoE / LLaMA forward pass with optional KV cache and intermediate recording."""

    def __init__(self, config, weights, dtype=torch.float32):
        """config: dict (config.json) or ModelConfig; weights: {name: numpy array}."""
        self.config = config if isinstance(config, ModelConfig) else ModelConfig(config)
        self.dtype = dtype
        # A bf16 KV cache: keys (after RoPE) and values rounded to bf16 (nearest even) before
        # every attention, prefill and decode alike; queries, scores and softmax keep self.dtype.
        self.kv_bf16 = False
        self.weights = {
            name: torch.from_numpy(np.asarray(value)).to(dtype)
            for name, value in weights.items()
            if np.asarray(value).dtype.kind == "f"
        }
        self.prefix = self.config.body_prefix

    @classmethod
    def from_dir(cls, model_dir, dtype=torch.float32):
        """Build from a model folder (config.json + safetensors / sharded / .bin weights)."""
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
        return cls(config, safetensors_io.load_model_dir(model_dir), dtype)

    # ---- weight access ----------------------------------------------------------------------

    def w(self, name):
        """Weight by full state-dict name."""
        return self.weights[name]

    def body(self, name):
        """Weight of the decoder body (adds the 'model.'/'transformer.' prefix)."""
        return self.weights[self.prefix + name]

    def maybe_body(self, name):
        """Optional body weight (attention biases), or None."""
        return self.weights.get(self.prefix + name)

    def lm_head_weight(self):
        if self.config.tie_word_embeddings and "lm_head.weight" not in self.weights:
            return self.body("embed_tokens.weight")
        return self.w("lm_head.weight")

    # ---- layers -----------------------------------------------------------------------------

    def linear(self, x, name):
        """x W^T (+ b if the checkpoint has a bias)."""
        y = x @ self.body(name + ".weight").T
        bias = self.maybe_body(name + ".bias")
        return y if bias is None else y + bias

    def attention(self, layer, x, cos, sin, mask, cache):
        """Self-attention of one layer; appends this call's keys/values to cache[layer]."""
        cfg = self.config
        batch, length, _ = x.shape
        p = f"layers.{layer}.self_attn."
        q = self.linear(x, p + "q_proj").view(batch, length, cfg.num_heads, cfg.head_dim).transpose(1, 2)
        k = self.linear(x, p + "k_proj").view(batch, length, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.linear(x, p + "v_proj").view(batch, length, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.kv_bf16:
            k, v = k.to(torch.bfloat16).to(k.dtype), v.to(torch.bfloat16).to(v.dtype)
        if cache is not None:
            if cache[layer] is not None:
                k = torch.cat([cache[layer][0], k], dim=2)
                v = torch.cat([cache[layer][1], v], dim=2)
            cache[layer] = (k, v)
        n_rep = cfg.num_heads // cfg.num_kv_heads
        k = k.repeat_interleave(n_rep, dim=1)
        v = v.repeat_interleave(n_rep, dim=1)
        scores = ((q @ k.transpose(2, 3)) / math.sqrt(cfg.head_dim)).to(mask.dtype) + mask
        probs = torch.softmax(scores, dim=-1).to(v.dtype)
        out = (probs @ v).transpose(1, 2).reshape(batch, length, cfg.hidden_size)
        return self.linear(out, p + "o_proj")

    def gate_logits(self, layer, rows):
        """Router logits [N, E]: W2 tanh(W1 x) (mlp) or W x (linear)."""
        p = f"layers.{layer}.mlp.gate.gate_network."
        if self.config.gate_network == "mlp":
            return torch.tanh(rows @ self.body(p + "0.weight").T) @ self.body(p + "2.weight").T
        return rows @ self.body(p + "weight").T

    def route(self, layer, rows):
        """Gate logits, top-k indices/scores (pre-scale), load and importance for rows [N, H]."""
        cfg = self.config
        logits = self.gate_logits(layer, rows)
        indices, selected = top_k_by_logit(logits, cfg.num_selects)
        if cfg.gate_use_softmax:
            scores = torch.softmax(selected.to(accum_dtype(selected.dtype)), dim=-1).to(selected.dtype)
        else:
            scores = selected
        scattered = torch.zeros_like(logits).scatter(1, indices, scores)
        load = (scattered > 0).sum(0)
        importance = scattered.sum(0)
        return {"gate_logits": logits, "topk_indices": indices, "topk_scores": scores,
                "load": load, "importance": importance}

    def moe(self, layer, x, record):
        """MoE block on x [B, T, H]: route every row, run the selected experts, weighted sum."""
        cfg = self.config
        rows = x.reshape(-1, cfg.hidden_size)
        routing = self.route(layer, rows)
        weights = routing["topk_scores"]
        if cfg.multiply_gate_scores:
            weights = weights * cfg.score_scale_factor[layer]
        else:
            weights = torch.ones_like(weights)
        out = torch.zeros_like(rows)
        p = f"layers.{layer}.mlp.calculator.experts."
        for e in range(cfg.num_experts):
            token, slot = (routing["topk_indices"] == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            y = swiglu(rows[token], self.body(p + f"weight_gate.{e}"), self.body(p + f"weight_up.{e}"),
                       self.body(p + f"weight_down.{e}"))
            # .to(): under bf16 autocast y is bf16 while out keeps the residual's dtype.
            out.index_add_(0, token, (y * weights[token, slot][:, None]).to(out.dtype))
        if record is not None:
            for name, value in routing.items():
                record[f"layers.{layer}.{name}"] = value
        return out.view_as(x)

    def dense_mlp(self, layer, x):
        """Plain LLaMA SwiGLU MLP."""
        p = f"layers.{layer}.mlp."
        return swiglu(x, self.body(p + "gate_proj.weight"), self.body(p + "up_proj.weight"),
                      self.body(p + "down_proj.weight"))

    def decoder_layer(self, layer, h, cos, sin, mask, cache, record):
        """One pre-norm decoder layer; records attn_out, moe_in, moe_out, hidden_out."""
        eps = self.config.rms_norm_eps
        attn_in = rms_norm(h, self.body(f"layers.{layer}.input_layernorm.weight"), eps)
        attn_out = self.attention(layer, attn_in, cos, sin, mask, cache)
        h = h + attn_out
        moe_in = rms_norm(h, self.body(f"layers.{layer}.post_attention_layernorm.weight"), eps)
        if self.config.is_moe:
            moe_out = self.moe(layer, moe_in, record)
        else:
            moe_out = self.dense_mlp(layer, moe_in)
        h = h + moe_out
        if record is not None:
            record[f"layers.{layer}.attn_out"] = attn_out
            record[f"layers.{layer}.moe_in"] = moe_in
            record[f"layers.{layer}.moe_out"] = moe_out
            record[f"layers.{layer}.hidden_out"] = h
        return h

    # ---- whole model ------------------------------------------------------------------------

    def new_cache(self):
        """Empty KV cache: one (keys, values) slot per layer, keys already rotated."""
        return [None] * self.config.num_layers

    def body_forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, record=None):
        """Embeddings -> layers -> final norm. input_ids [B, T]; attention_mask [B, P+T] covers
        cached and new tokens; position_ids default to arange(P, P+T). Returns [B, T, H]."""
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
        batch, length = input_ids.shape
        past = 0 if cache is None or cache[0] is None else cache[0][0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(batch, past + length, dtype=torch.long)
        attention_mask = torch.as_tensor(attention_mask, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(past, past + length).expand(batch, length)
        position_ids = torch.as_tensor(position_ids, dtype=torch.long)
        cos, sin = rope_cos_sin(self.config, position_ids, past + length, self.dtype)
        mask = additive_mask(attention_mask, length, accum_dtype(self.dtype))
        h = self.body("embed_tokens.weight")[input_ids]
        if record is not None:
            record["embeddings"] = h
        for layer in range(self.config.num_layers):
            h = self.decoder_layer(layer, h, cos, sin, mask, cache, record)
        h = rms_norm(h, self.body("norm.weight"), self.config.rms_norm_eps)
        if record is not None:
            record["final_hidden"] = h
        return h

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, record=None):
        """Body plus the head named by config.architectures. Returns a dict of outputs:
        causal LM: logits [B, T, V]; sequence classification: cls_logits [B, labels] and
        pooled_index [B]; question answering: start_logits, end_logits [B, T]."""
        h = self.body_forward(input_ids, attention_mask, position_ids, cache, record)
        arch = self.config.architecture
        if arch.endswith("ForSequenceClassification"):
            out = self.classify(torch.as_tensor(input_ids, dtype=torch.long), h)
        elif arch.endswith("ForQuestionAnswering"):
            logits = h @ self.w("qa_outputs.weight").T + self.w("qa_outputs.bias")
            out = {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
        else:
            out = {"logits": h @ self.lm_head_weight().T}
        if record is not None:
            record.update(out)
        return out

    def classify(self, input_ids, h):
        """Sequence-classification head: score every position, pool at the token before the
        first pad ((argmax(ids == pad) - 1) mod T; last token when there is no pad)."""
        length = input_ids.shape[1]
        all_logits = h @ self.w("score.weight").T  # [B, T, labels]
        if self.config.pad_token_id is None:
            index = torch.full((input_ids.shape[0],), length - 1, dtype=torch.long)
        else:
            is_pad = (input_ids == self.config.pad_token_id).long()
            index = (is_pad.argmax(-1) - 1) % length
        pooled = all_logits[torch.arange(input_ids.shape[0]), index]
        return {"cls_logits": pooled, "pooled_index": index}

    def greedy_generate(self, prompt_ids, max_new_tokens, attention_mask=None):
        """Greedy decoding through the KV cache: prefill the prompt, then one token per step.
        Positions follow cumsum(mask) - 1 (padding -> 1). Returns step_logits [B, N, V],
        generated_ids [B, N], sequence_ids [B, T + N]."""
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


def generation_positions(attention_mask):
    """Upstream prepare_inputs_for_generation: cumsum(mask) - 1, padding positions set to 1."""
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


# --------------------------------------------------------------------------------------------
# Golden-format expected tensors
# --------------------------------------------------------------------------------------------

INT_TENSORS = ("input_ids", "attention_mask", "position_ids", "pooled_index", "generated_ids", "sequence_ids")


def to_numpy(name, value):
    """Golden dtypes: I32 for ids/indices/load/pooled_index, F32 for everything else."""
    value = value.detach()
    if name in INT_TENSORS or name.endswith(".topk_indices") or name.endswith(".load"):
        return value.numpy().astype(np.int32)
    return value.numpy().astype(np.float32)


def expected_tensors(model, inputs):
    """Everything an expected.safetensors holds for these inputs (the inputs.json dict):
    the recorded forward pass, plus real-token routing statistics when there is padding and the
    generation tensors when inputs has max_new_tokens."""
    ids = torch.tensor(inputs["input_ids"])
    mask = torch.tensor(inputs["attention_mask"])
    positions = inputs.get("position_ids_passed_to_forward")
    record = {}
    model.forward(ids, mask, None if positions is None else torch.tensor(positions), record=record)
    out = {"input_ids": ids, "attention_mask": mask, "position_ids": torch.tensor(inputs["position_ids"])}
    out.update(record)
    if model.config.is_moe and bool((mask == 0).any()):
        out.update(real_token_routing(model, record, mask))
    if "max_new_tokens" in inputs:
        gen = model.greedy_generate(ids, inputs["max_new_tokens"], mask)
        out.update(gen)
        full = model.forward(gen["sequence_ids"][:, :-1])
        out["full_logits"] = full["logits"]
    return {name: to_numpy(name, value) for name, value in out.items()}


def real_token_routing(model, record, mask):
    """load_real_tokens / importance_real_tokens: the gate applied to non-padding moe_in rows."""
    out = {}
    keep = mask.reshape(-1) == 1
    for layer in range(model.config.num_layers):
        rows = record[f"layers.{layer}.moe_in"].reshape(-1, model.config.hidden_size)[keep]
        routing = model.route(layer, rows)
        out[f"layers.{layer}.load_real_tokens"] = routing["load"]
        out[f"layers.{layer}.importance_real_tokens"] = routing["importance"]
    return out


def main(argv):
    """CLI: print the reference's logits summary for a model folder and an inputs.json."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("inputs_json", nargs="?", help="defaults to <model_dir>/inputs.json")
    parser.add_argument("--float64", action="store_true")
    args = parser.parse_args(argv)
    model = LlamaMoEReference.from_dir(args.model_dir, torch.float64 if args.float64 else torch.float32)
    with open(args.inputs_json or os.path.join(args.model_dir, "inputs.json")) as f:
        inputs = json.load(f)
    for name, value in expected_tensors(model, inputs).items():
        print(f"{name:40s} {str(value.dtype):8s} {list(value.shape)}")


if __name__ == "__main__":
    main(sys.argv[1:])
