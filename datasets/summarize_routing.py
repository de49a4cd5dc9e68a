#!/usr/bin/python3
"""Routing summary of a model for its model card and README, from `moescope stats` output
(stats.csv, format 2): per layer the load balance (population CV of expert loads, all domains);
the most specialized (expert, domain) cell by top-k lift DS(e, D, K)/(K/E) with its 95% cluster-t
interval over documents and its permutation test's Benjamini-Hochberg q (family: all layer x
expert x domain cells), beside the token-controlled lift of the same cell (the domain's tokens
routed as their token ids are routed everywhere) with its q; the consecutive-token repetition of
the first choice as a ratio to the load-matched baseline (sum of squared first-choice shares) and
to the document-shuffle baseline, with intervals; and the vocabulary specialization against its
shuffled baseline. A second table gives the size and discoveries of each test family.

usage: /usr/bin/python3 datasets/summarize_routing.py STATS_DIR   (prints Markdown tables)
"""
import csv
import json
import os
import sys


def main():
    folder = sys.argv[1]
    rows = list(csv.DictReader(open(os.path.join(folder, "stats.csv"))))
    index = {(int(r["layer"]), r["metric"], r["expert"], r["domain"]): r for r in rows}
    layers = sorted({int(r["layer"]) for r in rows})

    def value(layer, metric, expert="-1", domain="all"):
        return index.get((layer, metric, expert, domain))

    def interval(r, digits=2):
        if r is None:
            return "—"
        if r["ci_low"] == "":
            return f"{float(r['value']):.{digits}f}"
        return (f"{float(r['value']):.{digits}f} [{float(r['ci_low']):.{digits}f}, "
                f"{float(r['ci_high']):.{digits}f}]")

    print("| layer | CV of load | most specialized cell: lift [95% CI], q | same cell, token-controlled lift [95% CI], q | "
          "repeat first: × load-matched | × document-shuffle | vocab. spec. input (shuffled) |")
    print("|---|---|---|---|---|---|---|")
    for layer in layers:
        lifts = [r for r in rows if int(r["layer"]) == layer and r["metric"] == "domain_spec_lift_topk"
                 and r["domain"] != "all"]
        best = max(lifts, key=lambda r: float(r["value"]))
        cell = (best["expert"], best["domain"])
        p = value(layer, "domain_spec_perm_p_topk", *cell)
        token = value(layer, "domain_spec_lift_token", *cell)
        token_p = value(layer, "domain_spec_token_p", *cell)
        cv = value(layer, "cv_load")
        vocab = value(layer, "vocab_spec_input_mean")
        vocab_text = (f"{float(vocab['value']):.3f} ({float(vocab['baseline']):.3f})" if vocab else "—")
        q = f"q = {float(p['q']):.2g}" if p and p["q"] != "" else "no test"
        token_q = f"q = {float(token_p['q']):.2g}" if token_p and token_p["q"] != "" else "no test"
        print(f"| {layer} | {float(cv['value']):.3f} | e{best['expert']} ({best['domain']}): "
              f"{interval(best)}, {q} | {interval(token)}, {token_q} | "
              f"{interval(value(layer, 'repeat_first_lift_load'))} | "
              f"{interval(value(layer, 'repeat_first_lift_doc'))} | {vocab_text} |")
    stats = json.load(open(os.path.join(folder, "stats.json")))
    print()
    print("| test family | cells | permutations | smallest p | discoveries at FDR |")
    print("|---|---|---|---|---|")
    for f in stats.get("test_families", []):
        perms = f["permutations"] if f["permutations"] else "— (t over documents)"
        smallest = f"{f['min_p']:.2g}" if f["permutations"] else "—"
        print(f"| `{f['metric']}` | {f['tests']} | {perms} | {smallest} | "
              f"{f['discoveries']} at {f['fdr']} |")


if __name__ == "__main__":
    main()
