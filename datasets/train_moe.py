#!/usr/bin/python3
"""Continual pre-training (CPT) of a split LLaMA-MoE, the LLaMA-MoE recipe at toy scale (issue 4,
step 5; docs/llama-moe-spec.md §2.6 and §5.5).

Usage (from the repository root):
    # the split checkpoint (bit-identical to tests/reference/split_reference.py with the same flags)
    build/cli/moescope split --method random --experts 8 --top-k 2 --seed 0 \\
        datasets/work/dense datasets/work/moe_split
    nohup nice -n 10 /usr/bin/python3 datasets/train_moe.py --init datasets/work/moe_split \\
        > datasets/work/train_moe.out 2>&1 &

Model: the project's PyTorch reference (tests/reference/llama_moe_reference.py) with its weights
made trainable; every parameter trains (attention, experts, norms, embeddings, router), as in
upstream CPT. The router is upstream's TopKBalancedNoisyGate (`NoisyGateMoE.route`):
  * training mode: noise scale sigma = softplus(u W_noise^T) + gate_noise_epsilon, noisy logits
    g~ = g + eps * sigma (eps ~ N(0, 1)); top-K of g~; combine weights = softmax over the K
    selected *noisy* logits (times score_scale_factor); importance = column sums of the scattered
    weights (differentiable);
  * load = upstream's smooth, differentiable estimate (Shazeer-style, as the reference code does
    it): thr_in = the (K+1)-th noisy logit, thr_out = the K-th; is_in = (noise term > thr_in) (the
    noise term alone, upstream's quirk); prob = Phi((g - thr_in) / sigma) if is_in else
    Phi((g - thr_out) / sigma); load = sum over tokens of prob;
  * balance loss per layer = gate_balance_loss_weight * (cv^2(importance) + cv^2(load)),
    cv^2(x) = var(x) / (mean(x)^2 + 1e-10) with the unbiased variance (divides by E - 1);
    training loss = token cross-entropy + sum over layers (upstream adds it when > 0);
  * eval mode: no noise, top-K by the reference's rule (ties to the lower index), hard-count load,
    exactly the reference (and engine) forward pass; the balance loss is still computed for the log.
Gate logits, noise, softmax and the balance loss are computed in float32; attention and expert
matrix products under bf16 autocast, like the dense run.

Training: packed 257-token blocks of the same mixture as the dense run, continuing the dense run's
data stream (same seed, starting at the step where the dense run stopped, read from
<dense>/train_summary.json), batch 16 x 256, AdamW (0.9/0.95, wd 0.1 on matrices), peak lr 1e-3,
50 warmup steps, cosine to 10 %, clip 1.0, 1 thread. The step count is set from the measured
tokens per CPU second so that training takes --target-minutes (default 25) of CPU time.
Resumable: datasets/work/moe_ckpt.pt every --checkpoint-minutes (model, optimizer, step, RNG);
restart to resume. Logs: datasets/work/train_moe.log and train_moe_metrics.jsonl (loss, balance
loss, per-layer load cv, eval loss per domain). Output: datasets/work/moe/ (float32 HF LLaMA-MoE folder, shipped in bf16 as datasets/models/default/ by datasets/ship_models.sh:
config.json, generation_config.json, model.safetensors F32, tokenizer.model, train_summary.json
with per-domain eval and per-domain expert loads).
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import training_common as tc  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SEED = 1234  # same data stream as train_dense.py


def cv_squared(x):
    """Upstream's cv^2: unbiased variance over mean^2 (+1e-10); 0 for a single expert."""
    x = x.float()
    if x.numel() <= 1:
        return x.new_zeros(())
    return x.var() / (x.mean() ** 2 + 1e-10)


class NoisyGateMoE(tc.ref.LlamaMoEReference):
    """The reference LLaMA-MoE with upstream's training-time noisy gate and balance loss."""

    def __init__(self, config, weights, dtype=torch.float32):
        super().__init__(config, weights, dtype)
        raw = self.config.raw
        self.training = False
        self.add_noise = raw.get("gate_add_noise", True)
        self.noise_epsilon = raw.get("gate_noise_epsilon", 1e-2)
        self.use_balance = raw.get("gate_use_balance", True)
        self.balance_weight = raw.get("gate_balance_loss_weight", 1e-2)
        self.balance_losses = []
        self.layer_stats = {}

    def reset_stats(self):
        self.balance_losses = []
        self.layer_stats = {}

    def route(self, layer, rows):
        cfg = self.config
        with torch.autocast("cpu", enabled=False):
            rows32 = rows.float()
            if not self.training:
                routing = super().route(layer, rows32)
                importance, load = routing["importance"], routing["load"].float()
            else:
                logits_gate = self.gate_logits(layer, rows32)
                k, e = cfg.num_selects, cfg.num_experts
                noisy = self.add_noise and k != e
                if self.add_noise:
                    w_noise = self.body(f"layers.{layer}.mlp.gate.weight_noise.weight")
                    noise_control = torch.nn.functional.softplus(rows32 @ w_noise.T) + self.noise_epsilon
                    logits_noise = torch.randn_like(logits_gate) * noise_control
                    logits = logits_gate + logits_noise
                else:
                    logits = logits_gate
                top_logits, top_indices = logits.topk(min(k + 1, e), dim=1)
                indices, selected = top_indices[:, :k], top_logits[:, :k]
                scores = torch.softmax(selected, dim=-1) if cfg.gate_use_softmax else selected
                scattered = torch.zeros_like(logits).scatter(1, indices, scores)
                importance = scattered.sum(0)
                if noisy:
                    thr_in = top_logits[:, k:k + 1]
                    thr_out = top_logits[:, k - 1:k]
                    is_in = logits_noise > thr_in
                    normal = torch.distributions.Normal(0.0, 1.0)
                    prob = torch.where(is_in, normal.cdf((logits_gate - thr_in) / noise_control),
                                       normal.cdf((logits_gate - thr_out) / noise_control))
                    load = prob.sum(0)
                else:
                    load = (scattered > 0).sum(0).float()
                routing = {"gate_logits": logits, "topk_indices": indices, "topk_scores": scores,
                           "load": (scattered > 0).sum(0), "importance": importance}
            if self.use_balance:
                self.balance_losses.append(self.balance_weight * (cv_squared(importance) + cv_squared(load)))
            hard = routing["load"].detach().float()
            self.layer_stats[layer] = {"load_cv": float(hard.std() / (hard.mean() + 1e-10)),
                                       "load": hard}
        return routing

    def balance_loss(self):
        if not self.balance_losses:
            return torch.zeros(())
        return torch.stack(self.balance_losses).sum()


def load_model(init_dir):
    with open(os.path.join(init_dir, "config.json")) as f:
        config = json.load(f)
    if config.get("model_type") != "llama_moe":
        raise SystemExit(f"{init_dir} is not a llama_moe checkpoint (model_type {config.get('model_type')!r})")
    weights = tc.ref.safetensors_io.load_model_dir(init_dir)
    weights = {k: v for k, v in weights.items() if not k.endswith("rotary_emb.inv_freq")}
    if config.get("gate_add_noise", True):
        for layer in range(config["num_hidden_layers"]):
            name = f"model.layers.{layer}.mlp.gate.weight_noise.weight"
            weights.setdefault(name, np.zeros((config["num_experts"], config["hidden_size"]), np.float32))
    return config, NoisyGateMoE(config, weights)


def make_optimizer(params, lr, weight_decay=0.1):
    decay = [p for n, p in sorted(params.items()) if p.dim() >= 2]
    no_decay = [p for n, p in sorted(params.items()) if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def train_step(model, params, optimizer, batch, lr, autocast, clip=1.0):
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.training = True
    model.reset_stats()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = tc.model_logits(model, batch[:, :-1])
    ce = tc.lm_loss(logits, batch[:, 1:])
    bal = model.balance_loss()
    loss = ce + bal if float(bal) > 0 else ce
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
    optimizer.step()
    model.training = False
    cvs = [round(model.layer_stats[l]["load_cv"], 3) for l in sorted(model.layer_stats)]
    return float(ce), float(bal), float(norm), cvs


@torch.no_grad()
def routing_by_domain(model, windows_by_domain, limit=None, batch=16):
    """Eval mode: per domain, hard expert-selection counts [layer][expert] over real tokens."""
    model.training = False
    cfg = model.config
    out = {}
    for domain, windows in windows_by_domain.items():
        ws = sorted(windows[:limit] if limit else windows, key=len, reverse=True)
        counts = np.zeros((cfg.num_layers, cfg.num_experts), dtype=np.int64)
        for i in range(0, len(ws), batch):
            group = ws[i:i + batch]
            length = len(group[0]) - 1
            ids = np.zeros((len(group), length), dtype=np.int64)
            mask = np.zeros((len(group), length), dtype=bool)
            for r, w in enumerate(group):
                ids[r, :len(w) - 1] = w[:-1]
                mask[r, :len(w) - 1] = True
            record = {}
            model.reset_stats()
            model.forward(torch.from_numpy(ids), record=record)
            keep = mask.reshape(-1)
            for layer in range(cfg.num_layers):
                sel = record[f"layers.{layer}.topk_indices"].numpy()[keep]
                counts[layer] += np.bincount(sel.reshape(-1), minlength=cfg.num_experts)
        out[domain] = counts.tolist()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--init", default=os.path.join(tc.WORK, "moe_split"), help="split LLaMA-MoE folder")
    parser.add_argument("--dense", default=os.path.join(tc.HERE, "work", "dense"),
                        help="dense folder whose train_summary.json gives the data offset")
    parser.add_argument("--tokenizer", default=None, help="default: <init>/tokenizer.model")
    parser.add_argument("--out", default=os.path.join(tc.HERE, "work", "moe"))
    parser.add_argument("--ckpt", default=os.path.join(tc.WORK, "moe_ckpt.pt"))
    parser.add_argument("--log", default=os.path.join(tc.WORK, "train_moe.log"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--steps", type=int, default=0, help="fixed step count (0: measure)")
    parser.add_argument("--data-offset", type=int, default=-1, help="first data step (-1: dense steps)")
    parser.add_argument("--target-minutes", type=float, default=25.0)
    parser.add_argument("--measure-seconds", type=float, default=60.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=4.0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-windows", type=int, default=24)
    parser.add_argument("--final-eval-windows", type=int, default=0, help="0: all eval windows")
    parser.add_argument("--fp32", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--bf16-out", action="store_true")
    args = parser.parse_args()
    tc.reexec_with_hugepages()
    tc.set_threads(args.threads)
    autocast = not args.fp32
    tokenizer = args.tokenizer or os.path.join(args.init, "tokenizer.model")
    if not os.path.exists(tokenizer):
        tokenizer = os.path.join(tc.WORK, "tokenizer.model")
    lock = None if args.export_only else tc.acquire_lock(args.ckpt + ".lock")  # noqa: F841 (held to exit)
    log = tc.Log(args.log, args.log.replace(".log", "_metrics.jsonl"))
    torch.manual_seed(SEED + 1)

    config, model = load_model(args.init)
    params = tc.trainable(model)
    n_params = sum(p.numel() for p in params.values())
    optimizer = make_optimizer(params, args.lr)
    offset = args.data_offset
    if offset < 0:
        summary_path = os.path.join(args.dense, "train_summary.json")
        offset = json.load(open(summary_path))["steps"] if os.path.exists(summary_path) else 0
    state = {"step": 0, "total_steps": args.steps or None, "train_seconds": 0.0, "cpu_seconds": 0.0,
             "tokens_per_second": None, "data_offset": offset}
    if os.path.exists(args.ckpt):
        state = tc.load_checkpoint(args.ckpt, params, optimizer)
        if args.steps:
            state["total_steps"] = args.steps
        log(f"resumed from {args.ckpt} at step {state['step']} / {state['total_steps']}")
    else:
        log(f"start CPT from {args.init}: {n_params} parameters, E={config['num_experts']} K={config['num_selects']} "
            f"sf={config['score_scale_factor']} balance weight {config.get('gate_balance_loss_weight')}, "
            f"batch {args.batch}x{tc.SEQ}, lr {args.lr}, data offset {offset} steps, bf16 autocast {autocast}")
    stream = tc.TrainStream(tokenizer, args.batch, SEED)
    evals = tc.eval_sets(tokenizer)
    if state["step"] == 0 and not args.export_only:
        ev = tc.evaluate(model, evals, limit=args.eval_windows, autocast=autocast)
        mean = sum(v["loss"] for v in ev.values()) / len(ev)
        log(f"eval step 0 (split, before CPT) mean {mean:.4f} " + " ".join(f"{d}={v['loss']:.3f}" for d, v in ev.items()))
        log.metrics({"step": 0, "eval": ev})

    tokens_per_step = args.batch * tc.SEQ
    last_ckpt = time.time()
    run_start_step, run_start = state["step"], time.time()
    while not args.export_only and (state["total_steps"] is None or state["step"] < state["total_steps"]):
        step = state["step"]
        lr = tc.lr_at(step, state["total_steps"] or 10 ** 9, args.lr, args.warmup)
        t, c = time.time(), time.process_time()
        ce, bal, norm, cvs = train_step(model, params, optimizer, stream.batch_at(state["data_offset"] + step),
                                        lr, autocast)
        dt = time.time() - t
        state["train_seconds"] += dt
        state["cpu_seconds"] += time.process_time() - c
        state["step"] = step + 1
        rec = {"step": step + 1, "loss": round(ce, 4), "balance_loss": round(bal, 5), "lr": lr,
               "grad_norm": round(norm, 3), "load_cv": cvs, "sec": round(dt, 3)}
        if state["total_steps"] is None and state["cpu_seconds"] >= args.measure_seconds:
            rate = state["step"] * tokens_per_step / state["cpu_seconds"]
            state["tokens_per_second"] = rate
            state["total_steps"] = int(args.target_minutes * 60 * rate / tokens_per_step)
            log(f"measured {rate:.0f} tokens per CPU second over {state['step']} steps; total_steps = "
                f"{state['total_steps']} ({state['total_steps'] * tokens_per_step / 1e6:.1f} M tokens) "
                f"for {args.target_minutes} CPU minutes")
        if state["step"] % 10 == 0 or state["step"] == 1:
            done = state["step"] - run_start_step
            rate = done * tokens_per_step / max(1e-9, time.time() - run_start)
            eta = ((state["total_steps"] or 0) - state["step"]) * tokens_per_step / max(rate, 1e-9)
            log(f"step {state['step']}/{state['total_steps']} loss {ce:.4f} balance {bal:.4f} load-cv {cvs} "
                f"lr {lr:.2e} gnorm {norm:.2f} {rate:.0f} tok/s eta {eta / 60:.1f} min")
        if state["step"] % args.eval_every == 0:
            ev = tc.evaluate(model, evals, limit=args.eval_windows, autocast=autocast)
            rec["eval"] = ev
            mean = sum(v["loss"] for v in ev.values()) / len(ev)
            log(f"eval step {state['step']} mean {mean:.4f} " + " ".join(f"{d}={v['loss']:.3f}" for d, v in ev.items()))
        log.metrics(rec)
        if time.time() - last_ckpt >= args.checkpoint_minutes * 60:
            tc.save_checkpoint(args.ckpt, params, optimizer, state)
            last_ckpt = time.time()
            log(f"checkpoint step {state['step']} -> {args.ckpt}")
    if not args.export_only:
        tc.save_checkpoint(args.ckpt, params, optimizer, state)

    model.training = False
    t = time.time()
    limit = args.final_eval_windows or None
    final = tc.evaluate(model, evals, limit=limit, autocast=False)
    loads = routing_by_domain(model, evals, limit=limit)
    log(f"final eval (fp32, {'all' if limit is None else limit} windows, {time.time() - t:.0f} s): " +
        " ".join(f"{d}={v['loss']:.4f}/ppl {v['ppl']:.2f}" for d, v in final.items()))
    log.metrics({"step": state["step"], "final_eval": final, "expert_loads": loads})
    summary = {
        "init": os.path.relpath(args.init, tc.REPO), "steps": state["step"],
        "tokens_trained": state["step"] * tokens_per_step, "data_offset_steps": state["data_offset"],
        "batch": args.batch, "seq": tc.SEQ, "peak_lr": args.lr, "warmup": args.warmup,
        "train_seconds": round(state["train_seconds"], 1), "cpu_seconds": round(state["cpu_seconds"], 1),
        "measured_tokens_per_second": state["tokens_per_second"], "parameters": n_params,
        "bf16_autocast": autocast, "final_eval_fp32": final,
        "expert_loads_eval": {"note": "tokens routed to each expert [layer][expert], eval mode, eval split",
                              "per_domain": loads},
    }
    config = dict(config)
    config["torch_dtype"] = "bfloat16" if args.bf16_out else "float32"
    tc.write_model_folder(args.out, config, params, tokenizer, {"train_summary.json": summary}, bf16=args.bf16_out)
    split_json = os.path.join(args.init, "split.json")
    if os.path.exists(split_json):
        shutil.copyfile(split_json, os.path.join(args.out, "split.json"))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
