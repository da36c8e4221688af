#!/usr/bin/env bash
# llm.sh — inference speed, yan side by side with llama.cpp's llama-bench.
#
#   bench/llm.sh [--quick] [--models "tiny-q4_0 small-q8_0 ..."]
#   LLAMA_BENCH=/path/to/llama-bench bench/llm.sh      (the peer; optional)
#
# Models (random weights, written once by build/tools/mkmodel into
# <cache>/bench-models; vocabulary: models/kjv-8k.tokenizer.json padded to
# 32000 tokens with unused [PAD<id>] tokens, since no 32000-token vocabulary
# ships and speed does not depend on the token texts):
#   tiny-*   TinyLlama-1.1B shape: dim 2048, 22 layers, 32 heads, 4 KV heads,
#            FFN 5632, vocab 32000, ctx 2048; types q4_0, q8_0, q4_K_M, f16
#   small-*  dim 512, 8 layers, 8 heads (8 KV heads), FFN 1408, vocab 32000;
#            types q4_0, q8_0, q4_K_M (FFN 1408 is not a multiple of 256, so
#            ffn_down falls back to q8_0 in the q4_K_M file; mkmodel says so)
# Type mixes are llama-quantize's defaults (see tools/mkmodel.c): output is
# q6_K in the q4_0 and q4_K_M files.
#
# Each model: `yan bench MODEL -p 512 -n 128 -t 2` (pp512 / tg128 tok/s; yan
# loads as it does by default: the weights copied into huge-page memory when
# they take at most half of the free memory) and
# `llama-bench -m MODEL -p 512 -n 128 -t 2`, then a table with the ratios and
# tg as a fraction of the memory-bandwidth bound: bandwidth (measured here by
# build/bench_membw, 2 threads) / bytes of weights read per token (every
# tensor but token_embd). --quick: the small models only, -r 1.
# Then, for the first tiny-* model: load time (yan run --verbose "load:",
# copied and mapped) and peak resident memory of one pp512+tg128 run of each
# program (ru_maxrss of the child; llama.cpp maps the file and, for several
# types, also copies the weights into repacked buffers).
# The small models (35-60 MiB) fit in this machine's L3 cache (480 MiB), so
# their tg can exceed the DRAM bound; the bound is meaningful for tiny-*.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
cd "$ROOT"

THREADS="${THREADS:-2}"
QUICK=0
MODELS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --models) MODELS="$2"; shift ;;
        *) echo "usage: bench/llm.sh [--quick] [--models \"tiny-q4_0 small-q8_0 ...\"]" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$MODELS" ]; then
    MODELS="small-q8_0 small-q4_0 small-q4_K_M"
    [ "$QUICK" = 1 ] || MODELS="tiny-q4_0 tiny-q8_0 tiny-q4_K_M tiny-f16 $MODELS"
fi
REPS=3; [ "$QUICK" = 1 ] && REPS=1

B="${BUILD:-build}"
make -s -j2 BUILD="$B" "$B/yan" "$B/tools/mkmodel" "$B/bench_membw" >&2 || { echo "llm.sh: build failed" >&2; exit 1; }
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
YAN="$B/yan"
MK="$B/tools/mkmodel"
DIR="$CACHE/bench-models"
mkdir -p "$DIR"

model_file() { echo "$DIR/$1.gguf"; }
make_model() { # name
    local f; f="$(model_file "$1")"
    [ -s "$f" ] && return 0
    local shape="${1%%-*}" type="${1#*-}"
    case "$shape" in
        tiny)  set -- --dim 2048 --layers 22 --heads 32 --kv-heads 4 --ff 5632 ;;
        small) set -- --dim 512 --layers 8 --heads 8 --kv-heads 8 --ff 1408 ;;
        *) echo "llm.sh: unknown model $1" >&2; return 1 ;;
    esac
    echo "llm.sh: writing $f" >&2
    "$MK" --arch llama "$@" --ctx 2048 --type "$type" --vocab models/kjv-8k.tokenizer.json \
        --n-vocab 32000 --scale-out 10 --seed 7 -o "$f" >&2
}

# the first number after the field WORD on the line that has it ("| pp512 | 2299.26 ± 0.00 |")
first_after() {
    awk -v w="$1" '{ f = 0; for (i = 1; i <= NF; i++) { if ($i == w) f = 1; else if (f && $i ~ /^[0-9.]+$/) { print $i; exit } } }'
}
# yan bench (markdown table like llama-bench's): the mean t/s of pp512 and tg128
yan_bench() { # file -> "pp tg"
    local out pp tg
    out="$("$YAN" bench "$1" -p 512 -n 128 -t "$THREADS" -r "$REPS" 2>/dev/null)" || { echo "- -"; return; }
    pp="$(printf '%s\n' "$out" | first_after pp512)"
    tg="$(printf '%s\n' "$out" | first_after tg128)"
    echo "${pp:--} ${tg:--}"
}

# llama-bench -o csv: avg_ts of the row with n_prompt=512 and of the row with n_gen=128
llama_bench() { # file -> "pp tg"
    [ -n "${LLAMA_BENCH:-}" ] && [ -x "$LLAMA_BENCH" ] || { echo "- -"; return; }
    "$LLAMA_BENCH" -m "$1" -p 512 -n 128 -t "$THREADS" -r "$REPS" -o csv 2>/dev/null | awk -F, '
        { for (i = 1; i <= NF; i++) gsub(/"/, "", $i) }
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["n_prompt"] == 512 && $col["n_gen"] == 0 { pp = $col["avg_ts"] }
        $col["n_gen"] == 128 && $col["n_prompt"] == 0 { tg = $col["avg_ts"] }
        END { printf "%s %s\n", (pp == "" ? "-" : sprintf("%.2f", pp)), (tg == "" ? "-" : sprintf("%.2f", tg)) }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }

for m in $MODELS; do make_model "$m" || exit 1; done

BW="$("$B/bench_membw" -t "$THREADS" | sed -n 's/.*membw_gbs=\([0-9.]*\).*/\1/p')"
echo "memory read bandwidth: $BW GB/s ($THREADS threads)"
[ -n "${LLAMA_BENCH:-}" ] && echo "peer: $LLAMA_BENCH" || echo "peer: none (set LLAMA_BENCH=/path/to/llama-bench; docs/PEERS-llama.md)"
printf '%-14s %9s %9s %7s | %8s %8s %7s | %9s %9s\n' model "yan pp512" "llama pp" ratio "yan tg" "llama tg" ratio "tg bound" "yan/bound"
for m in $MODELS; do
    f="$(model_file "$m")"
    read -r ypp ytg < <(yan_bench "$f")
    read -r lpp ltg < <(llama_bench "$f")
    bpt="$("$B/bench_membw" --gguf "$f" | sed -n 's/.*bytes_per_token=\([0-9]*\).*/\1/p')"
    bound="$(awk -v bw="$BW" -v b="$bpt" 'BEGIN { printf "%.1f", bw * 1e9 / b }')"
    frac="$(awk -v t="$ytg" -v b="$bound" 'BEGIN { if (t == "-") print "-"; else printf "%.0f%%", 100 * t / b }')"
    lfrac="$(awk -v t="$ltg" -v b="$bound" 'BEGIN { if (t == "-") print "-"; else printf "%.0f%%", 100 * t / b }')"
    printf '%-14s %9s %9s %7s | %8s %8s %7s | %9s %9s  (llama %s)\n' "$m" "$ypp" "$lpp" "$(ratio "$ypp" "$lpp")" \
        "$ytg" "$ltg" "$(ratio "$ytg" "$ltg")" "$bound" "$frac" "$lfrac"
done

# ---- load time and peak memory on the first tiny-* model
for m in $MODELS; do
    case "$m" in tiny-*) ;; *) continue ;; esac
    f="$(model_file "$m")"
    load_s() { "$YAN" run "$f" -p hi -n 1 -t "$THREADS" --verbose "$@" 2>&1 >/dev/null | sed -n 's/^load: \([0-9.]*\) s.*/\1/p' | tail -1; }
    cat "$f" > /dev/null # the file in the page cache for both
    lc=() lm=()
    for _ in 1 2 3; do lc+=("$(load_s)"); lm+=("$(load_s --mmap)"); done
    peak_mb() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("%.0f" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' "$@"; }
    ypk="$(peak_mb "$YAN" bench "$f" -p 512 -n 128 -t "$THREADS" -r 1)"
    ypm="$(peak_mb "$YAN" bench "$f" -p 512 -n 128 -t "$THREADS" -r 1 --mmap)"
    lpk="-"
    [ -n "${LLAMA_BENCH:-}" ] && [ -x "$LLAMA_BENCH" ] && lpk="$(peak_mb "$LLAMA_BENCH" -m "$f" -p 512 -n 128 -t "$THREADS" -r 1)"
    echo "$m load (s, 3 runs): copy ${lc[*]}  mmap ${lm[*]}"
    echo "$m peak memory (MiB): yan $ypk (copy), $ypm (mmap); llama-bench $lpk"
    break
done
