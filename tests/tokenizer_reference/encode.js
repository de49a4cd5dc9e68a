#!/usr/bin/env node
// The reference: Hugging Face's tokenizers (the Rust library, through @anush008/tokenizers)
// encoding strings with a tokenizer.json. moescope's [tokenizer] tests compare their ids with it.
//
//   node encode.js TOKENIZER.json STRINGS.json
//     STRINGS.json: an array of strings, or {"hex": "..."} for bytes that need not be UTF-8
//     (decoded with each invalid sequence as U+FFFD, the rule moescope applies too).
//     Prints {"ids": [[...]], "ids_special": [[...]], "decoded": ["..."]}: the ids without and
//     with the post-processor's special tokens, and the ids decoded (special tokens skipped).
//   node encode.js TOKENIZER.json --corpus FILE.jsonl...
//     Encodes the "text" of every line and prints {"texts", "tokens", "seconds"}.
"use strict";
const fs = require("fs");
const { Tokenizer } = require("@anush008/tokenizers");

function text(entry) {
  if (typeof entry === "string") return entry;
  return Buffer.from(entry.hex, "hex").toString("utf8");
}

async function main() {
  const [file, ...rest] = process.argv.slice(2);
  if (!file || rest.length === 0) {
    console.error("usage: encode.js TOKENIZER.json STRINGS.json | --corpus FILE.jsonl...");
    process.exit(2);
  }
  const tok = Tokenizer.fromFile(file);
  if (rest[0] === "--corpus") {
    const texts = [];
    for (const f of rest.slice(1))
      for (const line of fs.readFileSync(f, "utf8").split("\n"))
        if (line.trim() && typeof JSON.parse(line).text === "string") texts.push(JSON.parse(line).text);
    const start = process.hrtime.bigint();
    let tokens = 0;
    for (const t of texts) tokens += (await tok.encode(t, null, { addSpecialTokens: false })).getLength();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(JSON.stringify({ texts: texts.length, tokens, seconds }));
    return;
  }
  const strings = JSON.parse(fs.readFileSync(rest[0], "utf8"));
  const out = { ids: [], ids_special: [], decoded: [] };
  for (const entry of strings) {
    const t = text(entry);
    const ids = (await tok.encode(t, null, { addSpecialTokens: false })).getIds();
    out.ids.push(ids);
    out.ids_special.push((await tok.encode(t, null, { addSpecialTokens: true })).getIds());
    out.decoded.push(await tok.decode(ids, true));
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
