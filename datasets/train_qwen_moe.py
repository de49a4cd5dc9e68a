#!/usr/bin/python3
"""Train a small Qwen1.5/2-MoE (`qwen2_moe`) from scratch on the seven domains: fine-grained routed
experts plus one sigmoid-gated shared expert, softmax-then-top-k router (the second bundled model,
datasets/models/shared_experts/).

Usage (from the repository root):
    nohup nice -n 10 /usr/bin/python3 datasets/train_qwen_moe.py > datasets/work/train_qwen_moe.out 2>&1 &
    /usr/bin/python3 datasets/train_qwen_moe.py --export-only   # final eval + folders from the checkpoint
    /usr/bin/python3 datasets/train_qwen_moe.py --check DIR     # logits of DIR: this module vs family_reference.py

Model (docs/model-families.md section 5, the forward of tests/reference/family_reference.py):
vocab 8192 (the default model's tokenizer), hidden 256, 6 layers, 8 heads / 4 KV heads (head_dim 32),
q/k/v biases (no o bias), RMSNorm eps 1e-6, RoPE theta 10000, context 256, untied lm_head. Every
layer is MoE: router z = W_r u (float32), p = softmax(z) over the 16 experts, the 4 largest p are the
combine weights as they are (norm_topk_prob false); 16 routed SwiGLU experts of width 36 and one
shared SwiGLU expert of width 144 (4 x 36, the Qwen1.5-MoE ratio) times sigmoid(g . u).
The routed experts are computed densely for speed on one CPU thread: all 16 experts' gate/up
projections as one [576, 256] matrix, the activations multiplied by the scattered combine weights
(zero for unselected experts, so their outputs and gradients are exactly zero), then one [256, 576]
down projection; this is the same function as the sparse sum (only the summation order differs).

Loss: token cross-entropy + router_aux_loss_coef x the Switch/Qwen load-balancing loss summed over
the layers. Per layer: p = softmax(z), f_{j,e} = fraction of rows whose j-th choice is e,
loss = E x sum_{j,e} f_{j,e} mean(p_e) (4.0 when balanced), the formula of transformers'
`load_balancing_loss_func`, which however concatenates the router logits of all layers before
computing it: then layers unbalanced in different directions can look balanced together (a first
10-step try read 4.01 at per-layer load CVs of 1.3-1.6; early imbalance of that size also occurred
with the per-layer form, so this is a design choice, not a measured failure), so the loss is taken
per layer, as Switch and Megatron do. Coefficient 0.01 by default (Qwen's config
default is 0.001; 0.01 is the Switch value, chosen because the run is short and the routing
statistics are the point of the model). The log shows the mean over layers.

Training: training_common.TrainStream (the dense run's data stream from step 0: same seed), batch
16 x 256, AdamW (0.9/0.95, wd 0.1 on matrices), peak lr 2e-3, 60 warmup steps, cosine to 10 %,
clip 1.0, bf16 autocast (weights, optimizer, residual stream, norms, router and loss in float32),
one thread. The step count is set from the wall-clock rate measured over the first
--measure-seconds so that training takes --target-minutes of wall time (the machine is shared;
the default model's trainers used CPU time instead); --stop-at (unix time) ends training early at
whatever step it has reached. Resumable: datasets/work/qwen_moe/ckpt.pt every
--checkpoint-minutes. Logs: datasets/work/qwen_moe/train.log and train_metrics.jsonl.
Output: datasets/work/qwen_moe/model/ (float32) and --ship-dir (default
datasets/models/shared_experts/, bfloat16 rounded to nearest even), each with train_summary.json
(final per-domain eval in float32 under training_common's protocol, per-domain expert loads).
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import training_common as tc  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SEED = 1234  # the dense run's data stream
WORK = os.path.join(tc.WORK, "qwen_moe")
SHIP = os.path.join(tc.HERE, "models", "shared_experts")
DEFAULT_TOKENIZER = os.path.join(tc.HERE, "models", "default", "tokenizer.model")

# The full Qwen2MoeConfig key set (as tests/reference/make_family_fixtures.py writes it).
CONFIG = {
    "architectures": ["Qwen2MoeForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "decoder_sparse_step": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 256,
    "initializer_range": 0.02,
    "intermediate_size": 144,
    "max_position_embeddings": 256,
    "max_window_layers": 6,
    "mlp_only_layers": [],
    "model_type": "qwen2_moe",
    "moe_intermediate_size": 36,
    "norm_topk_prob": False,
    "num_attention_heads": 8,
    "num_experts": 16,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 6,
    "num_key_value_heads": 4,
    "output_router_logits": False,
    "pad_token_id": 0,
    "qkv_bias": True,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "router_aux_loss_coef": 0.01,
    "shared_expert_intermediate_size": 144,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.53.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 8192,
}


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------


def init_params(cfg, seed):
    """{internal name: float32 Parameter}. Routed experts are stored stacked:
    model.layers.{l}.mlp.experts.{gate,up}_proj [E*F, H] (expert e = rows e*F..e*F+F-1) and
    model.layers.{l}.mlp.experts.down_proj [H, E*F]. HF init: N(0, 0.02); o_proj and every
    down_proj N(0, 0.02 / sqrt(2 L)); biases 0; norms 1."""
    g = torch.Generator().manual_seed(seed)
    h, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    d = h // cfg["num_attention_heads"]
    nq, nkv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    e, f, s = cfg["num_experts"], cfg["moe_intermediate_size"], cfg["shared_expert_intermediate_size"]
    std, out_std = 0.02, 0.02 / math.sqrt(2 * L)

    def normal(*shape, sd=std):
        return torch.randn(*shape, generator=g) * sd

    w = {"model.embed_tokens.weight": normal(cfg["vocab_size"], h)}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = torch.ones(h)
        w[p + "post_attention_layernorm.weight"] = torch.ones(h)
        a = p + "self_attn."
        w[a + "q_proj.weight"], w[a + "q_proj.bias"] = normal(nq, h), torch.zeros(nq)
        w[a + "k_proj.weight"], w[a + "k_proj.bias"] = normal(nkv, h), torch.zeros(nkv)
        w[a + "v_proj.weight"], w[a + "v_proj.bias"] = normal(nkv, h), torch.zeros(nkv)
        w[a + "o_proj.weight"] = normal(h, nq, sd=out_std)
        m = p + "mlp."
        w[m + "gate.weight"] = normal(e, h)
        w[m + "experts.gate_proj"] = normal(e * f, h)
        w[m + "experts.up_proj"] = normal(e * f, h)
        w[m + "experts.down_proj"] = normal(h, e * f, sd=out_std)
        w[m + "shared_expert.gate_proj.weight"] = normal(s, h)
        w[m + "shared_expert.up_proj.weight"] = normal(s, h)
        w[m + "shared_expert.down_proj.weight"] = normal(h, s, sd=out_std)
        w[m + "shared_expert_gate.weight"] = normal(1, h)
    w["model.norm.weight"] = torch.ones(h)
    w["lm_head.weight"] = normal(cfg["vocab_size"], h)
    return {k: torch.nn.Parameter(v.float()) for k, v in w.items()}


def to_hf(params, cfg):
    """Internal names -> Hugging Face qwen2_moe tensor names (float32 tensors)."""
    e, f = cfg["num_experts"], cfg["moe_intermediate_size"]
    out = {}
    for name, v in params.items():
        v = v.detach().float()
        if ".mlp.experts." not in name:
            out[name] = v
            continue
        prefix, kind = name.rsplit(".", 1)
        for i in range(e):
            part = v[:, i * f:(i + 1) * f] if kind == "down_proj" else v[i * f:(i + 1) * f]
            out[f"{prefix}.{i}.{kind}.weight"] = part.contiguous()
    return out


def from_hf(weights, cfg):
    """Hugging Face names (numpy or tensors) -> internal names (float32 tensors)."""
    e = cfg["num_experts"]
    out = {}
    for name, v in weights.items():
        if ".mlp.experts." in name:
            continue
        out[name] = torch.as_tensor(np.asarray(v, dtype=np.float32))
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}.mlp.experts."
        for kind in ("gate_proj", "up_proj", "down_proj"):
            parts = [torch.as_tensor(np.asarray(weights[f"{p}{i}.{kind}.weight"], dtype=np.float32))
                     for i in range(e)]
            out[p + kind] = torch.cat(parts, dim=1 if kind == "down_proj" else 0)
    return out


def rms_norm(x, weight, eps):
    """As family_reference: statistics in float32, weight applied after."""
    x32 = x.float()
    return weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps))


class QwenMoE:
    """qwen2_moe forward for training (and the per-domain eval). forward(ids) -> {"logits"};
    router logits of the last call in self.router_logits, selections in self.selections."""

    def __init__(self, cfg, params):
        self.cfg, self.params = cfg, params
        self.router_logits, self.selections = [], []
        self.keep_selections = False
        d = cfg["hidden_size"] // cfg["num_attention_heads"]
        self.head_dim = d
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.arange(cfg["max_position_embeddings"], dtype=torch.float32)[:, None] * inv
        emb = torch.cat([ang, ang], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def attention(self, l, x):
        cfg, P = self.cfg, self.params
        b, t, _ = x.shape
        d, nh, nkv = self.head_dim, cfg["num_attention_heads"], cfg["num_key_value_heads"]
        a = f"model.layers.{l}.self_attn."
        q = F.linear(x, P[a + "q_proj.weight"], P[a + "q_proj.bias"]).view(b, t, nh, d).transpose(1, 2)
        k = F.linear(x, P[a + "k_proj.weight"], P[a + "k_proj.bias"]).view(b, t, nkv, d).transpose(1, 2)
        v = F.linear(x, P[a + "v_proj.weight"], P[a + "v_proj.bias"]).view(b, t, nkv, d).transpose(1, 2)
        cos, sin = self.cos[:t].to(q.dtype), self.sin[:t].to(q.dtype)
        q = q * cos + tc.ref.rotate_half(q) * sin
        k = k * cos + tc.ref.rotate_half(k) * sin
        rep = nh // nkv
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(2, 3)) * (d ** -0.5)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        scores = scores.float().masked_fill(causal, torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1).to(v.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, t, nh * d)
        return F.linear(out, P[a + "o_proj.weight"])

    def moe(self, l, u):
        cfg, P = self.cfg, self.params
        e, f, k = cfg["num_experts"], cfg["moe_intermediate_size"], cfg["num_experts_per_tok"]
        m = f"model.layers.{l}.mlp."
        rows = u.reshape(-1, u.shape[-1])
        with torch.autocast("cpu", enabled=False):
            z = rows.float() @ P[m + "gate.weight"].T
            p = torch.softmax(z, dim=-1)
            w, idx = torch.topk(p, k, dim=-1)
            if cfg["norm_topk_prob"]:
                w = w / w.sum(-1, keepdim=True)
            combine = torch.zeros_like(p).scatter(1, idx, w)
        self.router_logits.append(z)
        if self.keep_selections:
            self.selections.append(idx)
        act = F.silu(F.linear(rows, P[m + "experts.gate_proj"])) * F.linear(rows, P[m + "experts.up_proj"])
        act = (act.view(-1, e, f) * combine.to(act.dtype)[:, :, None]).view(-1, e * f)
        routed = F.linear(act, P[m + "experts.down_proj"])
        sh = m + "shared_expert."
        shared = F.linear(F.silu(F.linear(rows, P[sh + "gate_proj.weight"])) * F.linear(rows, P[sh + "up_proj.weight"]),
                          P[sh + "down_proj.weight"])
        gate = torch.sigmoid(F.linear(rows, P[m + "shared_expert_gate.weight"]))
        return (routed + gate * shared).view_as(u)

    def forward(self, ids, record=None):
        cfg, P = self.cfg, self.params
        self.router_logits, self.selections = [], []
        eps = cfg["rms_norm_eps"]
        h = P["model.embed_tokens.weight"][ids]
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = h + self.attention(l, rms_norm(h, P[p + "input_layernorm.weight"], eps))
            h = h + self.moe(l, rms_norm(h, P[p + "post_attention_layernorm.weight"], eps))
        h = rms_norm(h, P["model.norm.weight"], eps)
        return {"logits": F.linear(h, P["lm_head.weight"])}

    def aux_loss(self):
        """Sum over layers of the Switch/Qwen load-balancing loss of that layer (the formula of
        transformers' load_balancing_loss_func applied to one layer's router logits; 4.0 per layer
        when balanced)."""
        e, k = self.cfg["num_experts"], self.cfg["num_experts_per_tok"]
        total = 0.0
        for z in self.router_logits:
            p = torch.softmax(z, dim=-1)
            _, sel = torch.topk(p, k, dim=-1)
            mask = F.one_hot(sel, e).float()  # [N, K, E]
            total = total + (mask.mean(0) * p.mean(0)[None]).sum() * e
        return total


def parameter_counts(cfg):
    h, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    d = h // cfg["num_attention_heads"]
    nq, nkv = cfg["num_attention_heads"] * d, cfg["num_key_value_heads"] * d
    e, f, k, s = (cfg["num_experts"], cfg["moe_intermediate_size"], cfg["num_experts_per_tok"],
                  cfg["shared_expert_intermediate_size"])
    attn = h * nq + 2 * h * nkv + nq + 2 * nkv + nq * h
    common = attn + 2 * h + e * h + 3 * h * s + h  # norms, router, shared expert, shared gate
    total = 2 * V * h + h + L * (common + 3 * h * f * e)
    active = 2 * V * h + h + L * (common + 3 * h * f * k)
    return total, active


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_with_loads(model, windows_by_domain, limit=None, batch=16):
    """training_common.evaluate's protocol and batching (float32), plus per-domain expert loads:
    tokens routed to each expert [layer][expert], counted over real input positions only."""
    cfg = model.cfg
    L, E = cfg["num_hidden_layers"], cfg["num_experts"]
    model.keep_selections = True
    out, loads = {}, {}
    for domain, windows in windows_by_domain.items():
        ws = sorted(windows[:limit] if limit else windows, key=len, reverse=True)
        total, count = 0.0, 0.0
        counts = np.zeros((L, E), dtype=np.int64)
        for i in range(0, len(ws), batch):
            group = ws[i:i + batch]
            ids, mask = tc.padded_batch(group)
            logits = model.forward(ids[:, :-1])["logits"]
            s, c = tc.lm_loss(logits, ids[:, 1:], mask[:, 1:])
            total += float(s)
            count += float(c)
            keep = mask[:, 1:].reshape(-1).bool().numpy()  # input position predicts a real token
            for l, sel in enumerate(model.selections):
                counts[l] += np.bincount(sel.numpy()[keep].reshape(-1), minlength=E)
        loss = total / max(count, 1.0)
        out[domain] = {"loss": round(loss, 5), "ppl": round(math.exp(loss), 3), "tokens": int(count)}
        loads[domain] = counts.tolist()
    model.keep_selections = False
    return out, loads


# ---------------------------------------------------------------------------------------------
# check against tests/reference/family_reference.py
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def check_against_reference(model_dir, tokenizer, docs_per_domain=1, max_len=256):
    """Logits of this module and of family_reference.FamilyReference on the same weights (float32),
    on the first window of held-out documents (datasets/sample/ when the corpus is absent)."""
    import family_reference as fr
    import sentencepiece as spm

    ref = fr.FamilyReference.from_dir(model_dir, torch.float32)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    weights = {n: v.numpy() for n, v in ref.weights.items()}
    mine = QwenMoE(cfg, from_hf(weights, cfg))
    sp = spm.SentencePieceProcessor(model_file=tokenizer)
    sample = os.path.join(tc.HERE, "sample")
    worst, results = 0.0, []
    for name in sorted(os.listdir(sample)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(sample, name)) as f:
            texts = [json.loads(line)["text"] for line in f][:docs_per_domain]
        for text in texts:
            ids = torch.tensor([([tc.BOS] + sp.encode(text))[:max_len]])
            a = ref.forward(ids)["logits"]
            b = mine.forward(ids)["logits"]
            rel = float((a - b).abs().max() / a.abs().max())
            same = bool(torch.equal(a.argmax(-1), b.argmax(-1)))
            results.append({"file": name, "tokens": ids.shape[1], "max_abs_diff": float((a - b).abs().max()),
                            "rel_to_max_logit": rel, "same_argmax": same})
            worst = max(worst, rel)
    return worst, results


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def make_optimizer(params, lr, weight_decay=0.1):
    decay = [p for n, p in sorted(params.items()) if p.dim() >= 2]
    no_decay = [p for n, p in sorted(params.items()) if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def load_cv(model):
    """Per layer: coefficient of variation of the hard top-k counts of the last forward."""
    e, k = model.cfg["num_experts"], model.cfg["num_experts_per_tok"]
    out = []
    for z in model.router_logits:
        counts = torch.bincount(torch.topk(z.detach(), k, dim=-1)[1].reshape(-1), minlength=e).float()
        out.append(round(float(counts.std() / counts.mean()), 3))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    parser.add_argument("--work", default=WORK)
    parser.add_argument("--ship-dir", default=SHIP)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--aux-coef", type=float, default=CONFIG["router_aux_loss_coef"])
    parser.add_argument("--steps", type=int, default=0, help="fixed step count (0: measure)")
    parser.add_argument("--target-minutes", type=float, default=40.0, help="wall minutes of training")
    parser.add_argument("--measure-seconds", type=float, default=90.0)
    parser.add_argument("--stop-at", type=float, default=0.0, help="unix time: stop training there")
    parser.add_argument("--checkpoint-minutes", type=float, default=4.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-windows", type=int, default=24)
    parser.add_argument("--final-eval-windows", type=int, default=0, help="0: all eval windows")
    parser.add_argument("--fp32", action="store_true")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--check", metavar="DIR", help="compare this module with family_reference on DIR")
    args = parser.parse_args()
    if args.check:
        tc.set_threads(1)
        worst, results = check_against_reference(args.check, args.tokenizer)
        for r in results:
            print(json.dumps(r))
        print(f"worst max|diff| / max|logit| = {worst:.3e} ({'OK' if worst <= 1e-4 else 'FAIL'} at 1e-4)")
        sys.exit(0 if worst <= 1e-4 else 1)
    tc.reexec_with_hugepages()
    tc.set_threads(1)
    autocast = not args.fp32
    os.makedirs(args.work, exist_ok=True)
    ckpt = os.path.join(args.work, "ckpt.pt")
    lock = None if args.export_only else tc.acquire_lock(ckpt + ".lock")  # noqa: F841 (held to exit)
    log = tc.Log(os.path.join(args.work, "train.log"), os.path.join(args.work, "train_metrics.jsonl"))
    torch.manual_seed(SEED + 2)
    cfg = dict(CONFIG, router_aux_loss_coef=args.aux_coef)
    params = init_params(cfg, SEED + 2)
    model = QwenMoE(cfg, params)
    n_params = sum(p.numel() for p in params.values())
    total, active = parameter_counts(cfg)
    assert total == n_params, (total, n_params)
    optimizer = make_optimizer(params, args.lr)
    state = {"step": 0, "total_steps": args.steps or None, "train_seconds": 0.0, "cpu_seconds": 0.0,
             "tokens_per_second": None, "stopped_early": False}
    if os.path.exists(ckpt):
        state = tc.load_checkpoint(ckpt, params, optimizer)
        log(f"resumed from {ckpt} at step {state['step']} / {state['total_steps']}")
    else:
        log(f"start qwen2_moe from scratch: {n_params} parameters ({active} activated), E={cfg['num_experts']} "
            f"K={cfg['num_experts_per_tok']} F={cfg['moe_intermediate_size']} shared={cfg['shared_expert_intermediate_size']}, "
            f"aux coef {args.aux_coef}, batch {args.batch}x{tc.SEQ}, lr {args.lr}, bf16 autocast {autocast}")
    stream = tc.TrainStream(args.tokenizer, args.batch, SEED)
    evals = tc.eval_sets(args.tokenizer)
    if state["step"] == 0 and not args.export_only:
        ev = tc.evaluate(model, evals, limit=args.eval_windows, autocast=autocast)
        log(f"eval step 0 mean {sum(v['loss'] for v in ev.values()) / len(ev):.4f}")
        log.metrics({"step": 0, "eval": ev})

    tokens_per_step = args.batch * tc.SEQ
    last_ckpt = time.time()
    run_start_step, run_start = state["step"], time.time()
    while not args.export_only and (state["total_steps"] is None or state["step"] < state["total_steps"]):
        if args.stop_at and time.time() >= args.stop_at:
            state["stopped_early"] = True
            log(f"--stop-at reached: stopping at step {state['step']} of {state['total_steps']}")
            break
        step = state["step"]
        lr = tc.lr_at(step, state["total_steps"] or 10 ** 9, args.lr, args.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t, c = time.time(), time.process_time()
        batch = stream.batch_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model.forward(batch[:, :-1])["logits"]
        ce = tc.lm_loss(logits, batch[:, 1:])
        aux = model.aux_loss()
        loss = ce + args.aux_coef * aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        optimizer.step()
        cvs = load_cv(model)
        dt = time.time() - t
        state["train_seconds"] += dt
        state["cpu_seconds"] += time.process_time() - c
        state["step"] = step + 1
        aux_mean = float(aux) / cfg["num_hidden_layers"]
        rec = {"step": step + 1, "loss": round(float(ce), 4), "aux_loss_per_layer": round(aux_mean, 4), "lr": lr,
               "grad_norm": round(float(norm), 3), "load_cv": cvs, "sec": round(dt, 3)}
        if state["total_steps"] is None and state["train_seconds"] >= args.measure_seconds:
            rate = state["step"] * tokens_per_step / state["train_seconds"]
            state["tokens_per_second"] = rate
            state["total_steps"] = int(args.target_minutes * 60 * rate / tokens_per_step)
            log(f"measured {rate:.0f} tokens per wall second over {state['step']} steps "
                f"({state['step'] * tokens_per_step / state['cpu_seconds']:.0f} per CPU second); total_steps = "
                f"{state['total_steps']} ({state['total_steps'] * tokens_per_step / 1e6:.2f} M tokens) "
                f"for {args.target_minutes} wall minutes")
        if state["step"] % 10 == 0 or state["step"] == 1:
            done = state["step"] - run_start_step
            rate = done * tokens_per_step / max(1e-9, time.time() - run_start)
            eta = ((state["total_steps"] or 0) - state["step"]) * tokens_per_step / max(rate, 1e-9)
            log(f"step {state['step']}/{state['total_steps']} loss {float(ce):.4f} aux/layer {aux_mean:.3f} "
                f"load-cv {cvs} lr {lr:.2e} gnorm {float(norm):.2f} {rate:.0f} tok/s eta {eta / 60:.1f} min")
        if state["step"] % args.eval_every == 0:
            ev = tc.evaluate(model, evals, limit=args.eval_windows, autocast=autocast)
            rec["eval"] = ev
            mean = sum(v["loss"] for v in ev.values()) / len(ev)
            log(f"eval step {state['step']} mean {mean:.4f} " + " ".join(f"{d}={v['loss']:.3f}" for d, v in ev.items()))
        log.metrics(rec)
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            tc.save_checkpoint(ckpt, params, optimizer, state)
            last_ckpt = time.time()
            log(f"checkpoint step {state['step']} -> {ckpt}")
    if not args.export_only:
        tc.save_checkpoint(ckpt, params, optimizer, state)

    t = time.time()
    limit = args.final_eval_windows or None
    final, loads = evaluate_with_loads(model, evals, limit=limit)
    log(f"final eval (fp32, {'all' if limit is None else limit} windows, {time.time() - t:.0f} s): " +
        " ".join(f"{d}={v['loss']:.4f}/ppl {v['ppl']:.2f}" for d, v in final.items()))
    log.metrics({"step": state["step"], "final_eval": final, "expert_loads": loads})
    summary = {
        "init": "scratch", "steps": state["step"], "planned_steps": state["total_steps"],
        "stopped_early": state.get("stopped_early", False),
        "tokens_trained": state["step"] * tokens_per_step, "data_offset_steps": 0,
        "batch": args.batch, "seq": tc.SEQ, "peak_lr": args.lr, "warmup": args.warmup,
        "router_aux_loss_coef": args.aux_coef,
        "train_seconds": round(state["train_seconds"], 1), "cpu_seconds": round(state["cpu_seconds"], 1),
        "measured_tokens_per_second": state["tokens_per_second"], "parameters": n_params,
        "activated_parameters": active, "bf16_autocast": autocast, "final_eval_fp32": final,
        "expert_loads_eval": {"note": "tokens routed to each expert [layer][expert] (top-4, so 4 per token), "
                                      "eval split, real input positions", "per_domain": loads},
    }
    hf = to_hf(params, cfg)
    for out_dir, bf16 in ((os.path.join(args.work, "model"), False), (args.ship_dir, True)):
        config = dict(cfg, torch_dtype="bfloat16" if bf16 else "float32")
        tc.write_model_folder(out_dir, config, hf, args.tokenizer, {"train_summary.json": summary}, bf16=bf16)
        log(f"wrote {out_dir}")


if __name__ == "__main__":
    main()
