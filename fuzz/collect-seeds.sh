#!/usr/bin/env bash
# Collects the fuzz targets' seed corpora into OUT/<target>/ from the test fixtures, the bundled
# sample corpus and fuzz/seeds/, and writes small traces with the CLI for the trace reader.
#   fuzz/collect-seeds.sh OUT MOESCOPE_CLI
set -euo pipefail
out=$1
cli=$2
src="$(cd "$(dirname "$0")/.." && pwd)"
fixtures="$src/tests/fixtures"
rm -rf "$out"
mkdir -p "$out"/{safetensors,torch_bin,config,policy_json,corpus,tokenizer,trace_reader,trace_base,trace_bytes}

# Files are copied under names made from their path, since fixtures share file names.
seed() {  # seed TARGET FILE...
  local target=$1
  shift
  for f in "$@"; do
    local rel=${f#"$src"/}
    cp "$f" "$out/$target/${rel//\//_}"
  done
}

# Small files only: libFuzzer takes the largest seed as its input size, and the reference
# outputs (expected.safetensors, under 160 KB) cover every dtype and header shape.
seed safetensors $(find "$fixtures" "$src/tests/golden" -name '*.safetensors' -size -160k)
seed torch_bin "$fixtures"/torch_bin/*.bin "$fixtures"/torch_bin/sharded/*.bin \
  "$fixtures"/sharded_bin/*.bin
seed config $(find "$fixtures" "$src/tests/golden" -name config.json) "$fixtures"/configs/*.json \
  "$src/datasets/models/default/config.json"
seed policy_json "$src"/fuzz/seeds/policy_json/*.json
seed corpus "$fixtures"/corpus/*.jsonl
# The sample corpus's first lines only: whole files (40 KB of text) fuzz slowly.
for f in "$src"/datasets/sample/*.jsonl; do
  head -n 3 "$f" >"$out/corpus/sample_$(basename "$f")"
done
seed tokenizer "$fixtures"/tiny_moe/tokenizer.model "$src/datasets/models/default/tokenizer.model"

# Traces of the tiny test model: with and without sampled router logits, and under a policy.
# They are fuzz_trace_bytes's seeds and the traces fuzz_trace_reader edits (trace_base/), whose
# own seeds are a few edit scripts.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
trace() {  # trace NAME ARGS...
  local name=$1
  shift
  "$cli" trace --model "$fixtures/tiny_moe" --corpus "$fixtures/corpus/tiny.jsonl" \
    --max-tokens-per-document 24 -o "$out/trace_base/$name.h5" "$@" >/dev/null 2>&1
}
trace plain
trace logits --record-logits --logit-sample-rate 0.5
trace policy --policy "$src/fuzz/seeds/policy_json/disable_reroute.json"
cp -r "$out/trace_base" "$out/trace_bytes"
for i in 0 1 2; do
  printf "\\x0$i" >"$out/trace_reader/base_$i"
  printf "\\x0$i\\x00\\x05\\x00\\x07" >"$out/trace_reader/attribute_$i"
  printf "\\x0$i\\x02\\x03\\x01\\x00\\x04" >"$out/trace_reader/dataset_$i"
done
echo "fuzz seeds in $out: $(find "$out" -type f | wc -l) files"
