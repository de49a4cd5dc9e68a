#!/usr/bin/python3
"""Recomputes `moescope cache-sim` hit rates from a trace with numpy/h5py alone: an LRU cache
per layer (warm across the corpus, requests of a token served in stored order, executed experts
only), hits / requests per domain and over all documents, and the cluster-robust ratio interval
over documents (scipy's t quantile). Compares with DIR/cache.csv. The prefetch rows over all
documents are recomputed the same way: an LRU cache with a prefetch stage fed by the previous
token's experts or by the previous layer's co-occurrence counted over the tokens before, with
hit rate, prefetch accuracy and bytes per token (misses and prefetches).

usage: check_cache_sim.py TRACE.h5 DIR
"""
import csv
import json
import math
import sys
from collections import OrderedDict

import h5py
import numpy as np
from scipy import stats as sps


def fail(message):
    print("check_cache_sim.py: " + message, file=sys.stderr)
    sys.exit(1)


def serve_lru(cache, token, capacity):
    """Serves one token's requests from an LRU cache (an OrderedDict); returns its hits."""
    h = 0
    for e in token:
        if e in cache:
            h += 1
            cache.move_to_end(e)
        else:
            if len(cache) == capacity:
                cache.popitem(last=False)
            cache[e] = True
    return h


def lru_hits(requests, capacity):
    cache = OrderedDict()
    return np.array([serve_lru(cache, token, capacity) for token in requests], dtype=np.float64)


def prefetch_run(requests, predictions, capacity):
    """Hits, fetched and fetched-and-used prefetches, summed over tokens."""
    cache = OrderedDict()
    hits = fetched = used = 0
    for token, predicted in zip(requests, predictions):
        moved = set()
        for e in predicted[:capacity]:
            if e not in cache:
                moved.add(e)
                if len(cache) == capacity:
                    cache.popitem(last=False)
            cache[e] = True
            cache.move_to_end(e)
        fetched += len(moved)
        used += len(moved & set(token))
        hits += serve_lru(cache, token, capacity)
    return hits, fetched, used


def layer_predictions(previous, current, experts, budget):
    count = np.zeros((experts, experts), dtype=np.int64)
    out = []
    for before, now in zip(previous, current):
        score = count[before].sum(axis=0) if before else np.zeros(experts, dtype=np.int64)
        order = sorted(range(experts), key=lambda b: (-score[b], b))
        out.append([b for b in order if score[b] > 0][:budget])
        for a in before:
            for b in now:
                count[a, b] += 1
    return out


def check_prefetch(rows, ids, w, n, L, E, k, expert_bytes):
    requests = [[[int(e) for e, x in zip(ids[t, l], w[t, l]) if e >= 0 and x > 0] for t in range(n)]
                for l in range(L)]
    checked = 0
    for row in rows:
        if row["domain"] != "all" or not row["policy"].startswith("prefetch"):
            continue
        l, cap = int(row["layer"]), int(row["capacity"])
        if row["policy"] == "prefetch-token":
            predictions = [[]] + [r[:k] for r in requests[l][:-1]]
        elif l == 0:
            predictions = [[] for _ in range(n)]
        else:
            predictions = layer_predictions(requests[l - 1], requests[l], E, k)
        hits, fetched, used = prefetch_run(requests[l], predictions, cap)
        total = sum(len(r) for r in requests[l])
        bytes_per_token = (total - hits + fetched) * expert_bytes[l] / n
        if not math.isclose(float(row["hit_rate"]), hits / total, rel_tol=1e-9):
            fail("%s: hit rate, python prefetch %r" % (row, hits / total))
        if not math.isclose(float(row["bytes_per_token"]), bytes_per_token, rel_tol=1e-9):
            fail("%s: bytes per token, python prefetch %r" % (row, bytes_per_token))
        if fetched and not math.isclose(float(row["prefetch_accuracy"]), used / fetched, rel_tol=1e-9):
            fail("%s: prefetch accuracy, python prefetch %r" % (row, used / fetched))
        if not fetched and row["prefetch_accuracy"] != "":
            fail("%s: nothing prefetched but an accuracy" % row)
        checked += 1
    return checked


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
        E = int(f.attrs["num_experts"])
        k = int(f.attrs["top_k"])
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
    meta = json.load(open(folder + "/cache.json"))
    prefetched = check_prefetch(rows, ids, w, n, L, E, k, meta["expert_bytes"])
    if prefetched == 0:
        fail("no prefetch rows in cache.csv")
    print("OK check_cache_sim.py: %d LRU rows and %d prefetch rows (%d layers) match numpy" %
          (checked, prefetched, L))


if __name__ == "__main__":
    main()
