#!/usr/bin/env python3
"""Independent check of `moescope compare` (analysis/stats/routing_compare.h) with numpy, h5py
and scipy: recomputes, from the two traces alone, the flip rate, top-k overlap and Jaccard per
layer and domain, A's top-k boundary margins, the margin bin edges (quantile rule or the given
fixed edges) and the flip rate per bin, and the cluster-robust ratio interval over documents
(r = sum a_d / sum n_d, var = sum (a_d - r n_d)^2 G/(G-1) / (sum n_d)^2, r -+ t_{G-1} sqrt(var),
clipped to [0, 1], with scipy's t quantile), then compares them with DIR/compare.json (full
precision) and DIR/compare.csv (10 significant digits), and DIR/compare.h5's /margin_edges when
the file exists.

Usage: check_compare.py A.h5 B.h5 DIR [--bins N | --edges E0,E1,...] [--level 0.95]
Tolerance: 1e-9 absolute on values, intervals and edges from compare.json (the C++ sums the same
numbers in another order and inverts the t distribution by bisection); 1e-9 relative against
compare.csv. Prints "OK check_compare.py ..." on success, exits 1 with the differences otherwise.
"""
import argparse
import csv
import json
import math
import os
import sys

import h5py
import numpy as np
from scipy import stats

TOL = 1e-9


def selections(f, n):
    ids = f["routing/topk_ids"][:n].astype(np.int64)      # [N, L, K]
    w = f["routing/topk_weights"][:n]
    mask = (ids >= 0) & (w > 0)
    count = mask.sum(axis=2)                                # [N, L]
    # first selected column (compare takes the selected experts in column order)
    first_col = np.argmax(mask, axis=2)
    first = np.take_along_axis(ids, first_col[..., None], axis=2)[..., 0]
    first = np.where(count > 0, first, -1)
    return ids, mask, count, first


def ratio_interval(a, n, level):
    keep = n > 0
    a, n = a[keep], n[keep]
    g = a.size
    if g == 0:
        return math.nan, math.nan, math.nan, 0, 0.0
    r = a.sum() / n.sum()
    if g < 2:
        return r, math.nan, math.nan, g, n.sum()
    var = ((a - r * n) ** 2).sum() * g / (g - 1) / n.sum() ** 2
    half = stats.t.ppf(0.5 + level / 2, g - 1) * math.sqrt(var)
    return r, max(0.0, r - half), min(1.0, r + half), g, n.sum()


def quantile_edges(margins, bins):
    x = np.sort(margins)
    n = x.size
    edges = [0.0]
    for j in range(1, bins):
        at = -(-j * n // bins)     # ceil(j n / bins)
        if at >= n:
            break
        if x[at] > edges[-1]:
            edges.append(float(x[at]))
    return edges


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("dir")
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--edges", default="")
    p.add_argument("--level", type=float, default=0.95)
    args = p.parse_args()
    errors = []

    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        off = fa["docs/offset"][:]
        n_tok = int(off[-1])
        assert np.array_equal(off, fb["docs/offset"][:])
        dom_of_doc = fa["docs/domain"][:].astype(np.int64)
        domains = [d.decode() for d in fa["domains"][:]]
        L, E, K = int(fa.attrs["num_layers"]), int(fa.attrs["num_experts"]), int(fa.attrs["top_k"])
        ids_a, mask_a, na, first_a = selections(fa, n_tok)
        ids_b, mask_b, nb, first_b = selections(fb, n_tok)
        has_logits = "routing/router_logits" in fa and fa["routing/logit_token"].shape[0] > 0
        if has_logits:
            ltok = fa["routing/logit_token"][:].astype(np.int64)
            z = fa["routing/router_logits"][:].astype(np.float32)      # [R, L, E]
    M = len(domains)
    doc = np.repeat(np.arange(off.size - 1), np.diff(off))
    D = off.size - 1

    has_first = (na > 0) & (nb > 0)
    flip = has_first & (first_a != first_b)
    both = np.zeros((n_tok, L))
    for i in range(ids_a.shape[2]):
        for j in range(ids_b.shape[2]):
            both += (ids_a[:, :, i] == ids_b[:, :, j]) & mask_a[:, :, i] & mask_b[:, :, j]
    either = na + nb - both
    overlap = both / K
    jaccard = np.where(either > 0, both / np.maximum(either, 1), 1.0)

    def per_doc(values):   # [N, L] -> [D, L]
        out = np.zeros((D, values.shape[1]))
        np.add.at(out, doc, values)
        return out

    tokens_d = np.bincount(doc, minlength=D).astype(float)
    sums = {
        "flip_rate_top1": (per_doc(flip.astype(float)), per_doc(has_first.astype(float))),
        "topk_overlap": (per_doc(overlap), np.repeat(tokens_d[:, None], L, axis=1)),
        "topk_jaccard": (per_doc(jaccard), np.repeat(tokens_d[:, None], L, axis=1)),
    }

    expected = {}   # (metric, layer, domain name, bin_low or None) -> (value, lo, hi, n, G)
    for metric, (a_d, n_d) in sums.items():
        for m in range(M + 1):
            sel = dom_of_doc == m if m < M else np.ones(D, bool)
            name = domains[m] if m < M else "all"
            for l in range(L):
                expected[(metric, l, name, None)] = ratio_interval(a_d[sel, l], n_d[sel, l], args.level)

    with open(os.path.join(args.dir, "compare.json")) as fh:
        report = json.load(fh)
    edges_used = None
    if has_logits:
        t_na = na[ltok]                                   # [R, L]
        zs = -np.sort(-z, axis=2)                         # descending
        r_idx = np.arange(ltok.size)[:, None]
        l_idx = np.arange(L)[None, :]
        ok = (t_na > 0) & (t_na < E) & np.isfinite(z).all(axis=2)
        k1 = np.clip(t_na - 1, 0, E - 1)
        k2 = np.clip(t_na, 0, E - 1)
        margin = zs[r_idx, l_idx, k1].astype(np.float64) - zs[r_idx, l_idx, k2].astype(np.float64)
        if args.edges:
            fixed = [float(v) for v in args.edges.split(",")]
            edges_used = [fixed] * L
        else:
            stride = -(-ltok.size // (1 << 18))
            sub = (np.arange(ltok.size) % stride) == 0
            edges_used = [quantile_edges(margin[ok[:, l] & sub, l], args.bins) for l in range(L)]
        got_edges = report["margin_bins"]["edges"]
        for l in range(L):
            if len(got_edges[l]) != len(edges_used[l]) or \
                    np.max(np.abs(np.array(got_edges[l]) - np.array(edges_used[l]))) > TOL:
                errors.append(f"layer {l}: edges {got_edges[l]} != numpy {edges_used[l]}")
        h5_path = os.path.join(args.dir, "compare.h5")
        if os.path.exists(h5_path):
            with h5py.File(h5_path, "r") as fh:
                stored = fh["margin_edges"][:]
            for l in range(L):
                row = stored[l][~np.isnan(stored[l])]
                if not np.array_equal(row, np.array(edges_used[l])):
                    errors.append(f"compare.h5 /margin_edges layer {l}: {row} != {edges_used[l]}")
        valid = ok & has_first[ltok]
        flip_r = flip[ltok]
        doc_r = doc[ltok]
        for l in range(L):
            e = np.array(edges_used[l])
            b = np.clip(np.searchsorted(e, margin[:, l], side="right") - 1, 0, e.size - 1)
            for bi in range(e.size):
                in_bin = valid[:, l] & (b == bi)
                a_d = np.bincount(doc_r[in_bin], flip_r[in_bin, l].astype(float), minlength=D)
                n_d = np.bincount(doc_r[in_bin], minlength=D).astype(float)
                for m in range(M + 1):
                    sel = dom_of_doc == m if m < M else np.ones(D, bool)
                    name = domains[m] if m < M else "all"
                    expected[("flip_rate_by_margin", l, name, float(e[bi]))] = \
                        ratio_interval(a_d[sel], n_d[sel], args.level)

    seen = 0
    for row in report["rows"]:
        key = (row["metric"], row["layer"], row["domain"], row.get("bin_low"))
        if row["metric"] == "flip_rate_by_margin":
            key = (row["metric"], row["layer"], row["domain"], float(row["bin_low"]))
        if key not in expected:
            continue
        seen += 1
        want = expected.pop(key)
        got = (row["value"], row.get("ci_low"), row.get("ci_high"), row.get("documents", 0), row["n"])
        for what, g, w in zip(("value", "ci_low", "ci_high", "documents", "n"), got, want):
            g = math.nan if g is None else float(g)
            if (math.isnan(w) and not math.isnan(g)) or (not math.isnan(w) and not abs(g - w) <= TOL):
                errors.append(f"{key} {what}: compare.json {g!r}, numpy {w!r}")
    missing = [k for k, v in expected.items() if v[4] > 0]
    if missing:
        errors.append(f"{len(missing)} expected rows absent from compare.json, e.g. {missing[:3]}")

    # compare.csv holds the same rows (10 significant digits).
    with open(os.path.join(args.dir, "compare.csv")) as fh:
        csv_rows = list(csv.DictReader(fh))
    if len(csv_rows) != len(report["rows"]):
        errors.append(f"compare.csv has {len(csv_rows)} rows, compare.json {len(report['rows'])}")
    for c, j in zip(csv_rows, report["rows"]):
        for col in ("value", "ci_low", "ci_high", "bin_low", "bin_high"):
            jv = j.get(col)
            cv = c[col]
            if jv is None:
                if cv not in ("", "inf") and col != "bin_high":
                    errors.append(f"csv {c} {col}: {cv!r} where json has none")
                continue
            if abs(float(cv) - float(jv)) > 1e-9 * max(1.0, abs(float(jv))):
                errors.append(f"csv {c} {col}: {cv} != json {jv}")

    if errors:
        print("\n".join(errors[:40]))
        print(f"FAILED check_compare.py: {len(errors)} differences")
        return 1
    print(f"OK check_compare.py: {seen} rows (values, {args.level:g} intervals, n, documents) and "
          f"{'the margin edges of ' + str(L) + ' layers' if edges_used else 'no margin bins'} agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
