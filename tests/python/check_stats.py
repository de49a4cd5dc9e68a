#!/usr/bin/python3
"""Recomputes routing statistics of a moescope trace with numpy + h5py alone (no moescope code)
and compares them with what `moescope stats` wrote (stats.csv and stats.h5), following the
definitions of docs/routing-metrics.md §2 and docs/stats-format.md: load (three conventions), CV
(population and unbiased), max/mean, domain specialization (top-k, top-1) with lift,
consecutive-token repetition with its load-matched and document-shuffle baselines and its profile
over distances, token-controlled specialization (lift and the t test over documents), the
Benjamini-Hochberg q-values of every p-value family, the cluster-t intervals of ratio metrics
(against the linearization interval, within a stated tolerance), and the router entropy derived
from the logits when the trace has them, and the per-layer vocabulary specialization means on
input, next and predicted tokens (the last only when the trace has /tokens/predicted).

usage: check_stats.py TRACE.h5 STATS_DIR
Exit status 0 and "OK ..." on success; otherwise a message naming the first mismatch.
"""
import csv
import json
import math
import sys

import h5py
import numpy as np
from scipy import stats as sps

DISTANCES = [2, 4, 8, 16, 32, 64]
# The cluster-t interval of `moescope stats` is estimate ± t_{G-1} sqrt(G/(G-1)) sd_b, sd_b the
# standard deviation of B Poisson(1) bootstrap replicates over documents. Here the same interval
# is made with numpy's own Poisson draws (B = 4000); with B = 4000 in `moescope stats` too, the
# two standard errors differ by Monte-Carlo error alone: about 1.1% each for a well-behaved ratio,
# more when one document dominates (the tiny test trace: one of 10 documents holds 59% of the
# tokens); the largest of 48 cells stayed below 8% over four seeds. The linearization interval, the large-sample limit, is reported beside it:
# it agrees when no document dominates (5.6% on the bundled sample trace) and is narrower when
# one does.
HALF_WIDTH_TOLERANCE = 0.10
REFERENCE_REPLICATES = 4000


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
            "token": f["tokens/id"][:n].astype(np.int64),
            "w": f["routing/topk_weights"][:n],
            "L": int(f.attrs["num_layers"]),
            "E": int(f.attrs["num_experts"]),
            "K": int(f.attrs["top_k"]),
            "logits": None,
            # The model's top-1 predictions; absent from traces of older moescope versions.
            "predicted": f["tokens/predicted"][:n].astype(np.int64) if "tokens/predicted" in f
                         else None,
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
    baselines = {}
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
                overlap = float((a * b).sum())
                same_pairs = float(((f0 == f1) & (f0 >= 0)).sum())
                share1 = c1[l] / N  # first-choice shares of the row
                cover = c[l] / N
                out[("repeat_first_lift_load", l, -1, names[m])] = same_pairs / pairs / float((share1 ** 2).sum())
                out[("repeat_overlap_lift_load", l, -1, names[m])] = overlap / pairs / float((cover ** 2).sum())
                baselines[("repeat_first", l, -1, names[m])] = float((share1 ** 2).sum())
                baselines[("repeat_overlap", l, -1, names[m])] = float((cover ** 2).sum())
                # Document-shuffle expectations, by brute force over each document's token pairs.
                exp_first = exp_overlap = exp_any = 0.0
                for d in np.unique(doc_of[mask]):
                    lo, hi = off[d], off[d + 1]
                    nd = hi - lo
                    if nd < 2:
                        continue
                    fd = ids[lo:hi, l, 0]
                    hd = onehot[lo:hi, l, :]
                    share = (hd @ hd.T).astype(np.float64)  # [nd, nd] shared experts
                    np.fill_diagonal(share, 0)
                    same = (fd[:, None] == fd[None, :]) & (fd[:, None] >= 0)
                    np.fill_diagonal(same, False)
                    exp_first += same.sum() / nd
                    exp_overlap += share.sum() / nd
                    exp_any += (share > 0).sum() / nd
                anyp = float(((a * b).sum(axis=1) > 0).sum())
                out[("repeat_first_lift_doc", l, -1, names[m])] = same_pairs / exp_first
                out[("repeat_overlap_lift_doc", l, -1, names[m])] = overlap / exp_overlap
                out[("repeat_any_lift_doc", l, -1, names[m])] = anyp / exp_any
                for dist in DISTANCES:
                    if n <= dist:
                        continue
                    within = (doc_of[dist:] == doc_of[:-dist]) & mask[dist:]
                    if within.sum() == 0:
                        continue
                    a0 = ids[:-dist, l, 0][within]
                    a1 = ids[dist:, l, 0][within]
                    out[("repeat_first_d%d" % dist, l, -1, names[m])] = float(((a0 == a1) & (a0 >= 0)).sum()) / within.sum()
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
    return out, baselines


def t_interval_ratio(a, n, level=0.95):
    """Cluster-robust (CR1) linearization interval of sum(a)/sum(n) over documents."""
    keep = n > 0
    a, n = a[keep], n[keep]
    g = len(a)
    if g < 2:
        return math.nan, math.nan, g
    r = a.sum() / n.sum()
    se = math.sqrt(g / (g - 1) * ((a - r * n) ** 2).sum()) / n.sum()
    half = sps.t.ppf(0.5 + level / 2, g - 1) * se
    return r - half, r + half, g


def token_controlled(t):
    """{(layer, expert, domain): (lift, p, docs)}: each document's tokens routed as their token
    ids are routed over the whole trace (docs/stats-format.md), per document o_d and e_d."""
    L, E = t["L"], t["E"]
    off, ids, w, token = t["offset"], t["ids"], t["w"], t["token"]
    names = t["domains"]
    n = ids.shape[0]
    selected = (ids >= 0) & (w > 0)
    onehot = np.zeros((n, L, E))
    for k in range(ids.shape[2]):
        tt, ll = np.nonzero(selected[:, :, k])
        np.add.at(onehot, (tt, ll, ids[tt, ll, k]), 1)
    V = int(token.max()) + 1
    by_token = np.zeros((V, L, E))
    np.add.at(by_token, token, onehot)
    occurrences = np.bincount(token, minlength=V).astype(np.float64)
    pi = by_token / np.maximum(occurrences, 1)[:, None, None]
    expected = pi[token]  # [N, L, E]
    D = len(off) - 1
    o_d = np.array([onehot[off[d]:off[d + 1]].sum(axis=0) for d in range(D)])  # [D, L, E]
    e_d = np.array([expected[off[d]:off[d + 1]].sum(axis=0) for d in range(D)])
    result = {}
    for m, name in enumerate(names):
        docs = np.nonzero(t["doc_domain"] == m)[0]
        for l in range(L):
            for e in range(E):
                o, ex = o_d[docs, l, e], e_d[docs, l, e]
                keep = ex > 0
                o, ex = o[keep], ex[keep]
                g = len(o)
                lift = o.sum() / ex.sum() if ex.sum() > 0 else math.nan
                p = math.nan
                if g >= 2:
                    delta = o - ex
                    se = math.sqrt(g / (g - 1) * ((delta - delta.mean()) ** 2).sum())
                    p = 2 * sps.t.sf(abs(delta.sum()) / se, g - 1) if se > 0 else (1.0 if abs(delta.sum()) < 1e-9 else 0.0)
                lo, hi, _ = t_interval_ratio(o, ex) if g >= 2 else (math.nan, math.nan, g)
                result[(l, e, name)] = (lift, p, g, lo, hi)
    return result


def bh(p):
    """Benjamini-Hochberg q-values (numpy), NaN entries are not tests."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    idx = np.nonzero(~np.isnan(p))[0]
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def vocab_means(t, min_count):
    """{(vocab_spec_*_mean, layer, -1, "all"): mean over kept x of max_e N_{x,e}/N_x} for the
    input token, the next token of the document and the predicted token (docs/stats-format.md;
    layers where no x is kept are left out: their value is empty)."""
    L, E = t["L"], t["E"]
    off, ids, token = t["offset"], t["ids"], t["token"]
    selected = (ids >= 0) & (t["w"] > 0)  # [n, L, K] the executed sets
    n = ids.shape[0]
    same_doc = np.ones(n, dtype=bool)
    same_doc[off[1:-1] - 1] = False  # no pair across a document boundary
    same_doc[-1] = False
    rows = np.arange(n)
    variants = {"input": (rows, token)}
    nxt = rows[same_doc]
    variants["next"] = (nxt, token[nxt + 1])  # the set of t under x = token t + 1
    if t["predicted"] is not None:
        has = rows[t["predicted"] >= 0]
        variants["predicted"] = (has, t["predicted"][has])
    out = {}
    for name, (src, x) in variants.items():
        V = int(max(token.max(), x.max() if len(x) else 0)) + 1
        occurrences = np.bincount(x, minlength=V)
        kept = occurrences >= min_count
        if not kept.any():
            continue
        for l in range(L):
            counts = np.zeros((V, E), dtype=np.int64)
            sel = selected[src, l, :]
            k_rows, k_cols = np.nonzero(sel)
            np.add.at(counts, (x[k_rows], ids[src, l, :][k_rows, k_cols]), 1)
            v = counts[kept].max(axis=1) / occurrences[kept]
            out[("vocab_spec_%s_mean" % name, l, -1, "all")] = float(v.mean())
    return out


def main():
    if len(sys.argv) != 3:
        fail("usage: check_stats.py TRACE.h5 STATS_DIR")
    trace, folder = sys.argv[1], sys.argv[2]
    t = load_trace(trace)
    want, want_baseline = expected(t)
    got, rows = {}, []
    with open(folder + "/stats.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = ["layer", "expert", "domain", "metric", "value", "ci_low", "ci_high", "baseline",
                   "n", "q", "docs", "ci_mc_error", "baseline_kind"]
        if reader.fieldnames != columns:
            fail("stats.csv columns are %s, expected %s" % (reader.fieldnames, columns))
        for row in reader:
            key = (row["metric"], int(row["layer"]), int(row["expert"]), row["domain"])
            num = {c: (float(row[c]) if row[c] != "" else math.nan)
                   for c in ("value", "ci_low", "ci_high", "baseline", "q", "docs")}
            got[key] = num["value"]
            rows.append((key, num))
            if row["ci_low"] != "" and not (float(row["ci_low"]) <= float(row["ci_high"])):
                fail("%s: ci_low > ci_high" % (key,))
    by_key = dict(rows)
    for key, value in want_baseline.items():
        if not math.isclose(by_key[key]["baseline"], value, rel_tol=1e-9, abs_tol=1e-12):
            fail("%s: baseline %r, numpy computes %r" % (key, by_key[key]["baseline"], value))
    # Token-controlled specialization: lift, p-value and interval.
    controlled = token_controlled(t)
    for (l, e, name), (lift, p, g, lo, hi) in controlled.items():
        row = by_key[("domain_spec_lift_token", l, e, name)]
        test = by_key[("domain_spec_token_p", l, e, name)]
        if not (math.isnan(lift) and math.isnan(row["value"])) and not math.isclose(row["value"], lift, rel_tol=1e-9, abs_tol=1e-12):
            fail("domain_spec_lift_token %s: %r, numpy computes %r" % ((l, e, name), row["value"], lift))
        if int(row["docs"]) != g:
            fail("domain_spec_lift_token %s: docs %r, numpy counts %d" % ((l, e, name), row["docs"], g))
        if not math.isnan(test["value"]):
            if not math.isclose(test["value"], p, rel_tol=1e-6, abs_tol=1e-12):
                fail("domain_spec_token_p %s: %r, numpy/scipy computes %r" % ((l, e, name), test["value"], p))
            if not (math.isclose(row["ci_low"], lo, rel_tol=1e-6, abs_tol=1e-9) and
                    math.isclose(row["ci_high"], hi, rel_tol=1e-6, abs_tol=1e-9)):
                fail("domain_spec_lift_token %s: interval [%r, %r], numpy/scipy [%r, %r]"
                     % ((l, e, name), row["ci_low"], row["ci_high"], lo, hi))
    # Benjamini-Hochberg: every p-value family's q from its p column.
    families = 0
    for metric in ("domain_spec_perm_p_topk", "domain_spec_perm_p_top1", "domain_spec_token_p"):
        fam = [(key, num) for key, num in rows if key[0] == metric]
        if not fam:
            continue
        families += 1
        q = bh([num["value"] for _, num in fam])
        for (key, num), qv in zip(fam, q):
            if not (math.isnan(qv) and math.isnan(num["q"])) and not math.isclose(num["q"], qv, rel_tol=1e-9, abs_tol=1e-15):
                fail("%s: q %r, numpy Benjamini-Hochberg %r" % (key, num["q"], qv))
    # Cluster-t intervals of a ratio metric (token coverage c/N of every expert, all domains):
    # against the same interval from numpy's Poisson bootstrap, and the linearization interval.
    off = t["offset"]
    D = len(off) - 1
    widest = linear = 0.0
    selected = (t["ids"] >= 0) & (t["w"] > 0)
    rng = np.random.default_rng(12345)
    weights = rng.poisson(1.0, size=(REFERENCE_REPLICATES, D)).astype(np.float64)
    n = np.diff(off).astype(np.float64)
    t_q = sps.t.ppf(0.975, D - 1)
    for l in range(t["L"]):
        for e in range(t["E"]):
            hit = (selected[:, l, :] & (t["ids"][:, l, :] == e)).any(axis=1).astype(np.float64)
            a = np.array([hit[off[d]:off[d + 1]].sum() for d in range(D)])
            num = by_key[("token_coverage", l, e, "all")]
            if math.isnan(num["ci_low"]):
                fail("token_coverage %s: no interval over %d documents" % ((l, e), D))
            half = (num["ci_high"] - num["ci_low"]) / 2
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates = (weights @ a) / (weights @ n)
            replicates = replicates[np.isfinite(replicates)]
            ref = t_q * math.sqrt(D / (D - 1)) * replicates.std(ddof=1)
            if ref > 0:
                widest = max(widest, abs(half / ref - 1))
            lo, hi, _ = t_interval_ratio(a, n)
            if hi > lo:
                linear = max(linear, abs(half / ((hi - lo) / 2) - 1))
    if widest > HALF_WIDTH_TOLERANCE:
        fail("cluster-t half-widths differ from numpy's Poisson bootstrap by up to %.1f%%" % (100 * widest))
    # Vocabulary specialization means, when stats made the token tables (not with --no-vocab or
    # past the memory cap): every variant the trace allows must be there.
    with open(folder + "/stats.json", encoding="utf-8") as f:
        options = json.load(f)["options"]
    if any(key[0] == "vocab_spec_input_mean" for key in got):
        vocab = vocab_means(t, int(options["vocab_min_count"]))
        if t["predicted"] is None and any(key[0] == "vocab_spec_predicted_mean" for key in got):
            fail("stats.csv has vocab_spec_predicted_mean rows but the trace has no predictions")
        want.update(vocab)
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
    print("OK check_stats.py: %d values from stats.csv and %d from stats.h5 match numpy (%d tokens); "
          "%d token-controlled cells, %d BH families; cluster-t half-widths within %.1f%% of numpy's "
          "Poisson bootstrap (%.1f%% of the linearization interval)"
          % (checked, h5checked, t["ids"].shape[0], len(controlled), families, 100 * widest,
             100 * linear))


if __name__ == "__main__":
    main()
