"""Per-SNP frequency statistics: allele frequencies, genotype classes, heterozygosity, Hardy-Weinberg equilibrium.

Inputs everywhere: ``train``, ``holdout``, ``synthetic`` int8 dosage matrices (n_i, m) on the same SNPs, each
dosage counting the same allele (``a1`` of the training ``.bim``, see ``align_cohorts``); missing = -1. Every
statistic uses called genotypes only (a SNP's frequency among individuals called there). Holdout and synthetic
are first subsampled to equal size (seeded), then each is compared with the full training cohort the same way:
``value`` is the synthetic's, ``reference`` the holdout's (the value a fresh real sample gets).

Sources: SNPgen (Lampis et al. 2026) and Xie et al. (GigaScience 2026) report allele-frequency correlation and
error, genotype-class frequencies and heterozygosity; the Hardy-Weinberg exact test is Wigginton, Cutler &
Abecasis (Am J Hum Genet 2005), as in PLINK ``--hardy``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..genotypes import allele_frequencies  # noqa: F401  (allele_frequencies: part of this module's API)
from .align import equal_size_rows
from .card import MetricValue, pearson_r, skipped

HWE_P_THRESHOLD = 1e-6


def genotype_counts(dosages: np.ndarray) -> np.ndarray:
    """Counts (m, 3) of genotypes 0, 1, 2 per SNP (missing calls not counted)."""
    return np.stack([(dosages == g).sum(axis=0) for g in (0, 1, 2)], axis=1).astype(np.int64)


def genotype_frequencies(dosages: np.ndarray) -> np.ndarray:
    """Shares (m, 3) of genotypes 0, 1, 2 among called genotypes per SNP (NaN rows if none called)."""
    c = genotype_counts(dosages)
    with np.errstate(invalid="ignore", divide="ignore"):
        return c / c.sum(axis=1, keepdims=True)


def _too_small(train, holdout, synthetic) -> str | None:
    if min(len(train), len(holdout), len(synthetic)) < 2:
        return "needs at least 2 individuals in each cohort"
    if train.shape[1] < 1:
        return "no SNP to compare"
    return None


def allele_frequency_r(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                       seed: int = 0) -> MetricValue:
    """Pearson r over SNPs between a cohort's ``a1`` frequencies and the training cohort's.

    value: r(p_synthetic, p_train); reference: r(p_holdout, p_train); SNPs with no call in a cohort are left out.
    details: ``train``, ``holdout``, ``synthetic`` frequency arrays (m,) for the AF scatter plot.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    pt, ph, ps = (allele_frequencies(x) for x in (train, holdout, synthetic))
    return MetricValue(pearson_r(ps, pt), pearson_r(ph, pt), details={"train": pt, "holdout": ph, "synthetic": ps})


def allele_frequency_mae(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                         seed: int = 0) -> MetricValue:
    """Mean over SNPs of |p_cohort - p_train| (allele-frequency mean absolute error, ``a1`` frequencies).

    value: synthetic's MAE; reference: holdout's (sampling noise of a fresh real sample of the same size).
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    pt, ph, ps = (allele_frequencies(x) for x in (train, holdout, synthetic))
    return MetricValue(float(np.nanmean(np.abs(ps - pt))), float(np.nanmean(np.abs(ph - pt))))


def genotype_class_mae(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                       seed: int = 0) -> MetricValue:
    """Mean over SNPs and the three genotype classes (0/1/2 copies of ``a1``) of |f_cohort - f_train|, where f
    are the shares of called genotypes in each class.

    value: synthetic's; reference: holdout's. details: mean class shares per cohort (3,).
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    ft, fh, fs = (genotype_frequencies(x) for x in (train, holdout, synthetic))
    return MetricValue(
        float(np.nanmean(np.abs(fs - ft))), float(np.nanmean(np.abs(fh - ft))),
        details={k: np.nanmean(f, axis=0).tolist() for k, f in (("train", ft), ("holdout", fh), ("synthetic", fs))},
    )


def heterozygosity_mae(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                       seed: int = 0) -> MetricValue:
    """Mean over SNPs of |H_cohort - H_train|, H = observed heterozygosity (share of called genotypes equal to 1).

    value: synthetic's; reference: holdout's. details: mean observed heterozygosity of each cohort.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    ht, hh, hs = (genotype_frequencies(x)[:, 1] for x in (train, holdout, synthetic))
    return MetricValue(float(np.nanmean(np.abs(hs - ht))), float(np.nanmean(np.abs(hh - ht))),
                       details={"train": float(np.nanmean(ht)), "holdout": float(np.nanmean(hh)),
                                "synthetic": float(np.nanmean(hs))})


def hwe_deviation(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0) -> MetricValue:
    """Mean over SNPs of |H_obs - H_exp| within a cohort, H_exp = 2 p (1 - p) from that cohort's own p.

    A generator that samples SNPs without respecting diploid structure shows excess or missing heterozygotes.
    value: synthetic's; reference: holdout's (nonzero through sampling noise alone); details: training's.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)

    def deviation(x):
        p = allele_frequencies(x)
        return float(np.nanmean(np.abs(genotype_frequencies(x)[:, 1] - 2 * p * (1 - p))))

    return MetricValue(deviation(synthetic), deviation(holdout), details={"train": deviation(train)})


def hwe_exact_p(counts: np.ndarray) -> np.ndarray:
    """Hardy-Weinberg exact test p-values (Wigginton et al. 2005), one per row of ``counts`` (m, 3) =
    (n_0, n_1, n_2) genotype counts.

    Given n individuals and the rarer allele's count n_r, the probability of n_het heterozygotes is
    P(h) = 2^h n! n_r! (2n - n_r)! / (n_hom_r! h! n_hom_c! (2n)!); the p-value sums P(h) over every h (same
    parity as n_r) no more likely than the observed one, with PLINK's relative tolerance 1e-7 for ties.
    Monomorphic or uncalled SNPs get p = 1.
    """
    counts = np.asarray(counts, dtype=np.int64)
    p_out = np.ones(len(counts))
    for k, (n0, n1, n2) in enumerate(counts):
        n = n0 + n1 + n2
        rare = min(2 * n0 + n1, 2 * n2 + n1)
        if n == 0 or rare == 0:
            continue
        h = np.arange(rare % 2, min(rare, n) + 1, 2)
        hom_r = (rare - h) // 2
        hom_c = n - h - hom_r
        ok = hom_c >= 0
        h, hom_r, hom_c = h[ok], hom_r[ok], hom_c[ok]
        logp = (h * np.log(2.0) + gammaln(n + 1) + gammaln(rare + 1) + gammaln(2 * n - rare + 1)
                - gammaln(hom_r + 1) - gammaln(h + 1) - gammaln(hom_c + 1) - gammaln(2 * n + 1))
        obs = logp[h == n1][0]
        prob = np.exp(logp - logp.max())
        p_obs = np.exp(obs - logp.max())
        p_out[k] = min(1.0, prob[prob <= p_obs * (1 + 1e-7)].sum() / prob.sum())
    return p_out


def hwe_failure_share(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                      p_threshold: float = HWE_P_THRESHOLD) -> MetricValue:
    """Share of SNPs failing the Hardy-Weinberg exact test at ``p_threshold`` (default 1e-6, the usual QC cut),
    within each cohort.

    value: synthetic's share; reference: holdout's; details: training's share.
    """
    if (why := _too_small(train, holdout, synthetic)) is not None:
        return skipped(why)
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)

    def share(x):
        return float((hwe_exact_p(genotype_counts(x)) < p_threshold).mean())

    return MetricValue(share(synthetic), share(holdout), details={"train": share(train),
                                                                  "p_threshold": p_threshold})
