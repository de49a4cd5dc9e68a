"""Check the PyTorch reference against golden/fixture cases.

Usage: /usr/bin/python3 tests/reference/check_reference_against_golden.py GOLDEN_DIR [CASE ...]

GOLDEN_DIR is a folder of case folders (e.g. tests/golden or tests/fixtures) or a single
case folder; folders without expected.safetensors (tiny_moe, configs, corpus, families_e2e, ...) are
skipped. Each case is dispatched on its config.json `model_type`: the MoE families of
family_reference.py (mixtral, olmoe, qwen2_moe, qwen3_moe, granitemoe, dots1) are checked by
check_family_fixtures.check_case (family_reference.py; the tensor sets and dtypes must also match
exactly), everything else (llama_moe, llama) by llama_moe_reference.py. For every tensor of each
case's expected.safetensors the reference output must satisfy |got - want| <= ATOL + RTOL * |want|
(integers: exactly equal). Where attention_mask has zeros, per-position tensors are compared on real
tokens only; load/importance are compared in full (the reference reproduces upstream's padding rows).
Prints max diffs; exits 1 on any mismatch.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from family_reference import FAMILIES  # noqa: E402
from llama_moe_reference import LlamaMoEReference, expected_tensors  # noqa: E402

ATOL = 1e-5
RTOL = 1e-5


def case_dirs(root, names):
    """Case folders under root (those holding expected.safetensors), or root itself."""
    if os.path.exists(os.path.join(root, "expected.safetensors")):
        return [root]
    names = names or sorted(os.listdir(root))
    return [os.path.join(root, n) for n in names if os.path.exists(os.path.join(root, n, "expected.safetensors"))]


def real_position_mask(name, shape, attention_mask):
    """Boolean mask selecting real-token entries of a tensor, or None to compare everything."""
    if attention_mask.all():
        return None
    batch, seq = attention_mask.shape
    real = attention_mask.astype(bool)
    if len(shape) >= 2 and shape[:2] == (batch, seq) and name not in ("input_ids", "attention_mask", "position_ids"):
        return np.broadcast_to(real.reshape(batch, seq, *([1] * (len(shape) - 2))), shape)
    if name.startswith("layers.") and len(shape) == 2 and shape[0] == batch * seq:
        return np.broadcast_to(real.reshape(-1, 1), shape)
    return None


def compare(name, got, want, select):
    """(max abs diff, max excess over tolerance, ok) over the selected entries."""
    if got.shape != want.shape:
        return float("inf"), float("inf"), False
    if select is not None:
        got, want = got[select], want[select]
    if want.dtype.kind in "iu":
        diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
        return float(diff.max(initial=0)), float(diff.max(initial=0)), bool((diff == 0).all())
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    excess = diff - (ATOL + RTOL * np.abs(want.astype(np.float64)))
    return float(diff.max(initial=0)), float(excess.max(initial=-1)), bool((excess <= 0).all())


def model_type(case_dir):
    """config.json's model_type of a case folder (None without one)."""
    config = os.path.join(case_dir, "config.json")
    if not os.path.exists(config):
        return None
    with open(config) as f:
        return json.load(f).get("model_type")


def check_any_case(case_dir, dtype, verbose):
    """Check one case with the reference of its model_type; return True when all match."""
    if model_type(case_dir) in FAMILIES:
        # imported here: check_family_fixtures imports compare/real_position_mask from this module
        from check_family_fixtures import check_case as check_family_case
        return check_family_case(case_dir, dtype, verbose)
    return check_case(case_dir, dtype, verbose)


def check_case(case_dir, dtype, verbose):
    """Run the LLaMA-MoE reference on one case; print a per-tensor table; return True when all match."""
    model = LlamaMoEReference.from_dir(case_dir, dtype)
    with open(os.path.join(case_dir, "inputs.json")) as f:
        inputs = json.load(f)
    got = expected_tensors(model, inputs)
    want = safetensors_io.load(os.path.join(case_dir, "expected.safetensors"))
    attention_mask = want["attention_mask"]
    ok_all = True
    worst = 0.0
    print(f"== {os.path.basename(os.path.normpath(case_dir))}")
    for name in sorted(want):
        if name not in got:
            print(f"  MISSING {name}")
            ok_all = False
            continue
        select = real_position_mask(name, want[name].shape, attention_mask)
        diff, _, ok = compare(name, got[name], want[name], select)
        if want[name].dtype.kind == "f":
            worst = max(worst, diff)
        line = f"  {'ok ' if ok else 'BAD'} {name:36s} max|diff| {diff:.3e}"
        if select is not None:
            all_diff, _, _ = compare(name, got[name], want[name], None)
            line += f"  (real tokens; all positions {all_diff:.3e})"
        if verbose or not ok:
            print(line)
        ok_all &= ok
    print(f"  {'PASS' if ok_all else 'FAIL'}: {len(want)} tensors, max float |diff| {worst:.3e}")
    return ok_all


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("golden_dir")
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--float64", action="store_true", help="run the reference in float64")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only mismatches and totals")
    args = parser.parse_args()
    dirs = case_dirs(args.golden_dir, args.cases)
    if not dirs:
        print(f"no cases found in {args.golden_dir}")
        return 1
    dtype = torch.float64 if args.float64 else torch.float32
    results = [check_any_case(d, dtype, not args.quiet) for d in dirs]
    print(f"{sum(results)}/{len(results)} cases pass")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
