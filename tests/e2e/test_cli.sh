#!/usr/bin/env bash
# test_cli.sh — end-to-end tests of the yan command: help and version,
# tokenize/detokenize round trips on the shipped sample and vocabulary,
# thread-count independence, training a vocabulary and using it, GGUF
# conversion, and clear errors (exit status and message) on bad input.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
root=$ROOT
VOCAB=$root/models/kjv-8k.tokenizer.json
SAMPLE=$root/data/sample.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: command must exit non-zero and say PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err"; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}

check "help lists commands" bash -c "'$YAN' --help | grep -q tokenize"
check "version" bash -c "'$YAN' version | grep -q '^yan [0-9]'"
for c in tokenize detokenize tokenizer version; do
  check "$c --help" bash -c "'$YAN' $c --help | grep -q usage"
done
check "tokenizer train --help" bash -c "'$YAN' tokenizer train --help | grep -q -- --vocab-size"
expect_fail "unknown command" "unknown command" "$YAN" frobnicate
expect_fail "tokenize needs --vocab" "vocab" "$YAN" tokenize "$SAMPLE"

# round trip of the shipped sample
"$YAN" tokenize --vocab "$VOCAB" "$SAMPLE" > "$tmp/ids"
check "sample tokenizes" test -s "$tmp/ids"
"$YAN" detokenize --vocab "$VOCAB" < "$tmp/ids" > "$tmp/back"
check "sample round trip" cmp -s "$SAMPLE" "$tmp/back"
n=$(wc -w < "$tmp/ids")
check "count agrees with ids" test "$("$YAN" tokenize --vocab "$VOCAB" --count "$SAMPLE")" = "$n"
check "stdin equals file" bash -c "'$YAN' tokenize --vocab '$VOCAB' < '$SAMPLE' | cmp -s - '$tmp/ids'"
check "pieces are JSON" bash -c "'$YAN' tokenize --vocab '$VOCAB' --pieces '$SAMPLE' | head -c 12 | grep -q '^\[\"Ge\"'"
check "ids from arguments" bash -c "test \"\$('$YAN' detokenize --vocab '$VOCAB' \$(head -c 40 '$tmp/ids' | cut -d' ' -f1-3))\" = 'Ge1:'"

# a large input: threads must not change the ids
for i in $(seq 1 80); do cat "$SAMPLE"; done > "$tmp/big.txt"
printf '\xff\xfe broken \xe4\xb8 utf-8 \r\n\r\n   end  ' >> "$tmp/big.txt"
"$YAN" tokenize --vocab "$VOCAB" --threads 1 "$tmp/big.txt" > "$tmp/t1"
"$YAN" tokenize --vocab "$VOCAB" --threads 2 "$tmp/big.txt" > "$tmp/t2"
"$YAN" tokenize --vocab "$VOCAB" --threads 7 "$tmp/big.txt" > "$tmp/t7"
check "threads 1 = 2 = 7" bash -c "cmp -s '$tmp/t1' '$tmp/t2' && cmp -s '$tmp/t1' '$tmp/t7'"
"$YAN" detokenize --vocab "$VOCAB" < "$tmp/t2" > "$tmp/bigback"
check "invalid UTF-8 round trip" cmp -s "$tmp/big.txt" "$tmp/bigback"

# special tokens only with --special
sp=$(printf 'a<|endoftext|>b' | "$YAN" tokenize --vocab "$VOCAB" --special)
check "special recognised" bash -c "echo '$sp' | grep -qw 7999"
nsp=$(printf 'a<|endoftext|>b' | "$YAN" tokenize --vocab "$VOCAB")
check "special as text by default" bash -c "! echo '$nsp' | grep -qw 7999"

# train a vocabulary and use it; GGUF output gives the same ids
"$YAN" tokenizer train --vocab-size 600 --pre gpt2 --special '<|eot|>' -o "$tmp/v.json" "$SAMPLE" > "$tmp/train.out"
check "train writes tokenizer.json" grep -q '"model"' "$tmp/v.json"
"$YAN" tokenizer train --vocab-size 600 --pre gpt2 --special '<|eot|>' -o "$tmp/v.gguf" "$SAMPLE" > /dev/null
check "train writes GGUF" bash -c "head -c 4 '$tmp/v.gguf' | grep -q GGUF"
check "json and gguf vocab agree" bash -c "cmp -s <('$YAN' tokenize --vocab '$tmp/v.json' '$SAMPLE') <('$YAN' tokenize --vocab '$tmp/v.gguf' '$SAMPLE')"
check "info on trained vocab" bash -c "'$YAN' tokenizer info '$tmp/v.json' | grep -q 'vocab size: *600'"
expect_fail "train to a missing folder" "nonexistent" "$YAN" tokenizer train --vocab-size 600 -o /nonexistent/x.json "$SAMPLE"

# bad vocabularies: clear messages naming the file
printf '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [' > "$tmp/trunc.json"
expect_fail "truncated tokenizer.json" "trunc.json" "$YAN" tokenize --vocab "$tmp/trunc.json" "$SAMPLE"
printf 'QQ== 0\n!!bad 1\n' > "$tmp/bad.tiktoken"
expect_fail "bad base64" "bad.tiktoken:2" "$YAN" tokenize --vocab "$tmp/bad.tiktoken" --pre gpt2 "$SAMPLE"
printf 'GGUF\x03\x00\x00\x00' > "$tmp/short.gguf"
expect_fail "truncated GGUF" "short.gguf" "$YAN" tokenize --vocab "$tmp/short.gguf" "$SAMPLE"
expect_fail "unknown pre-tokenizer" "known: " "$YAN" tokenize --vocab "$VOCAB" --pre nosuch "$SAMPLE"
expect_fail "missing vocabulary" "no-such-file" "$YAN" tokenize --vocab "$tmp/no-such-file" "$SAMPLE"
expect_fail "detokenize rejects junk" "not a token id" "$YAN" detokenize --vocab "$VOCAB" 12 x3
expect_fail "detokenize rejects out-of-range ids" "out of range" "$YAN" detokenize --vocab "$VOCAB" 99999

# make install + pkg-config: the SDK example builds against the installed library
if make -s -C "$root" install DESTDIR="$tmp/inst" PREFIX=/usr > "$tmp/install.log" 2>&1; then
  pc="$tmp/inst/usr/lib/pkgconfig"
  flags=$(PKG_CONFIG_SYSROOT_DIR="$tmp/inst" PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs --static yan)
  if cc -o "$tmp/example" "$root/examples/tokenize.c" $flags 2> "$tmp/cc.log"; then
    check "example decodes what it encodes" bash -c "LD_LIBRARY_PATH='$tmp/inst/usr/lib' '$tmp/example' '$VOCAB' 'In the beginning' | grep -q '^decoded: In the beginning$'"
  else
    bad "example compiles against the installed yan ($(head -c 300 "$tmp/cc.log"))"
  fi
else
  bad "make install ($(tail -c 300 "$tmp/install.log"))"
fi

finish
