#!/usr/bin/env python3
"""Writes strings.json: the strings the [tokenizer] tests encode with moescope and with Hugging
Face's library. Hand-picked cases (code, CJK, emoji, combining marks, whitespace, contractions,
numbers, special tokens, long words, invalid UTF-8 as {"hex": ...}), pieces of the sample corpus,
and seeded random mixes. Deterministic: python3 tests/tokenizer_reference/make_strings.py"""
import json
import pathlib
import random

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

cases = [
    "", " ", "  ", "a", "Hello world", "Hello, world!", " leading space", "trailing space ",
    # code
    "def f(x):\n    return x**2 + 1  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "const add = (a, b) => a + b; console.log(`sum=${add(2, 3)}`);",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do echo \"$f\"; done\n",
    "<div class=\"x\"><a href='https://example.org/?q=1&r=2'>link</a></div>",
    "x = {'key': [1, 2.5, None], \"other\": True}\r\nprint(x)\r\n",
    "if (a != b && c <= d || !e) { return -1; } // comment",
    "    indented\n        more\n\t\ttabs\n",
    # CJK
    "你好，世界！今天天气很好。", "日本語のテキストです。カタカナとひらがな。",
    "한국어 문장입니다. 안녕하세요!", "中文English混合text123测试", "漢字かな交じり文と、句読点。",
    # emoji
    "I ❤️ NY 🗽", "👨‍👩‍👧‍👦 family", "🇩🇪🇯🇵🇺🇸 flags", "👍🏽👍🏿 skin tones", "1️⃣ keycap #️⃣",
    "🏳️‍🌈 rainbow flag", "🧑‍💻 technologist", "emoji🙂inside🙃words", "🦙🦙🦙",
    # combining marks (NFC matters)
    "e\u0301cole", "A\u030angstro\u0308m", "n\u0303", "cafe\u0301 vs caf\u00e9",
    "Vie\u0323\u0302t Nam", "\u1100\u1161\u11a8 jamo", "q\u0307\u0323", "\u0928\u093f\u0930\u094d\u092e\u093e\u0923",
    "\u0301 leading combining mark", "a\u0308\u0304\u0301 stacked", "\u212b angstrom sign", "\u2126 ohm",
    # whitespace
    "a  b   c    d", "tabs\tand\t\ttabs", "line1\nline2\n\nline4", "crlf\r\nline\r\n", "cr\ronly",
    "trailing\n\n\n", "   \n   \n", "\u00a0nbsp\u00a0here", "ideographic\u3000space",
    "line\u2028separator", "next\u0085line", "zero\u200bwidth", "vertical\x0btab\x0cfeed",
    "many" + " " * 30 + "spaces", "\t\t\t", "\n", "\r\n", " \n ", "a \n b",
    # contractions
    "don't", "DON'T", "Don'T", "I'm", "I'M", "we'll", "WE'LL", "you've", "YOU'VE", "she'd", "SHE'D",
    "it's", "IT'S", "they're", "THEY'RE", "it'\u017f long s", "'s alone", "rock'n'roll", "o'clock",
    # numbers
    "12345", "3.14159", "1,000,000", "2024-01-31", "0x1F", "1e-10", "\u0663\u0664\u0665 arabic-indic",
    "\u216b roman", "\u00bd half", "\u00b2 squared", "phone 555-0100", "12345678901234567890",
    # special tokens inside text
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|im_", "<|endoftext|", "<|padding|>",
    "contact |||EMAIL_ADDRESS||| or |||PHONE_NUMBER|||", "ip |||IP_ADDRESS|||.", " <|endoftext|> ",
    # long words
    "a" * 3000, "supercalifragilisticexpialidocious" * 40, "9" * 500, "-" * 1000, "ab" * 700,
    "x" + " " * 500 + "y", "\u4e2d" * 400,
    # invalid UTF-8 (bytes as hex)
    {"hex": "66ff6f"}, {"hex": "80"}, {"hex": "c0af"}, {"hex": "eda080"}, {"hex": "f4908080"},
    {"hex": "e282"}, {"hex": "61e28262"}, {"hex": "f09f98"}, {"hex": "fefeff"}, {"hex": "c3"},
    {"hex": "48656c6c6f20c328776f726c64"}, {"hex": "e0808061"}, {"hex": "f8888080806162"},
]

# Pieces of the sample corpus: real prose, code, math and many languages.
texts = []
for path in sorted((ROOT / "datasets" / "sample").glob("*.jsonl")):
    for line in path.read_text(encoding="utf-8").splitlines():
        text = json.loads(line).get("text")
        if isinstance(text, str):
            texts.append(text)
rng = random.Random(20240601)
for _ in range(200):
    t = rng.choice(texts)
    start = rng.randrange(0, max(1, len(t) - 50))
    cases.append(t[start:start + rng.choice([20, 80, 300, 1000])])

# Seeded random mixes of characters the regexes treat differently.
alphabet = list("aZ09 _'\t\n\r.,;!?-+=()[]{}\"") + [
    "\u00e9", "e\u0301", "\u00a0", "\u3000", "\u4e2d", "\u3042", "\ud55c", "\u0663", "\u00bd",
    "\U0001f600", "\u200d", "\ufe0f", "\U0001f1e9", "\u017f", "S", "'S", "'LL", "\u0085", "\u2028",
    "<|endoftext|>", "<|im_start|>", "  ", "\r\n", "\u0301", "\u212b",
]
for _ in range(120):
    cases.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))))

(HERE / "strings.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n",
                                   encoding="utf-8")
print(f"{len(cases)} strings")
