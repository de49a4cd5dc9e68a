#!/usr/bin/python3
"""Routing interventions of the engine against the PyTorch reference changed by hand.

Each intervention is written here a second time, in the reference's own terms, the way the issue
states its meaning:
  * reroute:       the disabled expert's gate logit is forced to -inf before top-k;
  * drop:          the disabled expert's combine weight is set to zero after the softmax;
  * drop-renorm:   as drop, then the remaining weights are rescaled to their old sum;
  * top-r:         each token's r largest gate logits are forced to -inf, then top-k;
  * k per layer:   top-k with another k in that layer;
  * scale factor:  another score_scale_factor for that layer;
  * threshold:     dynamic k; the second and later experts are kept only while their top-k
                   softmax weight is >= t x the first's (the ratio of the softmax over all E is
                   the same), then the weights of the kept ones are renormalized;
  * k = E with multiply_gate_scores off: the MoE output is the plain sum of every expert's output.
The engine runs the same token ids through `moescope forward` with the policy given as CLI flags
or as a JSON file. Logits must agree within the golden tolerance (1e-4 + 1e-4 |x|), the executed
top-k ids of the changed layer exactly, and every intervention must change the logits (so a
policy that is silently ignored fails).

usage: check_interventions.py MOESCOPE_CLI WORK_DIR CASE_DIR...
Exit status 0 and "OK check_interventions.py ..." on success.
"""
import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import safetensors_io  # noqa: E402
from llama_moe_reference import LlamaMoEReference, swiglu  # noqa: E402

ABS_TOL = REL_TOL = 1e-4


def fail(message):
    print("check_interventions.py: " + message, file=sys.stderr)
    sys.exit(1)


class InterventionReference(LlamaMoEReference):
    """The reference with one intervention applied in the layer it names."""

    def __init__(self, base, layer, kind, expert=None, value=None):
        super().__init__(copy.deepcopy(base.config), {}, base.dtype)
        self.weights, self.prefix = base.weights, base.prefix
        self.layer, self.kind, self.expert, self.value = layer, kind, expert, value
        if kind == "scale":
            self.config.score_scale_factor[layer] = value

    def gate_logits(self, layer, rows):
        logits = super().gate_logits(layer, rows)
        if layer != self.layer:
            return logits
        if self.kind == "reroute":
            logits = logits.clone()
            logits[:, self.expert] = -math.inf
        elif self.kind == "top_r":
            best = torch.sort(logits, dim=-1, descending=True, stable=True).indices[:, :self.value]
            logits = logits.scatter(1, best, -math.inf)
        return logits

    def route(self, layer, rows):
        cfg = self.config
        k_before = cfg.num_selects
        if layer == self.layer and self.kind == "top_k":
            cfg.num_selects = self.value
        try:
            routing = super().route(layer, rows)
        finally:
            cfg.num_selects = k_before
        if layer == self.layer and self.kind == "threshold":
            # q: the softmax over all E logits, at the selected experts (highest first).
            q = torch.softmax(routing["gate_logits"].double(), dim=-1).gather(
                1, routing["topk_indices"])
            kept = torch.cumprod((q >= self.value * q[:, :1]).double(), dim=-1)
            kept[:, 0] = 1.0
            scores = routing["topk_scores"] * kept.to(routing["topk_scores"].dtype)
            if cfg.gate_use_softmax:
                scores = scores / scores.sum(-1, keepdim=True)
            routing["topk_scores"] = scores
            routing["kept"] = kept
        if layer == self.layer and self.kind in ("drop", "drop_renorm"):
            scores = routing["topk_scores"].clone()
            before = scores.sum(-1, keepdim=True)
            scores[routing["topk_indices"] == self.expert] = 0.0
            if self.kind == "drop_renorm":
                after = scores.sum(-1, keepdim=True)
                scores = torch.where(after != 0, scores * before / after, scores)
            routing["topk_scores"] = scores
        return routing

    def kept_ids(self, inputs):
        """Per token of the changed layer, the experts the threshold kept, in weight order."""
        kept = []
        original = self.route

        def capture(layer, rows):
            routing = original(layer, rows)
            if layer == self.layer:
                for ids, mask in zip(routing["topk_indices"].tolist(), routing["kept"].tolist()):
                    kept.append([i for i, m in zip(ids, mask) if m > 0])
            return routing

        self.route = capture
        try:
            reference_outputs(self, inputs)
        finally:
            del self.route
        return kept

    def moe(self, layer, x, record):
        if self.kind == "sum_all":
            rows = x.reshape(-1, self.config.hidden_size)
            p = f"layers.{layer}.mlp.calculator.experts."
            out = sum(swiglu(rows, self.body(p + f"weight_gate.{e}"), self.body(p + f"weight_up.{e}"),
                             self.body(p + f"weight_down.{e}"))
                      for e in range(self.config.num_experts))
            return out.view_as(x)
        return super().moe(layer, x, record)


def run_engine(cli, model_dir, inputs_path, out_path, args):
    cmd = [cli, "forward", "--model", model_dir, "--threads", "1", "--input", inputs_path,
           "--output", out_path] + args
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return safetensors_io.load(out_path)


def reference_outputs(model, inputs):
    record = {}
    out = model.forward(torch.tensor(inputs["input_ids"]), torch.tensor(inputs["attention_mask"]),
                        None, record=record)
    return out["logits"].numpy(), {k: v.numpy() for k, v in record.items()}


def compare(name, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        fail(f"{name}: shape {got.shape}, reference {want.shape}")
    err = np.abs(got - want)
    worst = float(err.max())
    if np.any(err > ABS_TOL + REL_TOL * np.abs(want)):
        fail(f"{name}: max abs difference {worst:.3g} exceeds the tolerance")
    return worst


def check_case(cli, work, case_dir):
    name = os.path.basename(os.path.normpath(case_dir))
    with open(os.path.join(case_dir, "inputs.json")) as f:
        raw = json.load(f)
    inputs = {"input_ids": raw["input_ids"],
              "attention_mask": raw.get("attention_mask") or [[1] * len(r) for r in raw["input_ids"]]}
    inputs_path = os.path.join(work, f"{name}_inputs.json")
    with open(inputs_path, "w") as f:
        json.dump(inputs, f)
    base = LlamaMoEReference.from_dir(case_dir)
    cfg = base.config
    E, K, layers = cfg.num_experts, cfg.num_selects, cfg.num_layers
    base_logits, base_record = reference_outputs(base, inputs)

    # The layer and expert to change: the last layer's most used expert, so the change shows.
    layer = layers - 1
    used = np.bincount(base_record[f"layers.{layer}.topk_indices"].ravel(), minlength=E)
    expert = int(used.argmax())
    scale = float(cfg.score_scale_factor[layer]) * 2.0 + 0.5
    interventions = [
        ("reroute", "reroute", expert, None, ["--disable", f"{layer}:{expert}", "--mode", "reroute"]),
        ("drop", "drop", expert, None, ["--disable", f"{layer}:{expert}", "--mode", "drop"]),
        ("drop_renorm", "drop_renorm", expert, None, {"mode": "drop-renorm", "disable": [[layer, expert]]}),
        ("top_r", "top_r", None, 1, ["--top-r", f"{layer}:1"]),
        ("top_k", "top_k", None, 1, {"top_k": {str(layer): 1}}),
        ("scale", "scale", None, scale, {"scale_factor": {str(layer): scale}}),
        ("threshold", "threshold", None, 0.5, {"threshold": {str(layer): 0.5}}),
    ]
    report = []
    for label, kind, e, value, engine_args in interventions:
        if isinstance(engine_args, dict):
            policy_path = os.path.join(work, f"{name}_{label}.json")
            with open(policy_path, "w") as f:
                json.dump(engine_args, f)
            engine_args = ["--policy", policy_path]
        got = run_engine(cli, case_dir, inputs_path, os.path.join(work, f"{name}_{label}.st"),
                         engine_args)
        ref = InterventionReference(base, layer, kind, e, value)
        want_logits, want_record = reference_outputs(ref, inputs)
        worst = compare(f"{name} {label} logits", got["logits"], want_logits)
        if np.abs(want_logits - base_logits).max() < 1e-3:
            fail(f"{name} {label}: the intervention does not change the reference logits")
        ids = got[f"layers.{layer}.topk_indices"]
        want_ids = want_record[f"layers.{layer}.topk_indices"]
        if kind in ("drop", "drop_renorm"):
            # The engine records executed experts only: the dropped one leaves a -1 at the end.
            if np.any(ids == e):
                fail(f"{name} {label}: dropped expert {e} still executed")
            kept = [[i for i in row if i != e] for row in want_ids.tolist()]
            got_kept = [[i for i in row if i >= 0] for row in ids.tolist()]
            if [sorted(r) for r in kept] != [sorted(r) for r in got_kept]:
                fail(f"{name} {label}: executed experts differ from the reference")
        elif kind == "threshold":
            # Executed experts only: the ones under the threshold leave -1 pads at the end.
            kept = ref.kept_ids(inputs)
            got_kept = [[i for i in row if i >= 0] for row in ids.tolist()]
            if [sorted(r) for r in kept] != [sorted(r) for r in got_kept]:
                fail(f"{name} {label}: executed experts differ from the reference")
            if all(len(r) == K for r in kept):
                fail(f"{name} {label}: no token ran fewer experts; the check shows nothing")
        elif kind == "scale":
            if not np.array_equal(ids, want_ids):
                fail(f"{name} {label}: top-k ids differ from the reference")
        elif not np.array_equal(ids[:, :want_ids.shape[1]], want_ids) or np.any(ids[:, want_ids.shape[1]:] != -1):
            fail(f"{name} {label}: top-k ids differ from the reference")
        if kind == "reroute" and np.any(ids == e):
            fail(f"{name} {label}: disabled expert {e} was chosen")
        report.append(f"{label} {worst:.1e}")

    # k = E with multiply_gate_scores off: the sum of every expert. The engine reads a copy of the
    # model whose config switches the multiplication off.
    off_dir = os.path.join(work, f"{name}_no_multiply")
    os.makedirs(off_dir, exist_ok=True)
    with open(os.path.join(case_dir, "config.json")) as f:
        config = json.load(f)
    config["multiply_gate_scores"] = False
    with open(os.path.join(off_dir, "config.json"), "w") as f:
        json.dump(config, f)
    weights = os.path.join(off_dir, "model.safetensors")
    if not os.path.exists(weights):
        os.symlink(os.path.abspath(os.path.join(case_dir, "model.safetensors")), weights)
    got = run_engine(cli, off_dir, inputs_path, os.path.join(work, f"{name}_sum_all.st"),
                     ["--top-k", f"*:{E}"])
    off_base = LlamaMoEReference.from_dir(off_dir)
    want_logits, _ = reference_outputs(InterventionReference(off_base, -1, "sum_all"), inputs)
    report.append(f"sum_all {compare(f'{name} k=E sum of all experts', got['logits'], want_logits):.1e}")
    for l in range(layers):
        if got[f"layers.{l}.topk_indices"].shape[1] != E:
            fail(f"{name} k=E: layer {l} did not run every expert")
    return f"{name} (layer {layer}, expert {expert}, E={E}, K={K}): " + ", ".join(report)


def main():
    if len(sys.argv) < 4:
        fail("usage: check_interventions.py MOESCOPE_CLI WORK_DIR CASE_DIR...")
    torch.set_num_threads(1)
    cli, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    lines = [check_case(cli, work, case) for case in sys.argv[3:]]
    print("OK check_interventions.py max abs logit differences:\n  " + "\n  ".join(lines))


if __name__ == "__main__":
    main()
