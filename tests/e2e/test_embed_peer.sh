#!/usr/bin/env bash
# test_embed_peer.sh — yan's embeddings and WordPiece tokenizer against
# llama.cpp (node-llama-cpp 3.21.1, prebuilt; installed by `scripts/peers.sh
# llama`; SKIP when it cannot be).
#
# Models: random weights from build/tools/mkmodel (dim 256, 2 layers, 4
# heads, FFN 768, context 512, --std 0.0625 = 1/sqrt(dim), so that attention
# and the FFN move the hidden states as much as the residual does; with the
# default 0.02 every text's [CLS] state would be nearly the same vector):
#  - bert f32 mean, bert f16 cls, bert q8_0 mean, bert f32 last, and a cased
#    bert (f32 mean, no lowercasing / accent stripping): a WordPiece
#    vocabulary of 3000 tokens built by mkmodel --wordpiece from the KJV
#    sample plus the Chinese paragraph below;
#  - decoders with the vocabulary models/kjv-8k.tokenizer.json: qwen3 f32
#    mean (--pooling mean), llama f16 mean, qwen3 f32 last (the
#    Qwen3-Embedding form).
# For each model and each text below (English, Chinese, accents, punctuation,
# symbols, unknown words and characters):
#  - ids: what `yan embed --tokens` evaluates must equal what
#    node-llama-cpp's embedding context evaluates: llama.cpp's
#    model.tokenize(text) with [CLS] (BOS) put first and [SEP] last for
#    WordPiece (BOS / EOS as the vocabulary asks for the others);
#  - vectors: cosine(yan, llama.cpp) >= COS_MIN (0.9999) for every text.
#    llama.cpp's vector is its pooled embedding (the model's pooling_type),
#    yan's the L2-normalised one; the cosine ignores the norm. Reported per
#    model: the smallest cosine, and for scale the largest cosine between two
#    DIFFERENT texts' yan vectors (how far apart the texts are).
# Both sides use their defaults: llama.cpp f32 attention inputs without a KV
# cache for bert, yan an f16 KV cache.
# Then: `yan serve` answers /v1/embeddings with what `yan embed` prints (the
# engine and the context share yan_fwd_embed; the engine's KV blocks of 32
# positions sum attention in another order: max |diff| <= 1e-6), refuses
# chat on a bert model with a clear message; `yan embed --pooling` overrides
# the model's pooling; `yan run` on a bert model fails cleanly.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$ROOT"

COS_MIN="${COS_MIN:-0.9999}"

if ! scripts/peers.sh llama >/dev/null 2>&1; then
    skip "node-llama-cpp could not be installed (scripts/peers.sh llama): no llama.cpp peer for embeddings"
    finish
fi
B="${BUILD:-build}"
make -s -j2 BUILD="$B" "$B/yan" "$B/tools/mkmodel" >/dev/null || { bad "build"; finish; }
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
MK="$B/tools/mkmodel"
YB="$B/yan"
PEER="$ROOT/tests/peers/embed_peer.mjs"
W="$(mktemp -d)"
trap 'rm -rf "$W"' EXIT

# the corpus the WordPiece vocabulary is built from
cp data/sample.txt "$W/corpus.txt"
cat >> "$W/corpus.txt" <<'EOF'
北京是中国的首都，也是一座历史悠久的城市。我们在这里测试嵌入模型：句子的向量应该相同。
天地万物都有定时，生有时，死有时；哭有时，笑有时。今天的天气很好，我们去公园散步吧！
机器学习和自然语言处理是人工智能的重要方向。请把这段文字翻译成英文。
EOF

# the texts, one per line (JSON array for the peer)
cat > "$W/texts.txt" <<'EOF'
In the beginning God created the heaven and the earth.
And God said, Let there be light: and there was light.
AND THE EVENING AND THE MORNING WERE THE FIRST DAY!!!
Café naïve résumé — Ångström's "quotes" (parentheses) [brackets] {braces}
north-east, 3.14159 + 2 = 5.14159; $100 & 50% off #tag @user ~tilde^caret|pipe
unknownwordzzz qwxjk and Thee thou thy THINE
北京是中国的首都，也是一座历史悠久的城市。
我们在这里测试嵌入模型：句子的向量应该相同！
机器学习和自然语言处理，今天的天气很好。龍鳳麒麟（未知的字）
Mixed 中文 and English: the earth 天地 was without form, 没有形状.
emoji 🙂 and symbols © ® ™ € £ ¥ are not punctuation
	tabs	and
newlines are whitespace
EOF
node -e '
const fs = require("fs");
const t = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(s => s.length);
fs.writeFileSync(process.argv[2], JSON.stringify(t));' "$W/texts.txt" "$W/texts.json"
n_texts="$(grep -c . "$W/texts.txt")"

# compare.js REF.json YAN.json: ids equal?, min cosine, max cross-text cosine
cat > "$W/compare.js" <<'JSEOF'
const fs = require("fs");
const ref = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const yan = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const cos = (a, b) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
let idsBad = [], minCos = 1, worst = -1;
if (ref.items.length !== yan.data.length) { console.log(`count_mismatch=${ref.items.length}/${yan.data.length}`); process.exit(1); }
ref.items.forEach((r, i) => {
    const y = yan.data[i];
    if (JSON.stringify(r.input) !== JSON.stringify(y.tokens)) idsBad.push(i);
    const c = cos(r.vector, y.embedding);
    if (c < minCos) { minCos = c; worst = i; }
});
let cross = -1;
for (let i = 0; i < yan.data.length; i++)
    for (let j = i + 1; j < yan.data.length; j++) cross = Math.max(cross, cos(yan.data[i].embedding, yan.data[j].embedding));
console.log(`ids_equal=${idsBad.length ? "no(texts " + idsBad.join(",") + ")" : "yes"} ` +
            `min_cos=${minCos.toFixed(9)} one_minus_cos=${(1 - minCos).toExponential(2)} worst_text=${worst} ` +
            `max_cross_text_cos=${cross.toFixed(4)}`);
if (idsBad.length) {
    const i = idsBad[0];
    console.log(`  text ${i}: llama.cpp ${JSON.stringify(ref.items[i].input)}`);
    console.log(`  text ${i}: yan       ${JSON.stringify(yan.data[i].tokens)}`);
}
JSEOF

# name arch type pooling extra-mkmodel-options
MODELS=(
    "bert-f32-mean bert f32 mean"
    "bert-f16-cls bert f16 cls"
    "bert-q8_0-mean bert q8_0 mean"
    "bert-f32-last bert f32 last"
    "bert-cased-f32-mean bert f32 mean --cased"
    "qwen3-f32-mean qwen3 f32 mean"
    "llama-f16-mean llama f16 mean"
    "qwen3-f32-last qwen3 f32 last"
)
for spec in "${MODELS[@]}"; do
    set -- $spec
    tag="$1"; arch="$2"; type="$3"; pool="$4"; shift 4
    m="$W/$tag.gguf"
    if [ "$arch" = bert ]; then voc=(--wordpiece "$W/corpus.txt" --wp-size 3000); else voc=(--vocab models/kjv-8k.tokenizer.json --kv-heads 2); fi
    if ! "$MK" --arch "$arch" --dim 256 --layers 2 --heads 4 --ff 768 --ctx 512 --std 0.0625 --type "$type" \
        --pooling "$pool" "${voc[@]}" "$@" --seed 7 -o "$m" 2>"$W/mk.err"; then
        bad "$tag: mkmodel: $(tail -1 "$W/mk.err")"; continue
    fi
    if ! node "$PEER" "$m" "$W/texts.json" --ctx 512 > "$W/ref.json" 2>"$W/peer.err"; then
        bad "$tag: llama.cpp: $(tail -1 "$W/peer.err")"; continue
    fi
    if ! "$YB" embed "$m" --json --tokens --ctx 512 -f "$W/texts.txt" > "$W/yan.json" 2>"$W/yan.err"; then
        bad "$tag: yan embed: $(tail -1 "$W/yan.err")"; continue
    fi
    out="$(node "$W/compare.js" "$W/ref.json" "$W/yan.json")" || { bad "$tag: compare: $out"; continue; }
    line="$(printf '%s\n' "$out" | head -1)"
    mc="$(printf '%s' "$line" | sed -n 's/.*min_cos=\([0-9.]*\).*/\1/p')"
    if printf '%s' "$line" | grep -q "ids_equal=yes" && awk -v c="$mc" -v t="$COS_MIN" 'BEGIN { exit !(c >= t) }'; then
        ok "$tag ($n_texts texts): $line"
    else
        bad "$tag ($n_texts texts): $line (need ids equal and min_cos >= $COS_MIN)"
        printf '%s\n' "$out" | tail -n +2
    fi
done

# /v1/embeddings (yan serve: the engine's yan_engine_embed) gives what yan embed
# gives (yan_embed): the same code, yan_fwd_embed
if command -v curl >/dev/null 2>&1; then
    m="$W/bert-f16-cls.gguf"
    "$YB" serve "$m" --port 0 > "$W/serve.out" 2> "$W/serve.err" &
    spid=$!
    port=""
    for _ in $(seq 1 400); do
        port=$(grep '"event":"listening"' "$W/serve.err" 2>/dev/null | grep -o '"port":[0-9]*' | head -1 | cut -d: -f2)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        bad "/v1/embeddings: yan serve did not start: $(tail -1 "$W/serve.err")"
    else
        body="$(node -e 'const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.stdout.write(JSON.stringify({model: "bert-f16-cls.gguf", input: t.slice(0, 6)}))' "$W/texts.json")"
        code="$(curl -s -o "$W/v1.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/v1/embeddings")"
        head -6 "$W/texts.txt" > "$W/texts6.txt"
        "$YB" embed "$m" --json -f "$W/texts6.txt" > "$W/cli.json" 2>/dev/null
        cmp_v1="$(node -e '
            const fs = require("fs");
            const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).data, b = JSON.parse(fs.readFileSync(process.argv[2], "utf8")).data;
            let d = 0;
            a.forEach((x, i) => x.embedding.forEach((v, k) => { d = Math.max(d, Math.abs(v - b[i].embedding[k])); }));
            console.log(a.length === b.length && a.length === 6 ? d : "count " + a.length + "/" + b.length);' "$W/v1.json" "$W/cli.json" 2>&1)"
        if [ "$code" = 200 ] && awk -v d="$cmp_v1" 'BEGIN { exit !(d + 0 == d && d <= 1e-6) }'; then
            ok "/v1/embeddings = yan embed on bert-f16-cls (6 texts): max |diff| = $cmp_v1"
        else
            bad "/v1/embeddings: HTTP $code, max |diff| vs yan embed = $cmp_v1"
        fi
        code="$(curl -s -o "$W/chat.json" -w '%{http_code}' -H 'Content-Type: application/json' \
            -d '{"model":"bert-f16-cls.gguf","messages":[{"role":"user","content":"hi"}]}' "http://127.0.0.1:$port/v1/chat/completions")"
        if grep -q "embeddings only" "$W/chat.json"; then
            ok "/v1/chat/completions on a bert model: HTTP $code, $(cut -c1-100 "$W/chat.json")"
        else
            bad "/v1/chat/completions on a bert model: HTTP $code $(cut -c1-200 "$W/chat.json")"
        fi
    fi
    kill -TERM "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
else
    skip "/v1/embeddings: no curl"
fi

# the pooling override
if "$YB" embed "$W/bert-f32-mean.gguf" --pooling cls "In the beginning" > "$W/a.txt" 2>"$W/e.err" &&
   "$YB" embed "$W/bert-f16-cls.gguf" "In the beginning" > /dev/null 2>>"$W/e.err"; then
    nv="$(wc -w < "$W/a.txt")"
    [ "$nv" = 256 ] && ok "yan embed --pooling cls: one vector of 256" || bad "yan embed --pooling cls printed $nv numbers"
else
    bad "yan embed --pooling: $(tail -1 "$W/e.err")"
fi
# generation on an embedding model is refused with a clear message, not a crash
if out="$("$YB" run "$W/bert-f32-mean.gguf" -n 4 -p hello 2>&1)"; then
    bad "yan run on a bert model succeeded: $out"
elif printf '%s' "$out" | grep -q "embeddings only"; then
    ok "yan run on a bert model: $(printf '%s' "$out" | grep -m1 "embeddings only" | cut -c1-120)"
else
    bad "yan run on a bert model: unexpected message: $(printf '%s' "$out" | tail -1)"
fi
finish
