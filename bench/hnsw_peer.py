#!/usr/bin/python3
"""hnsw_peer.py — the peers of bench/hnsw.sh: Debian's python3-hnswlib and
python3-faiss (IndexHNSWFlat) on a data set written by `bench_hnsw gen`.

    /usr/bin/python3 bench/hnsw_peer.py --lib hnswlib|faiss --data FILE
        [--M 16] [--efc 200] [--ef 10,16,32,...] [--reps 3]

Single-threaded like the C side: hnswlib's num_threads=1 for add_items and
knn_query, FAISS's omp_set_num_threads(1). Queries go in one batch per ef
(the library loops over them in C++); each ef is timed --reps times and the
best is printed. Output lines, the same as bench_hnsw's:
    build <seconds> rss_mb <resident growth> index_mb -1 kernel <library> cpu <seconds>
    ef <ef> recall <recall@10> qps <queries per second> cpu_qps <per second of CPU time>
Run with /usr/bin/python3 (the Debian packages are not on pyenv's python)."""
import argparse
import sys
import time

import numpy as np


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / (1 << 20)


def load(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw[:8].tobytes() != b"YHNSWDS1":
        sys.exit("hnsw_peer.py: %s is not a bench_hnsw data set" % path)
    n, nq, dim, gk = (int(x) for x in raw[8:24].view(np.uint32))
    off = 24
    base = raw[off:off + 4 * n * dim].view(np.float32).reshape(n, dim)
    off += 4 * n * dim
    q = raw[off:off + 4 * nq * dim].view(np.float32).reshape(nq, dim)
    off += 4 * nq * dim
    gt = raw[off:off + 4 * nq * gk].view(np.int32).reshape(nq, gk)
    return base, q, gt


def recall(res, gt, k=10):
    hit = sum(len(set(res[i, :k].tolist()) & set(gt[i, :k].tolist())) for i in range(len(res)))
    return hit / (len(res) * k)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=["hnswlib", "faiss"], default="hnswlib")
    ap.add_argument("--data", required=True)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--ef", default="10,12,14,16,20,24,32,48,64,96,128")
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    base, q, gt = load(a.data)
    base = np.ascontiguousarray(base)
    q = np.ascontiguousarray(q)
    n, dim = base.shape
    efs = [int(e) for e in a.ef.split(",") if e]

    r0 = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    if a.lib == "hnswlib":
        import hnswlib
        idx = hnswlib.Index(space="ip", dim=dim)
        idx.init_index(max_elements=n, ef_construction=a.efc, M=a.M, random_seed=100)
        idx.set_num_threads(1)
        idx.add_items(base, np.arange(n), num_threads=1)
    else:
        import faiss
        faiss.omp_set_num_threads(1)
        idx = faiss.IndexHNSWFlat(dim, a.M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = a.efc
        idx.add(base)
    build, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    print("build %.3f rss_mb %.1f index_mb -1 kernel %s cpu %.3f" % (build, rss_mb() - r0, a.lib, build_cpu), flush=True)

    for ef in efs:
        best = best_cpu = 1e30
        res = None
        for _ in range(a.reps):
            if a.lib == "hnswlib":
                idx.set_ef(max(ef, 10))
                s0, c0 = time.perf_counter(), time.process_time()
                labels, _ = idx.knn_query(q, k=10, num_threads=1)
            else:
                idx.hnsw.efSearch = max(ef, 10)
                s0, c0 = time.perf_counter(), time.process_time()
                _, labels = idx.search(q, 10)
            el, cel = time.perf_counter() - s0, time.process_time() - c0
            best = min(best, el)
            best_cpu = min(best_cpu, cel)
            res = labels
        print("ef %d recall %.4f qps %.0f cpu_qps %.0f" % (ef, recall(np.asarray(res), gt), len(q) / best, len(q) / best_cpu),
              flush=True)


if __name__ == "__main__":
    main()
