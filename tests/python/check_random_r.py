#!/usr/bin/python3
"""The random-r routing control of the engine against the PyTorch reference changed by hand.

random-r (core/routing_policy.h, step 2b) is the control of DeepSeekMoE's top-r disable: for each
token and layer, r experts drawn uniformly at random from the token's k + r best (by gate logit,
ties to the lower index) are forced to -inf, then top-k of the rest. The draw is a hash of
(seed, layer, document, position id, token id), written here a second time from its
definition in core/routing_policy.h (RandomRRanks); `moescope forward` has no documents, so the
document is -1.

The engine runs the same token ids through `moescope forward` with the policy given as CLI flags
(--random-r, --random-r-seed) or as a JSON file. Logits must agree within the golden tolerance
(1e-4 + 1e-4 |x|), the executed top-k ids of every changed layer exactly; the control must change
the logits, and must not always leave out the r best experts (it is not top-r).

usage: check_random_r.py MOESCOPE_CLI WORK_DIR CASE_DIR...
       check_random_r.py --ranks SEED LAYER DOCUMENT POSITION TOKEN_ID R POOL
Exit status 0 and "OK check_random_r.py ..." on success.
"""
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
from llama_moe_reference import LlamaMoEReference  # noqa: E402

ABS_TOL = REL_TOL = 1e-4
M64 = (1 << 64) - 1


def fail(message):
    print("check_random_r.py: " + message, file=sys.stderr)
    sys.exit(1)


def mix(x):
    """splitmix64's finalizer."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def word(v):
    """A 32-bit integer as its two's complement (-1 -> 0xffffffff)."""
    return v & 0xFFFFFFFF


def random_r_ranks(seed, layer, document, position, token_id, r, pool):
    """r distinct ranks of [0, pool): a partial Fisher-Yates shuffle, swap j taking rank
    j + floor(u_j (pool - j)), u_j the top 53 bits of mix(token_hash ^ j) over 2^53."""
    token = mix(mix(mix(mix(mix(seed) ^ word(layer)) ^ word(document)) ^ word(position)) ^ word(token_id))
    ranks = list(range(pool))
    r = max(0, min(r, pool))
    for j in range(r):
        u = (mix(token ^ j) >> 11) * 2.0 ** -53
        pick = min(pool - 1, j + int(u * (pool - j)))
        ranks[j], ranks[pick] = ranks[pick], ranks[j]
    return ranks[:r]


class RandomRReference(LlamaMoEReference):
    """The reference with random-r applied to the gate logits of `layers`."""

    def __init__(self, base, layers, r, seed, input_ids, position_ids):
        super().__init__(base.config, {}, base.dtype)
        self.weights, self.prefix = base.weights, base.prefix
        self.layers, self.r, self.seed = set(layers), r, seed
        self.ids = [t for row in input_ids for t in row]
        self.positions = [p for row in position_ids for p in row]
        self.left_out_best = []  # per changed row: whether the r best were the ones left out

    def gate_logits(self, layer, rows):
        logits = super().gate_logits(layer, rows)
        if layer not in self.layers:
            return logits
        cfg = self.config
        order = torch.sort(logits, dim=-1, descending=True, stable=True).indices
        pool = min(cfg.num_selects + self.r, cfg.num_experts)
        logits = logits.clone()
        for n in range(logits.shape[0]):
            ranks = random_r_ranks(self.seed, layer, -1, self.positions[n], self.ids[n], self.r, pool)
            for rank in ranks:
                logits[n, order[n, rank]] = -math.inf
            self.left_out_best.append(sorted(ranks) == list(range(self.r)))
        return logits


def run_engine(cli, model_dir, inputs_path, out_path, args):
    cmd = [cli, "forward", "--model", model_dir, "--threads", "1", "--input", inputs_path,
           "--output", out_path] + args
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return safetensors_io.load(out_path)


def compare(name, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        fail(f"{name}: shape {got.shape}, reference {want.shape}")
    err = np.abs(got - want)
    if np.any(err > ABS_TOL + REL_TOL * np.abs(want)):
        fail(f"{name}: max abs difference {float(err.max()):.3g} exceeds the tolerance")
    return float(err.max())


def check_case(cli, work, case_dir):
    name = os.path.basename(os.path.normpath(case_dir))
    with open(os.path.join(case_dir, "inputs.json")) as f:
        raw = json.load(f)
    ids = raw["input_ids"]
    inputs = {"input_ids": ids, "attention_mask": [[1] * len(r) for r in ids],
              "position_ids": [list(range(len(r))) for r in ids]}
    inputs_path = os.path.join(work, f"{name}_random_r_inputs.json")
    with open(inputs_path, "w") as f:
        json.dump(inputs, f)
    base = LlamaMoEReference.from_dir(case_dir)
    cfg = base.config
    L, E, K = cfg.num_layers, cfg.num_experts, cfg.num_selects
    mask = torch.tensor(inputs["attention_mask"])
    positions = torch.tensor(inputs["position_ids"])
    base_logits = base.forward(torch.tensor(ids), mask, positions, record={})["logits"].numpy()

    cases = [("last layer r=1 (flags)", [L - 1], 1, 12345,
              ["--random-r", f"{L - 1}:1", "--random-r-seed", "12345"]),
             ("every layer r=2 (JSON)", list(range(L)), min(2, E - 1), 7,
              {"random_r": {"*": min(2, E - 1)}, "random_r_seed": {"*": 7}})]
    report = []
    for label, layers, r, seed, engine_args in cases:
        if isinstance(engine_args, dict):
            policy_path = os.path.join(work, f"{name}_random_r.json")
            with open(policy_path, "w") as f:
                json.dump(engine_args, f)
            engine_args = ["--policy", policy_path]
        got = run_engine(cli, case_dir, inputs_path, os.path.join(work, f"{name}_random_r.st"),
                         engine_args)
        ref = RandomRReference(base, layers, r, seed, ids, inputs["position_ids"])
        record = {}
        want_logits = ref.forward(torch.tensor(ids), mask, positions, record=record)["logits"].numpy()
        worst = compare(f"{name} {label} logits", got["logits"], want_logits)
        if np.abs(want_logits - base_logits).max() < 1e-3:
            fail(f"{name} {label}: random-r does not change the reference logits")
        for layer in layers:
            got_ids = got[f"layers.{layer}.topk_indices"]
            want_ids = record[f"layers.{layer}.topk_indices"].numpy()
            if not np.array_equal(got_ids, want_ids):
                fail(f"{name} {label}: layer {layer} executed other experts than the reference")
        if all(ref.left_out_best):
            fail(f"{name} {label}: every draw left out the r best experts (that is top-r)")
        report.append(f"{label} {worst:.1e}")
    return f"{name} (L={L}, E={E}, K={K}): " + ", ".join(report)


def main():
    if len(sys.argv) == 9 and sys.argv[1] == "--ranks":
        print(" ".join(str(x) for x in random_r_ranks(*[int(a) for a in sys.argv[2:]])))
        return
    if len(sys.argv) < 4:
        fail("usage: check_random_r.py MOESCOPE_CLI WORK_DIR CASE_DIR...")
    torch.set_num_threads(1)
    cli, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    lines = [check_case(cli, work, case) for case in sys.argv[3:]]
    print("OK check_random_r.py max abs logit differences:\n  " + "\n  ".join(lines))


if __name__ == "__main__":
    main()
