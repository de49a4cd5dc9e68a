#!/usr/bin/python3
"""Tests of the `moescope` Python module (python/moescope_module.cpp, docs/python.md).

Run by ctest (test `python_module`), or by hand:
    PYTHONPATH=build-py/python:tests/reference /usr/bin/python3 -m unittest -v test_module
from tests/python. Environment: MOESCOPE_GOLDEN_DIR (default tests/golden),
MOESCOPE_CLI (default build-py/cli/moescope).

Checks: forward equals `moescope forward` on the golden cases (same engine, within 1e-6) and
upstream's expected.safetensors (1e-4 + 1e-4*|x|, real tokens); a routing intervention changes
routing as asked; engine errors surface as moescope.Error with the engine's message; the
tokenizer reproduces the LLaMA-2 tokenizer cases; scoring and generation agree with forward and
with the golden greedy generation.
"""
import json
import os
import subprocess
import tempfile
import threading
import unittest

import numpy as np

import moescope
import safetensors_io

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))


GOLDEN = os.environ.get("MOESCOPE_GOLDEN_DIR") or os.path.join(SOURCE, "tests", "golden")
LLAMA2_TOKENIZER = os.path.join(GOLDEN, "llama2-tokenizer", "tokenizer.model")
CLI = os.environ.get("MOESCOPE_CLI", os.path.join(SOURCE, "build-py", "cli", "moescope"))
# The tests' small fixed model, named explicitly so that $MOESCOPE_MODEL does not change what is tested.
BUNDLED = os.path.join(SOURCE, "tests", "fixtures", "tiny_moe")
FORWARD_CASES = ["tiny_mlp_gate", "gqa_linear_gate", "batch_padding"]
TEXT = (
    "The llama is a domesticated South American camelid, widely used as a meat and pack "
    "animal by Andean cultures since the pre-Columbian era. Llamas are social animals and "
    "live with others as a herd. Their wool is soft and contains only a small amount of lanolin."
)


def read_inputs(case):
    with open(os.path.join(GOLDEN, case, "inputs.json")) as f:
        return json.load(f)


def forward_case(model, case, **kwargs):
    inputs = read_inputs(case)
    return model.forward(
        np.array(inputs["input_ids"]),
        attention_mask=np.array(inputs["attention_mask"]),
        position_ids=np.array(inputs["position_ids"]),
        **kwargs,
    )


class ForwardTest(unittest.TestCase):
    """The module's forward against the CLI and against upstream."""

    def test_forward_equals_cli(self):
        self.assertTrue(os.access(CLI, os.X_OK), f"no CLI binary at {CLI} (set MOESCOPE_CLI)")
        for case in FORWARD_CASES:
            with self.subTest(case=case), tempfile.TemporaryDirectory() as tmp:
                model_dir = os.path.join(GOLDEN, case)
                inputs = read_inputs(case)
                request = os.path.join(tmp, "inputs.json")
                keys = ("input_ids", "attention_mask", "position_ids")
                with open(request, "w") as f:
                    json.dump({k: inputs[k] for k in keys}, f)
                out = os.path.join(tmp, "out.safetensors")
                subprocess.run(
                    [CLI, "forward", "--model", model_dir, "--input", request, "--output", out,
                     "--activations"],
                    check=True, capture_output=True, text=True)
                want = safetensors_io.load(out)
                got = forward_case(moescope.load(model_dir), case, activations=True)
                self.assertEqual(sorted(got), sorted(want))
                for name, w in want.items():
                    g = got[name]
                    self.assertEqual(g.dtype, w.dtype, name)
                    self.assertEqual(g.shape, w.shape, name)
                    if np.issubdtype(w.dtype, np.integer):
                        np.testing.assert_array_equal(g, w, err_msg=name)
                    else:
                        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6, err_msg=name)

    def test_forward_matches_upstream(self):
        for case in FORWARD_CASES:
            with self.subTest(case=case):
                inputs = read_inputs(case)
                mask = np.array(inputs["attention_mask"], dtype=bool)
                B, S = mask.shape
                expected = safetensors_io.load(os.path.join(GOLDEN, case, "expected.safetensors"))
                model = moescope.load(os.path.join(GOLDEN, case))
                got = forward_case(model, case, activations=True)
                compared = 0
                for name, g in got.items():
                    if name not in expected:
                        continue
                    w = expected[name]
                    self.assertEqual(g.shape, w.shape, name)
                    # Token-major tensors on real tokens only (golden README, "Padding rows").
                    if w.shape[:2] == (B, S):
                        g, w = g[mask], w[mask]
                    elif w.shape[0] == B * S:
                        g, w = g[mask.reshape(-1)], w[mask.reshape(-1)]
                    if np.issubdtype(w.dtype, np.integer):
                        np.testing.assert_array_equal(g, w, err_msg=name)
                    else:
                        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=name)
                    compared += 1
                layers = model.config["num_hidden_layers"]
                self.assertGreaterEqual(compared, 3 + 9 * layers)

    def test_one_dimensional_ids_and_text(self):
        model = moescope.load(BUNDLED)
        ids = model.tokenize("Hello world")
        one = model.forward(ids)
        two = model.forward(np.array([ids], dtype=np.int64))
        text = model.forward("Hello world")
        self.assertEqual(one["logits"].shape, (1, len(ids), model.config["vocab_size"]))
        for name in one:
            np.testing.assert_array_equal(one[name], two[name], err_msg=name)
            np.testing.assert_array_equal(one[name], text[name], err_msg=name)

    def test_concurrent_calls(self):
        model = moescope.load(BUNDLED)
        ids = model.tokenize(TEXT)
        want = model.forward(ids)
        results = [None] * 4

        def run(i):
            results[i] = model.forward(ids)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got in results:
            self.assertEqual(sorted(got), sorted(want))
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], err_msg=name)


class InterventionTest(unittest.TestCase):
    """"What if expert 3 of layer 1 were off" on the bundled model."""

    @classmethod
    def setUpClass(cls):
        cls.model = moescope.load(BUNDLED)
        cls.ids = cls.model.tokenize(TEXT)
        cls.base = cls.model.forward(cls.ids)

    def test_disabled_expert_is_never_selected(self):
        self.assertIn(3, self.base["layers.1.topk_indices"], "expert 3 is never used anyway")
        off = self.model.forward(self.ids, policy={"disable": [[1, 3]], "mode": "reroute"})
        self.assertNotIn(3, off["layers.1.topk_indices"])
        self.assertEqual(off["layers.1.load"][3], 0)
        # Layer 0 runs before the intervention: untouched.
        for name in ("layers.0.gate_logits", "layers.0.topk_indices", "layers.0.topk_scores"):
            np.testing.assert_array_equal(off[name], self.base[name], err_msg=name)
        self.assertFalse(np.array_equal(off["logits"], self.base["logits"]))

    def test_policy_from_flags_equals_dict(self):
        from_flags = moescope.Policy.from_flags(self.model, disable="1:3", mode="reroute")
        from_dict = moescope.Policy.from_dict(self.model, {"disable": [[1, 3]], "mode": "reroute"})
        self.assertEqual(from_flags.to_dict(), from_dict.to_dict())
        self.assertEqual(from_flags.to_dict()["disable"], [[1, 3]])
        a = self.model.forward(self.ids, policy=from_flags)
        b = self.model.forward(self.ids, policy={"disable": [[1, 3]], "mode": "reroute"})
        c = self.model.forward(self.ids, policy='{"disable": [[1, 3]]}')
        d = self.model.forward(self.ids, policy={"disable": np.array([[1, 3]])})
        for name in a:
            for other in (b, c, d):
                np.testing.assert_array_equal(a[name], other[name], err_msg=name)

    def test_top_k_override(self):
        got = self.model.forward(self.ids, policy={"top_k": {"*": 1}})
        self.assertEqual(got["layers.0.topk_indices"].shape, (len(self.ids), 1))
        np.testing.assert_array_equal(got["layers.0.topk_indices"][:, 0],
                                      self.base["layers.0.topk_indices"][:, 0])

    def test_dynamic_k_threshold(self):
        """t = 1 keeps one expert (the top-1 of the model), -1 after it; a tiny t is the model."""
        one = self.model.forward(self.ids, policy={"threshold": {"*": 1.0}})
        for layer in (0, 1):
            ids = one[f"layers.{layer}.topk_indices"]
            self.assertEqual(ids.shape, self.base[f"layers.{layer}.topk_indices"].shape)
            self.assertTrue(np.all(ids[:, 0] >= 0) and np.all(ids[:, 1:] == -1))
        # Layer 0 sees the model's own input, so its one expert is the model's top-1.
        np.testing.assert_array_equal(one["layers.0.topk_indices"][:, 0],
                                      self.base["layers.0.topk_indices"][:, 0])
        same = self.model.forward(self.ids, policy={"threshold": {"*": 1e-30}, "top_p": {"0": 0}})
        np.testing.assert_array_equal(same["logits"], self.base["logits"])
        with self.assertRaisesRegex(moescope.Error, "top_p"):
            self.model.forward(self.ids, policy={"top_p": {"*": 1.5}})

    def test_replay_of_own_routes(self):
        """The engine's own routes replayed: full agreement, ΔNLL exactly 0; bad routes name the
        field."""
        routes = np.stack([self.base[f"layers.{l}.topk_indices"] for l in range(2)], axis=1)
        got = self.model.replay_routes([self.ids], routes, bootstrap=20)
        np.testing.assert_array_equal(got["set_agreement"], [1.0, 1.0])
        np.testing.assert_array_equal(got["top1_agreement"], [1.0, 1.0])
        self.assertEqual(got["delta_nll"], 0.0)
        self.assertEqual(got["tokens"], len(self.ids))
        bad = routes.copy()
        bad[3, 1, 0] = 99
        with self.assertRaisesRegex(moescope.Error, r"routed_experts\[3, 1\]\[0\] = 99"):
            self.model.replay_routes([self.ids], bad)
        flips = self.model.precision_audit([self.ids], bootstrap=0)
        self.assertEqual(len(flips["set_agreement"]), 2)
        self.assertTrue(np.all((flips["set_agreement"] >= 0) & (flips["set_agreement"] <= 1)))

    def test_score_and_generate_take_policies(self):
        policy = {"disable": [[1, 3]]}
        base = self.model.score(TEXT)
        off = self.model.score(TEXT, policy=policy)
        self.assertNotEqual(base["mean_nll"], off["mean_nll"])
        forward = self.model.forward(self.ids, policy=policy)
        np.testing.assert_allclose(off["token_nll"], next_token_nll(forward["logits"][0], self.ids),
                                   rtol=1e-4, atol=1e-4)
        out = self.model.generate(self.ids[:8], 6, policy=policy, stop_at_eos=False)
        self.assertEqual(len(out["ids"]), 6)

    def test_generate_with_a_bf16_kv_cache(self):
        # The first token's logits come from the same prompt either way; with the bf16 cache its
        # attention read keys and values rounded to bf16, so they differ, by a rounding's worth
        # (docs/performance.md measures at most 1.3 % of the logit scale over 64 tokens).
        f32 = self.model.generate(self.ids[:32], 4, stop_at_eos=False, step_logits=True)
        bf16 = self.model.generate(self.ids[:32], 4, stop_at_eos=False, step_logits=True,
                                   kv_cache="bf16")
        first_f32, first_bf16 = f32["step_logits"][0], bf16["step_logits"][0]
        difference = np.abs(first_f32 - first_bf16).max()
        self.assertGreater(difference, 0.0)
        self.assertLess(difference, 0.03 * np.abs(first_f32).max())
        with self.assertRaisesRegex(Exception, "kv_cache"):
            self.model.generate(self.ids[:8], 2, kv_cache="f8")


def next_token_nll(logits, ids):
    logits = logits.astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(ids) - 1), ids[1:]]


class ErrorTest(unittest.TestCase):
    """Engine failures raise moescope.Error with the engine's message."""

    def test_error_is_runtime_error(self):
        self.assertTrue(issubclass(moescope.Error, RuntimeError))

    def test_bad_model_path(self):
        with self.assertRaises(moescope.Error) as cm:
            moescope.load("/no/such/model")
        self.assertIn("/no/such/model", str(cm.exception))
        self.assertIn("is not a model folder", str(cm.exception))

    def test_folder_without_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(moescope.Error) as cm:
                moescope.load(tmp)
            self.assertIn("config.json", str(cm.exception))

    def test_invalid_intervention(self):
        model = moescope.load(BUNDLED)
        ids = model.tokenize("Hello")
        with self.assertRaises(moescope.Error) as cm:
            model.forward(ids, policy={"disable": [[1, 99]]})
        self.assertIn("expert 99 is out of range", str(cm.exception))
        self.assertIn("layer 1", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            moescope.Policy.from_flags(model, disable="1:99")
        self.assertIn("expert 99 is out of range", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward(ids, policy={"disable": [[7, 1]]})
        self.assertIn("out of range", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward(ids, policy={"disabled": [[1, 3]]})
        self.assertIn("unknown key 'disabled'", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward(ids, policy={"mode": "sideways"})
        self.assertIn("sideways", str(cm.exception))

    def test_policy_for_another_model(self):
        policy = moescope.Policy.from_flags(moescope.load(BUNDLED), disable="1:3")
        other = moescope.load(os.path.join(GOLDEN, "gqa_linear_gate"))  # 3 layers
        with self.assertRaises(moescope.Error) as cm:
            other.forward([1, 5, 6], policy=policy)
        self.assertIn("layer entries", str(cm.exception))

    def test_bad_inputs(self):
        model = moescope.load(BUNDLED)
        vocab = model.config["vocab_size"]
        with self.assertRaises(moescope.Error) as cm:
            model.forward([1, vocab + 5])
        self.assertIn("outside the vocabulary", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward(np.zeros((1, 2, 3), dtype=np.int32))
        self.assertIn("2-D", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward([1.5, 2.0])
        self.assertIn("integers", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.forward([[1, 5, 6]], attention_mask=[[1, 1]])
        self.assertIn("attention_mask", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            model.generate([1, 5], 4, temperature=-1.0)
        self.assertIn("temperature", str(cm.exception))
        with self.assertRaises(moescope.Error) as cm:
            moescope.load(os.path.join(GOLDEN, "tiny_mlp_gate")).tokenize("no tokenizer here")
        self.assertIn("tokenizer.model", str(cm.exception))


class TokenizerTest(unittest.TestCase):
    def test_llama2_cases(self):
        folder = os.path.join(GOLDEN, "llama2-tokenizer")
        tokenizer = moescope.Tokenizer(LLAMA2_TOKENIZER)
        self.assertEqual(tokenizer.vocab_size, 32000)
        count = 0
        with open(os.path.join(folder, "cases.json"), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                case = json.loads(line)
                self.assertEqual(tokenizer.tokenize(case["text"]), case["ids"], repr(case["text"]))
                count += 1
        self.assertGreater(count, 10)

    def test_missing_file(self):
        with self.assertRaises(moescope.Error) as cm:
            moescope.Tokenizer("/no/such/tokenizer.model")
        self.assertIn("does not exist", str(cm.exception))

    def test_model_tokenizer(self):
        model = moescope.load(BUNDLED)
        ids = model.tokenize("Hello world")
        self.assertEqual(ids[0], 1)
        self.assertEqual(model.tokenize("Hello world", bos=False), ids[1:])
        self.assertEqual(model.detokenize(ids), "Hello world")
        self.assertEqual(model.tokenizer.tokenize("Hello world"), ids)
        self.assertEqual(len(model.tokenizer.pieces(ids)), len(ids))


class ScoreGenerateTest(unittest.TestCase):
    def test_score_matches_forward(self):
        model = moescope.load(BUNDLED)
        s = model.score(TEXT)
        ids = model.tokenize(TEXT)
        self.assertEqual(s["ids"], ids)
        self.assertEqual(s["scored_tokens"], len(ids) - 1)
        nll = next_token_nll(model.forward(ids)["logits"][0], ids)
        np.testing.assert_allclose(s["token_nll"], nll, rtol=1e-4, atol=1e-4)
        self.assertAlmostEqual(s["mean_nll"], float(nll.mean()), places=4)
        self.assertAlmostEqual(s["perplexity"], float(np.exp(s["mean_nll"])), places=4)
        by_ids = model.score(ids)
        np.testing.assert_array_equal(by_ids["token_nll"], s["token_nll"])

    def test_score_equals_cli_score_over_three_windows(self):
        # A document three context windows long: the module and `moescope score` predict every
        # token after the first, including the first token of each later window.
        model = moescope.load(BUNDLED)
        ctx = model.config["max_position_embeddings"]
        text = TEXT
        while len(model.tokenize(text)) < 3 * ctx:
            text += " " + TEXT
        ids = model.tokenize(text)
        self.assertGreaterEqual(len(ids), 3 * ctx)
        s = model.score(text)
        self.assertEqual(s["scored_tokens"], len(ids) - 1)
        self.assertEqual(len(s["token_nll"]), len(ids) - 1)
        self.assertTrue(np.all(np.isfinite(s["token_nll"])))
        printed = subprocess.run([CLI, "score", "--model", BUNDLED, "-t", text], check=True,
                                 capture_output=True, text=True).stdout.split()
        self.assertEqual(int(printed[printed.index("tokens") + 1]), len(ids) - 1)
        self.assertAlmostEqual(float(printed[printed.index("nll") + 1]), s["mean_nll"], places=4)

    def test_golden_greedy_generation(self):
        case = os.path.join(GOLDEN, "generation")
        model = moescope.load(case)
        inputs = read_inputs("generation")
        expected = safetensors_io.load(os.path.join(case, "expected.safetensors"))
        streamed = []
        out = model.generate(inputs["input_ids"][0], inputs["max_new_tokens"], stop_at_eos=False,
                             step_logits=True, on_token=streamed.append)
        self.assertEqual(out["ids"], expected["generated_ids"][0].tolist())
        self.assertEqual(streamed, out["ids"])
        self.assertIsNone(out["text"])
        np.testing.assert_allclose(out["step_logits"], expected["step_logits"][0], rtol=1e-4,
                                   atol=1e-4)

    def test_text_generation_is_seeded(self):
        model = moescope.load(BUNDLED)
        a = model.generate("Once upon a time", 8, temperature=0.8, top_k=20, top_p=0.9, seed=7,
                           stop_at_eos=False)
        b = model.generate("Once upon a time", 8, temperature=0.8, top_k=20, top_p=0.9, seed=7,
                           stop_at_eos=False)
        self.assertEqual(a["ids"], b["ids"])
        self.assertEqual(len(a["ids"]), 8)
        self.assertEqual(a["text"], model.detokenize(a["ids"]))
        self.assertEqual(a["prompt_ids"], model.tokenize("Once upon a time"))


class ModelTest(unittest.TestCase):
    def test_config_and_default_model(self):
        default = moescope.load(None)
        self.assertEqual(os.path.realpath(str(default.path)),
                         os.path.realpath(str(moescope.default_model_dir())))
        model = moescope.load(BUNDLED)
        c = model.config
        self.assertEqual(c["model_type"], "llama_moe")
        self.assertEqual(len(c["size_experts"]), c["num_hidden_layers"])
        self.assertIn("experts", repr(model))
        got = model.forward(model.tokenize("Hi"))
        E, k = c["num_experts"], c["num_selects"]
        self.assertEqual(got["layers.0.gate_logits"].shape[1], E)
        self.assertEqual(got["layers.0.topk_indices"].shape[1], k)
        self.assertEqual(got["layers.0.topk_indices"].dtype, np.int32)
        self.assertEqual(got["layers.0.load"].shape, (E,))


class FamilyTest(unittest.TestCase):
    """Another family through the module: the Qwen2-MoE fixture (dense layer, gated shared expert,
    padded batch) against the PyTorch reference's expected tensors (tests/reference)."""

    def test_qwen2_moe_fixture_matches_reference(self):
        case = os.path.join(SOURCE, "tests", "fixtures", "qwen2_moe_shared")
        with open(os.path.join(case, "inputs.json")) as f:
            inputs = json.load(f)
        model = moescope.load(case)
        c = model.config
        self.assertEqual(c["family"], "qwen2_moe")
        self.assertEqual(list(c["moe_layers"]), [1, 0, 1])
        self.assertEqual(c["shared_expert_width"], 64)
        self.assertIn("softmax", c["router"])
        got = model.forward(
            np.array(inputs["input_ids"]),
            attention_mask=np.array(inputs["attention_mask"]),
            position_ids=np.array(inputs["position_ids"]),
            activations=True,
        )
        self.assertNotIn("layers.1.gate_logits", got)  # the dense layer routes nothing
        expected = safetensors_io.load(os.path.join(case, "expected.safetensors"))
        real = np.array(inputs["attention_mask"], dtype=bool).reshape(-1)
        for name in ("layers.0.gate_logits", "layers.0.topk_indices", "layers.2.shared_gate",
                     "layers.2.shared_out", "layers.2.moe_out", "logits"):
            with self.subTest(name=name):
                g, w = got[name], expected[name]
                self.assertEqual(g.shape, w.shape)
                g = g.reshape(real.size, -1)[real]
                w = w.reshape(real.size, -1)[real]
                if np.issubdtype(w.dtype, np.integer):
                    np.testing.assert_array_equal(g, w)
                else:  # the golden tolerance: |got - want| <= 1e-4 + 1e-4 |want|
                    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    unittest.main()
