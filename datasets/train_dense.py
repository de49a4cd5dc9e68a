#!/usr/bin/python3
"""Train the small dense LLaMA that moescope splits into experts (issue 4, step 3).

Usage (from the repository root, on a shared 2-core machine):
    nohup nice -n 10 /usr/bin/python3 datasets/train_dense.py > datasets/work/train_dense.out 2>&1 &
    /usr/bin/python3 datasets/train_dense.py --bench 4      # fp32 vs bf16-autocast s/step, no training
    /usr/bin/python3 datasets/train_dense.py --export-only  # write the HF folder from the checkpoint

Model: LLaMA architecture (the project's PyTorch reference, tests/reference/llama_moe_reference.py,
with its weights made trainable): vocab 8192 (datasets/work/tokenizer.model), hidden 256, 6 layers,
8 heads / 4 KV heads (GQA, head_dim 32), SwiGLU intermediate 704 (= 8 x 88 = 16 x 44), untied
lm_head, RMSNorm eps 1e-5, RoPE theta 10000, context 256: 8.63 M parameters.
Init: N(0, 0.02) for embeddings and projections, o_proj and down_proj N(0, 0.02 / sqrt(2 L)),
norms 1.

Training: packed 257-token blocks of all domains mixed (training_common.TrainStream), batch 16
(4096 predicted tokens per step), AdamW (beta 0.9/0.95, eps 1e-8, weight decay 0.1 on matrices,
none on norms), peak lr 2e-3, 100 warmup steps, cosine to 10 %, grad-norm clip 1.0, bf16 autocast
on CPU (weights, optimizer and residual stream in float32), 1 thread.
Token budget: unless --steps is given, the first --measure-seconds of training (CPU time of this
process, so that a machine shared with compilers does not shrink the budget) measure tokens per
CPU second, and the step count is set so that training takes --target-minutes of CPU time of one
thread; it is stored in the checkpoint so a resumed run keeps it. Wall time is longer when the
machine is contended (the log's eta uses the current wall rate).

Resumable: every --checkpoint-minutes the model, optimizer, step, schedule and RNG states go to
datasets/work/dense_ckpt.pt (atomic rename); a restarted run resumes from it. Logs:
datasets/work/train_dense.log (text) and train_dense_metrics.jsonl (loss per step, eval loss per
domain). At the end: full per-domain eval, and the HF LLaMA folder datasets/work/dense/ (float32; datasets/ship_models.sh stores it in bf16 as datasets/models/dense/)
(config.json, generation_config.json, model.safetensors F32, tokenizer.model, train_summary.json).
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

ARCH = dict(vocab_size=8192, hidden_size=256, num_hidden_layers=6, num_attention_heads=8,
            num_key_value_heads=4, intermediate_size=704, max_position_embeddings=256,
            rms_norm_eps=1e-05, rope_theta=10000.0, tie_word_embeddings=False)
SEED = 1234


def init_weights(config, seed):
    """HF-LLaMA-style init as float32 numpy arrays."""
    cfg = tc.ref.ModelConfig(config)
    rng = np.random.default_rng(seed)
    h, d, L = cfg.hidden_size, cfg.head_dim, cfg.num_layers
    std, out_std = 0.02, 0.02 / math.sqrt(2 * L)

    def normal(shape, s):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    w = {"model.embed_tokens.weight": normal((cfg.vocab_size, h), std)}
    for l in range(L):
        p = f"model.layers.{l}."
        w[p + "self_attn.q_proj.weight"] = normal((cfg.num_heads * d, h), std)
        w[p + "self_attn.k_proj.weight"] = normal((cfg.num_kv_heads * d, h), std)
        w[p + "self_attn.v_proj.weight"] = normal((cfg.num_kv_heads * d, h), std)
        w[p + "self_attn.o_proj.weight"] = normal((h, cfg.num_heads * d), out_std)
        w[p + "mlp.gate_proj.weight"] = normal((cfg.intermediate_size, h), std)
        w[p + "mlp.up_proj.weight"] = normal((cfg.intermediate_size, h), std)
        w[p + "mlp.down_proj.weight"] = normal((h, cfg.intermediate_size), out_std)
        w[p + "input_layernorm.weight"] = np.ones(h, np.float32)
        w[p + "post_attention_layernorm.weight"] = np.ones(h, np.float32)
    w["model.norm.weight"] = np.ones(h, np.float32)
    w["lm_head.weight"] = normal((cfg.vocab_size, h), std)
    return w


def make_optimizer(params, lr, weight_decay=0.1):
    decay = [p for n, p in sorted(params.items()) if p.dim() >= 2]
    no_decay = [p for n, p in sorted(params.items()) if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def train_step(model, params, optimizer, batch, lr, autocast, clip=1.0):
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = tc.model_logits(model, batch[:, :-1])
    loss = tc.lm_loss(logits, batch[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
    optimizer.step()
    return float(loss), float(norm)


def bench(args, config):
    """Seconds per step of fp32 and bf16 autocast (same data, fresh weights each)."""
    stream = tc.TrainStream(args.tokenizer, args.batch, SEED)
    for autocast in (False, True):
        model = tc.ref.LlamaMoEReference(config, init_weights(config, SEED))
        params = tc.trainable(model)
        opt = make_optimizer(params, args.lr)
        times = []
        for s in range(args.bench + 1):
            t = time.time()
            loss, _ = train_step(model, params, opt, stream.batch_at(s), 1e-3, autocast)
            times.append(time.time() - t)
        sec = sum(times[1:]) / len(times[1:])
        print(f"{'bf16 autocast' if autocast else 'fp32':14s} {sec:.3f} s/step "
              f"{args.batch * tc.SEQ / sec:7.0f} tokens/s  (loss {loss:.3f})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokenizer", default=os.path.join(tc.WORK, "tokenizer.model"))
    parser.add_argument("--out", default=os.path.join(tc.HERE, "work", "dense"))
    parser.add_argument("--ckpt", default=os.path.join(tc.WORK, "dense_ckpt.pt"))
    parser.add_argument("--log", default=os.path.join(tc.WORK, "train_dense.log"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--steps", type=int, default=0, help="fixed step count (0: measure)")
    parser.add_argument("--target-minutes", type=float, default=65.0)
    parser.add_argument("--measure-seconds", type=float, default=60.0)
    parser.add_argument("--checkpoint-minutes", type=float, default=4.0)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-windows", type=int, default=24, help="windows per domain in periodic evals")
    parser.add_argument("--final-eval-windows", type=int, default=0, help="0: all eval windows")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bench", type=int, default=0, help="time N steps of fp32 and bf16, then exit")
    parser.add_argument("--export-only", action="store_true")
    parser.add_argument("--bf16-out", action="store_true", help="write model.safetensors as BF16 (default F32)")
    args = parser.parse_args()
    tc.reexec_with_hugepages()
    tc.set_threads(args.threads)
    autocast = not args.fp32
    config = tc.mb.llama_config(**ARCH)
    if args.bench:
        return bench(args, config)

    lock = None if args.export_only else tc.acquire_lock(args.ckpt + ".lock")  # noqa: F841 (held to exit)
    log = tc.Log(args.log, args.log.replace(".log", "_metrics.jsonl"))
    torch.manual_seed(SEED)
    model = tc.ref.LlamaMoEReference(config, init_weights(config, SEED))
    params = tc.trainable(model)
    n_params = sum(p.numel() for p in params.values())
    optimizer = make_optimizer(params, args.lr)
    state = {"step": 0, "total_steps": args.steps or None, "train_seconds": 0.0, "cpu_seconds": 0.0,
             "tokens_per_second": None}
    if os.path.exists(args.ckpt):
        state = tc.load_checkpoint(args.ckpt, params, optimizer)
        if args.steps:
            state["total_steps"] = args.steps
        log(f"resumed from {args.ckpt} at step {state['step']} / {state['total_steps']}")
    else:
        log(f"start: {n_params} parameters, config {json.dumps(ARCH)}, batch {args.batch}x{tc.SEQ}, "
            f"lr {args.lr}, bf16 autocast {autocast}, threads {torch.get_num_threads()}")
    stream = tc.TrainStream(args.tokenizer, args.batch, SEED)
    evals = tc.eval_sets(args.tokenizer)
    if state["step"] == 0:
        log(f"train tokens per domain {stream.domain_tokens} total {stream.total_tokens}; "
            f"eval windows per domain { {d: len(w) for d, w in evals.items()} }")

    tokens_per_step = args.batch * tc.SEQ
    last_ckpt = time.time()
    run_start_step, run_start = state["step"], time.time()
    while not args.export_only and (state["total_steps"] is None or state["step"] < state["total_steps"]):
        step = state["step"]
        total_for_lr = state["total_steps"] or 10 ** 9
        lr = tc.lr_at(step, total_for_lr, args.lr, args.warmup)
        t, c = time.time(), time.process_time()
        loss, norm = train_step(model, params, optimizer, stream.batch_at(step), lr, autocast)
        dt = time.time() - t
        state["train_seconds"] += dt
        state["cpu_seconds"] += time.process_time() - c
        state["step"] = step + 1
        rec = {"step": step + 1, "loss": round(loss, 4), "lr": lr, "grad_norm": round(norm, 3),
               "sec": round(dt, 3), "epoch": round(stream.epochs_at(step + 1), 4)}
        if state["total_steps"] is None and state["cpu_seconds"] >= args.measure_seconds:
            rate = state["step"] * tokens_per_step / state["cpu_seconds"]
            wall_rate = state["step"] * tokens_per_step / state["train_seconds"]
            state["tokens_per_second"] = rate
            state["total_steps"] = int(args.target_minutes * 60 * rate / tokens_per_step)
            log(f"measured {rate:.0f} tokens per CPU second ({wall_rate:.0f} per wall second) over "
                f"{state['step']} steps; total_steps = "
                f"{state['total_steps']} ({state['total_steps'] * tokens_per_step / 1e6:.1f} M tokens, "
                f"{stream.epochs_at(state['total_steps']):.2f} epochs) for {args.target_minutes} min")
        if state["step"] % 10 == 0 or state["step"] == 1:
            done = state["step"] - run_start_step
            rate = done * tokens_per_step / max(1e-9, time.time() - run_start)
            eta = ((state["total_steps"] or 0) - state["step"]) * tokens_per_step / max(rate, 1e-9)
            log(f"step {state['step']}/{state['total_steps']} loss {loss:.4f} lr {lr:.2e} gnorm {norm:.2f} "
                f"{rate:.0f} tok/s eta {eta / 60:.1f} min")
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

    t = time.time()
    final = tc.evaluate(model, evals, limit=args.final_eval_windows or None, autocast=False)
    log(f"final eval (fp32, all windows, {time.time() - t:.0f} s): " +
        " ".join(f"{d}={v['loss']:.4f}/ppl {v['ppl']:.2f}" for d, v in final.items()))
    log.metrics({"step": state["step"], "final_eval": final})
    summary = {
        "steps": state["step"], "tokens_trained": state["step"] * tokens_per_step,
        "batch": args.batch, "seq": tc.SEQ, "peak_lr": args.lr, "warmup": args.warmup,
        "train_seconds": round(state["train_seconds"], 1), "cpu_seconds": round(state["cpu_seconds"], 1),
        "measured_tokens_per_second": state["tokens_per_second"],
        "parameters": n_params, "train_tokens_per_domain": stream.domain_tokens,
        "epochs": round(stream.epochs_at(state["step"]), 3), "bf16_autocast": autocast,
        "final_eval_fp32": final,
    }
    config["torch_dtype"] = "bfloat16" if args.bf16_out else "float32"
    tc.write_model_folder(args.out, config, params, args.tokenizer, {"train_summary.json": summary},
                          bf16=args.bf16_out)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
