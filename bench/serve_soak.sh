#!/usr/bin/env bash
# serve_soak.sh — a soak run of `yan serve`: 8 concurrent streaming clients
# for SECONDS (default 600) on the bench model, sampling the server's resident
# memory every 10 s. Prints the load summary (requests, errors, tokens/s) and
# the memory samples; "flat" means the last sample is within 10% of the one
# taken after the first minute. Loopback only, bounded in time.
#   bench/serve_soak.sh [SECONDS] [CLIENTS]
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/lib.sh"
cd "$ROOT"
SECS=${1:-600}
C=${2:-8}
B="${BUILD:-build}"
make -s -j2 BUILD="$B" "$B/yan" "$B/tools/mkmodel" >&2 || exit 1
MODEL="$CACHE/bench-models/small-q8_0.gguf"
mkdir -p "$(dirname "$MODEL")"
[ -s "$MODEL" ] || "$B/tools/mkmodel" --arch llama --dim 512 --layers 8 --heads 8 --kv-heads 8 --ff 1408 --ctx 2048 \
    --type q8_0 --vocab models/kjv-8k.tokenizer.json --n-vocab 32000 --scale-out 10 --seed 7 -o "$MODEL" >&2 || exit 1
tmp=$(mktemp -d)
"$B/yan" serve "$MODEL" --port 0 --parallel 8 --threads 2 --ctx 1024 > "$tmp/out" 2> "$tmp/err" &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
port=""
for _ in $(seq 100); do
  port=$(grep -o '"port":[0-9]*' "$tmp/err" 2> /dev/null | head -1 | cut -d: -f2)
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" > /dev/null && break
  sleep 0.2
done
[ -n "$port" ] || { echo "serve_soak: server did not start"; exit 1; }
node bench/serve_load.mjs "http://127.0.0.1:$port" "$C" 1000000 64 "$SECS" > "$tmp/load" 2> "$tmp/load.err" &
LOAD=$!
echo "soak: $C clients for $SECS s against yan serve (pid $SRV); RSS samples in MB:"
samples=()
while kill -0 $LOAD 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$SRV/status 2>/dev/null)
  samples+=("$rss")
  printf '%s ' "$rss"
  sleep 10
done
echo
wait $LOAD
cat "$tmp/load"
kill -0 $SRV 2>/dev/null && echo "server alive at the end" || echo "SERVER DIED"
n=${#samples[@]}
if [ "$n" -gt 7 ]; then
  awk -v a="${samples[6]}" -v b="${samples[$((n-1))]}" 'BEGIN{d=(b-a)/a; printf "memory after 1 min %d MB, at the end %d MB (%+.1f%%): %s\n", a, b, 100*d, (d < 0.1 && d > -0.1) ? "flat" : "NOT flat"}'
fi
