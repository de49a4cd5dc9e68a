"""Write the test model tests/fixtures/tiny_moe/: an untrained, seeded random tiny
LLaMA-MoE with its own small SentencePiece BPE tokenizer.

Usage: /usr/bin/python3 tests/reference/make_default_model.py [--out tests/fixtures/tiny_moe]

Tokenizer: SentencePiece BPE, 512 pieces, byte fallback, unk 0 / bos 1 / eos 2 / no pad, trained
on the regular files (symlinks skipped) under /usr/share/common-licenses/, concatenated in name
order. Model: llama_moe, vocab 512, hidden 64, 2 layers, 4 heads / 2 KV heads, intermediate 256 =
8 experts x 32, top-2, MLP gate, score_scale_factor 4.0, max_position_embeddings 256, F32.
"""

import argparse
import hashlib
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_builder as mb  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO_ROOT, "datasets", "models", "default")
LICENSE_DIR = "/usr/share/common-licenses"
SEED = 20240101

CONFIG = mb.moe_config(
    vocab_size=512,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=256,
    num_experts=8,
    num_selects=2,
    gate_network="mlp",
    score_scale_factor=4.0,
    max_position_embeddings=256,
    rms_norm_eps=1e-05,
    architectures=["LlamaMoEForCausalLM"],
)

GENERATION_CONFIG = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

TRAINER_OPTIONS = {
    "model_type": "bpe",
    "vocab_size": 512,
    "byte_fallback": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
    "character_coverage": 1.0,
    "normalization_rule_name": "identity",
    "split_digits": True,
    "remove_extra_whitespaces": False,
    "allow_whitespace_only_pieces": True,
    "num_threads": 1,
}


def license_corpus():
    """Concatenated text of the regular license files, and the list of names used."""
    names = sorted(n for n in os.listdir(LICENSE_DIR)
                   if os.path.isfile(os.path.join(LICENSE_DIR, n)) and not os.path.islink(os.path.join(LICENSE_DIR, n)))
    parts = []
    for name in names:
        with open(os.path.join(LICENSE_DIR, name), encoding="utf-8", errors="replace") as f:
            parts.append(f.read())
    return "".join(parts), names


def train_tokenizer(out_dir, corpus):
    """Train the SentencePiece model into out_dir/tokenizer.model."""
    import sentencepiece as spm

    out_path = os.path.abspath(os.path.join(out_dir, "tokenizer.model"))
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # relative paths: the trainer stores input and model_prefix in the model file
        os.chdir(tmp)
        try:
            with open("common-licenses.txt", "w", encoding="utf-8") as f:
                f.write(corpus)
            spm.SentencePieceTrainer.train(input="common-licenses.txt", model_prefix="tokenizer",
                                           minloglevel=2, **TRAINER_OPTIONS)
            with open("tokenizer.model", "rb") as src, open(out_path, "wb") as dst:
                dst.write(src.read())
        finally:
            os.chdir(cwd)


def check_tokenizer(out_dir):
    """Special ids and vocabulary size are as configured; returns a sample encoding."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(out_dir, "tokenizer.model"))
    assert sp.get_piece_size() == 512, sp.get_piece_size()
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    sample = "Hello, world! 2024 \u00e9"
    ids = sp.encode(sample)
    assert sp.decode(ids) == sample
    return sample, ids


def readme(corpus_names, corpus_sha, sample, ids, sizes):
    """README.md of the model folder."""
    files = "\n".join(f"| {n} | {s} |" for n, s in sizes)
    return f"""# Default model (untrained placeholder)

This is **not a trained model**: a tiny LLaMA-MoE with seeded random weights and a small
SentencePiece tokenizer, bundled so that every command has a model to open until a trained one
exists. Its outputs are meaningless text; use it for smoke tests and plumbing only.

Regenerate (deterministic): `/usr/bin/python3 tests/reference/make_default_model.py`

## Model

`llama_moe`, vocab 512, hidden 64, 2 layers, 4 heads / 2 KV heads (head_dim 16), intermediate
256 split into 8 experts of 32, top-2, MLP gate (Linear-Tanh-Linear), softmax scores,
score_scale_factor 4.0, max_position_embeddings 256, rms_norm_eps 1e-5, untied lm_head,
F32 weights in `model.safetensors` drawn with numpy PCG64 seed {SEED}
(`tests/reference/model_builder.py`, `random_weights`). `generation_config.json`: bos 1, eos 2, pad 0.

## Tokenizer

`tokenizer.model`: SentencePiece BPE, 512 pieces, byte_fallback (256 `<0xNN>` pieces),
unk 0 `<unk>`, bos 1 `<s>`, eos 2 `</s>`, no pad piece, identity normalization, split digits,
whitespace kept. Trained with the Python SentencePiece trainer on the concatenation of the
regular files (symlinks skipped) in `/usr/share/common-licenses/` in name order:
{", ".join(corpus_names)} (corpus sha256 `{corpus_sha}`).
Example: `{sample!r}` -> {ids} (no BOS added).

## Files

| file | bytes |
|---|---|
{files}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    corpus, names = license_corpus()
    train_tokenizer(args.out, corpus)
    sample, ids = check_tokenizer(args.out)
    weights = mb.random_weights(CONFIG, np.random.default_rng(SEED))
    mb.write_safetensors_model(args.out, weights)
    mb.write_json(os.path.join(args.out, "config.json"), CONFIG)
    mb.write_json(os.path.join(args.out, "generation_config.json"), GENERATION_CONFIG)
    files = sorted(f for f in os.listdir(args.out) if f != "README.md")
    sizes = [(f, os.path.getsize(os.path.join(args.out, f))) for f in files]
    corpus_sha = hashlib.sha256(corpus.encode("utf-8")).hexdigest()
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(readme(names, corpus_sha, sample, ids, sizes))
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out}: {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
