# lib.sh — shared by the end-to-end tests and benchmarks (source it):
# repository paths, the yan binary, the peer cache, check counters and the
# peer vocabulary files. Sets ROOT, CACHE, YAN (absolute), VOC, CORP.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${YAN_CACHE:-$ROOT/.cache}"
YAN="${YAN:-$ROOT/build/yan}"
case "$YAN" in /*) ;; *) YAN="$ROOT/$YAN" ;; esac
VOC="$CACHE/vocab"
CORP="$CACHE/corpora"
export YAN_CACHE="$CACHE"

pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL $*"; }
skip() { echo "SKIP $*"; }
# finish: the closing line every test runner here prints; exit 1 on failure
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

# vocab_file NAME: the file scripts/peers.sh writes for a peer vocabulary
vocab_file() {
    case "$1" in
        r50k_base|cl100k_base|o200k_base) echo "$VOC/$1.tiktoken" ;;
        gpt2) echo "$VOC/gpt2/encoder.json" ;;
        qwen3) echo "$VOC/qwen3/tokenizer.json" ;;
    esac
}
