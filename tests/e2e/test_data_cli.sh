#!/usr/bin/env bash
# test_data_cli.sh — end-to-end tests of `yan data`: prepare English (the KJV,
# else the shipped sample) and Chinese (fortunes-zh) text and JSONL into
# shards with the shipped vocabulary; meta.json counts; the shards decode to
# the input text and hold the ids `yan tokenize` gives; the same bytes for
# --threads 1 and 2; the train/val split; stale shards removed on re-runs;
# clear errors (file, line) on bad input, with the earlier output intact.
# Env: YAN (binary, default <repo>/build/yan), YAN_CACHE (default <repo>/.cache).
# Last line: "N passed, N failed"; exit 1 on any failure.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
tmp=$(mktemp -d "${TMPDIR:-/tmp}/yan-data.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: command must exit non-zero and say PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3 || true)
# meta FILE KEY...: a value from meta.json (keys descend into objects)
meta() { "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(len(v) if isinstance(v,list) else v)' "$@"; }
# ids DIR SPLIT: the ids of a split's shards, one a line (u16 shards)
ids() { for f in "$1/$2"_*.bin; do od -An -v -tu2 -j64 -w2 "$f"; done | tr -d ' '; }

if [ ! -x "$YAN" ]; then bad "yan binary not found at $YAN (build it first: make)"; finish; fi

# ------------------------------------------------------------------ corpora
EN=$tmp/en.txt
if [ -s "$CORP/kjv.txt" ]; then cp "$CORP/kjv.txt" "$EN"
elif command -v bible > /dev/null 2>&1; then bible -f Gen1:1-Rev22:21 > "$EN"
else for i in $(seq 1 40); do cat "$ROOT/data/sample.txt"; done > "$EN"; skip "KJV text (bible-kjv not installed): using data/sample.txt x 40"
fi
ZH=$tmp/zh.txt
F=/usr/share/games/fortunes
if [ -s "$CORP/zh.txt" ]; then cp "$CORP/zh.txt" "$ZH"
elif [ -f "$F/tang300" ] && [ -f "$F/song100" ]; then cat "$F/tang300" "$F/song100" > "$ZH"
else printf '床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n' > "$ZH"; skip "fortunes-zh not installed: a two-line Chinese text instead"
fi
# invalid UTF-8 and a last line without a newline
printf 'caf\xc3\xa9 \xff\xfe broken \xe4\xb8 utf-8\r\nend without newline \xe4' > "$tmp/bad-utf8.txt"

# -------------------------------------------------------------------- help
check "help lists data" bash -c "'$YAN' --help | grep -q '^  data '"
check "data --help" bash -c "'$YAN' data --help | grep -q prepare"
check "data prepare --help" bash -c "'$YAN' data prepare --help | grep -q -- --val-fraction"

# ------------------------------------------------- round trip, val fraction 0
D0=$tmp/d0
"$YAN" data prepare --tokenizer "$VOCAB" "$EN" "$ZH" "$tmp/bad-utf8.txt" -o "$D0" --val-fraction 0 \
  > "$tmp/p0.out" 2> "$tmp/p0.err"
check "prepare succeeds" test -s "$D0/meta.json"
check "writes tokenizer.gguf, train shard, meta.json" test -s "$D0/tokenizer.gguf" -a -s "$D0/train_0000.bin"
check "no val shard for fraction 0" bash -c "! ls '$D0'/val_*.bin > /dev/null 2>&1"
check "progress line with MB/s on stderr" grep -q 'MB/s' "$tmp/p0.err"
check "summary on stdout" grep -q 'tokens, 3 documents' "$tmp/p0.out"
cat "$EN" "$ZH" "$tmp/bad-utf8.txt" > "$tmp/all.txt"
"$YAN" data cat "$D0" > "$tmp/back0.txt"
check "shards decode to the input (English, Chinese, invalid UTF-8)" cmp -s "$tmp/all.txt" "$tmp/back0.txt"
# the ids are exactly yan tokenize's, each document followed by eos (7999)
for f in "$EN" "$ZH" "$tmp/bad-utf8.txt"; do "$YAN" tokenize --vocab "$VOCAB" "$f" | tr ' ' '\n'; echo 7999; done > "$tmp/want.ids"
ids "$D0" train > "$tmp/got.ids"
check "ids equal yan tokenize + eos per document" cmp -s "$tmp/want.ids" "$tmp/got.ids"
if [ -n "$PY" ]; then
  n=$(wc -l < "$tmp/want.ids")
  check "meta.json: train tokens" test "$(meta "$D0/meta.json" train tokens)" = "$n"
  check "meta.json: documents" test "$(meta "$D0/meta.json" documents)" = 3
  check "meta.json: text bytes" test "$(meta "$D0/meta.json" train text_bytes)" = "$(wc -c < "$tmp/all.txt")"
  check "meta.json: input sizes" test "$(meta "$D0/meta.json" inputs 1 bytes)" = "$(wc -c < "$ZH")"
  check "meta.json: tokenizer source" test "$(meta "$D0/meta.json" tokenizer source)" = "$VOCAB"
  check "meta.json: val empty" test "$(meta "$D0/meta.json" val tokens)/$(meta "$D0/meta.json" val files)" = "0/0"
else
  skip "meta.json checks (no python3)"
fi
check "data info reads the shards" bash -c "'$YAN' data info '$D0' | grep -q '^train $(wc -l < "$tmp/want.ids") tokens  3 documents'"

# ----------------------------------------------- threads, segments, split
common=(--tokenizer "$VOCAB" "$EN" "$ZH" --val-fraction 0.05 --segment-bytes 65536 --shard-tokens 150000 -q)
"$YAN" data prepare "${common[@]}" --threads 1 -o "$tmp/t1" > /dev/null 2> "$tmp/t1.err"
"$YAN" data prepare "${common[@]}" --threads 2 -o "$tmp/t2" > /dev/null 2> "$tmp/t2.err"
check "quiet: no progress" test ! -s "$tmp/t1.err"
check "several train shards" test -s "$tmp/t1/train_0002.bin"
check "val shards" test -s "$tmp/t1/val_0000.bin"
same=1; nf=0
for f in "$tmp/t1"/*; do nf=$((nf + 1)); cmp -s "$f" "$tmp/t2/$(basename "$f")" || same=0; done
check "threads 1 and 2 give the same files ($nf)" test "$same" = 1 -a "$nf" -ge 5 -a "$(ls "$tmp/t2" | wc -l)" = "$nf"
"$YAN" data cat "$tmp/t1" --split train > "$tmp/tr.txt"
"$YAN" data cat "$tmp/t1" --split val > "$tmp/va.txt"
total=$(( $(wc -c < "$EN") + $(wc -c < "$ZH") ))
check "train + val text = the input" test "$(( $(wc -c < "$tmp/tr.txt") + $(wc -c < "$tmp/va.txt") ))" = "$total"
check "val is a small part" test "$(wc -c < "$tmp/va.txt")" -gt 0 -a "$(wc -c < "$tmp/va.txt")" -lt $((total / 4))
# every val segment is a run of whole lines of the input
check "val holds whole input lines" bash -c "head -n 3 '$tmp/va.txt' | while IFS= read -r l; do grep -qxF -- \"\$l\" '$EN' '$ZH' || exit 1; done"
if [ -n "$PY" ]; then
  check "meta.json lists the shards" test "$(meta "$tmp/t1/meta.json" train files)" = "$(ls "$tmp/t1"/train_*.bin | wc -l)"
  check "meta.json: split text bytes add up" test "$(( $(meta "$tmp/t1/meta.json" train text_bytes) + $(meta "$tmp/t1/meta.json" val text_bytes) ))" = "$total"
fi
# a re-run with bigger shards replaces the old ones, leaving none behind
"$YAN" data prepare --tokenizer "$VOCAB" "$EN" "$ZH" --val-fraction 0.05 --segment-bytes 65536 -q -o "$tmp/t1" > /dev/null
check "re-run removes stale shards" test "$(ls "$tmp/t1" | tr '\n' ' ')" = "meta.json tokenizer.gguf train_0000.bin val_0000.bin "
check "re-run output is valid" bash -c "'$YAN' data info '$tmp/t1' > /dev/null"

# ------------------------------------------------------------------- JSONL
if [ -n "$PY" ]; then
  "$PY" - "$EN" "$ZH" "$tmp/docs.jsonl" "$tmp/docs.txt" <<'EOF'
import json, sys
en = open(sys.argv[1], encoding="utf-8").read().splitlines(True)[:300]
zh = open(sys.argv[2], encoding="utf-8", errors="replace").read().splitlines(True)[:300]
docs = ["".join(en[i:i + 7]) for i in range(0, len(en), 7)] + ["".join(zh[i:i + 5]) for i in range(0, len(zh), 5)]
with open(sys.argv[3], "w", encoding="utf-8") as f, open(sys.argv[4], "w", encoding="utf-8") as t:
    for i, d in enumerate(docs):
        f.write(json.dumps({"id": i, "text": d}, ensure_ascii=(i % 2 == 0)) + ("\n\n" if i % 10 == 0 else "\n"))
        t.write(d)
EOF
  ndocs=$(grep -c '"text"' "$tmp/docs.jsonl")
  "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/docs.jsonl" -o "$tmp/j" --val-fraction 0 -q > /dev/null
  "$YAN" data cat "$tmp/j" > "$tmp/jback.txt"
  check "JSONL records decode to their texts" cmp -s "$tmp/docs.txt" "$tmp/jback.txt"
  check "JSONL: one document per record ($ndocs)" test "$(meta "$tmp/j/meta.json" documents)" = "$ndocs"
  check "JSONL: one eos per record" test "$(ids "$tmp/j" train | grep -cx 7999)" = "$ndocs"
  "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/docs.jsonl" -o "$tmp/j2" --val-fraction 0.1 --threads 2 -q > /dev/null
  check "JSONL: records split between train and val" \
    test "$(meta "$tmp/j2/meta.json" val documents)" -gt 0 -a "$(( $(meta "$tmp/j2/meta.json" train documents) + $(meta "$tmp/j2/meta.json" val documents) ))" = "$ndocs"
else
  skip "JSONL checks (no python3)"
fi

# ---------------------------------------------------------------- bad input
OUT=$tmp/keep
"$YAN" data prepare --tokenizer "$VOCAB" "$ROOT/data/sample.txt" -o "$OUT" -q > /dev/null
( cd "$OUT" && md5sum * ) > "$tmp/keep.md5"
printf '{"text": "fine"}\n\n{"text": "broken"\n' > "$tmp/bad.jsonl"
printf '{"text": "fine"}\n{"body": "no text"}\n' > "$tmp/notext.jsonl"
printf '{"text": ["not", "a string"]}\n' > "$tmp/notstr.jsonl"
: > "$tmp/empty.txt"
printf '\n\n' > "$tmp/blank.jsonl"
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [' > "$tmp/trunc.json"
S=$ROOT/data/sample.txt
expect_fail "missing input file" "no-such-file.txt" "$YAN" data prepare --tokenizer "$VOCAB" "$S" "$tmp/no-such-file.txt" -o "$OUT"
expect_fail "directory as input" "not a regular file" "$YAN" data prepare --tokenizer "$VOCAB" "$tmp" -o "$OUT"
expect_fail "empty input" "empty.txt: no text" "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/empty.txt" -o "$OUT"
expect_fail "blank JSONL" "blank.jsonl: no text" "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/blank.jsonl" -o "$OUT"
expect_fail "invalid JSON names file and line" "bad.jsonl:3: not valid JSON" "$YAN" data prepare --tokenizer "$VOCAB" "$S" "$tmp/bad.jsonl" -o "$OUT"
expect_fail "JSONL without text" 'notext.jsonl:2: no "text" field' "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/notext.jsonl" -o "$OUT"
expect_fail "JSONL text not a string" 'notstr.jsonl:1: "text" is not a string' "$YAN" data prepare --tokenizer "$VOCAB" "$tmp/notstr.jsonl" -o "$OUT"
expect_fail "truncated tokenizer" "trunc.json" "$YAN" data prepare --tokenizer "$tmp/trunc.json" "$S" -o "$OUT"
expect_fail "missing tokenizer" "no-vocab.json" "$YAN" data prepare --tokenizer "$tmp/no-vocab.json" "$S" -o "$OUT"
expect_fail "output below a file" "cannot create directory" "$YAN" data prepare --tokenizer "$VOCAB" "$S" -o "$S/out"
expect_fail "needs --tokenizer" "tokenizer" "$YAN" data prepare "$S" -o "$OUT"
expect_fail "needs -o" "\-o DIR" "$YAN" data prepare --tokenizer "$VOCAB" "$S"
expect_fail "fraction below 1" "below 1" "$YAN" data prepare --tokenizer "$VOCAB" "$S" -o "$OUT" --val-fraction 1
expect_fail "unknown option" "unknown option" "$YAN" data prepare --tokenizer "$VOCAB" "$S" -o "$OUT" --frobnicate
check "failures leave the old output intact" bash -c "cd '$OUT' && md5sum -c --quiet '$tmp/keep.md5' && test \$(ls | wc -l) = \$(wc -l < '$tmp/keep.md5')"
# Ctrl-C stops the run and leaves the directory as it was
cp -r "$OUT" "$tmp/intr"
for i in 1 2 3 4 5; do cat "$EN"; done > "$tmp/en5.txt"
"$YAN" data prepare --tokenizer "$VOCAB" "$tmp/en5.txt" -o "$tmp/intr" --threads 1 --segment-bytes 65536 -q > /dev/null 2>&1 &
pid=$!; sleep 0.1; kill -INT "$pid" 2> /dev/null; wait "$pid"; rc=$?
if [ "$rc" = 130 ]; then
  check "Ctrl-C: old output intact, no temporaries" bash -c "cd '$tmp/intr' && md5sum -c --quiet '$tmp/keep.md5' && test \$(ls | wc -l) = \$(wc -l < '$tmp/keep.md5')"
else
  check "Ctrl-C came after the end: the run completed" test "$rc" = 0
fi
rm -f "$tmp/en5.txt"
# corrupt shards are refused by the reader, naming the file
cp -r "$OUT" "$tmp/corrupt"
truncate -s -1 "$tmp/corrupt/train_0000.bin"
expect_fail "truncated shard" "train_0000.bin: size" "$YAN" data info "$tmp/corrupt"
printf 'JUNKJUNK' | dd of="$tmp/corrupt/train_0000.bin" conv=notrunc status=none
expect_fail "bad magic" "train_0000.bin: not a yan token shard" "$YAN" data info "$tmp/corrupt"
expect_fail "no shards" "no train_NNNN.bin shards" "$YAN" data info "$tmp"

finish
