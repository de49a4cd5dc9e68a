#!/usr/bin/python3
"""Train moescope's SentencePiece BPE tokenizer on the train split of the corpus.

Usage: /usr/bin/python3 datasets/train_tokenizer.py [--corpus datasets/corpus]
           [--out datasets/work/tokenizer.model] [--vocab 8192] [--bytes-per-domain 1500000]

Input: an even sample of every domain: the documents of corpus/train/<domain>.jsonl taken in
order of sha256("tokenizer:" + id) until --bytes-per-domain bytes, domains in name order, each
document cut into lines (SentencePiece sentences; lines over 4096 bytes are skipped by the
trainer). Fed through the Python API's sentence iterator, so no path is embedded in the model.

Model: BPE, byte_fallback, unk 0 <unk>, bos 1 <s>, eos 2 </s>, no pad, identity normalization
(no NFKC, whitespace kept as is), split_digits, character_coverage 0.9995, one thread, no input
shuffling: the same corpus gives the same model bytes. Prints bytes per token per domain on the
eval split and writes them next to the model as tokenizer_stats.json.
"""

import argparse
import hashlib
import io
import json
import os
import time

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))

OPTIONS = {
    "model_type": "bpe",
    "byte_fallback": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
    "character_coverage": 0.9995,
    "normalization_rule_name": "identity",
    "split_digits": True,
    "remove_extra_whitespaces": False,
    "allow_whitespace_only_pieces": True,
    "max_sentence_length": 4096,
    "input_sentence_size": 0,
    "shuffle_input_sentence": False,
    "num_threads": 1,
    "minloglevel": 1,
}


def domains(corpus):
    return sorted(f[:-6] for f in os.listdir(os.path.join(corpus, "train")) if f.endswith(".jsonl"))


def read_docs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def sample_lines(corpus, per_domain):
    """Lines of an even per-domain sample, in a fixed order."""
    lines = []
    for domain in domains(corpus):
        docs = read_docs(os.path.join(corpus, "train", f"{domain}.jsonl"))
        docs.sort(key=lambda d: hashlib.sha256(("tokenizer:" + d["id"]).encode()).digest())
        used = 0
        for d in docs:
            if used >= per_domain:
                break
            used += len(d["text"].encode("utf-8"))
            lines += [l for l in d["text"].split("\n") if l.strip()]
    return lines


def stats(model_path, corpus):
    sp = spm.SentencePieceProcessor(model_file=model_path)
    out = {}
    for domain in domains(corpus):
        docs = read_docs(os.path.join(corpus, "eval", f"{domain}.jsonl"))
        nbytes = sum(len(d["text"].encode("utf-8")) for d in docs)
        ntok = sum(len(ids) for ids in sp.encode([d["text"] for d in docs]))
        nbyte_pieces = sum(sum(1 for i in ids if sp.is_byte(i)) for ids in sp.encode([d["text"] for d in docs]))
        out[domain] = {"bytes": nbytes, "tokens": ntok, "bytes_per_token": round(nbytes / ntok, 3),
                       "byte_fallback_share": round(nbyte_pieces / ntok, 4)}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    parser.add_argument("--out", default=os.path.join(HERE, "work", "tokenizer.model"))
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--bytes-per-domain", type=int, default=1_500_000)
    args = parser.parse_args()
    t0 = time.time()
    lines = sample_lines(args.corpus, args.bytes_per_domain)
    print(f"{len(lines)} lines, {sum(len(l.encode()) for l in lines) / 1e6:.1f} MB", flush=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model,
                                   vocab_size=args.vocab, **OPTIONS)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "wb") as f:
        f.write(model.getvalue())
    sp = spm.SentencePieceProcessor(model_file=args.out)
    assert sp.get_piece_size() == args.vocab
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    sample = "Hello, world! 2024 \u00e9\n\tint main() { return 0; }"
    assert sp.decode(sp.encode(sample)) == sample
    seconds = time.time() - t0
    result = {"model": os.path.basename(args.out), "vocab_size": args.vocab,
              "sha256": hashlib.sha256(model.getvalue()).hexdigest(),
              "train_lines": len(lines), "train_seconds": round(seconds, 1),
              "eval_split": stats(args.out, args.corpus)}
    with open(os.path.join(os.path.dirname(os.path.abspath(args.out)), "tokenizer_stats.json"), "w") as f:
        f.write(json.dumps(result, indent=1, sort_keys=True) + "\n")
    for d, s in result["eval_split"].items():
        print(f"{d:14s} {s['bytes_per_token']:.2f} bytes/token  byte-fallback {100 * s['byte_fallback_share']:.2f}%")
    print(f"wrote {args.out} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
