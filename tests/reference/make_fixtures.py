"""Regenerate every case under tests/fixtures/ from fixed seeds with the project's reference.

Usage: /usr/bin/python3 tests/reference/make_fixtures.py [--out tests/fixtures] [CASE ...]

Each case folder has the golden layout (see tests/golden/README.md): config.json, the
weights (model.safetensors, or shards + index), inputs.json, expected.safetensors and README.md.
Weights and inputs are drawn from numpy's PCG64 with a per-case seed; a draw is rejected (and
the seed incremented) until every routed token has a gap >= MIN_MARGIN between its k-th and
(k+1)-th gate logit and between consecutive logits inside its top-k (and, where relevant,
|selected logit| >= MIN_MARGIN with softmax off, and top-1/top-2 logit gap >= MIN_MARGIN at
every greedy step), so routing and argmax are stable against float error.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402
import safetensors_io  # noqa: E402
from llama_moe_reference import LlamaMoEReference, expected_tensors  # noqa: E402

MIN_MARGIN = 1e-3
MAX_ATTEMPTS = 500
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def random_sequences(rng, vocab, batch, length):
    """BOS (1) followed by ids in 3..vocab-1, one row per sequence."""
    ids = rng.integers(3, vocab, size=(batch, length))
    ids[:, 0] = 1
    return ids.tolist()


def plain_inputs(rng, config, batch=1, length=12):
    """No padding; forward gets no position_ids (arange)."""
    ids = random_sequences(rng, config["vocab_size"], batch, length)
    return {
        "input_ids": ids,
        "attention_mask": [[1] * length for _ in ids],
        "padding_side": "none",
        "pad_token_id": 0,
        "position_ids": [list(range(length)) for _ in ids],
        "position_ids_passed_to_forward": None,
        "note": "No padding. forward was called with input_ids, an all-ones attention_mask and "
                "position_ids=None, so positions are arange(0, seq_len), which is what `position_ids` lists.",
    }


def right_padded_inputs(rng, config, lengths):
    """Right padding with pad id 0 to max(lengths); forward gets no position_ids (arange)."""
    total = max(lengths)
    ids = random_sequences(rng, config["vocab_size"], len(lengths), total)
    mask = [[1] * n + [0] * (total - n) for n in lengths]
    ids = [[t if m else 0 for t, m in zip(row, mrow)] for row, mrow in zip(ids, mask)]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "padding_side": "right",
        "pad_token_id": 0,
        "position_ids": [list(range(total)) for _ in ids],
        "position_ids_passed_to_forward": None,
        "note": "Right padding with pad_token_id 0, attention_mask 0 on padding, position_ids=None "
                "(arange). Padding queries attend to the real tokens before them; padding keys are "
                "masked. Padding rows are routed and counted in load/importance as upstream does; "
                "load_real_tokens/importance_real_tokens count real tokens only.",
    }


def generation_inputs(rng, config, length, new_tokens):
    """Prompt for greedy decoding; generated ids are filled in after the run."""
    inputs = plain_inputs(rng, config, 1, length)
    inputs["note"] += (" The generation loop starts from this prompt; each step feeds only the newest "
                       "token through the KV cache and appends a 1 to the attention mask.")
    inputs.update({
        "max_new_tokens": new_tokens,
        "decoding": "greedy (argmax of the last position's logits), no sampling, no logits processors, no early stop",
        "use_cache": True,
    })
    return inputs


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


class Case:
    """One fixture: name, seed, config, input maker, weight storage and README text."""

    def __init__(self, name, seed, config, make_inputs, covers, storage="safetensors"):
        self.name = name
        self.seed = seed
        self.config = config
        self.make_inputs = make_inputs
        self.covers = covers
        self.storage = storage  # safetensors | bf16 | sharded_safetensors | sharded_bin

    @property
    def bf16(self):
        return self.storage in ("bf16", "sharded_bin")


def cases():
    """All fixture cases."""
    uneven = [[16, 48, 32, 40, 24, 32, 40, 24], [40, 24, 16, 32, 48, 24, 32, 40]]
    labels = ["negative", "neutral", "positive"]
    return [
        Case("uneven_experts", 1000, mb.moe_config(size_experts=uneven, score_scale_factor=4.0),
             lambda r, c: plain_inputs(r, c, 1, 16),
             ["size_experts given per layer with different widths per expert "
              f"(layer 0: {uneven[0]}, layer 1: {uneven[1]}), summing to intermediate_size 256",
              "MLP gate, top-2 of 8, softmax scores, score_scale_factor 4.0"]),
        Case("rope_linear", 2000,
             mb.moe_config(rope_scaling={"type": "linear", "factor": 2.0}, max_position_embeddings=16),
             lambda r, c: plain_inputs(r, c, 1, 24),
             ["rope_scaling linear, factor 2.0: positions divided by 2 before computing angles",
              "24 tokens with max_position_embeddings 16 (linear scaling applies at every position)"]),
        Case("rope_dynamic", 3000,
             mb.moe_config(rope_scaling={"type": "dynamic", "factor": 2.0}, max_position_embeddings=16),
             lambda r, c: plain_inputs(r, c, 1, 24),
             ["rope_scaling dynamic (NTK), factor 2.0, max_position_embeddings 16",
              "one call with 24 tokens > 16, so theta' = theta * (2 * 24 / 16 - 1) ** (d / (d - 2)) "
              "= 10000 * 2 ** (16 / 14) is used for all positions (head_dim 16)"]),
        Case("rope_dynamic_long", 3100,
             mb.moe_config(rope_scaling={"type": "dynamic", "factor": 2.0}, max_position_embeddings=16,
                           intermediate_size=128),
             lambda r, c: plain_inputs(r, c, 1, 40),
             ["rope_scaling dynamic (NTK), factor 2.0, max_position_embeddings 16",
              "one call with 40 tokens = 2.5 x max_position_embeddings, past max_position_embeddings x "
              "factor = 32 (no length limit, as upstream): theta' = theta * (2 * 40 / 16 - 1) ** (d / (d - 2)) "
              "= 10000 * 4 ** (16 / 14) for all positions (head_dim 16)"]),
        Case("generation_dynamic_long", 3200,
             mb.moe_config(rope_scaling={"type": "dynamic", "factor": 2.0}, max_position_embeddings=16,
                           hidden_size=32, intermediate_size=128, num_key_value_heads=2),
             lambda r, c: generation_inputs(r, c, 12, 28),
             ["greedy decoding of 28 new tokens from a 12-token prompt through the KV cache, "
              "rope_scaling dynamic (NTK), factor 2.0, max_position_embeddings 16",
              "the prefill (12 tokens) is unscaled; each step's theta follows its key length "
              "(cached + new tokens), past 16 and past max_position_embeddings x factor = 32 up to "
              "40 = 2.5 x max_position_embeddings; cached keys keep the rotation they were written with",
              "so step_logits differ from full_logits at every step: full_logits is one call over "
              "sequence_ids[:, :-1] (39 tokens), with the theta of key length 39 for every position",
              "expected adds step_logits [1, 28, V], generated_ids [1, 28], sequence_ids [1, 40] and "
              "full_logits [1, 39, V]; per-layer tensors are those of the prefill",
              "4 query heads / 2 KV heads, head_dim 8, hidden 32"]),
        Case("bf16_weights", 4000, mb.moe_config(torch_dtype="bfloat16", num_key_value_heads=2),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["all weights stored as BF16 in model.safetensors (torch_dtype bfloat16), "
              "including the rotary_emb.inv_freq buffers",
              "expected values computed in float32 from the upcast BF16 weights",
              "4 query heads / 2 KV heads"], storage="bf16"),
        Case("softmax_off", 5000,
             mb.moe_config(gate_use_softmax=False, num_selects=3, score_scale_factor=[1.5, 0.5]),
             lambda r, c: plain_inputs(r, c, 1, 16),
             ["gate_use_softmax false: topk_scores are the raw selected logits (can be negative)",
              "load counts only selected experts whose raw logit is > 0",
              "top-3 of 8 experts, score_scale_factor per layer [1.5, 0.5]"]),
        Case("tied_embeddings", 6000, mb.moe_config(tie_word_embeddings=True),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["tie_word_embeddings true: no lm_head.weight in the file; logits use "
              "model.embed_tokens.weight"]),
        Case("seq_classification", 7000,
             mb.moe_config(architectures=["LlamaMoEForSequenceClassification"],
                           id2label={str(i): l for i, l in enumerate(labels)},
                           label2id={l: i for i, l in enumerate(labels)}),
             lambda r, c: right_padded_inputs(r, c, [12, 7]),
             ["LlamaMoEForSequenceClassification, 3 labels: score.weight [3, 64], no bias, no lm_head",
              "batch of 2, right-padded with pad id 0 (lengths 12 and 7)",
              "pooling at (argmax(input_ids == pad_token_id) - 1) mod T: the token before the first pad, "
              "the last token when there is none; expected adds cls_logits [B, 3] and pooled_index [B]",
              "expected has no `logits` (there is no LM head)"]),
        Case("question_answering", 8000,
             mb.moe_config(architectures=["LlamaMoEForQuestionAnswering"]),
             lambda r, c: plain_inputs(r, c, 2, 10),
             ["LlamaMoEForQuestionAnswering: body keys prefixed `transformer.` instead of `model.`",
              "qa_outputs.weight [2, 64] and qa_outputs.bias [2]; expected adds start_logits and "
              "end_logits [B, T] and has no `logits`",
              "batch of 2 sequences of 10 tokens, no padding"]),
        Case("sharded_safetensors", 9000, mb.moe_config(num_key_value_heads=2),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["weights split into model-00001-of-00002.safetensors and model-00002-of-00002.safetensors "
              "with model.safetensors.index.json ({metadata: {total_size}, weight_map})",
              "F32 weights; otherwise a plain MLP-gate model (4 heads / 2 KV heads)"],
             storage="sharded_safetensors"),
        Case("sharded_bin", 10000, mb.moe_config(torch_dtype="bfloat16", num_key_value_heads=2),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["weights as torch.save zip-format pickles pytorch_model-00001-of-00002.bin and "
              "pytorch_model-00002-of-00002.bin (OrderedDict of BF16 tensors, as the released base "
              "checkpoints) with pytorch_model.bin.index.json",
              "includes the rotary_emb.inv_freq buffers (BF16) like real checkpoints; ignore them",
              "expected values computed in float32 from the upcast BF16 weights"],
             storage="sharded_bin"),
        Case("dense_llama", 11000, mb.llama_config(num_key_value_heads=2),
             lambda r, c: plain_inputs(r, c, 1, 12),
             ["plain LLaMA: model_type llama, architectures [LlamaForCausalLM], HF LlamaConfig keys",
              "dense SwiGLU MLP model.layers.{i}.mlp.{gate,up,down}_proj.weight (intermediate 256)",
              "expected has no routing tensors; layers.{l}.moe_out is the MLP output",
              "4 query heads / 2 KV heads; no rotary_emb.inv_freq keys"]),
        Case("generation_gqa", 12000,
             mb.moe_config(gate_network="linear", num_experts=16, num_selects=4, num_attention_heads=8,
                           num_key_value_heads=2, score_scale_factor=4.0, rms_norm_eps=1e-5),
             lambda r, c: generation_inputs(r, c, 8, 12),
             ["greedy decoding of 12 new tokens from an 8-token prompt through the KV cache "
              "(step 0 = prefill, then one token per step)",
              "linear gate, top-4 of 16 experts (16 wide each), score_scale_factor 4.0",
              "8 query heads / 2 KV heads (head_dim 8, groups of 4)",
              "expected adds step_logits [1, 12, V], generated_ids [1, 12], sequence_ids [1, 20] and "
              "full_logits [1, 19, V] (one forward without cache over sequence_ids[:, :-1]); "
              "per-layer tensors are those of the prefill"]),
    ]


# --------------------------------------------------------------------------------------------
# Drawing with routing margins
# --------------------------------------------------------------------------------------------


def draw(case, seed):
    """Weights (float32, BF16-rounded for BF16 cases) and inputs for one seed."""
    rng = np.random.default_rng(seed)
    weights = mb.random_weights(case.config, rng, with_inv_freq=case.config["model_type"] == "llama_moe")
    if case.bf16:
        weights = {n: safetensors_io.round_to_bf16(v) for n, v in weights.items()}
    inputs = case.make_inputs(rng, case.config)
    return weights, inputs


def routing_margins(model, expected):
    """Smallest k/(k+1) gap, smallest gap inside a top-k, smallest |selected logit|, experts
    without tokens, and non-positive selected logits, over the main forward pass and, for
    generation, the no-cache pass over the whole sequence (which routes every decoded token)."""
    cfg = model.config
    if not cfg.is_moe:
        return None
    logit_sets = [[expected[f"layers.{l}.gate_logits"] for l in range(cfg.num_layers)]]
    if "sequence_ids" in expected:
        record = {}
        model.forward(torch.from_numpy(expected["sequence_ids"][:, :-1]).long(), record=record)
        logit_sets.append([record[f"layers.{l}.gate_logits"].numpy() for l in range(cfg.num_layers)])
    k = cfg.num_selects
    gap = inner = selected_abs = float("inf")
    for logits_per_layer in logit_sets:
        for logits in logits_per_layer:
            ordered = -np.sort(-logits.astype(np.float64), axis=-1)
            if k < cfg.num_experts:
                gap = min(gap, float((ordered[:, k - 1] - ordered[:, k]).min()))
            if k > 1:
                inner = min(inner, float(np.diff(-ordered[:, :k], axis=-1).min()))
            selected_abs = min(selected_abs, float(np.abs(ordered[:, :k]).min()))
    unused = [(l, e) for l in range(cfg.num_layers) for e in range(cfg.num_experts)
              if expected[f"layers.{l}.load"][e] == 0 and not (expected[f"layers.{l}.topk_indices"] == e).any()]
    nonpositive = sum(int((expected[f"layers.{l}.topk_scores"] <= 0).sum()) for l in range(cfg.num_layers)) \
        if not cfg.gate_use_softmax else 0
    return {"topk_gap": gap, "inner_gap": inner, "selected_abs": selected_abs, "unused": unused,
            "nonpositive_selected": nonpositive}


def argmax_margin(expected):
    """Smallest gap between the best and second-best logit over the greedy steps."""
    if "step_logits" not in expected:
        return None
    top2 = -np.sort(-expected["step_logits"].astype(np.float64), axis=-1)[..., :2]
    return float((top2[..., 0] - top2[..., 1]).min())


def margins_ok(model, margins, greedy_gap):
    """Every margin that matters for this case is >= MIN_MARGIN."""
    checks = []
    if margins is not None:
        checks += [margins["topk_gap"], margins["inner_gap"]]
        if not model.config.gate_use_softmax:
            checks.append(margins["selected_abs"])
            checks.append(MIN_MARGIN if margins["nonpositive_selected"] > 0 else 0.0)  # must exercise it
    if greedy_gap is not None:
        checks.append(greedy_gap)
    return all(c >= MIN_MARGIN for c in checks)


def find_stable_draw(case):
    """First seed from case.seed whose routing margins are all >= MIN_MARGIN."""
    for attempt in range(MAX_ATTEMPTS):
        seed = case.seed + attempt
        weights, inputs = draw(case, seed)
        model = LlamaMoEReference(case.config, weights)
        expected = expected_tensors(model, inputs)
        margins = routing_margins(model, expected)
        greedy_gap = argmax_margin(expected)
        if margins_ok(model, margins, greedy_gap):
            return seed, weights, inputs, model, expected, margins, greedy_gap
    raise RuntimeError(f"{case.name}: no draw with margins >= {MIN_MARGIN} in {MAX_ATTEMPTS} seeds")


# --------------------------------------------------------------------------------------------
# Writing a case
# --------------------------------------------------------------------------------------------


def write_inputs(path, inputs):
    """inputs.json with one key per line, as the golden files."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in inputs.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def write_weights(case, folder, weights):
    """Weights in the storage format the case exercises."""
    if case.storage == "sharded_safetensors":
        mb.write_sharded_safetensors(folder, weights)
    elif case.storage == "sharded_bin":
        mb.write_sharded_bin(folder, weights)
    else:
        mb.write_safetensors_model(folder, weights, bf16=case.bf16)


def float64_diffs(case, weights, inputs, expected):
    """Max |float32 - float64| per tensor group (error scale), and whether routing agrees."""
    ref64 = expected_tensors(LlamaMoEReference(case.config, weights, torch.float64), inputs)
    groups = {}
    same_routing = True
    for name, want in expected.items():
        if want.dtype.kind != "f":
            same_routing &= bool(np.array_equal(want, ref64[name]))
            continue
        group = "layers.*." + name.split(".", 2)[2] if name.startswith("layers.") else name
        diff = float(np.abs(want.astype(np.float64) - ref64[name].astype(np.float64)).max())
        groups[group] = max(groups.get(group, 0.0), diff)
    return groups, same_routing


def readme_text(case, seed, margins, greedy_gap, errors, same_routing, files, expected):
    """The case README: coverage, seed, margins, float64 error scale, files, tensors."""
    cfg = case.config
    lines = [f"# Fixture `{case.name}`", "",
             "Generated by `tests/reference/make_fixtures.py` with the project's PyTorch reference "
             "(`tests/reference/llama_moe_reference.py`, float32); not produced by upstream code. "
             "File formats as in `tests/golden/README.md`.", "", "## What it covers", ""]
    lines += [f"- {c}" for c in case.covers]
    lines += ["", "## Shape", "",
              f"{cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
              f"{cfg['num_attention_heads']} heads / {cfg['num_key_value_heads']} KV heads, vocab "
              f"{cfg['vocab_size']}, intermediate {cfg['intermediate_size']}"
              + (f", {cfg['num_experts']} experts top-{cfg['num_selects']}, gate {cfg['gate_network']}"
                 if cfg["model_type"] == "llama_moe" else ", dense MLP")
              + f"; input {list(expected['input_ids'].shape)}. numpy PCG64 seed {seed}.", ""]
    if margins is not None:
        lines += ["## Routing margins", "",
                  f"- smallest gap between the k-th and (k+1)-th gate logit of any routed token: {margins['topk_gap']:.2e}"
                  if margins["topk_gap"] != float("inf") else "- k = E: every expert is selected",
                  f"- smallest gap between consecutive logits inside a top-k: {margins['inner_gap']:.2e}"]
        if not cfg.get("gate_use_softmax", True):
            lines += [f"- smallest |selected logit|: {margins['selected_abs']:.2e}",
                      f"- selections with a non-positive logit (not counted in load): {margins['nonpositive_selected']}"]
        lines += [f"- experts that received no token (layer, expert): {margins['unused'] or 'none'}"]
        if "sequence_ids" in expected:
            lines += ["- margins cover the prefill and every decoded token"]
        lines += [""]
    if greedy_gap is not None:
        lines += [f"Smallest gap between the best and second-best logit at any greedy step: {greedy_gap:.2e}", ""]
    lines += ["## Tolerances", "",
              "Max |float32 - float64| of the reference on the same weights "
              f"(routing {'identical' if same_routing else 'DIFFERENT'}):", "",
              "| tensor | max abs diff |", "|---|---|"]
    lines += [f"| {g} | {d:.2e} |" for g, d in sorted(errors.items())
              if g in ("logits", "final_hidden", "layers.*.hidden_out", "layers.*.gate_logits",
                       "layers.*.topk_scores", "cls_logits", "start_logits", "end_logits", "step_logits")]
    lines += ["", "Suggested check: `|got - want| <= 1e-4 + 1e-4 * |want|` for float tensors, integer "
              "tensors exactly equal" + ("; compare per-position tensors on real tokens (attention_mask == 1)"
                                         if (expected["attention_mask"] == 0).any() else "") + ".", "",
              "## Files", "", "| file | bytes |", "|---|---|"]
    lines += [f"| {name} | {size} |" for name, size in files]
    lines += ["", "expected.safetensors holds:", "", "| name | dtype | shape |", "|---|---|---|"]
    lines += [f"| `{n}` | {'I32' if v.dtype == np.int32 else 'F32'} | {list(v.shape)} |"
              for n, v in sorted(expected.items(), key=lambda kv: _name_order(kv[0]))]
    return "\n".join(lines) + "\n"


def _name_order(name):
    """Inputs first, then embeddings, layers in order, then outputs."""
    head = ["input_ids", "attention_mask", "position_ids", "embeddings"]
    if name in head:
        return (0, head.index(name), "")
    if name.startswith("layers."):
        return (1, int(name.split(".")[1]), name)
    return (2, 0, name)


def build_case(case, out_dir):
    """Draw, check margins, write every file of one case; returns (folder, total bytes)."""
    seed, weights, inputs, model, expected, margins, greedy_gap = find_stable_draw(case)
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
                        {"format": "pt", "generator": "moescope tests/reference/make_fixtures.py",
                         "case": case.name})
    errors, same_routing = float64_diffs(case, weights, inputs, expected)
    files = [(f, os.path.getsize(os.path.join(folder, f))) for f in sorted(os.listdir(folder))]
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(readme_text(case, seed, margins, greedy_gap, errors, same_routing, files, expected))
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    return folder, seed, total, margins


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
        folder, seed, total, margins = build_case(case, args.out)
        gap = "" if margins is None else f", min top-k gap {margins['topk_gap']:.2e}, inner {margins['inner_gap']:.2e}"
        print(f"{case.name:22s} seed {seed:6d}, {total / 1024:7.1f} KiB{gap}")


if __name__ == "__main__":
    main()
