"""Check the MoE-family fixtures against tests/reference/family_reference.py.

Usage: /usr/bin/python3 tests/reference/check_family_fixtures.py [FIXTURES_DIR] [CASE ...] [--float64] [-q]

FIXTURES_DIR (default tests/fixtures) is a folder of case folders or one case folder; only cases whose
config.json has a model_type family_reference.py implements (mixtral, olmoe, qwen2_moe, qwen3_moe,
granitemoe, dots1) are checked, the LLaMA-MoE ones are left to check_reference_against_golden.py.
Every tensor of expected.safetensors must satisfy |got - want| <= 1e-5 + 1e-5 |want| (integers
exactly equal); per-position tensors of padded cases are compared on real tokens only (load and
importance in full). Exits 1 on any mismatch or when no case is found.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from check_reference_against_golden import compare, real_position_mask  # noqa: E402
from family_reference import FAMILIES, FamilyReference, expected_tensors  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def family_case_dirs(root, names):
    """Case folders under root (or root itself) whose model_type is a family of family_reference."""
    if os.path.exists(os.path.join(root, "expected.safetensors")):
        dirs = [root]
    else:
        dirs = [os.path.join(root, n) for n in (names or sorted(os.listdir(root)))]
    out = []
    for d in dirs:
        config = os.path.join(d, "config.json")
        if not os.path.exists(os.path.join(d, "expected.safetensors")) or not os.path.exists(config):
            continue
        with open(config) as f:
            if json.load(f).get("model_type") in FAMILIES:
                out.append(d)
    return out


def check_case(case_dir, dtype, verbose):
    model = FamilyReference.from_dir(case_dir, dtype)
    with open(os.path.join(case_dir, "inputs.json")) as f:
        inputs = json.load(f)
    got = expected_tensors(model, inputs)
    want = safetensors_io.load(os.path.join(case_dir, "expected.safetensors"))
    attention_mask = want["attention_mask"]
    ok_all, worst = True, 0.0
    print(f"== {os.path.basename(os.path.normpath(case_dir))} ({model.config.model_type})")
    for name in sorted(set(want) | set(got)):
        if name not in got or name not in want:
            print(f"  {'MISSING' if name not in got else 'EXTRA  '} {name}")
            ok_all = False
            continue
        select = real_position_mask(name, want[name].shape, attention_mask)
        diff, _, ok = compare(name, got[name], want[name], select)
        if got[name].dtype != want[name].dtype:
            ok = False
        if want[name].dtype.kind == "f":
            worst = max(worst, diff)
        if verbose or not ok:
            print(f"  {'ok ' if ok else 'BAD'} {name:36s} max|diff| {diff:.3e}"
                  + ("  (real tokens)" if select is not None else ""))
        ok_all &= ok
    print(f"  {'PASS' if ok_all else 'FAIL'}: {len(want)} tensors, max float |diff| {worst:.3e}")
    return ok_all


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("fixtures_dir", nargs="?", default=os.path.join(REPO_ROOT, "tests", "fixtures"))
    parser.add_argument("cases", nargs="*")
    parser.add_argument("--float64", action="store_true", help="run the reference in float64")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only mismatches and totals")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dirs = family_case_dirs(args.fixtures_dir, args.cases)
    if not dirs:
        print(f"no family cases found in {args.fixtures_dir}")
        return 1
    dtype = torch.float64 if args.float64 else torch.float32
    results = [check_case(d, dtype, not args.quiet) for d in dirs]
    print(f"{sum(results)}/{len(results)} cases pass")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
