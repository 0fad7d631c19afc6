"""Diagnosis: why a trained run's synthetic cohort is told apart from its training individuals on the top training
PCs (the card's detection AUC), and what a perfect generator would score.

For a run of ``bench_frontier.py --dataset sim`` (its cohort, split and panel), it samples the run's default
generator at the training size and prints, for the synthetic cohort and the real holdout (equal sizes):

- the spread (sd) of their scores on each training PC, relative to the training individuals';
- the variance along training PCs 3-20 split by the distance between the SNP pairs that make it up
  (v' C v = sum over pairs j, k of v_j v_k C_jk, grouped by |j - k| in SNPs along the panel): which range of LD
  the synthetic cohort lacks;
- the detection AUC as the card computes it, then again after rescaling the synthetic scores on PCs 3-20 to the
  holdout's spread (how much of the AUC that spread explains).

    .venv/bin/python benchmarks/diagnose_detection.py --seed 1 [--run-label "window 16 (default)"]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_frontier import _panel_rows, prepare_sim  # noqa: E402

BANDS = [(0, 0), (1, 4), (5, 16), (17, 32), (33, 64), (65, 300), (301, 10**9)]


def band_variance(x: np.ndarray, pca, components) -> list[float]:
    """Variance along training PCs ``components``, summed over them, split by SNP-pair distance (BANDS)."""
    z = np.where(x < 0, np.nan, x.astype(float))
    z = np.nan_to_num((z - pca.mean) / np.where(pca.scale > 0, pca.scale, 1))
    z -= z.mean(0)
    cov = z.T @ z / len(z)
    m = cov.shape[0]
    dist = np.abs(np.arange(m)[:, None] - np.arange(m)[None, :])
    out = np.zeros(len(BANDS))
    for k in components:
        part = np.outer(pca.components[k], pca.components[k]) * cov
        out += [part[(dist >= lo) & (dist <= hi)].sum() for lo, hi in BANDS]
    return out.tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--run-label", default="window 16 (default)")
    ap.add_argument("--work", default="/tmp/snpgen-bench/frontier")
    args = ap.parse_args()
    import torch

    from snpgen_core.evaluation.align import equal_size_rows
    from snpgen_core.evaluation.structure import _pc_sets, classifier_auc, detection_auc, fit_pca
    from snpgen_core.generation import condition_mix
    from snpgen_core.io.plink import read_plink
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    torch.set_num_threads(1)
    spec = prepare_sim(Path(args.work), args.seed)
    label = args.run_label.replace(" ", "_").replace(",", "")
    run = load_run(Path(args.work) / "sim" / "runs" / f"{label}_seed{args.seed}")
    train = read_plink(spec["train"], variants=_panel_rows(spec["train"], run.variants)).dosages
    hold = read_plink(spec["holdout"], variants=_panel_rows(spec["holdout"], run.variants)).dosages
    cond = torch.as_tensor(condition_mix(run.phenotype, len(train), seed=args.seed), dtype=torch.float32)
    syn = run.generator("diffusion").sample(cond, torch.Generator().manual_seed(args.seed), SamplingOptions()).numpy()
    pca = fit_pca(train, 20, seed=args.seed)
    t, h, s = _pc_sets(train, hold, syn, pca, args.seed, 5000)
    print("PC sd / training's, synthetic:", np.round(s.std(0) / t.std(0), 2).tolist())
    print("PC sd / training's, holdout:  ", np.round(h.std(0) / t.std(0), 2).tolist())
    hh, ss = equal_size_rows(hold, syn, args.seed)
    print("variance on PCs 3-20 by SNP-pair distance", [f"{lo}-{hi}" if hi < 10**9 else f"{lo}+" for lo, hi in BANDS])
    for name, x in (("holdout", hh), ("synthetic", ss)):
        print(f"  {name:9s}", np.round(band_variance(x, pca, range(2, 20)), 2).tolist())
    det = detection_auc(train, hold, syn, pca=pca, seed=args.seed)
    rescaled = s.copy()
    mu = s[:, 2:].mean(0)
    rescaled[:, 2:] = mu + (s[:, 2:] - mu) * (h[:, 2:].std(0) / s[:, 2:].std(0))
    print(f"detection AUC {det.value:.3f} (holdout {det.reference:.3f}); with the synthetic PC 3-20 spread "
          f"rescaled to the holdout's: {classifier_auc(t, rescaled, seed=args.seed):.3f}")


if __name__ == "__main__":
    main()
