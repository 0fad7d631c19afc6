"""Benchmark: the full evaluation report (``snpgen_core.evaluation.evaluate``), and the cards of the published
peer generators.

1. Time: a simulated cohort (msprime, 2,000 SNPs, CASE phenotype) of 2N individuals; training = 0.8N, holdout =
   0.2N, synthetic = the other N real individuals (a perfect generator), N = 2,500 and 20,000. Median wall time
   of ``evaluate`` over the repeats, and one profiled run split by section.
2. Cards: ``../shared/data/1000g_805/peers/yelmen_gan`` and ``yelmen_rbm`` (Yelmen et al. 2021, 2,500 synthetic
   individuals each) against ``../shared/data/1000g_805/real`` split at random 80/20 (seeded) into training and
   holdout; holdout and synthetic compared at equal size as the metric definitions say.

    .venv/bin/python benchmarks/bench_evaluate.py [--sizes 2500 20000] [--repeats 3] [--threads 1]
                                                  [--out /tmp/snpgen-bench/evaluate]
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, peak_rss_mib  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = (REPO / ".." / "shared" / "data" / "1000g_805").resolve()
KEY_METRICS = [
    "fidelity.allele_frequency_r", "fidelity.allele_frequency_mae", "fidelity.genotype_class_mae",
    "fidelity.hwe_deviation", "fidelity.ld_r", "fidelity.ld_decay_mae", "fidelity.pca_distance",
    "fidelity.knn_precision", "fidelity.knn_recall", "fidelity.fst", "fidelity.detection_auc",
    "privacy.exact_copies", "privacy.dcr_share", "privacy.closer_than_holdout_p1", "privacy.nndr",
    "privacy.aats", "privacy.aats_privacy_loss", "privacy.membership_auc", "privacy.membership_tpr_at_1pct_fpr",
    "privacy.kinship_duplicates", "privacy.kinship_first_degree", "privacy.af_lr_membership_auc",
]
SECTIONS = ["_fidelity", "_association", "_utility", "_privacy", "_plots", "fit_pca", "align_cohorts",
            "check_holdout_distinct"]


def simulated_cohorts(n: int, seed: int = 0):
    from snpgen_core.simulate import simulate_cohort

    t0 = time.perf_counter()
    g = simulate_cohort(n=2 * n, n_snps=2000, seed=seed).genotypes
    took = time.perf_counter() - t0
    order = np.random.default_rng(seed).permutation(2 * n)
    n_train = int(0.8 * n)
    parts = (order[:n_train], order[n_train:n], order[n:])
    return tuple(g.subset(samples=np.sort(p)) for p in parts), took


def profiled(fn) -> tuple[object, float, dict[str, float]]:
    """Run ``fn`` once under cProfile: (result, wall seconds, cumulative seconds per report section)."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    result = prof.runcall(fn)
    wall = time.perf_counter() - t0
    out: dict[str, float] = {}
    for (path, _, name), (_, _, _, cumulative, _) in pstats.Stats(prof).stats.items():
        if "snpgen_core/evaluation" in path and name in SECTIONS:
            out[name.strip("_")] = max(out.get(name.strip("_"), 0.0), round(cumulative, 2))
    return result, wall, out


def bench_time(sizes, repeats: int, seed: int) -> list[dict]:
    from snpgen_core.evaluation import evaluate

    rows = []
    for n in sizes:
        (train, holdout, synthetic), sim_s = simulated_cohorts(n, seed)
        run = lambda: evaluate(train, holdout, synthetic, seed=seed)  # noqa: E731
        # the last run is profiled for the per-section split (cProfile adds little to numpy-bound work)
        _, runs = median_time(run, repeats - 1) if repeats > 1 else (None, [])
        report, wall, sections = profiled(run)
        runs.append(wall)
        rows.append({"individuals": n, "train": train.n_samples, "holdout": holdout.n_samples,
                     "synthetic": synthetic.n_samples, "snps": train.n_variants, "simulate_s": round(sim_s, 1),
                     "evaluate_median_s": round(statistics.median(runs), 2), "runs_s": [round(r, 2) for r in runs],
                     "sections_s": sections, "overall": report["overall"],
                     "grades": report["provenance"]["grades"], "peak_rss_mib": round(peak_rss_mib())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def peer_cards(out: Path, seed: int) -> dict:
    from snpgen_core.evaluation import evaluate, write_report
    from snpgen_core.io.plink import read_plink
    from snpgen_core.splits import split_samples

    real = read_plink(DATA / "real")
    split = split_samples(real.n_samples, holdout=0.2, seed=seed)
    train, holdout = real.subset(samples=split.train), real.subset(samples=split.holdout)
    cards = {}
    for peer in ("yelmen_gan", "yelmen_rbm"):
        prefix = DATA / "peers" / peer
        synthetic = read_plink(prefix)
        t0 = time.perf_counter()
        report = evaluate(train, holdout, synthetic, seed=seed, sources={
            "training": [str(DATA / f"real{s}") for s in (".bed", ".bim", ".fam")],
            "synthetic": [str(prefix.with_suffix(s)) for s in (".bed", ".bim", ".fam")]})
        took = time.perf_counter() - t0
        write_report(report, out / peer)
        cards[peer] = {"seconds": round(took, 1), "overall": report["overall"],
                       "grades": report["provenance"]["grades"], "sizes": report["provenance"]["sizes"],
                       "metrics": {name: report[name.split(".")[0]].get(name.split(".", 1)[1])
                                   for name in KEY_METRICS}}
        print(f"{peer}: {report['overall']} in {took:.1f} s", flush=True)
    return cards


def markdown(cards: dict) -> str:
    peers = list(cards)
    lines = ["| metric | " + " | ".join(f"{p} (holdout ref)" for p in peers) + " |",
             "| --- |" + " --- |" * len(peers)]

    def cell(m):
        if m is None:
            return "n/a"
        v, r = m["value"], m["reference"]
        fmt = lambda x: "-" if x is None else (f"{x:.0f}" if float(x).is_integer() else f"{x:.4g}")  # noqa: E731
        return f"{fmt(v)} ({fmt(r)}) {m['status']}"

    for name in KEY_METRICS:
        lines.append(f"| {name} | " + " | ".join(cell(cards[p]["metrics"][name]) for p in peers) + " |")
    lines.append("| **overall** | " + " | ".join(f"**{cards[p]['overall']}**" for p in peers) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[2500, 20000])
    ap.add_argument("--repeats", type=int, default=3, help="runs per size (the median is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="limit BLAS/OpenMP/torch threads (0: library defaults)")
    ap.add_argument("--out", default="/tmp/snpgen-bench/evaluate")
    args = ap.parse_args()
    if args.threads:
        # BLAS/OpenMP pools and torch's: on a small machine shared with other jobs, spin-waiting threads cost more
        # than they give; recorded with the results
        import threadpoolctl
        import torch

        limiter = threadpoolctl.threadpool_limits(limits=args.threads)  # noqa: F841 (kept for the whole run)
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)
    result = {"machine": machine(), "threads": args.threads or "default",
              "time": bench_time(args.sizes, args.repeats, args.seed)}
    if not args.skip_peers:
        if not (DATA / "real.bed").exists():
            print(f"{DATA} not found: peer cards skipped")
        else:
            result["peers"] = peer_cards(out, args.seed)
            print(markdown(result["peers"]))
    (out / "bench_evaluate.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out / 'bench_evaluate.json'}")


if __name__ == "__main__":
    main()
