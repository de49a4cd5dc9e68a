#!/usr/bin/env python3
"""bench/summary_lines.py on hand-made result lines: the engine's two activation rows and
PyTorch's row of one shape, dtype and thread count become one line with the right ratios and
fractions; f32 weights (one engine row) and a missing PyTorch row give nulls, not errors; the
corpus-jobs lines of two runs fold into one line each.

    check_summary_lines.py SUMMARY_LINES_PY
"""
import json
import os
import subprocess
import sys
import tempfile


def engine(dtype, threads, act, prefill, decode, fraction, rss):
    return {"engine": "moescope", "shape": "s", "dtype": dtype, "threads": threads,
            "activations": act, "weights": "mapped", "prefill_tok_s": prefill,
            "decode_tok_s": decode, "prefill_tokens": 128, "decode_tokens": 8,
            "read_gb_s": 40.0, "decode_mib_per_token": 160.0, "decode_of_roofline": 0.7,
            "gemm_peak_gflops": 300.0, "gemm_isa": "avx512_core_bf16", "amx": False,
            "prefill_gflops": 300.0 * fraction, "prefill_fraction_of_peak": fraction,
            "peak_rss_gib": rss, "logits_finite": True, "load1": 1.0,
            "omp_wait_policy": "PASSIVE"}


def torch(dtype, threads, prefill, decode):
    return {"engine": "pytorch", "shape": "s", "dtype": dtype, "threads": threads,
            "model_type": "llama_moe", "prefill_tok_s": prefill, "decode_tok_s": decode,
            "bf16_mode": "direct" if dtype == "bf16" else None, "peak_rss_gib": 1.2,
            "load1": 1.1}


def job(name, of_score, threads):
    return {"job": name, "tokens": 1000, "tok_s": 5000 * of_score, "of_score": of_score,
            "threads": threads, "rounds": 1, "omp_wait_policy": "PASSIVE", "load1": 2.0}


def run(script, rows, jobs):
    with tempfile.TemporaryDirectory() as d:
        results, corpus, out = (os.path.join(d, n) for n in ("r.jsonl", "c.jsonl", "s.jsonl"))
        for path, lines in ((results, rows), (corpus, jobs)):
            with open(path, "w") as f:
                f.writelines(json.dumps(x) + "\n" for x in lines)
        stdout = subprocess.run([sys.executable, script, results, "--corpus-jobs", corpus,
                                 "--out", out], check=True, capture_output=True, text=True).stdout
        with open(out) as f:
            assert f.read() == stdout, "--out differs from stdout"
    return [json.loads(line) for line in stdout.splitlines()]


def main():
    rows = [engine("bf16", 2, "f32", 300.0, 100.0, 0.4, 1.4),
            engine("bf16", 2, "bf16", 600.0, 90.0, 0.8, 1.5),
            torch("bf16", 2, 500.0, 25.0),
            engine("f32", 1, "f32", 400.0, 60.0, 0.3, 1.7)]  # no PyTorch row
    jobs = [job("score", 1.0, 2), job("trace", 0.97, 2), job("ablate-1", 0.64, 2),
            job("ablate-4", 0.33, 2), job("policy", 2.01, 2),
            {"job": "live_prompt", "prompt_tokens": 50, "median_ms": 6.5, "threads": 2,
             "omp_wait_policy": "PASSIVE", "load1": 2.0},
            job("score", 1.0, 1),
            {"job": "live_prompt", "prompt_tokens": 50, "median_ms": 9.0, "threads": 1,
             "omp_wait_policy": "PASSIVE", "load1": 2.0}]
    lines = run(sys.argv[1], rows, jobs)
    expected = [
        {"dtype": "bf16", "threads": 2, "engine_prefill_tok_s": 300.0,
         "engine_prefill_bf16_act_tok_s": 600.0, "engine_decode_tok_s": 100.0,
         "torch_prefill_tok_s": 500.0, "prefill_ratio": 0.6, "prefill_bf16_act_ratio": 1.2,
         "decode_ratio": 4.0, "prefill_fraction_of_peak": 0.4,
         "prefill_bf16_act_fraction_of_peak": 0.8, "engine_peak_rss_gib": 1.5,
         "torch_bf16_mode": "direct", "model_type": "llama_moe", "decode_of_roofline": 0.7},
        {"dtype": "f32", "threads": 1, "engine_prefill_tok_s": 400.0,
         "engine_prefill_bf16_act_tok_s": None, "torch_prefill_tok_s": None,
         "prefill_ratio": None, "prefill_bf16_act_ratio": None, "decode_ratio": None,
         "prefill_fraction_of_peak": 0.3, "engine_peak_rss_gib": 1.7},
        {"bench": "corpus_jobs", "threads": 2, "score_tok_s": 5000.0, "trace_of_score": 0.97,
         "ablate_1_of_score": 0.64, "ablate_4_of_score": 0.33, "policy_of_score": 2.01,
         "live_prompt_median_ms": 6.5},
        {"bench": "corpus_jobs", "threads": 1, "trace_of_score": None,
         "live_prompt_median_ms": 9.0},
    ]
    failures = []
    if len(lines) != len(expected):
        failures.append(f"{len(lines)} lines, expected {len(expected)}")
    for i, (line, want) in enumerate(zip(lines, expected)):
        for key, value in want.items():
            got = line.get(key, "missing")
            if got != value and not (isinstance(value, float) and isinstance(got, float)
                                     and abs(got - value) < 1e-9):
                failures.append(f"line {i}: {key} = {got!r}, expected {value!r}")
    for f in failures:
        print("FAIL:", f)
    print(f"{len(lines)} lines checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
