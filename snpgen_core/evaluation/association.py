"""Association fidelity: do the synthetic individuals carry the same genotype-phenotype signal as real ones?

Inputs: ``train``, ``holdout``, ``synthetic`` int8 dosage matrices (n_i, m) on the same SNPs and counted allele
(a1), missing = -1; ``y_*`` the matching phenotype values (n_i,) (binary 0 = control / 1 = case, or quantitative;
NaN = missing, those individuals are left out). Per-SNP additive regressions (``snpgen_core.association``:
logistic for binary, linear for quantitative traits; a missing call leaves the individual out of that SNP's fit)
are run in each cohort, holdout and synthetic at equal labelled size (seeded subsample). ``value`` compares the
synthetic cohort's effects with training's, ``reference`` the holdout's.

Sources: per-SNP effect concordance and case-control allele-frequency differences of synthetic cohorts,
SNPgen (Lampis et al. 2026) and Xie et al. (GigaScience 2026).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .align import equal_sizes
from .card import MetricValue, pearson_r, skipped
from .frequencies import allele_frequencies

TOP_SNPS = 100
MIN_PER_CLASS = 5


@dataclass
class CohortEffects:
    """Per-SNP association tables (columns beta, se, stat, p, n; one row per SNP) of the three cohorts, and the
    labelled rows used (holdout and synthetic at equal size) for the case-control statistics."""

    kind: str
    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    rows: dict  # cohort -> (dosages (n, m), y (n,)) actually used


def _labelled(dosages: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = ~np.isnan(y)
    return dosages[ok], y[ok]


def _unusable(y: np.ndarray, kind: str, who: str) -> str | None:
    if kind == "binary":
        counts = np.bincount(y.astype(np.int64), minlength=2)
        if counts.min() < MIN_PER_CLASS:
            return f"the {who} cohort has {counts[1]} cases and {counts[0]} controls (need {MIN_PER_CLASS} of each)"
    elif len(y) < 10 or np.unique(y).size < 2:
        return f"the {who} cohort has fewer than 10 phenotyped individuals or a constant trait"
    return None


def cohort_effects(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, y_train: np.ndarray,
                   y_holdout: np.ndarray, y_synthetic: np.ndarray, kind: str, *, seed: int = 0,
                   known: CohortEffects | None = None) -> CohortEffects | str:
    """Per-SNP regressions in the three cohorts (holdout and synthetic at equal labelled size); a string saying
    why when a cohort cannot support them (too few cases or controls, categorical trait). ``known``: the effects
    of an earlier call on the same training and holdout cohorts (another synthetic subsample, say); their training
    and holdout tables are reused when both calls used the whole labelled holdout (it was not the larger cohort),
    so only the synthetic regressions are computed again."""
    from ..association import per_snp_association

    if kind not in ("binary", "quantitative"):
        return f"per-SNP association is computed for binary and quantitative traits, not {kind}"
    rows = {"train": _labelled(train, np.asarray(y_train, float)),
            "holdout": _labelled(holdout, np.asarray(y_holdout, float)),
            "synthetic": _labelled(synthetic, np.asarray(y_synthetic, float))}
    n_held = len(rows["holdout"][1])
    h, s = equal_sizes(n_held, len(rows["synthetic"][1]), seed)
    rows["holdout"] = (rows["holdout"][0][h], rows["holdout"][1][h])
    rows["synthetic"] = (rows["synthetic"][0][s], rows["synthetic"][1][s])
    for who, (_, y) in rows.items():
        if (why := _unusable(y, kind, "training" if who == "train" else who)) is not None:
            return why
    reuse = known is not None and len(h) == n_held == len(known.rows["holdout"][1])  # the whole holdout, both times
    tables = {"train": known.train, "holdout": known.holdout} if reuse else {}
    tables.update({who: per_snp_association(x, y, kind) for who, (x, y) in rows.items() if who not in tables})
    return CohortEffects(kind, tables["train"], tables["holdout"], tables["synthetic"], rows)


def _ensure_effects(effects, args, kind, seed):
    if effects is None:
        effects = cohort_effects(*args, kind, seed=seed)
    return effects


def _top_snps(effects: CohortEffects, top: int) -> np.ndarray:
    """Indices of the ``top`` SNPs with the smallest training p-value (among those with an effect everywhere)."""
    ok = (effects.train["beta"].notna() & effects.holdout["beta"].notna() & effects.synthetic["beta"].notna())
    p = effects.train["p"].to_numpy()
    idx = np.flatnonzero(ok.to_numpy())
    return idx[np.argsort(p[idx], kind="stable")[:top]]


def effect_r(train, holdout, synthetic, y_train, y_holdout, y_synthetic, kind: str, *,
             effects: CohortEffects | None = None, seed: int = 0) -> MetricValue:
    """Pearson r over SNPs between a cohort's per-SNP effects (beta per copy of a1: ln OR for binary, slope for
    quantitative traits) and training's. value: r(beta_synthetic, beta_train); reference: r(beta_holdout,
    beta_train). Pass ``effects`` from :func:`cohort_effects` to reuse the regressions."""
    effects = _ensure_effects(effects, (train, holdout, synthetic, y_train, y_holdout, y_synthetic), kind, seed)
    if isinstance(effects, str):
        return skipped(effects)
    bt, bh, bs = (e["beta"].to_numpy() for e in (effects.train, effects.holdout, effects.synthetic))
    return MetricValue(pearson_r(bs, bt), pearson_r(bh, bt), details={
        "beta": {"train": bt, "holdout": bh, "synthetic": bs}})


def sign_agreement(train, holdout, synthetic, y_train, y_holdout, y_synthetic, kind: str, *,
                   effects: CohortEffects | None = None, top: int = TOP_SNPS, seed: int = 0) -> MetricValue:
    """Share of the ``top`` SNPs (smallest training p-value) whose effect has the same sign in a cohort as in
    training. value: synthetic's share; reference: holdout's (below 1 through sampling noise alone)."""
    effects = _ensure_effects(effects, (train, holdout, synthetic, y_train, y_holdout, y_synthetic), kind, seed)
    if isinstance(effects, str):
        return skipped(effects)
    idx = _top_snps(effects, top)
    if len(idx) == 0:
        return skipped("no SNP has an estimable effect in all three cohorts")
    sign = {who: np.sign(e["beta"].to_numpy()[idx]) for who, e in
            (("train", effects.train), ("holdout", effects.holdout), ("synthetic", effects.synthetic))}
    return MetricValue(float((sign["synthetic"] == sign["train"]).mean()),
                       float((sign["holdout"] == sign["train"]).mean()), details={"n_snps": int(len(idx))})


def _case_control_differences(args, kind: str, effects, top: int, seed: int, *,
                               synthetic: tuple[np.ndarray, np.ndarray] | None = None) -> dict | str:
    """Each cohort's case-control allele-frequency differences d = p_cases - p_controls (a1 frequencies) over the
    ``top`` SNPs by training p-value: {"train", "holdout", "synthetic"} -> (top,), or a string saying why not. The
    holdout and synthetic cohorts at equal size (``cohort_effects``), or the synthetic one's labelled (dosages, y)
    ``synthetic`` instead."""
    if kind != "binary":
        return "case-control allele-frequency differences need a binary trait"
    effects = _ensure_effects(effects, args, kind, seed)
    if isinstance(effects, str):
        return effects
    idx = _top_snps(effects, top)
    if len(idx) < 3:
        return "fewer than 3 SNPs with an estimable effect in all three cohorts"

    def difference(x, y):
        x = x[:, idx]
        return allele_frequencies(x[y == 1]) - allele_frequencies(x[y == 0])

    rows = effects.rows if synthetic is None else {**effects.rows, "synthetic": synthetic}
    return {who: difference(*rows[who]) for who in ("train", "holdout", "synthetic")}


def case_control_af_diff_r(train, holdout, synthetic, y_train, y_holdout, y_synthetic, kind: str, *,
                           effects: CohortEffects | None = None, top: int = TOP_SNPS,
                           seed: int = 0) -> MetricValue:
    """Pearson r, over the ``top`` SNPs by training p-value, between a cohort's case-control allele-frequency
    differences d = p_cases - p_controls (a1 frequencies) and training's. Binary traits only.

    value: r(d_synthetic, d_train); reference: r(d_holdout, d_train). details: the three difference vectors on
    those SNPs.
    """
    d = _case_control_differences((train, holdout, synthetic, y_train, y_holdout, y_synthetic), kind, effects, top,
                                  seed)
    if isinstance(d, str):
        return skipped(d)
    return MetricValue(pearson_r(d["synthetic"], d["train"]), pearson_r(d["holdout"], d["train"]),
                       details={"n_snps": int(len(d["train"])), **{k: v.tolist() for k, v in d.items()}})


def case_control_af_diff_size(train, holdout, synthetic, y_train, y_holdout, y_synthetic, kind: str, *,
                              effects: CohortEffects | None = None, top: int = TOP_SNPS,
                              seed: int = 0) -> MetricValue:
    """How large a cohort's case-control allele-frequency differences are against training's, over the same SNPs
    as :func:`case_control_af_diff_r`: the least-squares slope through 0 of d_cohort on d_train (1 = as large as
    training's). Binary traits only.

    value: the synthetic cohort's slope; reference: the holdout's. A fresh sample's slope sits below 1 where the
    panel was chosen by the training GWAS (the winner's curse) or training's differences are noisy. A release at 1
    keeps training's chance differences at full size, and one above the holdout's would make a GWAS of it find
    larger effects than a fresh sample shows (BENCHMARKS.md, thirty-seventh pass: at guidance 1.5, AGBL4 CASE 1.2x
    the holdout's). The correlation rows cannot see this: they ignore size. The synthetic side reads the whole
    release, not an equal-size subsample: noise in a cohort's differences does not move the slope's expectation,
    only its spread.
    """
    d = _case_control_differences((train, holdout, synthetic, y_train, y_holdout, y_synthetic), kind, effects, top,
                                  seed, synthetic=_labelled(synthetic, np.asarray(y_synthetic, float)))
    if isinstance(d, str):
        return skipped(d)
    ok = np.isfinite(d["train"]) & np.isfinite(d["holdout"]) & np.isfinite(d["synthetic"])
    t = d["train"][ok]
    scale = float(t @ t)
    if scale == 0:
        return skipped("the training cohort's cases and controls have the same allele frequencies on these SNPs")
    return MetricValue(float(d["synthetic"][ok] @ t) / scale, float(d["holdout"][ok] @ t) / scale,
                       details={"n_snps": int(ok.sum())})
