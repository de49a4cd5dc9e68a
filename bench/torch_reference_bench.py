"""PyTorch speed reference for the engine benchmark: prefill and KV-cache decode throughput of
the project's reference model on CPU: tests/reference/llama_moe_reference.py for llama_moe
folders, tests/reference/family_reference.py for the other families (dispatched on config.json's
model_type; both keep a KV cache, so the measurements are the same for every family).

Usage: /usr/bin/python3 bench/torch_reference_bench.py [--model DIR] [--dtype f32|bf16]
           [--threads N] [--prefill 512] [--decode 64] [--bf16-mode auto|direct|autocast]
           [--load copy|mmap]

Without --model, builds benchmark shape S (bench/make_bench_model.py) with seeded random weights.
Prefill: one forward over `--prefill` tokens, tokens/s as the median of 3 runs after a warmup.
Decode: after prefilling a 1-token prompt, `--decode` greedy steps one token at a time through
the KV cache, tokens/s over all steps (median of 3 after a warmup).
bf16: weights cast to bfloat16 and either run directly in bf16 ("direct") or under
torch.autocast('cpu', dtype=torch.bfloat16) ("autocast"); "auto" times a short probe of both and
keeps the faster. Prints one JSON line, with the load time and the process's peak resident
memory.
Loading: "copy" (the default) is the reference's own from_dir, which reads every tensor into
float32 numpy arrays and then converts them (a bf16 checkpoint needs 3x its size in memory);
"mmap" maps the safetensors files and wraps each tensor as a torch tensor in place, converting
only tensors stored in another dtype than --dtype. Both give the same values; mmap is what makes
the full shape (12.6 GiB bf16, 25 GiB as float32) fit in memory, as the engine does.
"""

import argparse
import contextlib
import json
import mmap
import os
import resource
import statistics
import sys
import time
import warnings

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
import safetensors_io  # noqa: E402
from family_reference import FAMILIES, FamilyConfig, FamilyReference  # noqa: E402
from llama_moe_reference import LlamaMoEReference  # noqa: E402

REPEATS = 3


class MappedReference(LlamaMoEReference):
    """The reference model on weights that are already torch tensors (LlamaMoEReference's own
    constructor takes numpy arrays, and numpy has no bfloat16)."""

    def __init__(self, config, weights, dtype):
        super().__init__(config, {}, dtype)
        self.weights = weights


class MappedFamilyReference(FamilyReference):
    """The family reference on weights that are already torch tensors (its constructor, too,
    takes numpy arrays and checks the attention biases against the config, which is kept)."""

    def __init__(self, config, weights, dtype):
        self.config = FamilyConfig(config)
        self.dtype = dtype
        self.weights = weights
        self._check_attention_keys()


_TORCH_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def load_mapped(model_dir, dtype):
    """{name: tensor} viewing the memory-mapped safetensors checkpoint of model_dir (a single
    model.safetensors or shards named by model.safetensors.index.json). The maps stay open for
    the life of the tensors (torch.frombuffer keeps a reference to them)."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        files = ["model.safetensors"]
    elif os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        sys.exit(f"torch_reference_bench.py: --load mmap needs safetensors weights in {model_dir}")
    weights = {}
    for file in files:
        path = os.path.join(model_dir, file)
        header, _, start = safetensors_io.read_header(path)
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        for name, info in header.items():
            stored = _TORCH_DTYPES.get(info["dtype"])
            if stored is None:  # integer buffers: the reference keeps only float tensors
                continue
            begin, end = info["data_offsets"]
            with warnings.catch_warnings():
                # The map is read-only and the reference never writes to its weights.
                warnings.filterwarnings("ignore", message="The given buffer is not writable")
                count = (end - begin) * 8 // torch.finfo(stored).bits
                t = torch.frombuffer(mapped, dtype=stored, count=count, offset=start + begin)
            t = t.view(info["shape"])
            weights[name] = t if stored == dtype else t.to(dtype)
    return weights


def build_model(model_dir, dtype, load="copy"):
    """The reference model of a folder's model_type (llama_moe or a family), or shape S with
    random weights."""
    if model_dir:
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
        family = config.get("model_type") in FAMILIES
        if load == "mmap":
            mapped = MappedFamilyReference if family else MappedReference
            return mapped(config, load_mapped(model_dir, dtype), dtype)
        return (FamilyReference if family else LlamaMoEReference).from_dir(model_dir, dtype)
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
    parser.add_argument("--load", choices=["copy", "mmap"], default="copy",
                        help="how a --model folder is loaded (see the header)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = build_model(args.model, torch.bfloat16 if args.dtype == "bf16" else torch.float32, args.load)
    load_s = time.perf_counter() - start
    result = {"engine": "pytorch", "dtype": args.dtype, "threads": args.threads,
              "model_type": model.config.model_type}
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
                   "load_s": round(load_s, 2), "load": args.load,
                   # ru_maxrss is in KiB on Linux; like the engine's, it counts mapped weights
                   # only as far as they were touched.
                   "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
                   "model": args.model or "random shape S", "torch": torch.__version__})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
