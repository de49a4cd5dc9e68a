#!/usr/bin/python3
"""Recomputes routing statistics of a moescope trace with numpy + h5py alone (no moescope code)
and compares them with what `moescope stats` wrote (stats.csv and stats.h5), following the
definitions of docs/routing-metrics.md §2: load (three conventions), CV (population and unbiased),
max/mean, domain specialization (top-k, top-1) with lift, consecutive-token repetition, and the
router entropy derived from the logits when the trace has them.

usage: check_stats.py TRACE.h5 STATS_DIR
Exit status 0 and "OK ..." on success; otherwise a message naming the first mismatch.
"""
import csv
import math
import sys

import h5py
import numpy as np


def fail(message):
    print("check_stats.py: " + message, file=sys.stderr)
    sys.exit(1)


def load_trace(path):
    with h5py.File(path, "r") as f:
        off = f["docs/offset"][:]
        n = int(off[-1])
        t = {
            "offset": off,
            "doc_domain": f["docs/domain"][:],
            "domains": [d.decode() for d in f["domains"][:]],
            "ids": f["routing/topk_ids"][:n].astype(np.int64),
            "w": f["routing/topk_weights"][:n],
            "L": int(f.attrs["num_layers"]),
            "E": int(f.attrs["num_experts"]),
            "K": int(f.attrs["top_k"]),
            "logits": None,
        }
        if f.attrs["record_logits"]:
            tok = f["routing/logit_token"][:]
            keep = tok < n
            t["logits"] = f["routing/router_logits"][:][keep].astype(np.float64)
            t["logit_token"] = tok[keep]
    return t


def expected(t):
    """{(metric, layer, expert, domain): value} for the checked metrics."""
    L, E, K = t["L"], t["E"], t["K"]
    off, ids, w = t["offset"], t["ids"], t["w"]
    M = len(t["domains"])
    n = ids.shape[0]
    doc_of = np.repeat(np.arange(len(off) - 1), np.diff(off))
    dom_of = t["doc_domain"][doc_of].astype(np.int64)
    selected = (ids >= 0) & (w > 0)  # [N, L, K]
    out = {}
    names = t["domains"] + ["all"]
    # one-hot [N, L, E] of the executed sets and of the first choice
    onehot = np.zeros((n, L, E), dtype=np.int64)
    first = np.zeros((n, L, E), dtype=np.int64)
    for k in range(ids.shape[2]):
        sel = selected[:, :, k]
        tt, ll = np.nonzero(sel)
        np.add.at(onehot, (tt, ll, ids[tt, ll, k]), 1)
    tt, ll = np.nonzero(selected[:, :, 0])
    first[tt, ll, ids[tt, ll, 0]] = 1
    # adjacent pairs of one document
    same_doc = doc_of[1:] == doc_of[:-1]
    for m in range(M + 1):
        mask = np.ones(n, bool) if m == M else dom_of == m
        N = int(mask.sum())
        if N == 0:
            continue
        c = onehot[mask].sum(axis=0)  # [L, E]
        c1 = first[mask].sum(axis=0)
        pair_mask = same_doc & mask[1:]
        pairs = int(pair_mask.sum())
        for l in range(L):
            cl = c[l].astype(np.float64)
            mean = cl.mean()
            out[("tokens", l, -1, names[m])] = N
            out[("cv_load", l, -1, names[m])] = cl.std() / mean
            out[("cv_load_unbiased", l, -1, names[m])] = math.sqrt(cl.var(ddof=1) / (mean ** 2 + 1e-10))
            out[("max_over_mean", l, -1, names[m])] = cl.max() / mean
            out[("dead_fraction", l, -1, names[m])] = float((cl == 0).sum()) / E
            for e in range(E):
                out[("load_count", l, e, names[m])] = cl[e]
                out[("assignment_share", l, e, names[m])] = cl[e] / (N * K)
                out[("token_coverage", l, e, names[m])] = cl[e] / N
                out[("relative_load", l, e, names[m])] = cl[e] / (N * K / E)
                out[("top1_share", l, e, names[m])] = c1[l, e] / N
                if m < M:
                    out[("domain_spec_topk", l, e, names[m])] = cl[e] / N
                    out[("domain_spec_lift_topk", l, e, names[m])] = cl[e] / N / (K / E)
                    out[("domain_spec_top1", l, e, names[m])] = c1[l, e] / N
                    out[("domain_spec_lift_top1", l, e, names[m])] = c1[l, e] / N * E
            if pairs:
                f0 = ids[:-1, l, 0][pair_mask]
                f1 = ids[1:, l, 0][pair_mask]
                out[("repeat_first", l, -1, names[m])] = float((f0 == f1).sum()) / pairs
                a = onehot[:-1, l, :][pair_mask]
                b = onehot[1:, l, :][pair_mask]
                out[("repeat_any", l, -1, names[m])] = float(((a * b).sum(axis=1) > 0).sum()) / pairs
        if t["logits"] is not None:
            rows = mask[t["logit_token"]]
            z = t["logits"][rows]  # [R, L, E]
            if len(z):
                z = z - z.max(axis=2, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=2, keepdims=True)
                h = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(axis=2)
                for l in range(L):
                    out[("router_entropy_derived", l, -1, names[m])] = h[:, l].mean()
                    for e in range(E):
                        out[("soft_load_derived", l, e, names[m])] = p[:, l, e].mean()
    return out


def main():
    if len(sys.argv) != 3:
        fail("usage: check_stats.py TRACE.h5 STATS_DIR")
    trace, folder = sys.argv[1], sys.argv[2]
    t = load_trace(trace)
    want = expected(t)
    got = {}
    with open(folder + "/stats.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = ["layer", "expert", "domain", "metric", "value", "ci_low", "ci_high", "baseline", "n"]
        if reader.fieldnames != columns:
            fail("stats.csv columns are %s, expected %s" % (reader.fieldnames, columns))
        for row in reader:
            key = (row["metric"], int(row["layer"]), int(row["expert"]), row["domain"])
            got[key] = float(row["value"]) if row["value"] != "" else math.nan
            if row["ci_low"] != "" and not (float(row["ci_low"]) <= float(row["ci_high"])):
                fail("%s: ci_low > ci_high" % (key,))
    checked = 0
    for key, value in want.items():
        if key not in got:
            fail("stats.csv has no row %s" % (key,))
        if not math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12):
            fail("%s: stats.csv says %r, numpy computes %r" % (key, got[key], value))
        checked += 1
    # stats.h5 holds the same numbers as arrays.
    names = t["domains"] + ["all"]
    h5checked = 0
    with h5py.File(folder + "/stats.h5", "r") as f:
        if f.attrs["format"] != "moescope-stats":
            fail("stats.h5 format attribute is %r" % f.attrs["format"])
        domains = [d.decode() for d in f["domains"][:]]
        if domains != names:
            fail("stats.h5 /domains is %s, expected %s" % (domains, names))
        for (metric, l, e, d), value in want.items():
            arr = f["metrics/%s/value" % metric]
            v = arr[names.index(d), l] if e < 0 else arr[names.index(d), l, e]
            if not math.isclose(float(v), value, rel_tol=1e-9, abs_tol=1e-12):
                fail("stats.h5 metrics/%s/value[%s, %d, %d] = %r, numpy computes %r"
                     % (metric, d, l, e, v, value))
            h5checked += 1
        # The co-activation diagonal is the load count.
        co = f["coactivation/count"][:]
        load = f["metrics/load_count/value"][:]
        if not np.array_equal(np.diagonal(co, axis1=2, axis2=3), load.astype(np.int64)):
            fail("coactivation diagonal differs from load_count")
    print("OK check_stats.py: %d values from stats.csv and %d from stats.h5 match numpy (%d tokens)"
          % (checked, h5checked, t["ids"].shape[0]))


if __name__ == "__main__":
    main()
