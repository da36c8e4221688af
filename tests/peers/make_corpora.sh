#!/usr/bin/env bash
# make_corpora.sh — build the tokenizer test texts into ${YAN_CACHE:-<repo>/.cache}/corpora:
#   kjv.txt          King James Bible (Debian bible-kjv: `bible -f Gen1:1-Rev22:21`)
#   zh.txt           Debian fortunes-zh tang300 + song100 + chinese, ANSI escapes and
#                    "%" separator lines removed (GPL-3+: built at test time, never committed)
#   adversarial.txt, unicode_ws.txt, invalid.bin   from tests/peers/gen_adversarial.py
# Idempotent. A corpus whose source is not installed is skipped with a message
# (the tests then print SKIP for it). Exit 0 unless something is broken.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${YAN_CACHE:-$ROOT/.cache}"
OUT="$CACHE/corpora"
mkdir -p "$OUT"
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3

if [ ! -s "$OUT/kjv.txt" ]; then
    if command -v bible >/dev/null 2>&1; then
        bible -f Gen1:1-Rev22:21 > "$OUT/kjv.txt.tmp"
        mv "$OUT/kjv.txt.tmp" "$OUT/kjv.txt"
    else
        echo "make_corpora: bible-kjv is not installed (apt-get install bible-kjv): no kjv.txt" >&2
    fi
fi

if [ ! -s "$OUT/zh.txt" ]; then
    F=/usr/share/games/fortunes
    if [ -f "$F/tang300" ] && [ -f "$F/song100" ] && [ -f "$F/chinese" ]; then
        cat "$F/tang300" "$F/song100" "$F/chinese" |
            perl -pe '1 while s/\e\[[0-9;?]*[A-Za-z]//g; $_ = "" if /^%\r?$/' > "$OUT/zh.txt.tmp"
        if ! iconv -f UTF-8 -t UTF-8 "$OUT/zh.txt.tmp" > /dev/null 2>&1; then
            echo "make_corpora: zh.txt is not valid UTF-8" >&2; rm -f "$OUT/zh.txt.tmp"; exit 1
        fi
        mv "$OUT/zh.txt.tmp" "$OUT/zh.txt"
    else
        echo "make_corpora: fortunes-zh is not installed (apt-get install fortunes-zh): no zh.txt" >&2
    fi
fi

if [ ! -s "$OUT/adversarial.txt" ] || [ ! -s "$OUT/unicode_ws.txt" ] || [ ! -s "$OUT/invalid.bin" ] ||
   [ "$ROOT/tests/peers/gen_adversarial.py" -nt "$OUT/adversarial.txt" ]; then
    "$PY" "$ROOT/tests/peers/gen_adversarial.py" "$OUT"
fi
exit 0
