#!/usr/bin/env bash
# test_webchat.sh — the chat page of `yan serve` (GET /) in a real browser: headless
# Debian Chromium driven by npm playwright-core (tests/peers/webchat.mjs), against two
# servers on a small random-weight model (build/tools/mkmodel) on free loopback ports:
#  - no API key (and --seed): the model list loads; a system prompt, temperature and max
#    tokens are set, a message is sent (button) and a second one (Enter); the answer
#    streams (the text grows through several states and ends equal to the same request
#    without streaming), a tokens/s figure appears live and at the end, both turns stay
#    in the conversation and in the second request; settings survive a reload; Stop
#    mid-answer keeps the partial answer as history, New chat mid-answer leaks nothing
#    into the new chat; an empty temperature field means the server's default;
#  - --api-key: without a key the page says so and where to enter it (status line and
#    a 401 error bubble; the message goes back into the input box), a wrong key is
#    reported, with the key entered the chat works;
#  - both: no console errors, page errors, failed or external requests.
# Screenshots are kept in the test's temporary folder (its path is printed).
# SKIP when chromium or playwright-core cannot be installed (scripts/deps.sh test,
# scripts/peers.sh playwright).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
VOCAB=$ROOT/models/kjv-8k.tokenizer.json
MKMODEL=${MKMODEL:-$ROOT/build/tools/mkmodel}
CHROMIUM=${YAN_CHROMIUM:-/usr/bin/chromium}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/yan-webchat.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null; done
  wait 2> /dev/null
  # keep the screenshots (and on failure the logs); drop the model
  rm -f "$tmp"/*.gguf
  if [ "$fail" -eq 0 ]; then find "$tmp" -type f ! -name '*.png' -delete; fi
  rmdir "$tmp" 2> /dev/null
}
trap cleanup EXIT
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

if [ ! -x "$CHROMIUM" ]; then
  skip "chromium is not installed ($CHROMIUM; scripts/deps.sh test): the browser test of the chat page"
  finish
fi
if ! command -v node > /dev/null || ! bash "$ROOT/scripts/peers.sh" playwright > "$tmp/peers.log" 2>&1; then
  skip "playwright-core not installable (scripts/peers.sh playwright: $(tail -n 1 "$tmp/peers.log" 2> /dev/null)): the browser test of the chat page"
  finish
fi

make -s -C "$ROOT" -j2 build/yan build/tools/mkmodel > "$tmp/make.log" 2>&1
if [ ! -x "$YAN" ] || [ ! -x "$MKMODEL" ]; then bad "build: yan and mkmodel ($(tail -c 300 "$tmp/make.log"))"; finish; fi
# big enough that an answer takes a few hundred ms on one thread: the stream is seen growing
M=$tmp/m.gguf
if ! "$MKMODEL" --arch llama --dim 256 --layers 6 --heads 4 --kv-heads 2 --ff 768 --type f32 --vocab "$VOCAB" \
     -o "$M" > "$tmp/mk.log" 2>&1; then
  bad "mkmodel writes a model ($(tail -c 300 "$tmp/mk.log"))"
  finish
fi

# start NAME ARGS...: a server on a free port; sets NAME_port
start() {
  local name=$1; shift
  "$YAN" serve "$M" "$@" --port 0 --threads 1 --parallel 2 > "$tmp/$name.out" 2> "$tmp/$name.err" &
  local pid=$! port=""
  PIDS+=("$pid")
  for _ in $(seq 1 400); do
    port=$(grep '"event":"listening"' "$tmp/$name.err" 2> /dev/null | grep -o '"port":[0-9]*' | head -1 | cut -d: -f2)
    [ -n "$port" ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.05
  done
  printf -v "${name}_port" '%s' "$port"
  [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/health" > /dev/null
}
KEY=sk-web-$RANDOM$RANDOM
if ! start O --seed 7 --ctx 4096 || ! start K --api-key "$KEY"; then
  bad "servers start ($(tail -c 300 "$tmp/O.err" "$tmp/K.err" 2> /dev/null))"
  finish
fi
ok "two servers (one with --api-key) on free loopback ports"

timeout 90 node "$ROOT/tests/peers/webchat.mjs" "http://127.0.0.1:$O_port" "http://127.0.0.1:$K_port" "$KEY" "$tmp" > "$tmp/web.out" 2>&1
rc=$?
sed 's/^/  /' "$tmp/web.out" | grep -v '^  ok ' | grep -v 'passed, .* failed'
p=$(grep -c '^ok ' "$tmp/web.out"); f=$(grep -c '^FAIL ' "$tmp/web.out")
pass=$((pass + p)); fail=$((fail + f))
echo "ok   chat page in Chromium: $p checks passed, $f failed"
grep -q ' passed, 0 failed$' "$tmp/web.out" || bad "the browser run ended cleanly (exit $rc: $(tail -c 300 "$tmp/web.out"))"
check "the page's chat requests are logged with status 200" grep -q '"endpoint":"/v1/chat/completions","status":200' "$tmp/O.err"
check "the key server never logs the key" bash -c "! grep -q -- '$KEY' '$tmp/K.err'"
if [ -s "$tmp/webchat.png" ]; then
  echo "screenshots: $tmp/webchat.png $tmp/webchat-key.png"
else
  bad "a screenshot was saved"
fi
finish
