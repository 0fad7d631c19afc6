"""Linkage disequilibrium: r^2 between nearby SNPs, compared as a correlation and as a decay curve by distance.

r^2 is the squared Pearson correlation of two SNPs' dosages over the individuals called at both (pairwise
complete, as PLINK ``--r2`` does; ``snpgen_core.ld.ld_r2_pairs``); a monomorphic SNP gives NaN. Pairs are the SNPs
on the same chromosome at most ``window`` positions apart in the variant table (sorted by position, as a ``.bim``
is). Cost is one banded set of matrix products: O(n * m * window), memory O(n * (block + window)).

Sources: LD r^2 fidelity of synthetic genomes, Yelmen et al. (PLoS Genet 2021) and SNPgen (Lampis et al. 2026);
LD-decay curves, Xie et al. (GigaScience 2026).
"""
from __future__ import annotations

import numpy as np

from ..ld import ld_r2_pairs
from .align import equal_size_rows
from .card import MetricValue, pearson_r, skipped

DEFAULT_WINDOW = 50
N_DECAY_BINS = 12
MIN_PAIRS_PER_BIN = 20


def _three_way_pairs(train, holdout, synthetic, chrom, window, seed):
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    i, j, r2_t = ld_r2_pairs(train, chrom, window)
    _, _, r2_h = ld_r2_pairs(holdout, chrom, window)
    _, _, r2_s = ld_r2_pairs(synthetic, chrom, window)
    # the pairs are those with r^2 in both real cohorts (a SNP monomorphic in the holdout's sample must not change
    # which pairs the synthetic cohort is judged on, nor may the synthetic cohort choose them): a SNP the
    # synthetic cohort never varies carries no LD there, r^2 = 0, instead of leaving its pairs out of its own score
    ok = np.isfinite(r2_t) & np.isfinite(r2_h)
    return i[ok], j[ok], r2_t[ok], r2_h[ok], np.nan_to_num(r2_s[ok], nan=0.0)


def _too_small(train, holdout, synthetic) -> str | None:
    if min(len(train), len(holdout), len(synthetic)) < 3:
        return "needs at least 3 individuals in each cohort"
    if train.shape[1] < 2:
        return "needs at least 2 SNPs"
    return None


def ld_r(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, chrom, *,
         window: int = DEFAULT_WINDOW, seed: int = 0) -> MetricValue:
    """Pearson r, over SNP pairs within ``window``, between a cohort's r^2 values and the training cohort's.

    value: r(r2_synthetic, r2_train); reference: r(r2_holdout, r2_train), holdout and synthetic at equal size.
    Independent per-SNP sampling destroys LD and gives r near 0. details: number of pairs, mean r^2 per cohort.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    _, _, r2_t, r2_h, r2_s = _three_way_pairs(train, holdout, synthetic, chrom, window, seed)
    if len(r2_t) < 3:
        return skipped(f"fewer than 3 polymorphic SNP pairs on one chromosome within {window} SNPs")
    return MetricValue(pearson_r(r2_s, r2_t), pearson_r(r2_h, r2_t), details={
        "n_pairs": int(len(r2_t)), "window": window,
        "mean_r2": {"train": float(r2_t.mean()), "holdout": float(r2_h.mean()), "synthetic": float(r2_s.mean())},
    })


def ld_decay(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, chrom, pos, *,
             window: int = DEFAULT_WINDOW, n_bins: int = N_DECAY_BINS, min_pairs: int = MIN_PAIRS_PER_BIN,
             seed: int = 0) -> MetricValue:
    """LD-decay curves (mean r^2 of the pairs in each physical-distance bin) and their mean absolute difference.

    pos: (m,) base-pair positions. Bins are log-spaced between the shortest and longest pair distance (at most
    ``n_bins``); bins with fewer than ``min_pairs`` pairs are dropped (a mean of one or two r^2 values is noise,
    common on sparse panels). value: mean over bins of |curve_synthetic - curve_train|; reference: the holdout's.
    details: ``bin_edges``, ``distance`` (geometric bin centres, bp), ``n_pairs`` per bin and the three curves
    ``train``, ``holdout``, ``synthetic``.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    i, j, r2_t, r2_h, r2_s = _three_way_pairs(train, holdout, synthetic, chrom, window, seed)
    pos = np.asarray(pos, dtype=np.float64)
    dist = np.abs(pos[j] - pos[i])
    keep = dist > 0
    if keep.sum() < 3:
        return skipped(f"fewer than 3 polymorphic SNP pairs at distinct positions within {window} SNPs")
    dist, r2_t, r2_h, r2_s = dist[keep], r2_t[keep], r2_h[keep], r2_s[keep]
    edges = np.geomspace(dist.min(), dist.max() * (1 + 1e-9), n_bins + 1)
    b = np.clip(np.searchsorted(edges, dist, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(b, minlength=n_bins)
    full = counts >= min(min_pairs, counts.max())  # keep the best-filled bin even on a tiny panel

    def curve(r2):
        return (np.bincount(b, weights=r2, minlength=n_bins)[full] / counts[full])

    ct, ch, cs = curve(r2_t), curve(r2_h), curve(r2_s)
    centres = np.sqrt(edges[:-1] * edges[1:])[full]
    return MetricValue(float(np.mean(np.abs(cs - ct))), float(np.mean(np.abs(ch - ct))), details={
        "bin_edges": edges.tolist(), "distance": centres.tolist(), "n_pairs": counts[full].tolist(),
        "train": ct.tolist(), "holdout": ch.tolist(), "synthetic": cs.tolist(),
    })
