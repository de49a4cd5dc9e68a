#!/usr/bin/python3
"""Recomputes `moescope cache-sim` hit rates from a trace with numpy/h5py alone: an LRU cache
per layer (warm across the corpus, requests of a token served in stored order, executed experts
only), hits / requests per domain and over all documents, and the cluster-robust ratio interval
over documents (scipy's t quantile). Compares with DIR/cache.csv.

usage: check_cache_sim.py TRACE.h5 DIR
"""
import csv
import math
import sys
from collections import OrderedDict

import h5py
import numpy as np
from scipy import stats as sps


def fail(message):
    print("check_cache_sim.py: " + message, file=sys.stderr)
    sys.exit(1)


def lru_hits(requests, capacity):
    cache = OrderedDict()
    hits = []
    for token in requests:
        h = 0
        for e in token:
            if e in cache:
                h += 1
                cache.move_to_end(e)
            else:
                if len(cache) == capacity:
                    cache.popitem(last=False)
                cache[e] = True
        hits.append(h)
    return np.array(hits, dtype=np.float64)


def main():
    trace, folder = sys.argv[1], sys.argv[2]
    with h5py.File(trace, "r") as f:
        off = f["docs/offset"][:]
        n = int(off[-1])
        ids = f["routing/topk_ids"][:n]
        w = f["routing/topk_weights"][:n]
        doc_domain = f["docs/domain"][:]
        domains = [d.decode() for d in f["domains"][:]]
        L = int(f.attrs["num_layers"])
    doc_of = np.repeat(np.arange(len(off) - 1), np.diff(off))
    rows = list(csv.DictReader(open(folder + "/cache.csv")))
    checked = 0
    for row in rows:
        if row["policy"] != "lru":
            continue
        l, cap = int(row["layer"]), int(row["capacity"])
        requests = [[int(e) for e, x in zip(ids[t, l], w[t, l]) if e >= 0 and x > 0] for t in range(n)]
        hits = lru_hits(requests, cap)
        counts = np.array([len(r) for r in requests], dtype=np.float64)
        if row["domain"] == "all":
            docs = np.arange(len(off) - 1)
        else:
            docs = np.nonzero(doc_domain == domains.index(row["domain"]))[0]
        a = np.array([hits[doc_of == d].sum() for d in docs])
        m = np.array([counts[doc_of == d].sum() for d in docs])
        keep = m > 0
        a, m = a[keep], m[keep]
        rate = a.sum() / m.sum()
        if not math.isclose(float(row["hit_rate"]), rate, rel_tol=1e-9):
            fail("%s: hit rate %s, numpy LRU %r" % (row, row["hit_rate"], rate))
        g = len(a)
        if g >= 2 and row["ci_low"] != "":
            se = math.sqrt(g / (g - 1) * ((a - rate * m) ** 2).sum()) / m.sum()
            half = sps.t.ppf(0.975, g - 1) * se
            if not (math.isclose(float(row["ci_low"]), rate - half, rel_tol=1e-6, abs_tol=1e-9) and
                    math.isclose(float(row["ci_high"]), rate + half, rel_tol=1e-6, abs_tol=1e-9)):
                fail("%s: interval [%s, %s], numpy [%r, %r]" % (row, row["ci_low"], row["ci_high"],
                                                                 rate - half, rate + half))
        checked += 1
    if checked == 0:
        fail("no LRU rows in cache.csv")
    print("OK check_cache_sim.py: %d LRU rows (%d layers) match numpy" % (checked, L))


if __name__ == "__main__":
    main()
