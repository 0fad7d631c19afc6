"""Benchmark: the shared-segment attack (``evaluation.attacks.shared_segment_membership``) on trained runs and on
planted releases, beside the whole-panel distance rows, and what the detection classifier reads.

Per cohort of ``bench_targets.py`` with a trained run (``run_<config>_<training seed>``): ``--draws`` synthetic
cohorts as large as the training part (the training condition mix, draw k seeded 100 + k, as
``bench_privacy_draws.py``), and planted releases of the same size: haplotype mosaics of the training people
(``attacks.mosaic``: every stretch of m/4, m/10 and m/40 SNPs copied from one random training person), a noisy copy
(20% of genotypes redrawn, ``attacks.noisy_copy``) and independent SNPs (each SNP from its training genotype
frequencies). Each is scored by the shared-segment attack (AUC, 95% CI, TPR at 1% FPR, the length row) and by the
report's distance rows (membership AUC, DCR share, AATS privacy loss). ``--unseen DIR ...`` adds the released
``syn_default`` cohorts of ``bench_unseen.py``'s work folders.

With ``--shapes``, per synthetic draw: the card's detection AUC (training vs synthetic on 20 training PCs), the same
with each synthetic PC score quantile-mapped onto the holdout's scores on that PC (the marginal shapes made real,
the joint left as drawn), and training vs a Gaussian with the holdout's mean and covariance (how much the detector
reads beyond two moments). Rows go to ``benchmarks/results/segments.json``.

    .venv/bin/python benchmarks/bench_segments.py --cohorts sim1,agbl4,805 --config group_mix --draws 2 --shapes
    .venv/bin/python benchmarks/bench_segments.py --cohorts none --unseen /tmp/a29/unseen/s10899
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "segments.json"


def score(train, holdout, synthetic, chrom, seed: int = 0) -> dict:
    """The segment rows and the distance rows of one release (missing calls imputed as the report does)."""
    from snpgen_core.evaluation.attacks import shared_segment_membership
    from snpgen_core.evaluation.distances import impute_from_training
    from snpgen_core.evaluation.privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc

    if any((x < 0).any() for x in (train, holdout, synthetic)):
        train, holdout, synthetic = impute_from_training(train, holdout, synthetic, seed=seed)
    t0 = time.perf_counter()
    seg = shared_segment_membership(train, holdout, synthetic, segment=chrom, seed=seed)
    seconds = time.perf_counter() - t0
    auc, length = seg["segment_membership_auc"], seg["shared_segment_length"]
    data = PrivacyInputs(train, holdout, synthetic, seed=seed)
    return {"segment_auc": auc.value, "segment_auc_ci": auc.details["ci"], "segment_auc_reference": auc.reference,
            "segment_tpr_1pct": auc.details["tpr_at_1pct_fpr"], "length": length.value,
            "length_reference": length.reference, "membership_auc": membership_auc(data).value,
            "dcr_share": dcr_share(data).value, "aats_privacy_loss": aats_privacy_loss(data).value,
            "segment_seconds": round(seconds, 2)}


def shapes(train, holdout, synthetic, seed: int) -> dict:
    """Detection AUCs: as the card computes it, with the synthetic marginals quantile-mapped onto the holdout's,
    and of a Gaussian with the holdout's first two moments."""
    from snpgen_core.evaluation.structure import _pc_sets, classifier_auc, fit_pca

    t, h, s = _pc_sets(train, holdout, synthetic, fit_pca(train, 20, seed=seed), seed, 5000)
    mapped = np.empty_like(s)
    for j in range(s.shape[1]):  # rank in the synthetic scores -> the holdout score of that rank
        ranks = np.argsort(np.argsort(s[:, j]))
        mapped[:, j] = np.sort(h[:, j])[ranks * len(h) // len(s)]
    gauss = np.random.default_rng(seed).multivariate_normal(h.mean(0), np.cov(h.T), len(h))
    return {"detection": classifier_auc(t, s, seed=seed), "detection_reference": classifier_auc(t, h, seed=seed),
            "detection_marginals_mapped": classifier_auc(t, mapped, seed=seed),
            "detection_gaussian_holdout": classifier_auc(t, gauss, seed=seed)}


def releases(prep: dict, run_dir: Path, draws: int) -> dict:
    """{label: (n, m) dosages}: the run's draws and the planted releases."""
    import torch

    from snpgen_core.evaluation.attacks import draw_independent, independent_snps, mosaic, noisy_copy
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    train = prep["train"].dosages
    y = prep["trait"].values[prep["split"].train]
    y = y[~np.isnan(y)]
    out = {}
    if run_dir.exists():
        generator = load_run(run_dir).generator("diffusion")
        for k in range(draws):
            mix = y[np.random.default_rng(100 + k).integers(0, len(y), len(train))]
            out[f"default draw {k}"] = generator.sample(torch.as_tensor(mix, dtype=torch.float32),
                                                        torch.Generator().manual_seed(100 + k),
                                                        SamplingOptions()).numpy()
    complete = np.where(train < 0, 0, train).astype(np.int8)
    m = train.shape[1]
    for stretch in (m // 4, m // 10, m // 40):
        out[f"mosaic of {stretch}-SNP stretches"] = mosaic(complete, len(train), stretch, seed=1)
    out["noisy copy 20%"] = noisy_copy(complete, 0.2, seed=1)
    out["independent SNPs"] = draw_independent(independent_snps(complete, None, 0), len(train), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim1,agbl4,805", help="bench_targets cohorts, or 'none'")
    ap.add_argument("--config", default="group_mix")
    ap.add_argument("--training-seed", type=int, default=1)
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--shapes", action="store_true", help="also the detection AUCs of the run's draws")
    ap.add_argument("--unseen", nargs="*", default=[], type=Path, help="bench_unseen work folders (one cohort each)")
    args = ap.parse_args()
    from bench_targets import WORK, prepare_cohort

    from snpgen_core.io.plink import read_plink

    print(machine())
    print("| cohort | release | segment AUC (95% CI); fresh | TPR@1% | longest shared stretch: release / fresh | "
          "membership AUC | DCR share | AATS loss | attack s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def report(cohort: str, label: str, row: dict) -> None:
        record_row(RESULTS, {"cohort": cohort, "release": label, "config": args.config, "machine": machine(), **row},
                   key=lambda r: (r["cohort"], r["release"], r["config"]))
        tpr = "-" if row["segment_tpr_1pct"] is None else f"{row['segment_tpr_1pct']:.3f}"
        print(f"| {cohort} | {label} | {row['segment_auc']:.3f} ({row['segment_auc_ci'][0]:.3f}-"
              f"{row['segment_auc_ci'][1]:.3f}); {row['segment_auc_reference']:.3f} | {tpr} | {row['length']:.0f} / "
              f"{row['length_reference']:.0f} | {row['membership_auc']:.3f} | {row['dcr_share']:.3f} | "
              f"{row['aats_privacy_loss']:.3f} | {row['segment_seconds']} |"
              + ("" if "detection" not in row else
                 f" detection {row['detection']:.3f} (holdout {row['detection_reference']:.3f}); marginals mapped "
                 f"{row['detection_marginals_mapped']:.3f}; Gaussian holdout {row['detection_gaussian_holdout']:.3f}"),
              flush=True)

    for cohort in [] if args.cohorts == "none" else args.cohorts.split(","):
        prep = prepare_cohort(cohort, WORK)
        train, holdout = prep["train"].dosages, prep["holdout"].dosages
        chrom = prep["train"].variants["chrom"].to_numpy()
        run_dir = WORK / cohort / f"run_{args.config}_{args.training_seed}"
        for k, (label, synthetic) in enumerate(releases(prep, run_dir, args.draws).items()):
            row = score(train, holdout, synthetic, chrom)
            if args.shapes and label.startswith("default"):
                row.update(shapes(train, holdout, synthetic, seed=100 + k))
            report(cohort, label, row)
    for folder in args.unseen:
        released = read_plink(folder / "syn_default")
        keep = set(released.variants["snp"])
        train, holdout = (read_plink(folder / f"cohort.{part}") for part in ("train", "holdout"))
        train, holdout = (g.subset(variants=np.flatnonzero(g.variants["snp"].isin(keep))) for g in (train, holdout))
        if not (train.variants["snp"].to_numpy() == released.variants["snp"].to_numpy()).all():
            raise SystemExit(f"{folder}: the release's SNPs are not the training panel's, in its order")
        from snpgen_core.evaluation.attacks import mosaic

        for label, synthetic in (("default (released)", released.dosages),
                                 ("mosaic of 100-SNP stretches", mosaic(train.dosages, train.n_samples, 100, 1))):
            row = score(train.dosages, holdout.dosages, synthetic, train.variants["chrom"].to_numpy())
            if args.shapes and label.startswith("default"):
                row.update(shapes(train.dosages, holdout.dosages, synthetic, seed=100))
            report(f"unseen {folder.name}", label, row)


if __name__ == "__main__":
    main()
