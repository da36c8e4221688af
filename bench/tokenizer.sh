#!/usr/bin/env bash
# bench/tokenizer.sh — encode speed of yan's tokenizer against the real peers.
#
# For r50k_base, cl100k_base, o200k_base (peer: npm tiktoken, Rust compiled to
# wasm) and Qwen3's tokenizer.json (peer: npm @huggingface/transformers), on the
# KJV (English, 4.4 MB) and the Chinese fortunes repeated to about 4 MB, each
# encoded as one whole string:
#   peer MB/s   inside node, load excluded, median of 3 after a warm-up
#               (bench/tokenizer_peer.mjs)
#   yan MB/s    build/bench_tokenizer (links libyan), load excluded, median of 3
#               after a warm-up, with 1 and with 2 threads
# MB = 10^6 bytes of UTF-8 input. Then yan's vocabulary load times.
# Env: YAN_CACHE (default <repo>/.cache), BUILD (default <repo>/build).
set -euo pipefail
BUILD="${BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build}"
YAN="${YAN:-$BUILD/yan}"
. "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
# bench/tokenizer.c, built by the Makefile's bench_% rule
BENCH="$BUILD/bench_tokenizer"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/yan-tokbench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

peers_ok=1
"$ROOT/scripts/peers.sh" || { peers_ok=0; echo "SKIP peers: scripts/peers.sh could not install the npm peers; peer columns are '-'"; }
"$ROOT/tests/peers/make_corpora.sh"
for f in "$CORP/kjv.txt" "$CORP/zh.txt"; do
    [ -s "$f" ] || { echo "bench/tokenizer.sh: $f missing (install bible-kjv and fortunes-zh)" >&2; exit 1; }
done
# the Chinese text once (2 MB): repeating it would only measure the piece cache
ZH="$CORP/zh.txt"
KJV="$CORP/kjv.txt"

mode=bench
if [ ! -x "$BENCH" ]; then
    if [ -x "$YAN" ]; then
        mode=cli
        echo "NOTE $BENCH not built: timing '$YAN tokenize --count' minus its run on an empty file (load included in neither)"
    else
        echo "bench/tokenizer.sh: neither $BENCH nor $YAN is built (run make)" >&2
        exit 1
    fi
fi


# yan_run VOCAB FILE THREADS -> "mb_s load_ms" (or "- -" on failure)
yan_run() {
    local vf; vf="$(vocab_file "$1")"
    if [ "$mode" = bench ]; then
        local line
        if line=$(timeout 600 "$BENCH" "$vf" "$2" --threads "$3" --repeat 3 2> "$TMP/err"); then
            echo "$line" | sed -n 's/.*load_ms=\([0-9.]*\).* mb_s=\([0-9.]*\).*/\2 \1/p'
        else
            echo "bench_tokenizer failed: $(tail -c 300 "$TMP/err")" >&2; echo "- -"
        fi
        return
    fi
    # CLI fallback: median of 3 of (time on FILE) - (time on an empty file)
    : > "$TMP/empty"
    local ts=() te=() t0 t1 t2
    for _ in 1 2 3; do
        t0=$(date +%s.%N)
        "$YAN" tokenize --vocab "$vf" --threads "$3" --count "$TMP/empty" > /dev/null 2>&1 || { echo "- -"; return; }
        t1=$(date +%s.%N)
        "$YAN" tokenize --vocab "$vf" --threads "$3" --count "$2" > /dev/null 2> "$TMP/err" || { echo "- -"; return; }
        t2=$(date +%s.%N)
        te+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')")
        ts+=("$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.6f", (c - b) - (b - a) }')")
    done
    local med_e med_s bytes
    med_e=$(printf '%s\n' "${te[@]}" | sort -g | sed -n 2p)
    med_s=$(printf '%s\n' "${ts[@]}" | sort -g | sed -n 2p)
    bytes=$(wc -c < "$2")
    awk -v b="$bytes" -v s="$med_s" -v e="$med_e" 'BEGIN { if (s <= 0) s = 1e-6; printf "%.2f %.1f\n", b / 1e6 / s, e * 1000 }'
}

declare -A PEER
if [ "$peers_ok" = 1 ]; then
    for v in r50k_base cl100k_base o200k_base qwen3; do
        while read -r _ pf _ _ _ pmbs; do
            PEER["$v $pf"]="$pmbs"
        done < <(timeout 900 node "$ROOT/bench/tokenizer_peer.mjs" "$v" "$KJV" "$ZH" || echo "$v - - - - -")
    done
fi

echo "single whole-file encode; $(nproc) cores; ratio = yan 1 thread / peer"
printf '%-12s %-8s %10s %12s %7s %12s %10s\n' vocab corpus "peer MB/s" "yan MB/s 1t" ratio "yan MB/s 2t" "load ms"
for v in r50k_base cl100k_base o200k_base qwen3; do
    for c in kjv zh; do
        f="$KJV"; [ "$c" = zh ] && f="$ZH"
        read -r y1 load < <(yan_run "$v" "$f" 1)
        read -r y2 _ < <(yan_run "$v" "$f" 2)
        p="${PEER["$v $f"]:--}"
        ratio=$(awk -v a="$y1" -v b="$p" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
        printf '%-12s %-8s %10s %12s %7s %12s %10s\n' "$v" "$c" "$p" "$y1" "$ratio" "$y2" "$load"
    done
done

echo
echo "yan vocabulary load times (median of 3, ms):"
printf 'x' > "$TMP/tiny.txt"
for v in r50k_base cl100k_base o200k_base gpt2 qwen3; do
    vf="$(vocab_file "$v")"
    loads=()
    [ -s "$vf" ] || { printf '  %-12s %s missing\n' "$v" "$vf"; continue; }
    for _ in 1 2 3; do
        if [ "$mode" = bench ]; then
            l=$("$BENCH" "$vf" "$TMP/tiny.txt" --repeat 1 2>/dev/null | sed -n 's/.*load_ms=\([0-9.]*\).*/\1/p') || l=""
        else
            t0=$(date +%s.%N); "$YAN" tokenize --vocab "$vf" --count "$TMP/tiny.txt" > /dev/null 2>&1 || true
            t1=$(date +%s.%N); l=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
        fi
        if [ -n "$l" ]; then loads+=("$l"); fi
    done
    med=failed
    if [ "${#loads[@]}" -gt 0 ]; then
        med=$(printf '%s\n' "${loads[@]}" | sort -g | sed -n "$(( (${#loads[@]} + 1) / 2 ))p")
    fi
    printf '  %-12s %-45s %8s  (%s bytes)\n' "$v" "${vf#"$CACHE"/}" "$med" "$(wc -c < "$vf")"
done
