"""Shared pieces of datasets/train_dense.py and datasets/train_moe.py: thread settings, the
tokenized corpus (cached under datasets/work/tokens/), packed mixed-domain training batches, the
per-domain evaluation protocol, the learning-rate schedule, resumable checkpoints, logging and
writing HF model folders.

The model itself is the project's PyTorch reference (tests/reference/llama_moe_reference.py),
made trainable by turning its weight dict into torch Parameters (see `trainable`).

Evaluation protocol (also what the engine's perplexity must reproduce): every eval document is
tokenized as [BOS] + ids + [EOS] and cut into windows of at most 257 tokens with stride 256
(window k = tokens [256k, 256k + 257)); each window is one independent sequence starting at
position 0, and every token except the leading BOS is predicted exactly once. Loss = mean
cross-entropy over all predicted tokens of a domain; perplexity = exp(loss).
"""

import hashlib
import json
import math
import os
import random
import shutil
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import llama_moe_reference as ref  # noqa: E402
import model_builder as mb  # noqa: E402

WORK = os.path.join(HERE, "work")
CORPUS = os.path.join(HERE, "corpus")
SEQ = 256
BOS, EOS = 1, 2


def reexec_with_hugepages():
    """Restart this process once with glibc's malloc using transparent huge pages
    (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc >= 2.35). Measured on the 2-core VM: page faults
    of the large per-step tensors (logits are 4096 x 8192) made zero-fill 27x and a whole training
    step about 3x slower without it (7 -> 2.4 CPU s per step)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables or os.environ.get("MOESCOPE_NO_REEXEC"):
        return
    env = dict(os.environ, GLIBC_TUNABLES=(tunables + ":" if tunables else "") + "glibc.malloc.hugetlb=1")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def acquire_lock(path):
    """Exclusive flock on path (kept open for the life of the process): a second trainer writing
    the same checkpoint exits instead of racing the first."""
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(path, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"{path} is locked: another trainer is running on this checkpoint")
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def set_threads(n=1):
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# tokenized corpus
# ---------------------------------------------------------------------------------------------


def domains(corpus=CORPUS):
    return sorted(f[:-6] for f in os.listdir(os.path.join(corpus, "train")) if f.endswith(".jsonl"))


def tokenized(split, domain, tokenizer_path, corpus=CORPUS):
    """(tokens uint16 [N], offsets int64 [docs + 1]) of [BOS] + ids + [EOS] per document, in file
    order. Cached in datasets/work/tokens/ keyed by the sha256 of the JSONL and the tokenizer."""
    import sentencepiece as spm

    src = os.path.join(corpus, split, f"{domain}.jsonl")
    key = hashlib.sha256((sha256_file(src) + sha256_file(tokenizer_path)).encode()).hexdigest()[:16]
    cache = os.path.join(WORK, "tokens", f"{split}-{domain}-{key}.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        return z["tokens"], z["offsets"]
    sp = spm.SentencePieceProcessor(model_file=tokenizer_path)
    with open(src, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    ids = sp.encode(texts)
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(x) + 2 for x in ids])
    tokens = np.empty(offsets[-1], dtype=np.uint16)
    for i, x in enumerate(ids):
        tokens[offsets[i]] = BOS
        tokens[offsets[i] + 1:offsets[i + 1] - 1] = x
        tokens[offsets[i + 1] - 1] = EOS
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache + ".tmp.npz", tokens=tokens, offsets=offsets)
    os.replace(cache + ".tmp.npz", cache)
    return tokens, offsets


class TrainStream:
    """Packed mixed-domain training blocks of SEQ + 1 tokens. Epoch e: all train documents of all
    domains in a random order (numpy PCG64 seed + e) concatenated, cut into blocks with stride
    SEQ, blocks shuffled with the same generator. Batch of step s = blocks s*B ... s*B + B - 1 of
    the endless sequence of epochs, so the data position is a function of the step alone."""

    def __init__(self, tokenizer_path, batch, seed, corpus=CORPUS):
        self.batch, self.seed = batch, seed
        self.docs = []
        self.domain_tokens = {}
        for domain in domains(corpus):
            tokens, offsets = tokenized("train", domain, tokenizer_path, corpus)
            self.docs += [tokens[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
            self.domain_tokens[domain] = int(len(tokens))
        self.total_tokens = sum(self.domain_tokens.values())
        self.blocks_per_epoch = (self.total_tokens - 1) // SEQ
        self._epoch, self._blocks = None, None

    def _load_epoch(self, epoch):
        if self._epoch == epoch:
            return
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.docs))
        stream = np.concatenate([self.docs[i] for i in order])
        n = (len(stream) - 1) // SEQ
        starts = rng.permutation(n) * SEQ
        self._blocks = (stream, starts)
        self._epoch = epoch

    def batch_at(self, step):
        """LongTensor [B, SEQ + 1]."""
        rows = []
        for j in range(self.batch):
            g = step * self.batch + j
            self._load_epoch(g // self.blocks_per_epoch)
            stream, starts = self._blocks
            s = starts[g % self.blocks_per_epoch]
            rows.append(stream[s:s + SEQ + 1].astype(np.int64))
        return torch.from_numpy(np.stack(rows))

    def epochs_at(self, step):
        return step * self.batch / self.blocks_per_epoch


def eval_windows(tokens, offsets):
    """Windows of the eval protocol (module docstring) for one domain, as numpy int64 arrays."""
    out = []
    for i in range(len(offsets) - 1):
        doc = tokens[offsets[i]:offsets[i + 1]].astype(np.int64)
        for start in range(0, len(doc) - 1, SEQ):
            out.append(doc[start:start + SEQ + 1])
    return out


def eval_sets(tokenizer_path, corpus=CORPUS):
    return {d: eval_windows(*tokenized("eval", d, tokenizer_path, corpus)) for d in domains(corpus)}


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------


def trainable(model):
    """Turn the reference model's weights into Parameters; returns {name: Parameter}."""
    params = {}
    for name, value in model.weights.items():
        p = torch.nn.Parameter(value.detach().clone().float())
        params[name] = p
    model.weights = params
    return params


def lm_loss(logits, targets, mask=None):
    """Mean token cross-entropy in float32 (sum and count when mask is given)."""
    logp = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                             targets.reshape(-1), reduction="none")
    if mask is None:
        return logp.mean()
    mask = mask.reshape(-1).float()
    return (logp * mask).sum(), mask.sum()


@torch.no_grad()
def padded_batch(group):
    """Windows (longest first) as right-padded int64 tensors: ids [B, T] and mask [B, T] (1 = token)."""
    length = len(group[0])
    ids = np.zeros((len(group), length), dtype=np.int64)
    mask = np.zeros((len(group), length), dtype=np.int64)
    for r, w in enumerate(group):
        ids[r, :len(w)] = w
        mask[r, :len(w)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def evaluate(model, windows_by_domain, limit=None, batch=16, autocast=False):
    """{domain: {"loss", "ppl", "tokens"}} under the eval protocol; limit = first N windows."""
    out = {}
    for domain, windows in windows_by_domain.items():
        ws = windows[:limit] if limit else windows
        ws = sorted(ws, key=len, reverse=True)
        total, count = 0.0, 0.0
        for i in range(0, len(ws), batch):
            group = ws[i:i + batch]
            ids, mask = padded_batch(group)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = model_logits(model, ids[:, :-1])
            s, c = lm_loss(logits, ids[:, 1:], mask[:, 1:])
            total += float(s)
            count += float(c)
        loss = total / max(count, 1.0)
        out[domain] = {"loss": round(loss, 5), "ppl": round(math.exp(loss), 3), "tokens": int(count)}
    return out


def model_logits(model, ids, record=None):
    """Causal-LM logits of the reference model (right padding needs no mask: causal)."""
    return model.forward(ids, record=record)["logits"]


# ---------------------------------------------------------------------------------------------
# schedule, checkpoints, logging
# ---------------------------------------------------------------------------------------------


def lr_at(step, total, peak, warmup, final_fraction=0.1):
    """Linear warmup, then cosine decay to final_fraction * peak at step total."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(path, params, optimizer, state):
    """Atomic torch.save of model + optimizer + training state + RNG states."""
    blob = {
        "params": {k: v.detach().clone() for k, v in params.items()},
        "optimizer": optimizer.state_dict(),
        "state": state,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    tmp = path + ".tmp"
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, params, optimizer):
    blob = torch.load(path, map_location="cpu")
    with torch.no_grad():
        for k, v in blob["params"].items():
            params[k].copy_(v)
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["rng"]["torch"])
    np.random.set_state(blob["rng"]["numpy"])
    random.setstate(blob["rng"]["python"])
    return blob["state"]


class Log:
    """Human log (text) plus machine-readable metrics (JSON lines), both appended."""

    def __init__(self, text_path, jsonl_path):
        self.text_path, self.jsonl_path = text_path, jsonl_path
        os.makedirs(os.path.dirname(text_path), exist_ok=True)

    def __call__(self, msg):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        with open(self.text_path, "a") as f:
            f.write(line + "\n")

    def metrics(self, record):
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def write_model_folder(out_dir, config, params, tokenizer_path, extra_files=None, bf16=False):
    """HF folder: config.json, generation_config.json, model.safetensors (F32, or BF16 rounded to
    nearest even), tokenizer.model, plus extra JSON files."""
    os.makedirs(out_dir, exist_ok=True)
    weights = {k: v.detach().float().numpy().copy() for k, v in params.items()}
    mb.write_safetensors_model(out_dir, weights, bf16=bf16)
    mb.write_json(os.path.join(out_dir, "config.json"), config)
    mb.write_json(os.path.join(out_dir, "generation_config.json"),
                  {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": 0})
    shutil.copyfile(tokenizer_path, os.path.join(out_dir, "tokenizer.model"))
    for name, obj in (extra_files or {}).items():
        mb.write_json(os.path.join(out_dir, name), obj)
