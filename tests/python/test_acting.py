#!/usr/bin/python3
"""Tests of the module's functions that act on routing (python/acting.cpp, docs/python.md).

Run by ctest with test_module (test `python_module`). Checks: Model.importance's frequency and
routed counts equal counts of forward()'s top-k indices (numpy), and the file it writes reads back
equal; prune removes the lowest-frequency experts of each layer (numpy argsort) and writes a
config with fewer experts that loads and routes within them; cache_sim equals the CSV that
`moescope cache-sim` writes for the same trace, and its previous-token prefetch equals LRU where
the cache holds a token's experts (docs/cache-sim.md).
"""
import csv
import json
import math
import os
import subprocess
import tempfile
import unittest

import numpy as np

import moescope

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
CLI = os.environ.get("MOESCOPE_CLI", os.path.join(SOURCE, "build-py", "cli", "moescope"))
FIXTURES = os.path.join(SOURCE, "tests", "fixtures")
MIXTRAL = os.path.join(FIXTURES, "mixtral_window")  # a linear router: prune accepts it
TINY = os.path.join(FIXTURES, "tiny_moe")


def documents(seed, count=6, length=24, vocab=301):
    rng = np.random.default_rng(seed)
    return [rng.integers(3, vocab, size=length).tolist() for _ in range(count)]


class ImportancePruneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = moescope.load(MIXTRAL)
        cls.docs = documents(7)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "imp.json")
        cls.imp = cls.model.importance(cls.docs, output_change=False, bootstrap=20,
                                       output=cls.path)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_frequency_counts_forward_routing(self):
        L, E = self.imp["layers"], self.imp["experts"]
        routed = np.zeros((L, E), dtype=np.int64)
        tokens = 0
        for ids in self.docs:
            out = self.model.forward(np.array(ids))
            tokens += len(ids)
            for l in range(L):
                top = out["layers.%d.topk_indices" % l]
                routed[l] += np.bincount(top.ravel(), minlength=E)
        self.assertEqual(self.imp["tokens"], tokens)
        np.testing.assert_array_equal(self.imp["routed"], routed)
        freq = self.imp["scores"]["frequency"]
        np.testing.assert_allclose(freq["value"], routed / tokens, rtol=1e-12)
        self.assertTrue(np.all(freq["ci_low"] <= freq["value"] + 1e-12))
        self.assertTrue(np.all(freq["value"] <= freq["ci_high"] + 1e-12))
        self.assertNotIn("output_change", self.imp["scores"])

    def test_file_reads_back(self):
        back = moescope.read_importance(self.path)
        for name, score in self.imp["scores"].items():
            for part in ("value", "ci_low", "ci_high"):
                np.testing.assert_allclose(back["scores"][name][part], score[part], rtol=1e-9,
                                           err_msg=name + " " + part)
        np.testing.assert_array_equal(back["routed"], self.imp["routed"])

    def test_prune_removes_lowest_frequency(self):
        out = os.path.join(self.tmp.name, "pruned")
        r = moescope.prune(MIXTRAL, importance=self.path, score="frequency", ratio=0.25,
                           output=out)
        freq = self.imp["scores"]["frequency"]["value"]
        E = self.imp["experts"]
        for l in range(self.imp["layers"]):
            lowest = sorted(np.argsort(freq[l], kind="stable")[:E // 4].tolist())
            self.assertEqual(r["removed"][l], lowest)
            self.assertEqual(sorted(r["removed"][l] + r["kept"][l]), list(range(E)))
        self.assertEqual((r["experts_before"], r["experts_after"]), (E, E - E // 4))
        with open(os.path.join(out, "config.json")) as f:
            self.assertEqual(json.load(f)[r["count_key"]], E - E // 4)
        pruned = moescope.load(out)
        top = pruned.forward(np.array(self.docs[0]))["layers.0.topk_indices"]
        self.assertLess(int(top.max()), E - E // 4)
        with self.assertRaisesRegex(moescope.Error, "score"):
            moescope.prune(MIXTRAL, importance=self.path, score="nonsense", ratio=0.25,
                           output=os.path.join(self.tmp.name, "bad"))


def number(text):
    return math.nan if text == "" else float(text)


class CacheSimTest(unittest.TestCase):
    def test_equals_cli_csv_and_prefetch_token_equals_lru(self):
        with tempfile.TemporaryDirectory() as tmp:
            trace = os.path.join(tmp, "t.h5")
            corpus = os.path.join(FIXTURES, "corpus", "tiny.jsonl")
            subprocess.run([CLI, "trace", "--model", TINY, "--corpus", corpus, "-o", trace],
                           check=True, capture_output=True)
            subprocess.run([CLI, "cache-sim", trace, "-o", os.path.join(tmp, "sim"),
                            "--capacities", "1,2,4", "--min-documents", "2"],
                           check=True, capture_output=True)
            with open(os.path.join(tmp, "sim", "cache.csv")) as f:
                rows = list(csv.DictReader(f))
            r = moescope.cache_sim(trace, capacities=[1, 2, 4], min_documents=2)
        cols = r["rows"]
        self.assertEqual(len(rows), len(cols["hit_rate"]))
        self.assertEqual(r["policies"], ["lru", "lfu", "belady", "prefetch-token", "prefetch-layer"])
        for i, row in enumerate(rows):
            self.assertEqual(row["policy"], cols["policy"][i])
            self.assertEqual(row["domain"], cols["domain"][i])
            self.assertEqual(int(row["layer"]), cols["layer"][i])
            self.assertEqual(int(row["capacity"]), cols["capacity"][i])
            for key in ("hit_rate", "ci_low", "ci_high", "bytes_per_token", "prefetch_accuracy",
                        "wasted_bytes_per_token", "predicted_hit_rate"):
                a, b = number(row[key]), cols[key][i]
                self.assertTrue(math.isclose(a, b, rel_tol=1e-8) or (math.isnan(a) and math.isnan(b)),
                                "%s row %d: csv %r, module %r" % (key, i, a, b))
        hit = cols["hit_rate"]
        policy = np.array(cols["policy"])
        k = r["top_k"]
        for cap in (2, 4):
            lru = hit[(policy == "lru") & (cols["capacity"] == cap)]
            token = hit[(policy == "prefetch-token") & (cols["capacity"] == cap)]
            np.testing.assert_allclose(token, lru, rtol=1e-12)
        self.assertTrue(k <= 2)
        self.assertTrue(np.all((hit >= 0) & (hit <= 1)))
        with self.assertRaisesRegex(moescope.Error, "unknown cache policy 'fifo'"):
            moescope.cache_sim(trace, policies=["fifo"])


if __name__ == "__main__":
    unittest.main()
