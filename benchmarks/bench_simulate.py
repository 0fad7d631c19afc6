"""Benchmark: ``simulate_cohort`` at the demo size and larger, and ``per_snp_association`` (logistic and linear)
on simulated genotypes; also prints what the default demo cohort looks like (LD, MAF, cases, GWAS top hits).

    .venv/bin/python benchmarks/bench_simulate.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time  # noqa: E402

SIM_SHAPES = [(2_000, 1_000), (10_000, 5_000)]


def demo_summary(cohort) -> dict:
    """Realised properties of a cohort, and how many of the top GWAS hits are causal or in LD (r^2 >= 0.2) with one."""
    x = cohort.genotypes.dosages.astype(float)
    z = (x - x.mean(0)) / x.std(0)
    r2_causal = ((z.T @ z[:, cohort.causal["COLUMN"]] / len(z)) ** 2).max(axis=1)
    top = cohort.gwas["P"].to_numpy().argsort()[:10]
    causal = set(cohort.causal["COLUMN"])
    return {
        **cohort.params["realised"],
        "top10_causal": int(sum(j in causal for j in top)),
        "top10_causal_or_ld": int((r2_causal[top] >= 0.2).sum()),
        "share_of_all_snps_in_ld_with_causal": float((r2_causal >= 0.2).mean()),
        "causal_reaching_5e-8": int((cohort.gwas["P"].to_numpy()[list(causal)] < 5e-8).sum()),
        "min_p": float(cohort.gwas["P"].min()),
    }


def main() -> None:
    from snpgen_core.association import per_snp_association
    from snpgen_core.simulate import simulate_cohort

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for n, m in SIM_SHAPES:
        t_sim, _ = median_time(lambda: simulate_cohort(n=n, n_snps=m, seed=0), args.repeats)
        cohort = simulate_cohort(n=n, n_snps=m, seed=0)
        case = (cohort.phenotypes["CASE"].to_numpy() == 2).astype(float)
        qt = cohort.phenotypes["QT"].to_numpy()
        t_log, _ = median_time(lambda: per_snp_association(cohort.genotypes.dosages, case, "binary"), args.repeats)
        t_lin, _ = median_time(lambda: per_snp_association(cohort.genotypes.dosages, qt, "quantitative"), args.repeats)
        rows.append({"shape": f"{n:,} x {m:,}", "simulate_s": t_sim, "logistic_s": t_log, "linear_s": t_lin,
                     "sequence_length": cohort.params["sequence_length"], **demo_summary(cohort)})
    print(f"machine: {machine()}; median of {args.repeats} runs")
    print("| individuals x SNPs | simulate_cohort (s) | logistic GWAS (s) | linear GWAS (s) | mean adjacent r^2 "
          "| MAF range | case fraction | top-10 hits causal / causal or r^2 >= 0.2 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['shape']} | {r['simulate_s']:.2f} | {r['logistic_s']:.2f} | {r['linear_s']:.3f} | "
              f"{r['mean_adjacent_r2']:.3f} | {r['maf_min']:.3f}-{r['maf_max']:.3f} | {r['case_fraction']:.3f} | "
              f"{r['top10_causal']} / {r['top10_causal_or_ld']} |")
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
