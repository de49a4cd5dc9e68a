#!/usr/bin/env node
// Builds the small byte-level BPE tokenizer.json fixtures of tests/fixtures/tokenizers/ in the
// formats of real ones: gpt_neox_bpe.json (GPT-NeoX / OLMoE: ByteLevel pre-tokenizer with
// GPT-2's regex, "a b" merges, EOS appended by the template) and qwen2_bpe.json (Qwen2: a Split
// regex then ByteLevel without regex, [a, b] merges, <|endoftext|> <|im_start|> <|im_end|>).
// Both NFC-normalize. The merges are learned here by plain BPE training (most frequent pair,
// ties by the pair's text) on the words that each file's own pre-tokenizer, run by Hugging
// Face's library, makes of the text of datasets/sample/ and tests/fixtures/corpus/.
//
//   node tests/tokenizer_reference/train_bpe.js    (from the repository root; deterministic)
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("@anush008/tokenizers");

const root = path.resolve(__dirname, "..", "..");
const GPT2_REGEX =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// GPT-2's bytes_to_unicode(), in byte order.
function byteChars() {
  const chars = [];
  let next = 256;
  for (let b = 0; b < 256; ++b) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
    chars.push(String.fromCodePoint(printable ? b : next++));
  }
  return chars;
}

function corpusTexts() {
  const texts = [];
  const dirs = [path.join(root, "datasets", "sample"), path.join(root, "tests", "fixtures", "corpus")];
  for (const dir of dirs)
    for (const name of fs.readdirSync(dir).sort())
      if (name.endsWith(".jsonl"))
        for (const line of fs.readFileSync(path.join(dir, name), "utf8").split("\n"))
          if (line.trim() && typeof JSON.parse(line).text === "string") texts.push(JSON.parse(line).text);
  return texts;
}

// Word counts: each text normalized and pre-tokenized by the tokenizer described by `skeleton`.
function countWords(skeleton, texts) {
  const tok = Tokenizer.fromString(JSON.stringify(skeleton));
  const normalizer = tok.getNormalizer();
  const pre = tok.getPreTokenizer();
  const counts = new Map();
  for (const text of texts) {
    const normalized = normalizer ? normalizer.normalizeString(text) : text;
    for (const [word] of pre.preTokenizeString(normalized))
      counts.set(word, (counts.get(word) || 0) + 1);
  }
  return counts;
}

// Plain BPE: merge the most frequent adjacent pair until `merges` merges are learned.
function learnMerges(counts, merges) {
  const words = [...counts.entries()].map(([w, n]) => ({ symbols: [...w], n }));
  const learned = [];
  for (let m = 0; m < merges; ++m) {
    const pairs = new Map();
    for (const w of words)
      for (let i = 0; i + 1 < w.symbols.length; ++i) {
        const key = w.symbols[i] + "\u0000" + w.symbols[i + 1];
        pairs.set(key, (pairs.get(key) || 0) + w.n);
      }
    let best = null, bestCount = 0;
    for (const [key, n] of pairs)
      if (n > bestCount || (n === bestCount && key < best)) { best = key; bestCount = n; }
    if (best === null || bestCount < 2) break;
    const [a, b] = best.split("\u0000");
    learned.push([a, b]);
    for (const w of words) {
      const s = w.symbols, out = [];
      for (let i = 0; i < s.length; ++i) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(a + b); ++i; }
        else out.push(s[i]);
      }
      w.symbols = out;
    }
  }
  return learned;
}

function addedToken(id, content, special) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: !special,
           special };
}

function build(name, skeleton, firstTokens, merges, mergeForm, addedAfter) {
  const vocab = {};
  for (const t of firstTokens) vocab[t] = Object.keys(vocab).length;
  for (const c of byteChars()) if (!(c in vocab)) vocab[c] = Object.keys(vocab).length;
  const learned = learnMerges(countWords({ ...skeleton, model: { ...skeleton.model, vocab } },
                                         corpusTexts()), merges);
  for (const [a, b] of learned) if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
  const added = skeleton.added_tokens.slice();
  let next = Object.keys(vocab).length;
  for (const [content, special] of addedAfter) added.push(addedToken(next++, content, special));
  const json = {
    ...skeleton,
    added_tokens: added,
    model: { ...skeleton.model, vocab,
             merges: learned.map(([a, b]) => (mergeForm === "string" ? a + " " + b : [a, b])) },
  };
  fs.writeFileSync(path.join(root, "tests", "fixtures", "tokenizers", name),
                   JSON.stringify(json, null, 2) + "\n");
  console.log(`${name}: ${Object.keys(vocab).length} vocabulary entries, ${learned.length} merges, ` +
              `${added.length} added tokens`);
}

const bpeModel = (extra) => ({ type: "BPE", dropout: null, unk_token: null, ...extra,
                               fuse_unk: false, byte_fallback: false, vocab: {}, merges: [] });

// GPT-NeoX / OLMoE.
const neoxSpaces = [];
for (let n = 24; n >= 2; --n) neoxSpaces.push([" ".repeat(n), false]);
build("gpt_neox_bpe.json", {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [addedToken(0, "<|endoftext|>", true), addedToken(1, "<|padding|>", true)],
  normalizer: { type: "NFC" },
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<|endoftext|>", type_id: 0 } }],
    pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
           { SpecialToken: { id: "<|endoftext|>", type_id: 1 } }],
    special_tokens: { "<|endoftext|>": { id: "<|endoftext|>", ids: [0], tokens: ["<|endoftext|>"] } },
  },
  decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  model: bpeModel({ continuing_subword_prefix: null, end_of_word_suffix: null }),
}, ["<|endoftext|>", "<|padding|>"], 2700, "string",
  [...neoxSpaces, ["|||EMAIL_ADDRESS|||", false], ["|||PHONE_NUMBER|||", false],
   ["|||IP_ADDRESS|||", false]]);

// Qwen2 (Qwen1.5, Qwen2, Qwen2.5, Qwen3 share the format).
build("qwen2_bpe.json", {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [],
  normalizer: { type: "NFC" },
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: QWEN2_REGEX }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    ],
  },
  post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
  decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
  model: bpeModel({ continuing_subword_prefix: "", end_of_word_suffix: "", ignore_merges: false }),
}, [], 3700, "pair",
  [["<|endoftext|>", true], ["<|im_start|>", true], ["<|im_end|>", true]]);
