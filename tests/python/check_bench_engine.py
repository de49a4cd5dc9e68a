#!/usr/bin/env python3
"""Runs moescope_bench_engine on a small LLaMA-MoE folder with tiny settings and checks its JSON
lines: one per thread count, each with the hardware fractions, their values consistent with the
line's own throughput, the prefill FLOPs recomputed here from config.json, the AMX flag and the
bf16 GEMM peak against /proc/cpuinfo, and the one-region decode with the general pass beside it.

    check_bench_engine.py BENCH_ENGINE MODEL_DIR

Exit status 0 when every check holds; otherwise the failed checks are printed.
"""
import json
import subprocess
import sys

PREFILL, DECODE = 32, 4
THREADS = [1, 2]


def prefill_flops(c, tokens):
    """2 x the weights one token multiplies x tokens + causal attention (QK^T and PV: 2 x 2 FLOPs
    per query, key and head dimension), for a llama_moe config.json (no sliding window)."""
    h, heads = c["hidden_size"], c["num_attention_heads"]
    d = h // heads
    kv = c.get("num_key_value_heads", heads) * d
    e, k = c["num_experts"], c["num_selects"]
    attention = 2 * h * heads * d + 2 * h * kv + 2 * h  # q, o; k, v; the two norms
    router = e * h + (e * e if c.get("gate_network", "mlp") == "mlp" else 0)
    experts = 3 * h * c["intermediate_size"] * k / e
    per_token = c["num_hidden_layers"] * (attention + router + experts)
    per_token += c["vocab_size"] * h + h  # lm_head and the final norm (untied embeddings)
    keys = tokens * (tokens + 1) / 2
    return 2 * per_token * tokens + c["num_hidden_layers"] * 4 * heads * d * keys


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split())
    return set()


def cpu_has_amx_bf16():
    return "amx_bf16" in cpu_flags()


def bf16_gemm_expected():
    """Whether oneDNN must have a bf16 GEMM here: True with AVX512_BF16 or AMX, False without
    AVX-512, None on plain AVX-512 (where it may emulate bf16)."""
    flags = cpu_flags()
    if {"avx512_bf16", "amx_bf16"} & flags:
        return True
    return None if "avx512f" in flags else False


def close(a, b, rel, abs_tol):
    return abs(a - b) <= rel * abs(b) + abs_tol


def check_line(r, config, failures):
    def expect(ok, what):
        if not ok:
            failures.append(f"threads {r.get('threads')}: {what}")

    before = len(failures)
    units = bf16_gemm_expected()
    if units is None:
        units = r.get("gemm_peak_gflops", 0) > 0
    fields = ["prefill_tok_s", "decode_tok_s", "read_gb_s", "decode_of_roofline",
              "prefill_gflops", "peak_rss_gib"]
    if units:
        fields += ["gemm_peak_gflops", "prefill_fraction_of_peak"]
    else:
        # No bf16 GEMM on this CPU: no peak to measure, and no fraction of it.
        expect(r.get("gemm_peak_gflops") == 0 and r.get("prefill_fraction_of_peak") is None,
               f"no bf16 units, yet gemm_peak_gflops = {r.get('gemm_peak_gflops')} and "
               f"prefill_fraction_of_peak = {r.get('prefill_fraction_of_peak')}")
    for field in fields:
        expect(isinstance(r.get(field), (int, float)) and r[field] > 0, f"{field} = {r.get(field)}")
    # The bundled model's bf16 weights decode in one parallel region per step at 2 threads, and
    # the general pass is measured beside it.
    expect(r.get("decode_one_region") is (r.get("threads") > 1),
           f"decode_one_region = {r.get('decode_one_region')} at {r.get('threads')} threads")
    if r.get("decode_one_region") is True:
        for field in ("decode_general_tok_s", "one_region_speedup"):
            expect(isinstance(r.get(field), (int, float)) and r[field] > 0,
                   f"{field} = {r.get(field)}")
    if len(failures) > before:
        return  # the checks below divide by these
    expect(isinstance(r.get("gemm_isa"), str) and r["gemm_isa"] not in ("", "other"),
           f"gemm_isa = {r.get('gemm_isa')!r}")
    expect(r.get("amx") is cpu_has_amx_bf16(), f"amx = {r.get('amx')}, /proc/cpuinfo disagrees")
    # Each figure rounded to 2 or 3 decimals in the line: tolerances cover that rounding.
    flops = prefill_flops(config, PREFILL)
    expect(close(r["prefill_gflops"], flops * r["prefill_tok_s"] / PREFILL / 1e9, 0.01, 0.01),
           f"prefill_gflops {r['prefill_gflops']} != {flops:.4g} FLOPs x {r['prefill_tok_s']} "
           f"tok/s / {PREFILL}")
    if units:
        expect(close(r["prefill_fraction_of_peak"], r["prefill_gflops"] / r["gemm_peak_gflops"],
                     0.01, 0.001), "prefill_fraction_of_peak != prefill_gflops / gemm_peak_gflops")
    expect(close(r["decode_of_roofline"], r["decode_tok_s"] / r["decode_roofline_tok_s"], 0.01,
                 0.01), "decode_of_roofline != decode_tok_s / decode_roofline_tok_s")
    expect(r.get("logits_finite") is True, "non-finite logits")


def main():
    bench, model = sys.argv[1], sys.argv[2]
    with open(f"{model}/config.json") as f:
        config = json.load(f)
    out = subprocess.run(
        [bench, "--model", model, "--threads", ",".join(map(str, THREADS)), "--prefill",
         str(PREFILL), "--decode", str(DECODE), "--repeats", "1"],
        check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    failures = []
    if [r.get("threads") for r in lines] != THREADS:
        failures.append(f"expected one line per thread count {THREADS}, got {len(lines)}")
    for r in lines:
        check_line(r, config, failures)
    for f in failures:
        print("FAIL:", f)
    print(f"{len(lines)} lines checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
