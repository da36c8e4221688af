#!/usr/bin/env bash
# test_spm_peer.sh — golden test of yan's SentencePiece ("llama" GGUF) tokenizer
# against Debian's sentencepiece.
#
# 1. spm_train a BPE model (vocab 4000, byte fallback, identity normalisation,
#    extra whitespace kept: the settings of Llama-style models, which llama.cpp's
#    spm algorithm assumes) on the first half of the KJV;
# 2. tests/peers/spm_to_gguf.py writes it as a vocabulary-only GGUF (model "llama",
#    add_bos_token false, add_space_prefix true);
# 3. compare `spm_encode --output_format=id` with `yan tokenize --vocab m.gguf` on
#    held-out KJV lines, Chinese lines (byte fallback) and adversarial lines.
#    spm_encode encodes each input line on its own (without its "\n"), so every
#    line is written to its own file without the newline and yan encodes them all
#    in one call (one output line per file).
# 4. yan detokenize gives back each of a sample of lines exactly.
# Env: YAN (default <repo>/build/yan), YAN_CACHE (default <repo>/.cache).
# Last line: "N passed, N failed"; exit 1 on any failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PY=/usr/bin/python3
TMP="$(mktemp -d "${TMPDIR:-/tmp}/yan-spm.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT


# ---------------------------------------------------------------- setup
if ! command -v spm_train >/dev/null || ! command -v spm_encode >/dev/null ||
   ! "$PY" -c 'import sentencepiece' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "# installing sentencepiece python3-sentencepiece" >&2
        apt-get install -y -q sentencepiece python3-sentencepiece >/dev/null 2>&1 || true
    fi
fi
if ! command -v spm_train >/dev/null || ! command -v spm_encode >/dev/null ||
   ! "$PY" -c 'import sentencepiece' 2>/dev/null; then
    skip "sentencepiece peer: install Debian sentencepiece and python3-sentencepiece"
    finish
fi
"$ROOT/tests/peers/make_corpora.sh"
CORP="$CACHE/corpora"
if [ ! -s "$CORP/kjv.txt" ]; then skip "spm: no KJV corpus (bible-kjv)"; finish; fi
if [ ! -x "$YAN" ]; then bad "yan binary not found at $YAN (build it first: make)"; finish; fi

# ---------------------------------------------------------------- model
n=$(wc -l < "$CORP/kjv.txt"); half=$((n / 2))
head -n "$half" "$CORP/kjv.txt" > "$TMP/train.txt"
spm_train --input="$TMP/train.txt" --model_prefix="$TMP/m" --model_type=bpe --vocab_size=4000 \
    --byte_fallback=true --normalization_rule_name=identity --remove_extra_whitespaces=false \
    --num_threads=2 --minloglevel=2 > "$TMP/train.log" 2>&1 || { cat "$TMP/train.log"; bad "spm_train failed"; finish; }
"$PY" "$ROOT/tests/peers/spm_to_gguf.py" "$TMP/m.model" "$TMP/m.gguf"

# ---------------------------------------------------------------- inputs (one line per set line)
tail -n +"$((half + 1))" "$CORP/kjv.txt" | awk 'NR % 8 == 1 && n++ < 2000' > "$TMP/kjv.lines"
: > "$TMP/zh.lines"; : > "$TMP/adversarial.lines"
[ -s "$CORP/zh.txt" ] && awk 'NF && n++ < 300' "$CORP/zh.txt" > "$TMP/zh.lines"
# adversarial: non-empty lines; a CR stays inside its line for both (spm_encode splits on "\n" only)
[ -s "$CORP/adversarial.txt" ] && awk 'length($0) && n++ < 1500' "$CORP/adversarial.txt" > "$TMP/adversarial.lines"

# run_set NAME: compare spm_encode and yan on every line of $TMP/NAME.lines
run_set() {
    local name="$1" lines="$TMP/$1.lines" dir="$TMP/$1.d"
    local count; count=$(wc -l < "$lines")
    if [ "$count" -eq 0 ]; then skip "spm $name: no lines"; return; fi
    spm_encode --model="$TMP/m.model" --output_format=id < "$lines" > "$TMP/$name.spm"
    # one file per line, without its newline
    mkdir -p "$dir"
    "$PY" - "$lines" "$dir" <<'EOF'
import sys, os
data = open(sys.argv[1], "rb").read().split(b"\n")
if data and data[-1] == b"": data.pop()
for i, line in enumerate(data):
    open(os.path.join(sys.argv[2], "%06d" % i), "wb").write(line)
EOF
    if ! (cd "$dir" && timeout 300 "$YAN" tokenize --vocab "$TMP/m.gguf" --threads 1 ??????) > "$TMP/$name.yan" 2> "$TMP/err"; then
        bad "spm $name: yan tokenize exited non-zero: $(tail -c 300 "$TMP/err" | tr '\n' ' ')"; return
    fi
    local nl_spm nl_yan; nl_spm=$(wc -l < "$TMP/$name.spm"); nl_yan=$(wc -l < "$TMP/$name.yan")
    if [ "$nl_spm" != "$count" ] || [ "$nl_yan" != "$count" ]; then
        bad "spm $name: line counts differ (input $count, spm_encode $nl_spm, yan $nl_yan)"; return
    fi
    local ntok; ntok=$(wc -w < "$TMP/$name.spm")
    # normalise spacing, then list differing lines
    sed 's/  */ /g; s/^ //; s/ $//' "$TMP/$name.spm" > "$TMP/a"; sed 's/  */ /g; s/^ //; s/ $//' "$TMP/$name.yan" > "$TMP/b"
    local diffs; diffs=$(paste "$TMP/a" "$TMP/b" | awk -F '\t' '$1 != $2 {print NR}') || true
    if [ -z "$diffs" ]; then
        ok "spm $name $count lines $ntok tokens"
    else
        local nd; nd=$(echo "$diffs" | wc -l)
        bad "spm $name: $nd of $count lines differ"
        # shellcheck disable=SC2046  # line numbers, split on purpose
        "$PY" - "$TMP/m.model" "$lines" "$TMP/a" "$TMP/b" $(echo "$diffs" | head -n 5) <<'EOF'
import sys
import sentencepiece as spm
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
lines = open(sys.argv[2], "rb").read().split(b"\n")
a = open(sys.argv[3]).read().split("\n"); b = open(sys.argv[4]).read().split("\n")
for ln in map(int, sys.argv[5:]):
    i = ln - 1
    ea = [int(x) for x in a[i].split()]; eb = [int(x) for x in b[i].split()]
    k = 0
    while k < min(len(ea), len(eb)) and ea[k] == eb[k]: k += 1
    def show(ids): return " ".join("%d:%r" % (t, sp.id_to_piece(t)) if 0 <= t < sp.get_piece_size() else "%d:?" % t for t in ids)
    print("  line %d: %r" % (ln, lines[i][:160].decode("utf-8", "replace")))
    print("    first difference at token %d (spm %d tokens, yan %d)" % (k, len(ea), len(eb)))
    print("    spm: " + show(ea[max(0, k - 4):k + 6]))
    print("    yan: " + show(eb[max(0, k - 4):k + 6]))
EOF
    fi
}
run_set kjv
run_set zh
run_set adversarial

# ---------------------------------------------------------------- round trip on a sample
rt_bad=0; rt_n=0; first=""
for f in $(ls "$TMP/kjv.d" | head -n 100) $(ls "$TMP/adversarial.d" 2>/dev/null | head -n 100 | sed 's|^|../adversarial.d/|'); do
    p="$TMP/kjv.d/$f"
    [ -f "$p" ] || continue
    rt_n=$((rt_n + 1))
    if ! ids=$(timeout 60 "$YAN" tokenize --vocab "$TMP/m.gguf" "$p" 2> "$TMP/err") ||
       ! timeout 60 "$YAN" detokenize --vocab "$TMP/m.gguf" $ids < /dev/null > "$TMP/rt" 2>> "$TMP/err" ||
       ! cmp -s "$p" "$TMP/rt"; then
        rt_bad=$((rt_bad + 1))
        [ -n "$first" ] || first="$(head -c 120 "$p" | od -An -c | tr -s ' \n' ' ' | head -c 200) -> $(head -c 120 "$TMP/rt" | od -An -c | tr -s ' \n' ' ' | head -c 200) $(tail -c 200 "$TMP/err" | tr '\n' ' ')"
    fi
done
if [ "$rt_bad" -eq 0 ]; then ok "spm round trip $rt_n lines"
else bad "spm round trip: $rt_bad of $rt_n lines differ; first: $first"; fi

finish
