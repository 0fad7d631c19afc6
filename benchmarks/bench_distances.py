"""Benchmark: exact nearest-neighbour L1 distances, 20,000 x 20,000 individuals x 2,000 SNPs, against a bare
float32 matrix product of the same shape ((20,000 x 4,000) @ (4,000 x 20,000)) timed in the same run.

Nearest-1 and nearest-2 searches (``snpgen_core.evaluation.distances.nearest_neighbours``) and the bare products
(torch, the backend the search uses, and numpy's BLAS for comparison) are interleaved run by run, so that drift on
a shared machine hits them alike; medians of ``--repeats`` runs. Peak memory of one nearest-2 search is measured
in a fresh subprocess (VmHWM) beside the inputs' own size. Genotypes: seeded Binomial(2, p) with U-shaped allele
frequencies (Beta(0.4, 0.4) clipped to [0.01, 0.99]), queries and reference independent.

    .venv/bin/python benchmarks/bench_distances.py [--n 20000] [--m 2000] [--repeats 3] [--device auto] [--kinship]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, peak_rss_mib  # noqa: E402


def cohort(n: int, m: int, seed: int) -> np.ndarray:
    """(n, m) int8 dosages, made in row blocks so that generating them does not dominate peak memory."""
    rng = np.random.default_rng(seed)
    p = np.clip(rng.beta(0.4, 0.4, size=m), 0.01, 0.99)
    out = np.empty((n, m), np.int8)
    for s in range(0, n, 1000):
        out[s: s + 1000] = rng.binomial(2, p, size=(min(1000, n - s), m))
    return out


def encoding(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x >= 1, x >= 2], axis=1).astype(np.float32)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def check_exact(queries: np.ndarray, reference: np.ndarray, device: str) -> None:
    """The search must be exact before it is timed: 50 queries against a float64 numpy product."""
    from snpgen_core.evaluation.distances import nearest_neighbours

    q = queries[:50]
    full = (q.sum(1, dtype=np.int64)[:, None] + reference.sum(1, dtype=np.int64)[None, :]
            - 2 * np.rint(encoding(q).astype(np.float64) @ encoding(reference).T.astype(np.float64)).astype(np.int64))
    d, _ = nearest_neighbours(q, reference, 2, device=device)
    assert np.array_equal(d, np.sort(full, axis=1)[:, :2]), "nearest_neighbours disagrees with a float64 product"


def peak_child(n: int, m: int, device: str) -> dict:
    """Peak resident memory of a fresh process that builds the inputs and runs one nearest-2 search."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_distances as b, _common; "
        f"from snpgen_core.evaluation.distances import nearest_neighbours; "
        f"q, r = b.cohort({n}, {m}, 1), b.cohort({n}, {m}, 2); before = _common.peak_rss_mib(); "
        f"nearest_neighbours(q, r, 2, device={device!r}); print(before, _common.peak_rss_mib())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    before, after = map(float, out.split()[-2:])
    return {"peak_mib": after, "peak_before_search_mib": before}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="individuals in each set (queries, reference)")
    ap.add_argument("--m", type=int, default=2_000, help="SNPs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--kinship", action="store_true", help="also time one max_kinship scan of the same sets")
    args = ap.parse_args()

    from snpgen_core.evaluation.distances import nearest_neighbours, resolve_device
    from snpgen_core.evaluation.kinship import max_kinship

    dev = resolve_device(args.device)
    queries, reference = cohort(args.n, args.m, 1), cohort(args.n, args.m, 2)
    check_exact(queries, reference, args.device)
    a_np, b_np = encoding(queries), encoding(reference)  # (n, 2m) float32: the bare product's operands
    a_t, b_t = torch.from_numpy(a_np).to(dev), torch.from_numpy(b_np).to(dev)

    def bare_torch():
        torch.mm(a_t, b_t.T)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    bare_torch()  # warm-up: thread pools, cuBLAS handles
    runs = {"bare float32 product, torch": [], "bare float32 product, numpy": [], "nearest 1": [], "nearest 2": []}
    for _ in range(args.repeats):
        runs["bare float32 product, torch"].append(timed(bare_torch))
        runs["bare float32 product, numpy"].append(timed(lambda: a_np @ b_np.T))
        runs["nearest 1"].append(timed(lambda: nearest_neighbours(queries, reference, 1, device=args.device)))
        runs["nearest 2"].append(timed(lambda: nearest_neighbours(queries, reference, 2, device=args.device)))
    if args.kinship:
        runs["max KING kinship (1 run)"] = [timed(lambda: max_kinship(queries, reference, device=args.device))]
    del a_t, b_t
    memory = peak_child(args.n, args.m, args.device)

    medians = {k: float(np.median(v)) for k, v in runs.items()}
    bare = medians["bare float32 product, torch"]
    print(f"machine: {machine()}; torch {torch.__version__} on {dev}; numpy {np.__version__}")
    print(f"shape: {args.n:,} queries x {args.n:,} reference individuals x {args.m:,} SNPs "
          f"(product ({args.n:,} x {2 * args.m:,}) @ ({2 * args.m:,} x {args.n:,})); median of {args.repeats} runs, "
          "interleaved\n")
    print("| operation | median (s) | runs (s) | vs bare torch product |")
    print("| --- | --- | --- | --- |")
    for name, v in runs.items():
        print(f"| {name} | {medians[name]:.2f} | {', '.join(f'{t:.2f}' for t in v)} | {medians[name] / bare:.2f}x |")
    inputs_mib = 2 * args.n * args.m / 2**20
    print(f"\npeak RSS of a fresh process running one nearest-2 search: {memory['peak_mib']:.0f} MiB "
          f"({memory['peak_before_search_mib']:.0f} MiB before the search, with the int8 inputs of "
          f"{inputs_mib:.0f} MiB); an n x n float32 distance matrix would be {args.n**2 * 4 / 2**20:.0f} MiB")
    print(json.dumps({"medians_s": medians, "runs_s": runs, **memory, "n": args.n, "m": args.m, "device": str(dev)}))


if __name__ == "__main__":
    main()
