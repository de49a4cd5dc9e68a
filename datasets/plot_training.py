#!/usr/bin/python3
"""Training curves of the bundled models for the model card: training loss (smoothed) and held-out
loss per domain of the dense run and of the LLaMA-MoE continual pre-training that follows it, on
one token axis.

usage: /usr/bin/python3 datasets/plot_training.py [--work datasets/work] [--out datasets/models/default/training_curves.png]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

TOKENS_PER_STEP = 16 * 256


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def smooth(values, n=25):
    if len(values) < n:
        return np.asarray(values)
    return np.convolve(values, np.ones(n) / n, mode="valid")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="datasets/work")
    parser.add_argument("--out", default="datasets/models/default/training_curves.png")
    args = parser.parse_args()
    dense = read(os.path.join(args.work, "train_dense_metrics.jsonl"))
    moe = read(os.path.join(args.work, "train_moe_metrics.jsonl"))
    # A resumed run logs some steps twice; keep the last record of each step.
    runs = {}
    for name, rows in (("dense", dense), ("moe", moe)):
        train, evals = {}, {}
        for r in rows:
            if "loss" in r:
                train[r["step"]] = r["loss"]
            if "eval" in r:
                evals[r["step"]] = r["eval"]
        runs[name] = (train, evals)
    offset = max(runs["dense"][0]) * TOKENS_PER_STEP  # MoE CPT starts where the dense run ended

    fig, (ax_train, ax_eval) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, colour in (("dense", "tab:blue"), ("moe", "tab:red")):
        train, _ = runs[name]
        steps = sorted(train)
        x = np.array(steps) * TOKENS_PER_STEP + (offset if name == "moe" else 0)
        y = smooth([train[s] for s in steps])
        ax_train.plot(x[len(x) - len(y):] / 1e6, y, colour,
                      label="dense LLaMA" if name == "dense" else "LLaMA-MoE (8 experts, top-2) CPT")
    ax_train.axvline(offset / 1e6, color="grey", ls=":", lw=1)
    ax_train.set_xlabel("training tokens (millions)")
    ax_train.set_ylabel("training loss (25-step mean)")
    ax_train.set_title("Training loss: dense run, then split into experts and continued")
    ax_train.legend()

    domains = sorted(next(iter(runs["dense"][1].values())))
    cmap = plt.get_cmap("tab10")
    for i, domain in enumerate(domains):
        for name, style in (("dense", "-"), ("moe", "--")):
            _, evals = runs[name]
            steps = sorted(evals)
            x = np.array(steps) * TOKENS_PER_STEP + (offset if name == "moe" else 0)
            ax_eval.plot(x / 1e6, [evals[s][domain]["loss"] for s in steps], style, color=cmap(i),
                         label=domain if name == "dense" else None)
    ax_eval.axvline(offset / 1e6, color="grey", ls=":", lw=1)
    ax_eval.set_xlabel("training tokens (millions)")
    ax_eval.set_ylabel("held-out loss (subset)")
    ax_eval.set_title("Held-out loss per domain (solid: dense, dashed: MoE)")
    ax_eval.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
