#!/usr/bin/env bash
# tokenizer_train.sh — trains yan's byte-level BPE and sentencepiece's BPE on
# the same corpus (the King James Bible, last 10% of lines held out) with the
# same vocabulary size, and prints training time and compression (bytes per
# token on the held-out text) side by side.
#
#   YAN=./build/yan VOCAB=8000 bash bench/tokenizer_train.sh
#
# Environment: YAN (yan binary, default ./build/yan), VOCAB (default 8000),
# THREADS (both trainers; default: all cores), PRE (yan pre-tokenizer,
# default cl100k), KEEP=1 keeps the work folder.
# Needs `bible` (package bible-kjv) and `spm_train`/`spm_encode` (package
# sentencepiece); installs them with apt-get when missing and allowed.
#
# Fairness: sentencepiece reads one sentence per line and never encodes the
# newlines; yan encodes the file as one text, where each "\n" is a piece of
# its own (one token). Compression is therefore reported on the text without
# newlines for both: bytes - lines over tokens (yan: tokens - lines).
set -euo pipefail

YAN=${YAN:-./build/yan}
VOCAB=${VOCAB:-8000}
THREADS=${THREADS:-$(nproc)}
PRE=${PRE:-cl100k}

die() { echo "tokenizer_train.sh: $*" >&2; exit 1; }

need() { # need CMD PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing $2 (for $1)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; } ||
            die "cannot install $2"
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: install package $2"
}

[ -x "$YAN" ] || die "yan binary not found at $YAN (build it with make, or set YAN=)"
need bible bible-kjv
need spm_train sentencepiece
need spm_encode sentencepiece

WORK=$(mktemp -d "${TMPDIR:-/tmp}/yan-bench-train.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

bible -f Gen1:1-Rev22:21 > "$WORK/kjv.txt"
LINES=$(wc -l < "$WORK/kjv.txt")
HOLD=$((LINES / 10))
head -n $((LINES - HOLD)) "$WORK/kjv.txt" > "$WORK/train.txt"
tail -n "$HOLD" "$WORK/kjv.txt" > "$WORK/eval.txt"
TRAIN_BYTES=$(wc -c < "$WORK/train.txt")
EVAL_BYTES=$(wc -c < "$WORK/eval.txt")
EVAL_LINES=$(wc -l < "$WORK/eval.txt")

now() { date +%s.%N; }

# --- yan
t0=$(now)
"$YAN" tokenizer train --vocab-size "$VOCAB" --pre "$PRE" --threads "$THREADS" \
    -o "$WORK/yan.json" "$WORK/train.txt" > "$WORK/yan_train.log" 2>&1 ||
    { cat "$WORK/yan_train.log" >&2; die "yan tokenizer train failed"; }
t1=$(now)
YAN_TRAIN_S=$(echo "$t1 - $t0" | bc -l)
YAN_TOKENS=$("$YAN" tokenize --vocab "$WORK/yan.json" --count "$WORK/eval.txt" | head -n 1 | tr -dc 0-9)
[ -n "$YAN_TOKENS" ] || die "yan tokenize --count printed no number"

# --- sentencepiece
t0=$(now)
spm_train --model_type=bpe --vocab_size="$VOCAB" --input="$WORK/train.txt" \
    --model_prefix="$WORK/spm" --character_coverage=1.0 --byte_fallback=true \
    --num_threads="$THREADS" > "$WORK/spm_train.log" 2>&1 ||
    { tail -n 20 "$WORK/spm_train.log" >&2; die "spm_train failed"; }
t1=$(now)
SPM_TRAIN_S=$(echo "$t1 - $t0" | bc -l)
SPM_TOKENS=$(spm_encode --model="$WORK/spm.model" --output_format=id < "$WORK/eval.txt" | wc -w)

# --- report
NL_BYTES=$((EVAL_BYTES - EVAL_LINES))
YAN_NL_TOKENS=$((YAN_TOKENS - EVAL_LINES))
printf 'corpus: King James Bible, %d lines; train %d lines (%d bytes), held out %d lines (%d bytes)\n' \
    "$LINES" $((LINES - HOLD)) "$TRAIN_BYTES" "$EVAL_LINES" "$EVAL_BYTES"
printf 'vocab size %d, threads %d, yan pre-tokenizer %s\n\n' "$VOCAB" "$THREADS" "$PRE"
printf '%-14s %12s %14s %16s\n' "" "train (s)" "eval tokens" "bytes/token"
printf '%-14s %12.3f %14d %16.3f\n' "yan" "$YAN_TRAIN_S" "$YAN_NL_TOKENS" "$(echo "$NL_BYTES / $YAN_NL_TOKENS" | bc -l)"
printf '%-14s %12.3f %14d %16.3f\n' "sentencepiece" "$SPM_TRAIN_S" "$SPM_TOKENS" "$(echo "$NL_BYTES / $SPM_TOKENS" | bc -l)"
printf '\ntraining speed: yan is %.1fx sentencepiece; compression: yan/sentencepiece bytes per token = %.3f\n' \
    "$(echo "$SPM_TRAIN_S / $YAN_TRAIN_S" | bc -l)" "$(echo "$SPM_TOKENS / $YAN_NL_TOKENS" | bc -l)"
printf '(eval tokens and bytes exclude the %d newlines; yan with newlines: %d tokens, %.3f bytes/token)\n' \
    "$EVAL_LINES" "$YAN_TOKENS" "$(echo "$EVAL_BYTES / $YAN_TOKENS" | bc -l)"
grep -E '^(wrote|training text|time)' "$WORK/yan_train.log" | sed 's/^/yan: /'
