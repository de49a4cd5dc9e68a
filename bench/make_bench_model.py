"""Write a benchmark model folder of shape S, M or full, or a family shape, with seeded random weights.

The folder (config.json, safetensors checkpoint, tokenizer.model) is read by both the C++ engine
and bench/torch_reference_bench.py, so they run on the same weights.

Shapes (all llama_moe, MLP gate, top-2 of 8 experts, vocab 32000, score_scale_factor 4.0):

  S     8 layers, hidden 1024, 16 heads (head_dim 64),  8 experts x 352  (intermediate 2816)
  M    16 layers, hidden 2048, 16 heads (head_dim 128), 8 experts x 688  (intermediate 5504)
  full 32 layers, hidden 4096, 32 heads (head_dim 128), 8 experts x 1376 (intermediate 11008):
       the released LLaMA-MoE-3.5B (2/8), config as upstream's (size_experts listed per layer,
       max_position_embeddings 4096); bf16 only

Sizes: S 643 MiB f32 / 321 MiB bf16 (one model.safetensors); M 3.5 GiB f32 / 1.8 GiB bf16 and
full 12.6 GiB bf16 (model-0000k-of-0000n.safetensors shards + model.safetensors.index.json).

Family shapes (--family, about the size of S: 8 layers, hidden 1024, vocab 32000, 16 query heads
of 64, each family's own router and experts scaled down; bench/README.md has the table):

  mixtral     8 experts x 352, top-2, 4 KV heads
  olmoe       64 experts x 64, top-8 (fine-grained), full-width q/k norm
  qwen2_moe   16 experts x 176, top-4, plus a sigmoid-gated shared expert of 704; q/k/v biases
  qwen3_moe   64 experts x 64, top-8, per-head q/k norm, 4 KV heads
  granitemoe  32 experts x 128, top-8, embedding/residual/attention/logits multipliers, 8 KV heads,
              tied embeddings
  dots1       32 experts x 128, top-4 of 2 of 4 groups (sigmoid router with selection bias), an
              ungated shared expert of 128, layer 0 dense (2816), 4 KV heads
Configs come from tests/reference/make_family_fixtures.py (every key of the family's configuration
class) and weights from its random_weights (the family's own tensor names and scales), written as
one model.safetensors; a 32-token forward of tests/reference/family_reference.py checks that the
logits are finite.

Usage: /usr/bin/python3 bench/make_bench_model.py [OUT_DIR] [--shape S|M|full | --family NAME]
           [--dtype f32|bf16] [--seed N] [--tokenizer PATH | --no-tokenizer] [--shard-gib G]
OUT_DIR defaults to bench/models/shape-<shape>-<dtype> (family-<family>-<dtype> with --family).

S is built in memory by tests/reference/model_builder.py exactly as before (its weights are
byte-identical for a given seed). M and full are generated and written tensor by tensor (a
header first, then the data in chunks), so memory stays at a few hundred MiB whatever the
shape; they use numpy's float32 normal sampler, which is about twice as fast as the float64 one
S uses. For a given seed the f32 and bf16 folders of one shape hold the same weights (bf16 is
the f32 value rounded to nearest even). Scales as model_builder.random_weights (activations stay
finite through 32 layers).
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
import model_builder as mb  # noqa: E402

sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
import family_shapes  # noqa: E402

DEFAULT_SEED = 1234
DEFAULT_TOKENIZER = os.path.join(REPO_ROOT, "tests", "golden", "llama2-tokenizer", "tokenizer.model")
SHAPES = ("s", "m", "full")
# Elements generated per chunk: bounds the generator's memory (64 MiB of float32 per chunk).
CHUNK_ELEMENTS = 16 * 1024 * 1024


def _shape_config(dtype, **fields):
    return mb.moe_config(
        vocab_size=32000,
        num_experts=8,
        num_selects=2,
        gate_network="mlp",
        score_scale_factor=4.0,
        rms_norm_eps=1e-05,
        torch_dtype="bfloat16" if dtype == "bf16" else "float32",
        **fields,
    )


def shape_s_config(dtype="f32"):
    """Full LlamaMoEConfig of benchmark shape S."""
    return _shape_config(dtype, hidden_size=1024, num_hidden_layers=8, num_attention_heads=16,
                         num_key_value_heads=16, intermediate_size=2816, size_experts=None,
                         max_position_embeddings=2048)


def shape_m_config(dtype="f32"):
    """Benchmark shape M: between S and the released model (head_dim 128 as the latter)."""
    return _shape_config(dtype, hidden_size=2048, num_hidden_layers=16, num_attention_heads=16,
                         num_key_value_heads=16, intermediate_size=5504, size_experts=None,
                         max_position_embeddings=4096)


def shape_full_config(dtype="bf16"):
    """LLaMA-MoE-v1-3_5B-2_8 as released (docs/llama-moe-spec.md §1.2): the
    expert widths are listed per layer and the converter's stray "gates" key is kept, so the
    engine parses the same config.json layout as the real checkpoint's."""
    config = _shape_config(dtype, hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=32, intermediate_size=11008,
                           size_experts=[[1376] * 8 for _ in range(32)],
                           max_position_embeddings=4096)
    config["gates"] = "mlp"
    return config


def shape_config(shape, dtype):
    return {"s": shape_s_config, "m": shape_m_config, "full": shape_full_config}[shape](dtype)


def shape_s_weights(seed=DEFAULT_SEED, dtype="f32"):
    """Seeded random weights of shape S (float32 arrays; BF16-rounded when dtype is bf16)."""
    import safetensors_io

    weights = mb.random_weights(shape_s_config(dtype), np.random.default_rng(seed))
    if dtype == "bf16":
        weights = {n: safetensors_io.round_to_bf16(v) for n, v in weights.items()}
    return weights


# ---- streaming generator (M, full) --------------------------------------------------------------


class Spec:
    """One tensor to generate: mean + std * N(0, 1), or fixed values (`values`)."""

    def __init__(self, name, shape, std=0.0, mean=0.0, values=None):
        self.name, self.shape, self.std, self.mean, self.values = name, tuple(shape), std, mean, values

    def numel(self):
        return math.prod(self.shape)


def tensor_plan(config):
    """Every tensor of the checkpoint in file order, with model_builder.random_weights' scales:
    embeddings N(0,1), norms 1 + N(0, 0.1), projections c / sqrt(fan_in)."""
    h, layers, e = config["hidden_size"], config["num_hidden_layers"], config["num_experts"]
    heads = config["num_attention_heads"]
    d = h // heads
    sizes = config["size_experts"] or [[config["intermediate_size"] // e] * e] * layers
    inv_freq = (1.0 / (config["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float32) / d))).astype(np.float32)
    plan = [Spec("model.embed_tokens.weight", (config["vocab_size"], h), 1.0)]
    for layer in range(layers):
        p = f"model.layers.{layer}."
        plan += [
            Spec(p + "self_attn.q_proj.weight", (h, h), 1.2 / math.sqrt(h)),
            Spec(p + "self_attn.k_proj.weight", (h, h), 1.2 / math.sqrt(h)),
            Spec(p + "self_attn.v_proj.weight", (h, h), 0.64 / math.sqrt(h)),
            Spec(p + "self_attn.o_proj.weight", (h, h), 0.64 / math.sqrt(h)),
            # A persistent buffer in upstream checkpoints; loaders must ignore it.
            Spec(p + "self_attn.rotary_emb.inv_freq", (d // 2,), values=inv_freq),
            Spec(p + "input_layernorm.weight", (h,), 0.1, 1.0),
            Spec(p + "post_attention_layernorm.weight", (h,), 0.1, 1.0),
            Spec(p + "mlp.gate.gate_network.0.weight", (e, h), 1.2 / math.sqrt(h)),
            Spec(p + "mlp.gate.gate_network.2.weight", (e, e), 1.3 / math.sqrt(e)),
            Spec(p + "mlp.gate.weight_noise.weight", (e, h), 0.02),
        ]
        for i, size in enumerate(sizes[layer]):
            q = p + "mlp.calculator.experts."
            plan += [
                Spec(q + f"weight_gate.{i}", (size, h), 1.0 / math.sqrt(h)),
                Spec(q + f"weight_up.{i}", (size, h), 1.0 / math.sqrt(h)),
                Spec(q + f"weight_down.{i}", (h, size), 0.7 / math.sqrt(size)),
            ]
    plan += [
        Spec("model.norm.weight", (h,), 0.1, 1.0),
        Spec("lm_head.weight", (config["vocab_size"], h), 0.64 / math.sqrt(h)),
    ]
    return plan


def split_shards(plan, itemsize, shard_bytes):
    """Consecutive groups of the plan of about equal size, none much above shard_bytes."""
    total = sum(s.numel() for s in plan) * itemsize
    count = max(1, math.ceil(total / shard_bytes))
    target = total / count
    shards, current, size = [], [], 0
    for spec in plan:
        if current and size >= target and len(shards) < count - 1:
            shards.append(current)
            current, size = [], 0
        current.append(spec)
        size += spec.numel() * itemsize
    shards.append(current)
    return shards


def bf16_bits_inplace(a):
    """float32 chunk -> uint16 BF16 bits, rounded to nearest even. Overwrites `a` (it is a
    scratch chunk) to avoid a second full-size temporary; no NaN handling, as samples of a
    normal distribution are finite."""
    u = a.view(np.uint32)
    u += ((u >> np.uint32(16)) & np.uint32(1)) + np.uint32(0x7FFF)
    u >>= np.uint32(16)
    return u.astype("<u2")


def write_tensor(f, spec, rng, bf16):
    """Generate `spec` chunk by chunk (whole rows) and append its bytes to f."""
    if spec.values is not None:
        a = np.ascontiguousarray(spec.values, dtype=np.float32).copy()
        f.write(bf16_bits_inplace(a) if bf16 else a.astype("<f4"))
        return
    cols = math.prod(spec.shape[1:])
    chunk_rows = max(1, CHUNK_ELEMENTS // cols)
    for start in range(0, spec.shape[0], chunk_rows):
        a = rng.standard_normal(min(chunk_rows, spec.shape[0] - start) * cols, dtype=np.float32)
        a *= np.float32(spec.std)
        if spec.mean:
            a += np.float32(spec.mean)
        f.write(bf16_bits_inplace(a) if bf16 else a.astype("<f4", copy=False))


def write_sharded_streaming(folder, config, seed, bf16, shard_bytes, log):
    """model-0000k-of-0000n.safetensors written header first, then tensor by tensor; the index
    last, so a folder whose generation was interrupted has no index and is not mistaken for a
    complete checkpoint. Returns the total size of the shards in bytes."""
    plan = tensor_plan(config)
    itemsize = 2 if bf16 else 4
    shards = split_shards(plan, itemsize, shard_bytes)
    rng = np.random.default_rng(seed)
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index_path):
        os.remove(index_path)
    weight_map, total, done = {}, 0, 0
    grand_total = sum(s.numel() for s in plan) * itemsize
    start = time.time()
    for k, specs in enumerate(shards, 1):
        file = f"model-{k:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for spec in specs:
            size = spec.numel() * itemsize
            header[spec.name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(spec.shape),
                                 "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)  # keeps the data 8-byte aligned, as safetensors does
        path = os.path.join(folder, file)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for spec in specs:
                write_tensor(f, spec, rng, bf16)
                done += spec.numel() * itemsize
                if spec.name.endswith("weight_down.0") or spec.name == "lm_head.weight":
                    elapsed = time.time() - start
                    log(f"  {spec.name.rsplit('.mlp', 1)[0]}: {done / 2**30:.2f} / {grand_total / 2**30:.2f} GiB, "
                        f"{elapsed:.0f} s")
            written = f.tell()
        if written != 8 + len(text) + offset:  # a generator bug, not a user error
            raise RuntimeError(f"{path}: wrote {written} bytes, expected {8 + len(text) + offset}")
        for spec in specs:
            weight_map[spec.name] = file
        total += offset
    mb.write_json(index_path, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return total


# ---- main ---------------------------------------------------------------------------------------


def write_family(out_dir, family, dtype, seed, log):
    """A family shape (bench/family_shapes.py) as one model.safetensors; checks finite logits."""
    config = family_shapes.family_config(family, dtype)
    mb.write_json(os.path.join(out_dir, "config.json"), config)
    weights = family_shapes.family_weights(family, seed)
    log(f"{family}: {family_shapes.parameter_count(weights) / 1e6:.1f} M parameters")
    mb.write_safetensors_model(out_dir, weights, bf16=dtype == "bf16")
    del weights
    max_logit, used = family_shapes.check_finite(out_dir)
    log(f"{family}: 32-token reference forward finite, max |logit| {max_logit:.1f}, experts used per "
        f"MoE layer {used}")
    return os.path.getsize(os.path.join(out_dir, "model.safetensors"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", help="model folder (default bench/models/shape-<shape>-<dtype>, "
                                                   "family-<family>-<dtype> with --family)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--shape", type=str.lower, choices=SHAPES, default="s")
    kind.add_argument("--family", choices=family_shapes.FAMILIES,
                      help="a family shape instead of a llama_moe one (see the header)")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default=None,
                        help="default f32 for S and M, bf16 for full")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER,
                        help="tokenizer.model to copy into the folder (default: LLaMA-2's, when placed in "
                             "tests/golden/llama2-tokenizer/; copied when present, required for full)")
    parser.add_argument("--no-tokenizer", action="store_true", help="do not copy a tokenizer.model")
    parser.add_argument("--shard-gib", type=float, default=4.0,
                        help="M and full: largest shard in GiB (shards are balanced)")
    args = parser.parse_args()
    dtype = args.dtype or ("bf16" if args.shape == "full" else "f32")
    if args.shape == "full" and dtype == "f32":
        parser.error("shape full is bf16 only: in f32 it would be 27 GB, more than this machine's "
                     "23 GB of RAM, so its weights could not stay in memory while benchmarking")
    name = f"family-{args.family}" if args.family else f"shape-{args.shape}"
    out_dir = args.out_dir or os.path.join(REPO_ROOT, "bench", "models", f"{name}-{dtype}")
    tokenizer = None if args.no_tokenizer else args.tokenizer
    if tokenizer and not os.path.isfile(tokenizer):
        if args.shape == "full" or args.tokenizer != DEFAULT_TOKENIZER:
            parser.error(f"no tokenizer at {tokenizer} (give --tokenizer PATH or --no-tokenizer)")
        tokenizer = None  # S and M are usable without one: the benchmarks use random ids

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    os.makedirs(out_dir, exist_ok=True)
    if args.family:
        start = time.time()
        if tokenizer:
            shutil.copyfile(tokenizer, os.path.join(out_dir, "tokenizer.model"))
        size = write_family(out_dir, args.family, dtype, args.seed, log)
        print(f"wrote {out_dir} (family {args.family}, {dtype}, seed {args.seed}, {size / 2**20:.0f} MiB, "
              f"{time.time() - start:.0f} s{', with tokenizer.model' if tokenizer else ''})")
        return
    config = shape_config(args.shape, dtype)
    if args.shape != "s":
        need = sum(s.numel() for s in tensor_plan(config)) * (2 if dtype == "bf16" else 4)
        free = shutil.disk_usage(out_dir).free
        if free < need + 2**30:
            sys.exit(f"make_bench_model.py: {out_dir}: needs {need / 2**30:.1f} GiB, "
                     f"only {free / 2**30:.1f} GiB free")
    start = time.time()
    mb.write_json(os.path.join(out_dir, "config.json"), config)
    mb.write_json(os.path.join(out_dir, "generation_config.json"),
                  {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})
    if tokenizer:
        shutil.copyfile(tokenizer, os.path.join(out_dir, "tokenizer.model"))
    if args.shape == "s":
        mb.write_safetensors_model(out_dir, shape_s_weights(args.seed, dtype), bf16=dtype == "bf16")
        size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
    else:
        log(f"generating shape {args.shape} ({dtype}) into {out_dir}")
        size = write_sharded_streaming(out_dir, config, args.seed, dtype == "bf16",
                                       int(args.shard_gib * 2**30), log)
    print(f"wrote {out_dir} (shape {args.shape}, {dtype}, seed {args.seed}, {size / 2**20:.0f} MiB, "
          f"{time.time() - start:.0f} s{', with tokenizer.model' if tokenizer else ''})")


if __name__ == "__main__":
    main()
