#!/usr/bin/python3
"""Checks a moescope trace with h5py alone (no moescope code), against docs/trace-format.md and
against values the C++ TraceReader saw (a JSON file written by the Catch test).

usage: check_trace.py TRACE.h5 TRACE_FORMAT.md [EXPECTED.json] [--swmr] [--reference]

With --reference (needs torch; the trace must be of the model as trained, no routing policy),
/tokens/predicted is checked against the argmax of the independent PyTorch reference's LM logits
(tests/reference/llama_moe_reference.py) for every document that fits in one window; a mismatch
is accepted only where the reference's two best logits are within 1e-4 (a near tie that float
rounding may order either way).
Exit status 0 and "OK ..." on success; otherwise a message naming the first mismatch.
"""
import json
import re
import sys

import h5py
import numpy as np

DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "float16": np.float16, "float32": np.float32, "float64": np.float64}


SWMR = False


def ds(f, name):
    """The dataset, refreshed when following a trace that is being written (read /docs/offset
    first: the writer flushes every other dataset before it extends the offsets)."""
    d = f[name]
    if SWMR:
        d.refresh()
    return d


def fail(message):
    print("check_trace.py: " + message, file=sys.stderr)
    sys.exit(1)


def doc_tables(path):
    """(attributes, datasets) rows of the two tables of docs/trace-format.md."""
    attrs, datasets = {}, {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"^\| `([^`]+)` \| ([^|]+) \|(?: ([^|]+) \|)?", line)
        if not m:
            continue
        name, dtype, shape = m.group(1), m.group(2).strip(), (m.group(3) or "").strip()
        if name.startswith("/"):
            datasets[name] = (dtype, shape)
        else:
            attrs[name] = dtype
    return attrs, datasets


def check_schema(f, doc):
    attrs, datasets = doc_tables(doc)
    if not attrs or not datasets:
        fail(doc + ": found no attribute or dataset tables")
    for name in f.attrs:
        if name not in attrs:
            fail("root attribute '%s' is not documented in %s" % (name, doc))
    for name, dtype in attrs.items():
        if name not in f.attrs:
            fail("documented root attribute '%s' is missing from the file" % name)
        value = f.attrs[name]
        kind = dtype.split()[0]
        if kind == "string":
            if not isinstance(value, str):
                fail("attribute '%s' should be a string, is %r" % (name, type(value)))
        elif np.asarray(value).dtype != DTYPES[kind]:
            fail("attribute '%s' should be %s, is %s" % (name, kind, np.asarray(value).dtype))
    present = set()
    f.visititems(lambda n, o: present.add("/" + n) if isinstance(o, h5py.Dataset) else None)
    optional = {"/routing/router_logits", "/routing/logit_token"}
    # Optional in format_version 1: traces of older moescope versions lack it.
    # /routing/shared_gate: only models with a shared expert have it.
    optional_always = {"/tokens/predicted", "/routing/shared_gate"}
    for name in present:
        if name not in datasets:
            fail("dataset %s is not documented in %s" % (name, doc))
    for name, (dtype, shape) in datasets.items():
        if name not in present:
            if name in optional and not f.attrs["record_logits"]:
                continue
            if name in optional_always:
                continue
            fail("documented dataset %s is missing from the file" % name)
        dset = f[name]
        rank = shape.count(",") + 1
        if dset.ndim != rank:
            fail("%s has rank %d, the document says %s" % (name, dset.ndim, shape))
        if dtype == "string":
            if dset.dtype.kind != "S":
                fail("%s should hold fixed-length strings, holds %s" % (name, dset.dtype))
        elif dset.dtype != DTYPES[dtype]:
            fail("%s has dtype %s, the document says %s" % (name, dset.dtype, dtype))


def check_consistency(f):
    if f.attrs["format"] != "moescope-trace" or f.attrs["format_version"] != 1:
        fail("format attributes are wrong")
    off = ds(f, "docs/offset")[:]
    D, N = len(off) - 1, int(off[-1])
    L, E, K = int(f.attrs["num_layers"]), int(f.attrs["num_experts"]), int(f.attrs["top_k"])
    M = len(ds(f, "domains"))
    if off[0] != 0 or np.any(np.diff(off) <= 0):
        fail("/docs/offset must start at 0 and grow (no empty documents)")
    for name in ("tokens/id", "tokens/position", "tokens/doc", "tokens/nll"):
        if ds(f, name).shape[0] < N:
            fail("%s has fewer rows than the committed %d tokens" % (name, N))
    if ds(f, "routing/topk_ids").shape[1:] != (L, K) or ds(f, "routing/topk_weights").shape[1:] != (L, K):
        fail("routing shapes do not match num_layers/top_k")
    if ds(f, "stats/load").shape != (M + 1, L, E) or ds(f, "stats/importance").shape != (M + 1, L, E):
        fail("stats shapes are not [M+1, L, E]")
    if len(ds(f, "docs/domain")) < D or len(ds(f, "docs/source_id")) < D:
        fail("document datasets are shorter than /docs/offset says")
    doc = ds(f, "tokens/doc")[:N]
    expected_doc = np.repeat(np.arange(D), np.diff(off))
    if not np.array_equal(doc, expected_doc):
        fail("/tokens/doc does not follow /docs/offset")
    ids = ds(f, "routing/topk_ids")[:N]
    if ids.min() < -1 or ids.max() >= E:
        fail("topk ids outside -1..E-1")
    weights = ds(f, "routing/topk_weights")[:N]
    if np.any((ids < 0) & (weights != 0)):
        fail("padded routing slots must have weight 0")
    nll = ds(f, "tokens/nll")[:N]
    last = off[1:] - 1
    if not np.all(np.isnan(nll[last])):
        fail("the last token of every document must have NaN NLL")
    if "tokens/predicted" in f:
        predicted = ds(f, "tokens/predicted")[:N] if ds(f, "tokens/predicted").shape[0] >= N else None
        if predicted is None:
            fail("/tokens/predicted has fewer rows than the committed %d tokens" % N)
        config = json.loads(f.attrs["model_config"])
        vocab = int(config.get("vocab_size", 0))
        if predicted.min(initial=0) < -1 or (vocab > 0 and predicted.max(initial=-1) >= vocab):
            fail("/tokens/predicted holds ids outside -1..vocab_size-1")
        if not np.array_equal(predicted == -1, np.isnan(nll)):
            fail("/tokens/predicted must be -1 exactly where /tokens/nll is NaN")
    if "routing/shared_gate" in f:
        gate = ds(f, "routing/shared_gate")[:N]
        if gate.shape != (N, L):
            fail("/routing/shared_gate should be [N, L] = [%d, %d], is %s" % (N, L, gate.shape))
        if not np.all((gate >= 0) & (gate <= 1)):
            fail("/routing/shared_gate holds values outside [0, 1]")
        if "moe_layers" in f.attrs:
            dense = np.asarray(f.attrs["moe_layers"]) == 0
            if np.any(gate[:, dense] != 0):
                fail("/routing/shared_gate must be 0 in dense layers")
    if f.attrs["complete"]:
        load = ds(f, "stats/load")[:]
        domains = ds(f, "docs/domain")[:D]
        for m in range(M):
            rows = np.isin(doc, np.nonzero(domains == m)[0])
            got = np.stack([np.bincount(ids[rows, l][ids[rows, l] >= 0], minlength=E)
                            for l in range(L)])
            if not np.array_equal(load[m], got):
                fail("/stats/load of domain %d does not match /routing/topk_ids" % m)
        if not np.array_equal(load[M], load[:M].sum(axis=0)):
            fail("/stats/load's last row is not the sum over domains")
    if f.attrs["record_logits"]:
        lt = ds(f, "routing/logit_token")[:]
        lt = lt[lt < N]
        if np.any(np.diff(lt) <= 0):
            fail("/routing/logit_token must ascend")
        if ds(f, "routing/router_logits").shape[1:] != (L, E):
            fail("/routing/router_logits is not [R, L, E]")
    return D, N


def check_expected(f, expected):
    off = ds(f, "docs/offset")[:]
    for key, want in expected.get("attrs", {}).items():
        got = f.attrs[key]
        got = got.tolist() if hasattr(got, "tolist") else got
        if isinstance(want, float) or isinstance(got, float):
            ok = abs(float(got) - float(want)) <= 1e-6 * max(1.0, abs(float(want)))
        elif isinstance(want, list):
            ok = np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float))
        else:
            ok = got == want
        if not ok:
            fail("attribute %s is %r, the C++ reader says %r" % (key, got, want))
    if "documents" in expected and len(off) - 1 != expected["documents"]:
        fail("h5py sees %d documents, the C++ reader %d" % (len(off) - 1, expected["documents"]))
    if "tokens" in expected and off[-1] != expected["tokens"]:
        fail("h5py sees %d tokens, the C++ reader %d" % (off[-1], expected["tokens"]))
    if "domains" in expected:
        got = [d.decode() for d in ds(f, "domains")[:]]
        if got != expected["domains"]:
            fail("domains %r differ from the C++ reader's %r" % (got, expected["domains"]))
    if "source_ids" in expected:
        got = [s.decode() for s in ds(f, "docs/source_id")[:len(expected["source_ids"])]]
        if got != expected["source_ids"]:
            fail("source ids %r differ from the C++ reader's %r" % (got, expected["source_ids"]))
    for row in expected.get("token_rows", []):
        t = row["row"]
        for name in ("id", "position", "doc"):
            if int(ds(f, "tokens/" + name)[t]) != row[name]:
                fail("/tokens/%s[%d] differs from the C++ reader" % (name, t))
        if ds(f, "routing/topk_ids")[t].tolist() != row["topk_ids"]:
            fail("/routing/topk_ids[%d] = %s, the C++ reader says %s"
                 % (t, ds(f, "routing/topk_ids")[t].tolist(), row["topk_ids"]))
        if not np.allclose(ds(f, "routing/topk_weights")[t], row["topk_weights"], rtol=0, atol=1e-7):
            fail("/routing/topk_weights[%d] differs from the C++ reader" % t)
        if "predicted" in row and int(ds(f, "tokens/predicted")[t]) != row["predicted"]:
            fail("/tokens/predicted[%d] differs from the C++ reader" % t)
    for row in expected.get("logit_rows", []):
        got = ds(f, "routing/router_logits")[row["row"]].astype(np.float32)
        if int(ds(f, "routing/logit_token")[row["row"]]) != row["token"]:
            fail("/routing/logit_token[%d] differs from the C++ reader" % row["row"])
        if not np.array_equal(got, np.asarray(row["logits"], dtype=np.float32)):
            fail("/routing/router_logits[%d] (float16) differs from the C++ reader" % row["row"])
    # The writer's float32 -> float16 rounding must be numpy's.
    cases = expected.get("float16_cases", [])
    if cases:
        values = np.asarray([c[0] for c in cases], dtype=np.float32)
        bits = np.asarray([c[1] for c in cases], dtype=np.uint16)
        mine = values.astype(np.float16).view(np.uint16)
        bad = np.nonzero((mine != bits) & ~np.isnan(values))[0]
        if len(bad):
            i = bad[0]
            fail("float16 of %r: moescope 0x%04x, numpy 0x%04x" % (values[i], bits[i], mine[i]))
    if "load" in expected:
        if not np.array_equal(ds(f, "stats/load")[:], np.asarray(expected["load"])):
            fail("/stats/load differs from the C++ reader")


def check_reference(f):
    """/tokens/predicted against the argmax of the PyTorch reference's logits (see the usage)."""
    import os
    import torch
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "reference"))
    from llama_moe_reference import LlamaMoEReference
    policy = json.loads(f.attrs["routing_policy"])
    if any(v for v in policy.values() if not isinstance(v, str)):
        fail("--reference needs a trace of the model as trained (no routing policy)")
    if "tokens/predicted" not in f:
        fail("--reference: the trace has no /tokens/predicted")
    model = LlamaMoEReference.from_dir(f.attrs["model_path"])
    max_window = int(json.loads(f.attrs["windowing"])["max_window"])
    off = ds(f, "docs/offset")[:]
    ids_all, predicted_all = ds(f, "tokens/id")[:off[-1]], ds(f, "tokens/predicted")[:off[-1]]
    checked = ties = 0
    for d in range(len(off) - 1):
        ids, predicted = ids_all[off[d]:off[d + 1]], predicted_all[off[d]:off[d + 1]]
        if len(ids) > max_window or len(ids) < 2:
            continue
        with torch.no_grad():
            out = model.forward(torch.tensor(ids[None, :].astype(np.int64)))
        logits = out["logits"][0].double().numpy()[:-1]
        want = logits.argmax(axis=1)
        top2 = np.sort(logits, axis=1)[:, -2:]
        near_tie = top2[:, 1] - top2[:, 0] < 1e-4
        bad = np.nonzero((predicted[:-1] != want) & ~near_tie)[0]
        if len(bad):
            i = bad[0]
            fail("/tokens/predicted of document %d token %d is %d, the reference's argmax %d"
                 % (d, i, predicted[i], want[i]))
        ties += int(np.sum((predicted[:-1] != want) & near_tie))
        checked += len(ids) - 1
    if checked == 0:
        fail("--reference: no document fits in one window")
    return "%d predictions equal the reference's argmax (%d near ties)" % (checked - ties, ties)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    global SWMR
    swmr = SWMR = "--swmr" in sys.argv
    if len(args) < 2:
        fail(__doc__)
    try:
        f = h5py.File(args[0], "r", swmr=swmr)
    except OSError as e:
        fail("h5py cannot open %s: %s" % (args[0], e))
    with f:
        check_schema(f, args[1])
        D, N = check_consistency(f)
        if len(args) > 2:
            check_expected(f, json.load(open(args[2])))
        extra = ""
        if "--reference" in sys.argv:
            extra = "; " + check_reference(f)
        print("OK %s: %d documents, %d tokens, complete=%d%s"
              % (args[0], D, N, f.attrs["complete"], extra))


if __name__ == "__main__":
    main()
