#!/usr/bin/env bash
# gemm.sh — f32 GEMM speed, yan_sgemm side by side with PyTorch (OpenBLAS).
#
#   bench/gemm.sh [--quick] [--reps N] [--rounds N]
#
# The products the trainer runs (build/bench_gemm --list, bench/gemm.c): for
# each linear layer (in, out) at T = 2048 tokens, forward y = x W^T (ta=0
# tb=1), dx = dy W (0 0) and dW += dy^T x (1 0, beta 1), on 1 and 2 threads;
# and the per-head attention products (256x256x64 Q K^T, 256x64x256 P V and
# P^T dO) on one thread (yan_sgemm_1; the trainer runs heads in parallel).
#
# The same products in PyTorch: torch.mm(x, W.t(), out=y), torch.mm(dy, W,
# out=dx), dW.addmm_(dy.t(), x), run by /usr/bin/python3 (Debian's torch,
# whose BLAS is libblas.so.3) with OMP_NUM_THREADS = torch.set_num_threads =
# the thread count and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, so
# OpenBLAS picks its own kernels. The script checks that torch's process
# really maps OpenBLAS; if it maps the reference BLAS it restarts torch with
# LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp and says so.
#
# Measurements are paired: for each product, yan (one bench_gemm run) and
# torch (a resident python process per thread count) run back to back,
# --rounds times (default 3, alternating which goes first), each run the best
# of --reps (default 2) timed loops of >= 0.2 s. The table shows the best of
# each side. (The machine is shared with other jobs that come and go; pairing
# puts both sides under the same load, and the best of several rounds is the
# closest to each library's unloaded speed.)
# Env: BUILD (default <repo>/build), PYTHON (default /usr/bin/python3).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="${BUILD:-$ROOT/build}"
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
PY="${PYTHON:-/usr/bin/python3}"
QUICK=""
REPS=2
ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=--quick ;;
        --reps) REPS="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        *) echo "usage: bench/gemm.sh [--quick] [--reps N] [--rounds N]" >&2; exit 2 ;;
    esac
    shift
done

BENCH="$B/bench_gemm"
if ! make -s -j2 -C "$ROOT" BUILD="$B" "$BENCH" >&2; then
    [ -x "$BENCH" ] || { echo "gemm.sh: build failed" >&2; exit 1; }
    echo "WARNING the build failed; timing the existing $BENCH, which may be stale"
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/yan-gemmbench.XXXXXX")"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# The PyTorch side: prints what it runs on, then "# ready"; then for each
# product line on stdin (layout ta tb M N K threads) prints bench_gemm's
# columns (layout ta tb M N K threads ms GFLOP/s).
cat > "$TMP/peer.py" <<'EOF'
import sys, time, torch
threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
torch.mm(torch.randn(64, 64), torch.randn(64, 64))  # loads the BLAS
libs = sorted({l.split()[-1] for l in open('/proc/self/maps') if 'blas' in l or 'lapack' in l})
print('# torch %s, %d threads, BLAS: %s' % (torch.__version__, torch.get_num_threads(), ' '.join(libs)))
if not any('openblas' in l for l in libs):
    print('# NOT-OPENBLAS')
print('# ready', flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    f = line.split()
    layout, ta, tb, M, N, K = f[0], int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[5])
    # the operands stored as the trainer holds them; the views give op(A), op(B)
    A = torch.rand(K, M) - 0.5 if ta else torch.rand(M, K) - 0.5
    Bm = torch.rand(N, K) - 0.5 if tb else torch.rand(K, N) - 0.5
    C = torch.rand(M, N) - 0.5
    a = A.t() if ta else A
    b = Bm.t() if tb else Bm
    run = (lambda: C.addmm_(a, b)) if layout == 'dw' else (lambda: torch.mm(a, b, out=C))
    best = 1e30
    for r in range(reps + 1):  # the first warms up
        n, t0 = 0, time.perf_counter()
        while True:
            run()
            n += 1
            t = time.perf_counter() - t0
            if t >= 0.2:
                break
        if r > 0:
            best = min(best, t / n)
    print('%-4s %d %d %5d %5d %5d %d %9.3f %7.1f' % (layout, ta, tb, M, N, K, threads, best * 1e3,
                                                     2.0 * M * N * K / best / 1e9), flush=True)
EOF

# start_peer T [env...]: torch on T threads behind fds PIN_T (its stdin) and
# POUT_T (its stdout); prints its header lines; returns 1 if not on OpenBLAS
start_peer() {
    local t="$1"; shift
    mkfifo "$TMP/in$t" "$TMP/out$t"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$t" "$@" \
        "$PY" "$TMP/peer.py" "$t" "$REPS" < "$TMP/in$t" > "$TMP/out$t" &
    PIDS+=($!)
    local fin fout line ok=0
    exec {fin}>"$TMP/in$t" {fout}<"$TMP/out$t"
    eval "PIN_$t=$fin POUT_$t=$fout"
    while IFS= read -r line <&"$fout"; do
        [ "$line" = "# ready" ] && break
        case "$line" in "# NOT-OPENBLAS") ok=1 ;; *) echo "$line" ;; esac
    done
    return $ok
}
stop_peer() { # T
    local fin fout
    eval "fin=\$PIN_$1 fout=\$POUT_$1"
    exec {fin}>&- {fout}<&-
    rm -f "$TMP/in$1" "$TMP/out$1"
}

have_torch=1
if ! "$PY" -c 'import torch' 2>/dev/null; then
    have_torch=0
    echo "SKIP torch: $PY cannot import torch (scripts/deps.sh bench); torch columns are '-'"
else
    for t in 1 2; do
        if ! start_peer "$t"; then
            echo "NOTE torch does not map OpenBLAS by default; restarting it with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp"
            stop_peer "$t"
            start_peer "$t" LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp ||
                echo "WARNING torch is still not on OpenBLAS: the torch column is not OpenBLAS"
        fi
    done
fi

"$BENCH" $QUICK --list > "$TMP/list.txt" || { echo "gemm.sh: bench_gemm --list failed" >&2; exit 1; }
echo "# $("$BENCH" --layout fwd --shape 1x1x1 --threads 1 --reps 0 | head -1 | sed 's/^# //'); $ROUNDS paired rounds, best of $REPS runs each"

yan_run() { # layout M N K threads -> GFLOP/s
    "$BENCH" --threads "$5" --reps "$REPS" --layout "$1" --shape "$2x$3x$4" | tail -1 | awk '{print $9}'
}
torch_run() { # threads product-line -> GFLOP/s
    local fin fout out
    eval "fin=\$PIN_$1 fout=\$POUT_$1"
    echo "$2" >&"$fin"
    IFS= read -r out <&"$fout"
    echo "$out" | awk '{print $9}'
}
better() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a + 0 > b + 0) ? a : b }'; }

printf "%-5s %2s %2s %5s %5s %5s %3s %9s %9s %6s\n" prod ta tb M N K thr yan torch ratio
printf "%-5s %2s %2s %5s %5s %5s %3s %9s %9s %6s\n" "" "" "" "" "" "" "" GFLOP/s GFLOP/s yan/t
n=0; logsum=0; lowest=""
while read -r layout ta tb M N K th; do
    y=""; t=""
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            y=$(better "$(yan_run "$layout" "$M" "$N" "$K" "$th")" "$y")
            [ "$have_torch" = 1 ] && t=$(better "$(torch_run "$th" "$layout $ta $tb $M $N $K $th")" "$t")
        else
            [ "$have_torch" = 1 ] && t=$(better "$(torch_run "$th" "$layout $ta $tb $M $N $K $th")" "$t")
            y=$(better "$(yan_run "$layout" "$M" "$N" "$K" "$th")" "$y")
        fi
    done
    ratio=-
    if [ -n "$t" ]; then
        ratio=$(awk -v a="$y" -v b="$t" 'BEGIN { printf "%.2f", a / b }')
        n=$((n + 1))
        logsum=$(awk -v s="$logsum" -v r="$ratio" 'BEGIN { print s + log(r) }')
        lowest=$(awk -v l="$lowest" -v r="$ratio" 'BEGIN { print (l == "" || r + 0 < l + 0) ? r : l }')
    fi
    printf "%-5s %2s %2s %5d %5d %5d %3d %9.1f %9s %6s\n" "$layout" "$ta" "$tb" "$M" "$N" "$K" "$th" "$y" "${t:--}" "$ratio"
done < "$TMP/list.txt"
[ "$n" -gt 0 ] && awk -v n="$n" -v s="$logsum" -v l="$lowest" \
    'BEGIN { printf "# %d products: geometric mean ratio yan/torch %.2f, lowest %.2f\n", n, exp(s / n), l }'
exit 0
