#!/usr/bin/env bash
# train.sh — one training step (forward, backward, clipping, AdamW) in yan
# and in PyTorch (Debian python3-torch with OpenBLAS) on the same llama
# configurations, side by side, reported as a ratio of tokens/s.
#   bench/train.sh [THREADS] [STEPS]
# PyTorch gets its best setup: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset
# (they force slower kernels), OMP_NUM_THREADS = THREADS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
threads=${1:-2}
steps=${2:-5}
make -s build/bench_train
# the machine's measured f32 GEMM peak: OpenBLAS sgemm 2048^3 through PyTorch
peak=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$threads" /usr/bin/python3 -c "
import time, torch
torch.set_num_threads($threads)
a = torch.randn(2048, 2048); b = torch.randn(2048, 2048); a @ b
best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
print(round(2 * 2048**3 / best / 1e9))")
echo "f32 GEMM peak (OpenBLAS, $threads threads): $peak GFLOP/s"
printf '%-4s %-34s %10s %10s %8s %10s %10s %8s\n' cfg shape "torch t/s" "yan t/s" ratio "torch MB" "yan MB" "yan MFU"
# name layers dim heads ff seq batch vocab
for cfg in "S 4 256 4 704 256 8 4096" "M 6 384 6 1024 256 8 8192"; do
  set -- $cfg
  name=$1; shift
  tl=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$threads" \
       /usr/bin/python3 bench/train_torch.py "$@" "$steps")
  yl=$(build/bench_train "$@" "$steps" "$threads")
  get() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }
  tt=$(get tokens_per_s "$tl"); yt=$(get tokens_per_s "$yl")
  tm=$(get peak_rss_mb "$tl"); ym=$(get peak_rss_mb "$yl")
  gf=$(get gflops "$yl")
  mfu="-"
  [ -n "$peak" ] && mfu=$(awk -v g="$gf" -v p="$peak" 'BEGIN{printf "%.0f%%", 100*g/p}')
  printf '%-4s %-34s %10s %10s %7.2fx %10s %10s %8s\n' "$name" "L$1 C$2 H$3 FF$4 T$5 B$6 V$7" "$tt" "$yt" \
    "$(awk -v a="$yt" -v b="$tt" 'BEGIN{print a/b}')" "$tm" "$ym" "$mfu"
done
