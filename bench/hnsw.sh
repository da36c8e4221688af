#!/usr/bin/env bash
# hnsw.sh — yan's HNSW index (src/rag/hnsw.c) against hnswlib (and FAISS
# IndexHNSWFlat with --faiss) on the same vectors, single-threaded.
#
#   bench/hnsw.sh [--quick] [--faiss] [--rounds N] [--reps N] [--sets easy,hard]
#
# Data (bench/hnsw.c, generated once into .cache/bench-hnsw/ and shared by
# both sides): 100,000 unit vectors of dimension 384 and 1,000 queries, exact
# top-100 by brute force as ground truth;
#   easy  1000 Gaussian clusters (each neighbourhood sits inside one cluster);
#   hard  10 wide clusters with a power-law spectrum (neighbourhoods inside
#         large anisotropic clouds, closer to real text embeddings).
# --quick uses 20,000 vectors (a smoke test of a minute or two).
#
# Each side builds with M = 16, efConstruction = 200 on one thread (yan:
# build/bench_hnsw; hnswlib / FAISS: bench/hnsw_peer.py under Debian's
# /usr/bin/python3), then sweeps efSearch, timing all queries --reps times
# (default 3) one thread, best kept. --rounds (default 1) repeats the whole
# build + sweep for each side, alternating which goes first; the table shows
# the best build time and the best QPS at each ef over the rounds. The
# machine is shared with other jobs: the load average is printed before and
# after, and the best of several runs is the closest to each library's
# unloaded speed.
#
# Sides: yan (f32 vectors), yan-sq8 (an int8 copy walks the graph, the f32
# vectors rank the candidates: more memory, faster searches), hnswlib.
# Table columns: build seconds (wall, and CPU), resident memory growth during
# the build (MB), and for recall@10 targets 0.95 and 0.99 the smallest swept
# ef that reaches the target with its queries/s (wall and per CPU second),
# then yan's QPS over hnswlib's.
# Env: BUILD (default <repo>/build), PYTHON (default /usr/bin/python3).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="${BUILD:-$ROOT/build}"
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
PY="${PYTHON:-/usr/bin/python3}"
N=100000
ROUNDS=1
REPS=3
FAISS=0
SETS="easy,hard"
EF="10,12,14,16,18,20,24,28,32,40,48,64,80,96,128,160,192,256,320,384,512"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) N=20000; REPS=2 ;;
        --faiss) FAISS=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --reps) REPS="$2"; shift ;;
        --sets) SETS="$2"; shift ;;
        *) echo "usage: bench/hnsw.sh [--quick] [--faiss] [--rounds N] [--reps N] [--sets easy,hard]" >&2; exit 2 ;;
    esac
    shift
done

make -s -j2 -C "$ROOT" BUILD="$B" "$B/bench_hnsw" >&2 || { echo "hnsw.sh: build failed" >&2; exit 1; }
BENCH="$B/bench_hnsw"
"$PY" -c "import hnswlib, numpy" 2>/dev/null || { echo "hnsw.sh: $PY lacks hnswlib/numpy (apt install python3-hnswlib)" >&2; exit 1; }
if [ "$FAISS" = 1 ]; then "$PY" -c "import faiss" 2>/dev/null || { echo "hnsw.sh: $PY lacks faiss (apt install python3-faiss)" >&2; exit 1; }; fi
CACHE="$ROOT/.cache/bench-hnsw"
mkdir -p "$CACHE"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/yan-hnswbench.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a SETLIST <<< "$SETS"
for set in "${SETLIST[@]}"; do
    data="$CACHE/$set-$N.bin"
    if [ ! -f "$data" ]; then
        "$BENCH" gen --set "$set" --n "$N" --nq 1000 --dim 384 --out "$data" || exit 1
    fi
    sides=(yan yan-sq8 hnswlib)
    [ "$FAISS" = 1 ] && sides+=(faiss)
    for ((r = 1; r <= ROUNDS; r++)); do
        order=("${sides[@]}")
        if ((r % 2 == 0)); then order=(hnswlib yan-sq8 yan); [ "$FAISS" = 1 ] && order+=(faiss); fi
        for side in "${order[@]}"; do
            echo "# $set round $r: $side (load $(cut -d' ' -f1 /proc/loadavg))" >&2
            case "$side" in
                yan|yan-sq8)
                    sq8=0; [ "$side" = yan-sq8 ] && sq8=1
                    "$BENCH" run --data "$data" --M 16 --efc 200 --ef "$EF" --reps "$REPS" --threads 1 --sq8 $sq8 \
                        > "$OUT/$set.$side.$r" || exit 1 ;;
                *)
                    "$PY" "$ROOT/bench/hnsw_peer.py" --lib "$side" --data "$data" --M 16 --efc 200 --ef "$EF" --reps "$REPS" \
                        > "$OUT/$set.$side.$r" || exit 1 ;;
            esac
        done
    done
done

"$PY" - "$OUT" "$N" "$SETS" <<'EOF2'
import glob, os, sys
out, n, sets = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
SIDES = ("yan", "yan-sq8", "hnswlib", "faiss")
def parse(path):
    b = {"ef": {}}
    for line in open(path):
        f = line.split()
        if f and f[0] == "build":
            b["build"], b["rss"], b["cpu"] = float(f[1]), float(f[3]), float(f[f.index("cpu") + 1])
        elif f and f[0] == "ef":
            b["ef"][int(f[1])] = (float(f[3]), float(f[5]), float(f[7]))
    return b
print("# %d vectors x 384, 1000 queries, M=16 efConstruction=200, one thread; best of the runs." % n)
print("# QPS = queries per wall-clock second (cpuQPS: per second of CPU time, less sensitive to the load);")
print("# ef = the smallest swept efSearch whose recall@10 reaches the target.")
print("%-4s %-8s %7s %6s %6s | %-20s | %-20s | %s" % ("set", "library", "build s", "cpu s", "mem MB",
      "recall>=0.95: ef QPS", "recall>=0.99: ef QPS", "QPS over hnswlib's"))
print("%-4s %-8s %7s %6s %6s | %-20s | %-20s | %s" % ("", "", "", "", "", "     (and cpuQPS)", "     (and cpuQPS)",
      "@0.95 (cpu) @0.99 (cpu)"))
for s in sets:
    res = {}
    for side in SIDES:
        runs = [parse(p) for p in sorted(glob.glob(os.path.join(out, "%s.%s.*" % (s, side))))]
        runs = [r for r in runs if "build" in r]
        if not runs:
            continue
        best = {k: min(r[k] for r in runs) for k in ("build", "cpu", "rss")}
        best["ef"] = {}
        for r in runs:
            for ef, (rec, qps, cq) in r["ef"].items():
                old = best["ef"].get(ef, (rec, 0, 0))
                best["ef"][ef] = (rec, max(qps, old[1]), max(cq, old[2]))
        res[s + side] = best
    def at(side, target):
        e = res[s + side]["ef"]
        for ef in sorted(e):
            if e[ef][0] >= target:
                return ef, e[ef][1], e[ef][2]
        return None, None, None
    for side in SIDES:
        if s + side not in res:
            continue
        r = res[s + side]
        cols = []
        for t in (0.95, 0.99):
            ef, qps, cq = at(side, t)
            cols.append("%4d %7.0f (%6.0f)" % (ef, qps, cq) if ef else "   - not reached    ")
        ratio = ""
        if side.startswith("yan") and s + "hnswlib" in res:
            rs = []
            for t in (0.95, 0.99):
                a, b = at(side, t), at("hnswlib", t)
                rs.append("%.2fx (%.2fx)" % (a[1] / b[1], a[2] / b[2]) if a[0] and b[0] else "-")
            ratio = " ".join(rs)
        print("%-4s %-8s %7.1f %6.1f %6.1f | %s | %s | %s" % (s, side, r["build"], r["cpu"], r["rss"], cols[0], cols[1], ratio))
    if s + "hnswlib" in res:
        h = res[s + "hnswlib"]
        for side in ("yan", "yan-sq8"):
            if s + side in res:
                y = res[s + side]
                print("%-4s %-8s build %.2fx of hnswlib's (cpu %.2fx), memory %.2fx" % (s, side, y["build"] / h["build"],
                      y["cpu"] / h["cpu"], y["rss"] / h["rss"]))
EOF2
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
