#!/usr/bin/env bash
# make_default_model.sh — how models/yan-default.gguf (the built-in model that
# `yan run` and `yan chat` use when no model is given) was made, start to end,
# with yan alone:
#
#   1. corpora from Debian packages (see models/README.md for sources and
#      licences): the King James Bible (bible-kjv, public domain) with the
#      verse references removed, and the Three Hundred Tang Poems and One
#      Hundred Song Ci (fortunes-zh's tang300 and song100; the poems are public
#      domain, the package is GPL-3+) with the terminal colour codes removed;
#   2. a byte-level BPE vocabulary of 8192 tokens trained on both, with the
#      specials <|endoftext|>, <|im_start|>, <|im_end|> (ChatML);
#   3. token shards with a 2% validation split;
#   4. pretraining a llama model (6 layers, dim 256, 4 heads, FF 704, tied
#      embeddings, context 256) for STEPS steps of 16 x 256 tokens;
#   5. supervised fine-tuning on chat turns made from the same texts
#      ("Continue: <first words of a verse>" -> the rest; a poem's title ->
#      the poem; who wrote it), about one epoch;
#   6. quantization to q8_0.
#
#   scripts/make_default_model.sh [OUT]     (default models/yan-default.gguf)
# Environment: STEPS (default 1200), THREADS (default all cores),
# WORK (default .cache/default-model). About half an hour on 2 cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-models/yan-default.gguf}
W=${WORK:-.cache/default-model}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-0}
Y=build/yan
mkdir -p "$W"
make -s -j2 "$Y"

# 1. corpora
command -v bible >/dev/null || { echo "needs bible-kjv (apt-get install bible-kjv)" >&2; exit 1; }
F=/usr/share/games/fortunes
[ -f "$F/tang300" ] && [ -f "$F/song100" ] || { echo "needs fortunes-zh" >&2; exit 1; }
bible -f Gen1:1-Rev22:21 > "$W/kjv-refs.txt"
sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' "$W/kjv-refs.txt" > "$W/kjv.txt"
cat "$F/tang300" "$F/song100" | perl -pe '1 while s/\e\[[0-9;?]*[A-Za-z]//g; $_ = "\n" if /^%\r?$/' > "$W/poems.txt"
echo "corpora: kjv $(wc -c < "$W/kjv.txt") bytes, poems $(wc -c < "$W/poems.txt") bytes"

# 2. vocabulary
"$Y" tokenizer train --vocab-size 8192 --pre cl100k --special '<|endoftext|>' \
    --special '<|im_start|>' --special '<|im_end|>' --threads "$THREADS" -o "$W/tokenizer.json" \
    "$W/kjv.txt" "$W/poems.txt"

# 3. shards (small segments so that 2% goes to validation from all over the text)
"$Y" data prepare -q --tokenizer "$W/tokenizer.json" --val-fraction 0.02 --segment-bytes 16384 \
    --threads "$THREADS" "$W/kjv.txt" "$W/poems.txt" -o "$W/data"

# 4. pretraining
"$Y" train --data "$W/data" --layers 6 --dim 256 --heads 4 --tied --seq 256 --batch 16 \
    --steps "$STEPS" --lr 2e-3 --warmup 60 --eval-every 100 --eval-batches 16 --ckpt-every 100 \
    --threads "$THREADS" --seed 1 -o "$W/pretrain"
model="$W/pretrain/model.gguf"

# 5. chat fine-tuning
/usr/bin/python3 scripts/make_default_chat.py "$W/kjv.txt" "$W/poems.txt" "$W/chat.jsonl"
"$Y" finetune "$model" --data "$W/chat.jsonl" --seq 128 --batch 16 --steps 450 --lr 3e-4 \
    --val-fraction 0.02 --eval-every 150 --threads "$THREADS" --seed 1 -o "$W/chat"
model="$W/chat/model.gguf"

# 6. quantization
"$Y" quantize "$model" "$out" q8_0
ls -l "$out"
