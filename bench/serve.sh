#!/usr/bin/env bash
# serve.sh — serving throughput and latency of `yan serve` under 1, 4, 8 and
# 16 concurrent streaming clients (bench/serve_load.mjs), and, when
# LLAMA_SERVER=/path/to/llama-server is given, the same load against
# llama-server --parallel 8 on the same GGUF, side by side.
#
#   bench/serve.sh [--quick]          (--quick: 1 and 4 clients, fewer requests)
#   LLAMA_SERVER=/tmp/llamacpp/build/bin/llama-server bench/serve.sh
#
# Model: <cache>/bench-models/small-q8_0.gguf (random weights, dim 512, 8
# layers, vocab 32000; written by build/tools/mkmodel as bench/llm.sh does).
# Both servers: 8 slots (--parallel 8), 2 threads, 1024 tokens of context per
# slot, loopback only. Each level sends max(8, 2 x clients) requests of 64
# generated tokens (ignore_eos) with distinct prompts, bounded at 180 s.
# Reported per level: aggregate generated tokens/s, request latency p50/p99
# and time to first token p50/p99 (seconds).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
cd "$ROOT"

LEVELS="1 4 8 16"
[ "${1:-}" = --quick ] && LEVELS="1 4"
THREADS="${THREADS:-2}"
MAXTOK=64
command -v node > /dev/null || { echo "serve.sh: node is not installed; skipped"; exit 0; }

B="${BUILD:-build}"
make -s -j2 BUILD="$B" "$B/yan" "$B/tools/mkmodel" >&2 || { echo "serve.sh: build failed" >&2; exit 1; }
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
DIR="$CACHE/bench-models"
MODEL="$DIR/small-q8_0.gguf"
mkdir -p "$DIR"
if [ ! -s "$MODEL" ]; then
  echo "serve.sh: writing $MODEL" >&2
  "$B/tools/mkmodel" --arch llama --dim 512 --layers 8 --heads 8 --kv-heads 8 --ff 1408 --ctx 2048 --type q8_0 \
    --vocab models/kjv-8k.tokenizer.json --n-vocab 32000 --scale-out 10 --seed 7 -o "$MODEL" >&2 || exit 1
fi
tmp=$(mktemp -d)
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2> /dev/null; wait 2> /dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

wait_health() { # url pid
  for _ in $(seq 1 600); do
    curl -sf "$1/health" > /dev/null 2>&1 && return 0
    kill -0 "$2" 2> /dev/null || return 1
    sleep 0.1
  done
  return 1
}

run_levels() { # name url model -> $tmp/name.<c>
  for c in $LEVELS; do
    n=$((2 * c)); [ "$n" -lt 8 ] && n=8
    node bench/serve_load.mjs "$2" "$c" "$n" "$MAXTOK" 180 "$3" > "$tmp/$1.$c" 2> "$tmp/$1.$c.err" ||
      echo "serve.sh: $1 at $c clients failed: $(head -c 300 "$tmp/$1.$c.err")" >&2
  done
}

# ----------------------------------------------------------------- yan
"$B/yan" serve "$MODEL" --port 0 --parallel 8 --threads "$THREADS" --ctx 1024 --moderation off \
  2> "$tmp/yan.err" &
SRV=$!
port=""
for _ in $(seq 1 300); do
  port=$(grep -o '"port":[0-9]*' "$tmp/yan.err" 2> /dev/null | head -1 | cut -d: -f2)
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ] || ! wait_health "http://127.0.0.1:$port" "$SRV"; then
  echo "serve.sh: yan serve did not start: $(tail -c 300 "$tmp/yan.err")" >&2
  exit 1
fi
echo "== yan serve $(basename "$MODEL") on 127.0.0.1:$port (--parallel 8, $THREADS threads)" >&2
run_levels yan "http://127.0.0.1:$port" ""
kill -TERM "$SRV"; wait "$SRV" 2> /dev/null; SRV=""

# ----------------------------------------------------- llama-server (peer)
PEER=0
if [ -n "${LLAMA_SERVER:-}" ] && [ -x "${LLAMA_SERVER}" ]; then
  lport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$LLAMA_SERVER" -m "$MODEL" --host 127.0.0.1 --port "$lport" --parallel 8 -c $((8 * 1024)) -t "$THREADS" \
    --no-warmup > "$tmp/llama.out" 2> "$tmp/llama.err" &
  SRV=$!
  if wait_health "http://127.0.0.1:$lport" "$SRV"; then
    echo "== llama-server on 127.0.0.1:$lport (--parallel 8, $THREADS threads)" >&2
    run_levels llama "http://127.0.0.1:$lport" "$(basename "$MODEL")"
    PEER=1
  else
    echo "serve.sh: llama-server did not start: $(tail -c 300 "$tmp/llama.err")" >&2
  fi
  kill -TERM "$SRV" 2> /dev/null; wait "$SRV" 2> /dev/null; SRV=""
elif [ -n "${LLAMA_SERVER:-}" ]; then
  echo "serve.sh: LLAMA_SERVER=$LLAMA_SERVER is not executable; peer skipped" >&2
fi

# ---------------------------------------------------------------- table
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$1" "$2" 2> /dev/null || echo -; }
printf '\n%-8s | %-40s' clients "yan: tok/s  lat p50/p99  ttft p50/p99 (s)"
[ "$PEER" = 1 ] && printf ' | %-40s | %s' "llama-server: tok/s  lat p50/p99  ttft p50/p99" "tok/s ratio"
printf '\n'
for c in $LEVELS; do
  y="$tmp/yan.$c"
  printf '%-8s | %8s  %6s/%-6s  %6s/%-6s   ' "$c" "$(field "$y" tok_s)" "$(field "$y" latency_p50)" "$(field "$y" latency_p99)" \
    "$(field "$y" ttft_p50)" "$(field "$y" ttft_p99)"
  if [ "$PEER" = 1 ]; then
    l="$tmp/llama.$c"
    ratio=$(python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f"{a/b:.2f}x")' \
      "$(field "$y" tok_s)" "$(field "$l" tok_s)" 2> /dev/null || echo -)
    printf '| %8s  %6s/%-6s  %6s/%-6s   | %s' "$(field "$l" tok_s)" "$(field "$l" latency_p50)" "$(field "$l" latency_p99)" \
      "$(field "$l" ttft_p50)" "$(field "$l" ttft_p99)" "$ratio"
  fi
  printf '\n'
done
for f in "$tmp"/yan.* "$tmp"/llama.*; do
  case "$f" in *.err) continue ;; esac
  [ -s "$f" ] && echo "$(basename "$f"): $(cat "$f")"
done
exit 0
