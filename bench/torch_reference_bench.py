"""PyTorch speed reference for the engine benchmark: prefill and KV-cache decode throughput of
the project's reference model (tests/reference/llama_moe_reference.py) on CPU.

Usage: /usr/bin/python3 bench/torch_reference_bench.py [--model DIR] [--dtype f32|bf16]
           [--threads N] [--prefill 512] [--decode 64] [--bf16-mode auto|direct|autocast]

Without --model, builds benchmark shape S (bench/make_bench_model.py) with seeded random weights.
Prefill: one forward over `--prefill` tokens, tokens/s as the median of 3 runs after a warmup.
Decode: after prefilling a 1-token prompt, `--decode` greedy steps one token at a time through
the KV cache, tokens/s over all steps (median of 3 after a warmup).
bf16: weights cast to bfloat16 and either run directly in bf16 ("direct") or under
torch.autocast('cpu', dtype=torch.bfloat16) ("autocast"); "auto" times a short probe of both and
keeps the faster. Prints one JSON line.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
from llama_moe_reference import LlamaMoEReference  # noqa: E402

REPEATS = 3


def build_model(model_dir, dtype):
    """The reference model from a folder, or shape S with random weights."""
    if model_dir:
        return LlamaMoEReference.from_dir(model_dir, dtype)
    from make_bench_model import shape_s_config, shape_s_weights

    return LlamaMoEReference(shape_s_config(), shape_s_weights(), dtype)


def random_ids(model, batch, length, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, model.config.vocab_size, (batch, length), generator=generator)


def time_prefill(model, length, context):
    """Seconds for one forward over `length` tokens (fresh cache, as a prompt prefill)."""
    ids = random_ids(model, 1, length)
    start = time.perf_counter()
    with context():
        model.forward(ids, cache=model.new_cache())
    return time.perf_counter() - start


def time_decode(model, steps, context):
    """Seconds for `steps` greedy decode steps through the KV cache after a 1-token prompt."""
    cache = model.new_cache()
    with context():
        token = model.forward(random_ids(model, 1, 1), cache=cache)["logits"][:, -1].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            token = model.forward(token[:, None], cache=cache)["logits"][:, -1].argmax(-1)
    return time.perf_counter() - start


def median_rate(fn, tokens):
    """Tokens/s: one warmup call, then the median of REPEATS timed calls; and the process CPU
    seconds per wall second over the timed calls (below `threads` on a shared machine)."""
    fn()
    cpu, wall = time.process_time(), time.perf_counter()
    times = [fn() for _ in range(REPEATS)]
    util = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return tokens / statistics.median(times), util


def autocast_context():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def pick_bf16_mode(model, mode):
    """Context manager factory for the bf16 run; 'auto' keeps the faster of direct/autocast
    on a short prefill probe."""
    if mode == "direct":
        return "direct", contextlib.nullcontext
    if mode == "autocast":
        return "autocast", autocast_context
    probe = {}
    for name, context in (("direct", contextlib.nullcontext), ("autocast", autocast_context)):
        time_prefill(model, 64, context)
        probe[name] = min(time_prefill(model, 64, context) for _ in range(2))
    best = min(probe, key=probe.get)
    return best, (contextlib.nullcontext if best == "direct" else autocast_context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model folder (default: random shape S)")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prefill", type=int, default=512, help="prefill length in tokens")
    parser.add_argument("--decode", type=int, default=64, help="decode steps")
    parser.add_argument("--bf16-mode", choices=["auto", "direct", "autocast"], default="auto")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = build_model(args.model, torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    result = {"engine": "pytorch", "dtype": args.dtype, "threads": args.threads}
    context = contextlib.nullcontext
    with torch.inference_mode():
        if args.dtype == "bf16":
            result["bf16_mode"], context = pick_bf16_mode(model, args.bf16_mode)
        prefill_rate, prefill_util = median_rate(lambda: time_prefill(model, args.prefill, context), args.prefill)
        decode_rate, decode_util = median_rate(lambda: time_decode(model, args.decode, context), args.decode)
        result["prefill_tok_s"] = round(prefill_rate, 2)
        result["decode_tok_s"] = round(decode_rate, 2)
        result["prefill_cpu_util"] = round(prefill_util, 2)
        result["decode_cpu_util"] = round(decode_util, 2)
    result.update({"prefill_tokens": args.prefill, "decode_tokens": args.decode,
                   "model": args.model or "random shape S", "torch": torch.__version__})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
