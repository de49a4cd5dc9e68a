#!/usr/bin/python3
"""Routing summary of a model for its model card, from `moescope stats` output (stats.csv): per
layer the load balance (population CV of expert loads, all domains), the most specialized
(expert, domain) pair by top-k lift DS(e, D, K)/(K/E) with its 95% bootstrap interval and its
permutation p-value over document domain labels, the consecutive-token repetition of the first
choice against 1/E, and the vocabulary specialization against its shuffled baseline.

usage: /usr/bin/python3 datasets/summarize_routing.py STATS_DIR   (prints a Markdown table)
"""
import csv
import os
import sys


def main():
    rows = list(csv.DictReader(open(os.path.join(sys.argv[1], "stats.csv"))))
    layers = sorted({int(r["layer"]) for r in rows})

    def value(layer, metric, expert="-1", domain="all"):
        for r in rows:
            if (int(r["layer"]) == layer and r["metric"] == metric and r["expert"] == expert
                    and r["domain"] == domain):
                return r
        return None

    print("| layer | CV of load | most specialized expert (domain): lift [95% CI], p | "
          "repeat first choice (1/E) | vocab. spec. input (shuffled) |")
    print("|---|---|---|---|---|")
    for layer in layers:
        lifts = [r for r in rows if int(r["layer"]) == layer and r["metric"] == "domain_spec_lift_topk"
                 and r["domain"] != "all"]
        best = max(lifts, key=lambda r: float(r["value"]))
        p = value(layer, "domain_spec_perm_p_topk", best["expert"], best["domain"])
        cv = value(layer, "cv_load")
        rep = value(layer, "repeat_first")
        vocab = value(layer, "vocab_spec_input_mean")
        vocab_text = (f"{float(vocab['value']):.3f} ({float(vocab['baseline']):.3f})" if vocab else "—")
        print(f"| {layer} | {float(cv['value']):.3f} | e{best['expert']} ({best['domain']}): "
              f"{float(best['value']):.2f} [{float(best['ci_low']):.2f}, {float(best['ci_high']):.2f}], "
              f"p = {float(p['value']):.3g} | {float(rep['value']):.3f} ({float(rep['baseline']):.3f}) | "
              f"{vocab_text} |")


if __name__ == "__main__":
    main()
