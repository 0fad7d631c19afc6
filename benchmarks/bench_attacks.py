"""Benchmark: the attacks of ``snpgen_core.evaluation.attacks`` on planted cases over real and simulated cohorts.

Each cohort (``../shared/data`` 1000 Genomes AGBL4, every 4th SNP, 2,504 x 1,013; the 805 Yelmen SNPs, 2,504 x
805; an msprime cohort, 2,504 x 1,000) is split at random (seeded) into 1,500 training, 500 holdout and 504 fresh
real individuals. Releases: the fresh real sample (a perfect generator), a verbatim copy of the training
individuals, and noisy copies with 20% / 40% of genotypes redrawn from the training allele frequencies (an
overfitted model). Shadow models: 4 "generators" on random halves, a bootstrap copier (overfit), a noisy copier and
independent per-SNP draws (private). Prints one Markdown row per case, and the provenance check of the shipped
AGBL4 GWAS (PLINK NMISS 2,504).

    .venv/bin/python benchmarks/bench_attacks.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def cohorts(data: Path) -> dict[str, np.ndarray]:
    from snpgen_core.evaluation.distances import impute_missing
    from snpgen_core.io.plink import read_plink
    from snpgen_core.simulate import simulate_cohort

    out = {}
    for name, prefix, step in (("AGBL4", data / "1000g_agbl4" / "agbl4", 4), ("805", data / "1000g_805" / "real", 1)):
        if Path(f"{prefix}.bed").exists():
            g = read_plink(prefix)
            x = g.dosages[:, ::step]
            out[name] = impute_missing(x, g.a1_frequency()[::step], seed=0) if (x < 0).any() else x
    out["msprime"] = simulate_cohort(n=2504, n_snps=1000, seed=21).genotypes.dosages
    return out


def main() -> None:
    from snpgen_core.evaluation.attacks import (attribute_inference, copier, domias_membership, draw_independent,
                                                independent_snps, kinship_replay, noisy_copy, resample,
                                                shadow_model_attack)
    from snpgen_core.io.gwas import panel_provenance, read_gwas

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    args = parser.parse_args()
    print(machine())
    gwas_file = args.data / "1000g_agbl4" / "gwas_case.assoc.logistic"
    if gwas_file.exists():
        g = read_gwas(gwas_file)
        print(f"\nAGBL4 GWAS {g.format}: largest {g.n_samples_column} {g.n_samples_max}; with 2,003 outside the "
              f"holdout: {panel_provenance(g.n_samples_max, 2003)['warning']}")
    print("\n| cohort | release | DOMIAS AUC (95% CI); holdout-as-release | DOMIAS TPR@1%FPR; ref | attribute gap "
          "(95% CI); ref | KING >= 0.354 (null 95%, p) | KING >= 0.177 (null 95%, p) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    shadow_rows = []
    for name, x in cohorts(args.data).items():
        perm = np.random.default_rng(0).permutation(len(x))
        train, hold, fresh = x[perm[:1500]], x[perm[1500:2000]], x[perm[2000:]]
        releases = {"fresh real": fresh, "verbatim copy": train[::-1].copy(),
                    "noisy copy 20%": noisy_copy(train, 0.2, 3), "noisy copy 40%": noisy_copy(train, 0.4, 3)}
        for label, s in releases.items():
            d = domias_membership(train, hold, s, seed=0)
            auc, tpr = d["domias_auc"], d["domias_tpr_at_1pct_fpr"]
            a = attribute_inference(train, hold, s, seed=0, device="cpu")
            k = kinship_replay(train, hold, s, device="cpu")
            kin = [f"{m.value:.0f} ({m.details['ci'][0]}-{m.details['ci'][1]}, p {m.details['p_value']:.2g})"
                   for m in (k["kinship_duplicates"], k["kinship_first_degree"])]
            print(f"| {name} | {label} | {auc.value:.3f} ({auc.details['ci'][0]:.3f}-{auc.details['ci'][1]:.3f}); "
                  f"{auc.reference:.3f} | {tpr.value:.3f}; {tpr.reference:.3f} | {a.value:+.3f} "
                  f"({a.details['ci'][0]:+.3f} to {a.details['ci'][1]:+.3f}); {a.reference:+.3f} | {kin[0]} | {kin[1]} |")
        noisy_resample = lambda g, n, seed: resample(g, n, seed, noise=0.3)  # noqa: E731
        for label, (fit, sample) in {"bootstrap copier": (copier, resample), "noisy copier 30%": (copier,
                                     noisy_resample), "independent SNPs": (independent_snps, draw_independent)}.items():
            t0 = time.perf_counter()
            r = shadow_model_attack(train, hold, fit, sample, n_shadow=4, seed=0, device="cpu")
            shadow_rows.append(f"| {name} | {label} | {r.value:.3f} ({r.details['ci'][0]:.3f}-{r.details['ci'][1]:.3f})"
                               f" | {r.details['tpr_at_fpr']:.3f} | {time.perf_counter() - t0:.1f} s |")
    print("\n| cohort | shadow generator (4 on halves of 1,500) | AUC (95% CI) | TPR@1%FPR | attack time |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(shadow_rows))


if __name__ == "__main__":
    main()
