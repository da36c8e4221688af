#!/usr/bin/env bash
# run_eval.sh — the retrieval evaluation (docs/RAG.md, "Retrieval quality"):
# builds the corpus from Debian's manual pages and Valgrind's HTML manual
# (make_corpus.sh), ingests it into a knowledge base with an embedding model,
# and prints recall@5 and MRR over tests/rag/questions.jsonl for BM25 alone,
# vectors alone, hybrid (RRF of both), and RAG-Fusion over BM25 and over
# hybrid (an LLM writes N rewrites of each question).
#
#   tests/rag/run_eval.sh [--embed-model GGUF] [--model GGUF] [--fusion N] [--limit N] [--work DIR]
#
# Without --embed-model a random-weight model is made (build/tools/mkmodel):
# its vectors carry no meaning, so vector retrieval is then at chance level.
# Without --model the built-in model (models/yan-default.gguf) writes the
# rewrites, or a random-weight model when that is absent (rewrites are then
# noise). The table says which models were used.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
embed="" model="" fusion=3 limit=0 work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --embed-model) embed=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --fusion) fusion=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    *) echo "usage: run_eval.sh [--embed-model GGUF] [--model GGUF] [--fusion N] [--limit N] [--work DIR]" >&2; exit 2 ;;
  esac
done
make -s -C "$root" -j2 build/yan build/tools/rag_eval build/tools/mkmodel > /dev/null
work=${work:-$(mktemp -d)}
mkdir -p "$work"
"$root/tests/rag/make_corpus.sh" "$work/corpus"
vocab=$root/models/kjv-8k.tokenizer.json
if [ -z "$embed" ]; then
  embed=$work/random-embed.gguf
  "$root/build/tools/mkmodel" --arch llama --dim 128 --layers 2 --heads 4 --kv-heads 2 --ff 256 --type f32 \
      --vocab "$vocab" --seed 7 -o "$embed" > /dev/null
  embed_note="random weights (mkmodel, dim 128): vectors are meaningless"
else
  embed_note="$embed"
fi
if [ -z "$model" ]; then
  if [ -f "$root/models/yan-default.gguf" ]; then
    model=$root/models/yan-default.gguf
    model_note="the built-in model (models/yan-default.gguf)"
  else
    model=$work/random-llm.gguf
    "$root/build/tools/mkmodel" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type f32 \
        --vocab "$vocab" --seed 3 -o "$model" > /dev/null
    model_note="random weights (mkmodel): the rewrites are noise"
  fi
else
  model_note="$model"
fi
rm -f "$work/eval.kb" "$work/eval.kb"-* "$work/eval.kb.hnsw"
"$root/build/yan" kb add "$work/eval.kb" "$work/corpus" --embed-model "$embed" -q
lim=()
[ "$limit" -gt 0 ] && lim=(--limit "$limit")
echo "embedding model: $embed_note"
echo "rewrite model (RAG-Fusion, $fusion rewrites): $model_note"
"$root/build/tools/rag_eval" --kb "$work/eval.kb" --questions "$root/tests/rag/questions.jsonl" \
    --methods bm25,vector,hybrid,fusion-bm25,fusion-hybrid --model "$model" --fusion "$fusion" "${lim[@]}"
