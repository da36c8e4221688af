#!/usr/bin/env bash
# test_infer_cli.sh — end-to-end tests of the inference commands on small
# random-weight models written by build/tools/mkmodel: run (greedy and seeded
# determinism, -n, stop strings, --chat), chat through a pipe (history,
# /reset, /exit, a context that fills up), info (architecture, parameters,
# tensor types, memory plan), perplexity (finite, the llama.cpp output
# format), quantize (q8_0, q4_0, q4_K_M; the results run and show their
# types), bench (pp and tg rows), the SDK example, and clear errors with a
# non-zero exit (missing file, corrupt GGUF, prompt longer than --ctx,
# unknown options, unknown quantization type).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
SAMPLE=$ROOT/data/sample.txt
MKMODEL=$ROOT/build/tools/mkmodel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# expect_fail NAME PATTERN CMD...: non-zero exit and PATTERN on stderr
expect_fail() {
  local name=$1 pat=$2; shift 2
  if "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null; then bad "$name (exit 0)"; return; fi
  if grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (stderr: $(head -c 300 "$tmp/err"))"; fi
}

[ -x "$MKMODEL" ] || make -s -C "$ROOT" build/tools/mkmodel > /dev/null 2>&1
if [ ! -x "$MKMODEL" ]; then
  bad "build/tools/mkmodel is missing (make tools)"
  finish
fi
M=$tmp/m.gguf
if ! "$MKMODEL" --arch llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --type f32 \
     --vocab "$VOCAB" -o "$M" > "$tmp/mk.log" 2>&1; then
  bad "mkmodel writes a model ($(tail -c 300 "$tmp/mk.log"))"
  finish
fi

# ---------------------------------------------------------------- help
for c in run chat info perplexity quantize bench; do
  check "$c --help has usage and an example" bash -c "'$YAN' $c --help | grep -q usage && '$YAN' $c --help | grep -q example"
done
check "help lists the inference commands" bash -c "'$YAN' --help | grep -q 'run' && '$YAN' --help | grep -q 'quantize'"

# ----------------------------------------------------------------- run
"$YAN" run "$M" -p "In the beginning" -n 16 --temp 0 > "$tmp/g1" 2> "$tmp/g1.err"
rc=$?
check "run exits 0" test $rc -eq 0
check "run prints text" test -s "$tmp/g1"
"$YAN" run "$M" -p "In the beginning" -n 16 --temp 0 --threads 1 > "$tmp/g2" 2>/dev/null
check "greedy is deterministic (and thread-count independent)" cmp -s "$tmp/g1" "$tmp/g2"
"$YAN" run "$M" -p "In the beginning" -n 16 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 7 > "$tmp/s1" 2>/dev/null
"$YAN" run "$M" -p "In the beginning" -n 16 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 7 > "$tmp/s2" 2>/dev/null
"$YAN" run "$M" -p "In the beginning" -n 16 --temp 1 --top-k 0 --top-p 1 --min-p 0 --seed 8 > "$tmp/s3" 2>/dev/null
check "same seed, same text" cmp -s "$tmp/s1" "$tmp/s2"
check "another seed, another text" bash -c "! cmp -s '$tmp/s1' '$tmp/s3'"
"$YAN" run "$M" -p "In the beginning" -n 5 --temp 0 --ignore-eos --verbose > /dev/null 2> "$tmp/v.err"
check "-n 5 generates 5 tokens" grep -q '^generation: 5 tokens' "$tmp/v.err"
check "--verbose reports prompt tok/s" grep -q '^prompt: [0-9]* tokens in .* tok/s' "$tmp/v.err"
# stop string: the output ends just before the first occurrence
full=$(cat "$tmp/g1")
if [ ${#full} -ge 12 ]; then
  stop=${full:6:3}
  "$YAN" run "$M" -p "In the beginning" -n 16 --temp 0 --stop "$stop" > "$tmp/st" 2>/dev/null
  want=${full%%"$stop"*}
  check "stop string ends the output before it" test "$(cat "$tmp/st")" = "$(printf '%s' "$want")"
else
  skip "stop string (greedy output too short)"
fi
"$YAN" run "$M" --chat --system "Be brief." -p "Hello" -n 8 --temp 0 > "$tmp/c.out" 2> "$tmp/c.err"
check "run --chat answers" test $? -eq 0
check "run --chat names the fallback template" grep -q 'using the chatml template' "$tmp/c.err"
check "run -f reads the prompt from a file" bash -c "printf 'In the beginning' > '$tmp/p.txt'; '$YAN' run '$M' -f '$tmp/p.txt' -n 16 --temp 0 2>/dev/null | cmp -s - '$tmp/g1'"

# ---------------------------------------------------------------- chat
printf 'hello\n/reset\nhello\n' | "$YAN" chat "$M" -n 8 --temp 0 > "$tmp/ch1" 2> "$tmp/ch1.err"
rc=$?
check "chat on a pipe exits 0 at end of input" test $rc -eq 0
check "chat /reset is acknowledged" grep -q 'history cleared' "$tmp/ch1.err"
n=$(wc -c < "$tmp/ch1")
check "chat: the same question after /reset gets the same answer" \
  bash -c "[ \$(( $n % 2 )) -eq 0 ] && [ $n -gt 2 ] && cmp -s <(head -c $((n / 2)) '$tmp/ch1') <(tail -c $((n / 2)) '$tmp/ch1')"
check "chat shows no prompt on a pipe" bash -c "! grep -q '^> ' '$tmp/ch1'"
printf 'hello\nhow are you\n/exit\nnot read\n' | "$YAN" chat "$M" -n 8 --temp 0 --system "Be brief." > "$tmp/ch2" 2> "$tmp/ch2.err"
check "chat: two turns and /exit" test $? -eq 0
check "chat answers each turn" test "$(wc -l < "$tmp/ch2")" -ge 2
# the answers do not depend on the thread count or the context size
printf 'hello\nhow are you\n' | "$YAN" chat "$M" -n 8 --temp 0 --system "Be brief." --ctx 512 --threads 1 > "$tmp/ch3" 2>/dev/null
check "chat answers do not depend on threads or --ctx" cmp -s "$tmp/ch2" "$tmp/ch3"
# the KV cache is reused across turns, and gives what a from-scratch run gives:
# turn 2 of the chat = a completion of the whole conversation formatted as chatml
printf 'hello\nhow are you\n' | "$YAN" chat "$M" -n 8 --temp 0 --verbose > "$tmp/ch5" 2> "$tmp/ch5.err"
reused=$(grep -o '[0-9]* reused' "$tmp/ch5.err" | sed -n '2s/ reused//p')
check "chat: turn 2 reuses the cache of turn 1 ($reused tokens)" test "${reused:-0}" -gt 20
printf 'hello\n' | "$YAN" chat "$M" -n 8 --temp 0 > "$tmp/a1" 2>/dev/null
{ printf '<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n'; head -c -1 "$tmp/a1"
  printf '<|im_end|>\n<|im_start|>user\nhow are you<|im_end|>\n<|im_start|>assistant\n'; } > "$tmp/conv.txt"
"$YAN" run "$M" -f "$tmp/conv.txt" -n 8 --temp 0 > "$tmp/a2" 2>/dev/null
check "chat: turn 2 equals a from-scratch completion of the conversation" cmp -s "$tmp/ch5" <(cat "$tmp/a1" "$tmp/a2")
long=$(head -c 300 "$SAMPLE" | tr '\n' ' ')
printf '%s\n%s\n%s\n' "$long" "$long" "$long" | "$YAN" chat "$M" -n 8 --temp 0 --ctx 200 > "$tmp/ch4" 2> "$tmp/ch4.err"
check "chat: a full context is reported and the chat goes on" bash -c "[ $? -eq 0 ] && grep -q 'no longer fits' '$tmp/ch4.err'"

# ---------------------------------------------------------------- info
"$YAN" info "$M" --ctx 512 > "$tmp/info" 2> "$tmp/info.err"
check "info exits 0" test $? -eq 0
check "info: architecture" grep -q 'llama' "$tmp/info"
check "info: parameter count" grep -q '1098048' "$tmp/info"
check "info: tensor types" grep -q 'f32' "$tmp/info"
check "info: memory plan" bash -c "grep -q 'KV cache' '$tmp/info' && grep -q 'weights' '$tmp/info' && grep -q 'total' '$tmp/info'"
kv512=$(grep 'KV cache' "$tmp/info")
kv1024=$("$YAN" info "$M" --ctx 1024 | grep 'KV cache')
check "info: the KV cache grows with --ctx" test "$kv512" != "$kv1024"
check "info: f16 KV cache at 512 = 2 layers x 512 x 32 x 2 x 2 bytes" grep -q 'KV cache (f16) *0.12 MiB' "$tmp/info"

# ---------------------------------------------------------- perplexity
"$YAN" perplexity "$M" "$SAMPLE" --ctx 64 > "$tmp/ppl" 2> "$tmp/ppl.err"
check "perplexity exits 0" test $? -eq 0
check "perplexity prints running estimates" grep -q '^\[1\][0-9.]*,\[2\]' "$tmp/ppl"
ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- [0-9.]*$/\1/p' "$tmp/ppl")
check "perplexity: final line in llama.cpp's format, finite" bash -c "[ -n '$ppl' ] && awk 'BEGIN{exit !($ppl > 1 && $ppl < 1e6)}'"
expect_fail "perplexity: text shorter than 2 x ctx" "at least" "$YAN" perplexity "$M" "$SAMPLE" --ctx 4096

# ------------------------------------------------------------ quantize
for t in q8_0 q4_0 q4_K_M; do
  if "$YAN" quantize "$M" "$tmp/m-$t.gguf" $t > "$tmp/q.out" 2> "$tmp/q.err"; then
    ok "quantize to $t"
    "$YAN" run "$tmp/m-$t.gguf" -p "In the beginning" -n 8 --temp 0 > "$tmp/qr" 2>&1
    check "the $t model runs" bash -c "[ $? -eq 0 ] && [ -s '$tmp/qr' ]"
  else
    bad "quantize to $t ($(head -c 300 "$tmp/q.err"))"
  fi
done
check "q8_0 model: info shows q8_0" bash -c "'$YAN' info '$tmp/m-q8_0.gguf' | grep -q q8_0"
check "q4_0 model: info shows q4_0" bash -c "'$YAN' info '$tmp/m-q4_0.gguf' | grep -q q4_0"
check "quantize prints a progress line" grep -q 'quantizing: 100%' "$tmp/q.err"
# rows of 64 values cannot be q4_K (256-value blocks): a 256-wide model gets the real mix
if "$MKMODEL" --arch llama --dim 256 --layers 8 --heads 4 --kv-heads 2 --ff 512 --type f32 --vocab "$VOCAB" \
     -o "$tmp/w.gguf" > /dev/null 2>&1 && "$YAN" quantize "$tmp/w.gguf" "$tmp/w-q4km.gguf" q4_K_M --quiet > /dev/null; then
  "$YAN" info "$tmp/w-q4km.gguf" > "$tmp/winfo"
  check "q4_K_M: mostly q4_K with some q6_K (attn_v, ffn_down, output)" \
    bash -c "grep -q 'q4_K x' '$tmp/winfo' && grep -q 'q6_K x' '$tmp/winfo'"
  check "the q4_K_M model runs" bash -c "'$YAN' run '$tmp/w-q4km.gguf' -p 'In the beginning' -n 8 --temp 0 > /dev/null 2>&1"
  "$MKMODEL" --arch llama --dim 256 --layers 8 --heads 4 --kv-heads 2 --ff 512 --type q4_K_M --vocab "$VOCAB" \
     -o "$tmp/w-mk.gguf" > /dev/null 2>&1
  check "q4_K_M from f32 equals mkmodel's own q4_K_M tensors" \
    cmp -s <(tail -c 5000000 "$tmp/w-q4km.gguf") <(tail -c 5000000 "$tmp/w-mk.gguf")
else
  bad "q4_K_M on a 256-wide model"
fi
expect_fail "quantize: unknown type" "unknown type" "$YAN" quantize "$M" "$tmp/x.gguf" q3_XYZ
expect_fail "quantize: output = input" "different" "$YAN" quantize "$M" "$M" q8_0
expect_fail "quantize: missing input" "no-such" "$YAN" quantize "$tmp/no-such.gguf" "$tmp/x.gguf" q8_0
check "quantize: nothing written on failure" test ! -e "$tmp/x.gguf"

# --------------------------------------------------------------- bench
"$YAN" bench "$M" -p 32 -n 8 -r 2 -t 1 > "$tmp/bench" 2> "$tmp/bench.err"
check "bench exits 0" test $? -eq 0
check "bench: table header" grep -q '^| model .* t/s |$' "$tmp/bench"
check "bench: pp32 row with a rate" grep -Eq '\| +pp32 \| +[0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$tmp/bench"
check "bench: tg8 row with a rate" grep -Eq '\| +tg8 \| +[0-9]+\.[0-9]+ ± [0-9]+\.[0-9]+ \|$' "$tmp/bench"

# --------------------------------------------------------- SDK example
if cc -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" -o "$tmp/generate" "$ROOT/examples/generate.c" \
     "$ROOT/build/libyan.a" -lm -pthread 2> "$tmp/cc.log"; then
  "$tmp/generate" "$M" "In the beginning" 8 > "$tmp/ex.out" 2> "$tmp/ex.err"
  check "example generate.c streams a continuation" bash -c "[ $? -eq 0 ] && grep -q '^In the beginning' '$tmp/ex.out'"
else
  bad "examples/generate.c compiles ($(head -c 300 "$tmp/cc.log"))"
fi

# -------------------------------------------------------------- errors
expect_fail "run: missing model names the file" "no-such-model" "$YAN" run "$tmp/no-such-model.gguf" -p hi
printf 'GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f\x00\x00\x00\x00\x00\x00\x00\x00' > "$tmp/corrupt.gguf"
expect_fail "run: corrupt GGUF names the file" "corrupt.gguf" "$YAN" run "$tmp/corrupt.gguf" -p hi
expect_fail "info: corrupt GGUF names the file" "corrupt.gguf" "$YAN" info "$tmp/corrupt.gguf"
head -c 100000 "$M" > "$tmp/trunc.gguf"
expect_fail "info: truncated GGUF names the file" "trunc.gguf" "$YAN" info "$tmp/trunc.gguf"
expect_fail "run: prompt longer than --ctx" "does not fit" "$YAN" run "$M" -f "$SAMPLE" --ctx 64 -n 4
expect_fail "run: prompt + -n longer than --ctx" "does not fit" "$YAN" run "$M" -p "In the beginning" --ctx 16 -n 32
expect_fail "run: -p is required" "required" "$YAN" run "$M"
for c in run chat info perplexity quantize bench; do
  expect_fail "$c: unknown option" "unknown option" "$YAN" $c "$M" --no-such-option
done
expect_fail "run: bad --temp" "not a non-negative number" "$YAN" run "$M" -p hi --temp abc
expect_fail "run: bad --kv-type" "f16 or f32" "$YAN" run "$M" -p hi --kv-type q4

# ---------------------------------------------------------- no leaks
if command -v valgrind > /dev/null; then
  check "run: no leaks or invalid accesses under valgrind" bash -c "valgrind -q --leak-check=full \
    --errors-for-leak-kinds=definite --error-exitcode=9 '$YAN' run '$M' -p 'In the beginning' -n 4 --temp 0 \
    --threads 1 > /dev/null 2>&1"
  check "chat: no leaks or invalid accesses under valgrind" bash -c "printf 'hi\n/reset\nyo\n' | valgrind -q --leak-check=full \
    --errors-for-leak-kinds=definite --error-exitcode=9 '$YAN' chat '$M' -n 4 --temp 0 --threads 1 > /dev/null 2>&1"
else
  skip "valgrind not installed"
fi

finish
