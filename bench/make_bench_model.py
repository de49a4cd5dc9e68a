"""Write the random benchmark checkpoint "shape S" as a model folder (config.json +
model.safetensors), so the C++ engine and bench/torch_reference_bench.py run on the same weights.

Shape S: llama_moe, 8 layers, hidden 1024, 16 heads (head_dim 64), 8 experts x 352
(intermediate 2816), top-2, MLP gate, vocab 32000, max_position_embeddings 2048.

Usage: /usr/bin/python3 bench/make_bench_model.py OUT_DIR [--dtype f32|bf16] [--seed N]
(about 670 MB in f32, 335 MB in bf16).
"""

import argparse
import os
import sys

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "reference"))
import model_builder as mb  # noqa: E402

DEFAULT_SEED = 1234


def shape_s_config(dtype="f32"):
    """Full LlamaMoEConfig of benchmark shape S."""
    return mb.moe_config(
        vocab_size=32000,
        hidden_size=1024,
        num_hidden_layers=8,
        num_attention_heads=16,
        num_key_value_heads=16,
        intermediate_size=2816,
        num_experts=8,
        num_selects=2,
        size_experts=None,
        gate_network="mlp",
        score_scale_factor=4.0,
        max_position_embeddings=2048,
        rms_norm_eps=1e-05,
        torch_dtype="bfloat16" if dtype == "bf16" else "float32",
    )


def shape_s_weights(seed=DEFAULT_SEED, dtype="f32"):
    """Seeded random weights of shape S (float32 arrays; BF16-rounded when dtype is bf16)."""
    import safetensors_io

    weights = mb.random_weights(shape_s_config(dtype), np.random.default_rng(seed))
    if dtype == "bf16":
        weights = {n: safetensors_io.round_to_bf16(v) for n, v in weights.items()}
    return weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    config = shape_s_config(args.dtype)
    mb.write_json(os.path.join(args.out_dir, "config.json"), config)
    mb.write_json(os.path.join(args.out_dir, "generation_config.json"),
                  {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})
    mb.write_safetensors_model(args.out_dir, shape_s_weights(args.seed, args.dtype), bf16=args.dtype == "bf16")
    size = os.path.getsize(os.path.join(args.out_dir, "model.safetensors"))
    print(f"wrote {args.out_dir} ({args.dtype}, seed {args.seed}, {size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
