#!/usr/bin/env python3
"""Summary JSON lines of bench/run_engine_vs_pytorch.sh: one per shape (or family), dtype, thread
count and weight placement, with the engine's and PyTorch's prefill and decode of the same run,
their ratios and the engine's fractions of the read bandwidth and bf16 GEMM peak it measured;
then one per thread count of moescope_bench_corpus_jobs, its job lines folded into one.

    summary_lines.py RESULTS.jsonl [--corpus-jobs JOBS.jsonl] [--out SUMMARY.jsonl]

RESULTS.jsonl holds the lines the script recorded (moescope_bench_engine and
torch_reference_bench.py, each with "shape" and "load1" added); JOBS.jsonl the lines of
moescope_bench_corpus_jobs runs, in order. The lines go to stdout and, with --out, to the file
(overwritten).
"""
import argparse
import json


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def engine_line(key, default, bf16_act, torch):
    """One combined line. `default` is the engine row with fp32-accurate activations (every
    command's default), `bf16_act` the row with activations rounded to bf16 (bf16 weights only,
    else None), `torch` the PyTorch row of the same shape, dtype and thread count (or {})."""
    shape, dtype, threads, weights = key
    b = bf16_act or {}
    line = {
        "bench": "engine_vs_pytorch", "shape": shape, "model_type": torch.get("model_type"),
        "dtype": dtype, "threads": threads, "weights": weights,
        "prefill_tokens": default.get("prefill_tokens"),
        "decode_tokens": default.get("decode_tokens"),
        "engine_prefill_tok_s": default.get("prefill_tok_s"),
        "engine_prefill_bf16_act_tok_s": b.get("prefill_tok_s"),
        # Decoding runs the same fp32-accurate matrix-vector kernels in both activation modes
        # (docs/performance.md), so the default row's decode stands for both.
        "engine_decode_tok_s": default.get("decode_tok_s"),
        "torch_prefill_tok_s": torch.get("prefill_tok_s"),
        "torch_decode_tok_s": torch.get("decode_tok_s"),
        "torch_bf16_mode": torch.get("bf16_mode"),
        "prefill_ratio": ratio(default.get("prefill_tok_s"), torch.get("prefill_tok_s")),
        "prefill_bf16_act_ratio": ratio(b.get("prefill_tok_s"), torch.get("prefill_tok_s")),
        "decode_ratio": ratio(default.get("decode_tok_s"), torch.get("decode_tok_s")),
        "read_gb_s": default.get("read_gb_s"),
        "decode_mib_per_token": default.get("decode_mib_per_token"),
        "decode_of_roofline": default.get("decode_of_roofline"),
        "gemm_peak_gflops": default.get("gemm_peak_gflops"),
        "gemm_isa": default.get("gemm_isa"), "amx": default.get("amx"),
        "prefill_gflops": default.get("prefill_gflops"),
        "prefill_fraction_of_peak": default.get("prefill_fraction_of_peak"),
        "prefill_bf16_act_gflops": b.get("prefill_gflops"),
        "prefill_bf16_act_fraction_of_peak": b.get("prefill_fraction_of_peak"),
        "engine_peak_rss_gib": max(r.get("peak_rss_gib", 0) for r in (default, b)),
        "torch_peak_rss_gib": torch.get("peak_rss_gib"),
        "logits_finite": all(r.get("logits_finite", True) for r in (default, b)),
        "cpu_util": {"engine_prefill": default.get("prefill_cpu_util"),
                     "engine_decode": default.get("decode_cpu_util"),
                     "torch_prefill": torch.get("prefill_cpu_util"),
                     "torch_decode": torch.get("decode_cpu_util")},
        "load1": [default.get("load1"), torch.get("load1")],
        "omp_wait_policy": default.get("omp_wait_policy"),
    }
    return line


def engine_lines(rows):
    torch, engine = {}, {}
    for r in rows:
        if r["engine"] == "pytorch":
            torch[(r["shape"], r["dtype"], r["threads"])] = r
        else:
            key = (r["shape"], r["dtype"], r["threads"], r.get("weights", "mapped"))
            engine.setdefault(key, {})[r.get("activations", "f32")] = r
    lines = []
    for key, by_act in engine.items():
        default = by_act.get("f32") or by_act["bf16"]
        bf16_act = by_act.get("bf16") if "f32" in by_act else None
        lines.append(engine_line(key, default, bf16_act, torch.get(key[:3], {})))
    return lines


def corpus_lines(jobs):
    """moescope_bench_corpus_jobs prints score, trace, ablate-1, ablate-4, policy, then
    live_prompt; each live_prompt line closes one run."""
    lines, run = [], {}
    for j in jobs:
        if j["job"] != "live_prompt":
            run[j["job"]] = j
            continue
        score = run.get("score", {})
        line = {"bench": "corpus_jobs", "threads": j["threads"], "rounds": score.get("rounds"),
                "tokens": score.get("tokens"), "score_tok_s": score.get("tok_s")}
        for job in ("trace", "ablate-1", "ablate-4", "policy"):
            line[job.replace("-", "_") + "_of_score"] = run.get(job, {}).get("of_score")
        line.update({"live_prompt_tokens": j["prompt_tokens"],
                     "live_prompt_median_ms": j["median_ms"],
                     "omp_wait_policy": j["omp_wait_policy"], "load1": j["load1"]})
        lines.append(line)
        run = {}
    return lines


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("--corpus-jobs")
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = engine_lines(read_jsonl(args.results))
    if args.corpus_jobs:
        lines += corpus_lines(read_jsonl(args.corpus_jobs))
    text = "".join(json.dumps(line) + "\n" for line in lines)
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
