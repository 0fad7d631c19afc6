"""Attacks on a synthetic cohort beyond nearest-neighbour distance: density ratio (DOMIAS), shared segments (IBD
search), attribute inference, kinship replay against its null, and shadow models (TAPAS).

Inputs: ``train``, ``holdout``, ``synthetic``, each (n, m) int8 dosages 0/1/2 over the same aligned SNPs
(samples x variants; the dosage counts the ``.bim`` column-5 allele); missing calls are refused (impute first with
``distances.impute_missing``, as ``evaluate`` does). The holdout never trained the generator (whether it took part
in the GWAS that ranked the SNPs is stated by ``io.gwas.panel_provenance``).

Every attack is run twice, the same way: against the synthetic cohort (``MetricValue.value``) and against a fresh
real sample in its place (``MetricValue.reference``: what a generator that learnt the population and nothing of its
training individuals would leak). Members are training individuals, non-members holdout individuals. The holdout
plays up to three parts (population sample, non-members, fresh sample); it is cut into seeded disjoint parts so
that no individual plays two. Members are a seeded training subsample of the non-members' size. Each value carries
a 95% confidence interval in ``details["ci"]`` (and the reference's in ``details["reference_ci"]``): DeLong's for
an AUC, a stratified bootstrap for a true-positive rate, a normal interval for a difference of mean accuracies.

Sets too small for an attack give ``value`` NaN and a ``note`` saying why. Nothing here prints or plots.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from ..errors import InputError
from .card import MetricValue, skipped
from .distances import check_complete_dosages, longest_shared_runs, nearest_neighbours
from .kinship import KING_DUPLICATE, KING_FIRST_DEGREE, max_kinship
from .privacy import auc_null_sd, tpr_at_fpr
from .structure import fit_pca

Z95 = 1.959963984540054  # two-sided 95% normal quantile
N_BOOT_TPR = 200  # bootstrap resamples for a TPR interval: a tail estimate, coarse anyway
MIN_PART = 10  # fewest individuals per role for an attack to be run


# ------------------------------------------------------------------------------------------------ shared pieces


def auc_ci(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """(AUC, lower, upper): the ROC AUC of ``scores`` for ``labels`` (1 = member) and its 95% DeLong interval.

    AUC = P[s_member > s_non_member] + 1/2 P[=] (Mann-Whitney). DeLong, DeLong & Clarke-Pearson (1988,
    Biometrics 44:837): with the placement values V10_i (share of non-members below member i, ties one half) and
    V01_j (share of members above non-member j), Var(AUC) = var(V10) / n1 + var(V01) / n0; the interval is
    AUC +- 1.96 sd, clipped to [0, 1]. Computed from mid-ranks, O(n log n)."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=float)
    pos, neg = scores[labels], scores[~labels]
    n1, n0 = len(pos), len(neg)
    if n1 < 2 or n0 < 2:
        raise ValueError(f"an AUC interval needs at least 2 members and 2 non-members, got {n1} and {n0}")
    ranks = stats.rankdata(np.r_[pos, neg])
    v10 = (ranks[:n1] - stats.rankdata(pos)) / n0
    v01 = 1.0 - (ranks[n1:] - stats.rankdata(neg)) / n1
    auc = float(v10.mean())
    sd = math.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0)
    return auc, max(0.0, auc - Z95 * sd), min(1.0, auc + Z95 * sd)


def _tpr_with_ci(labels: np.ndarray, scores: np.ndarray, fpr: float, seed) -> tuple[float, float, float]:
    """TPR at ``fpr`` (see ``privacy.tpr_at_fpr``) and its 95% percentile interval over a bootstrap that resamples
    members and non-members separately (seeded)."""
    rng = np.random.default_rng(seed)
    members, others = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    boot = []
    for _ in range(N_BOOT_TPR):
        rows = np.r_[rng.choice(members, len(members)), rng.choice(others, len(others))]
        boot.append(tpr_at_fpr(labels[rows], scores[rows], fpr))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return tpr_at_fpr(labels, scores, fpr), float(lo), float(hi)


def _checked(train, holdout, synthetic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sets = [check_complete_dosages(x, name) for x, name in ((train, "train"), (holdout, "holdout"),
                                                             (synthetic, "synthetic"))]
    widths = {x.shape[1] for x in sets}
    if len(widths) != 1:
        raise InputError(f"the cohorts have different SNP counts {[x.shape[1] for x in sets]}",
                         hint="align them on the same SNPs first (evaluation.align_cohorts)")
    return tuple(sets)


def _roles(n_train: int, n_holdout: int, n_parts: int, seed) -> tuple[np.ndarray, list[np.ndarray]]:
    """Seeded rows: ``members`` (training rows, as many as one holdout part) and ``n_parts`` disjoint equal holdout
    parts, each sorted."""
    rng = np.random.default_rng(seed)
    size = min(n_holdout // n_parts, n_train)
    perm = rng.permutation(n_holdout)
    parts = [np.sort(perm[k * size: (k + 1) * size]) for k in range(n_parts)]
    return np.sort(rng.permutation(n_train)[:size]), parts


def _labels(n_members: int, n_non_members: int) -> np.ndarray:
    return np.r_[np.ones(n_members, dtype=np.int8), np.zeros(n_non_members, dtype=np.int8)]


# ------------------------------------------------------------------------------------------------ DOMIAS


def _log_density_ratio(queries: np.ndarray, released: np.ndarray, population: np.ndarray, pca,
                       bandwidth) -> np.ndarray:
    """log p_released(x) - log p_population(x) of each query row: Gaussian KDEs in the population's PC space."""
    zq, zr, zp = pca.transform(queries), pca.transform(released), pca.transform(population)
    kde_r = stats.gaussian_kde(zr.T, bw_method=bandwidth)
    kde_p = stats.gaussian_kde(zp.T, bw_method=bandwidth)
    return kde_r.logpdf(zq.T) - kde_p.logpdf(zq.T)


def domias_membership(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, n_components: int = 50,
                      bandwidth: str | float = "scott", fpr: float = 0.01, seed: int = 0) -> dict[str, MetricValue]:
    """Density-ratio membership attack in the manner of DOMIAS (van Breugel, Sun, Qian & van der Schaar, AISTATS
    2023, "Membership inference attacks against synthetic data through overfitting detection").

    The attacker holds the released cohort and a sample of the same population, and scores a real individual x by
    how much more likely the release makes it than the population does:
        score(x) = log p_released(x) - log p_population(x)      (DOMIAS eq. 2, in logs: same ranking).
    Densities: Gaussian kernel density estimates (scipy ``gaussian_kde``, ``bandwidth`` rule or factor) of the
    individuals' scores on the top ``n_components`` principal axes of the *population* sample (standardised
    genotypes, ``structure.fit_pca``): genotypes are discrete and high-dimensional, the PC space is where a kernel
    density makes sense; fitting the axes on the population keeps members out of them. At most a third as many
    axes as population individuals are used, so that each kernel covariance rests on 3+ individuals per axis.
    Measured on 1000 Genomes AGBL4 and the 805 Yelmen SNPs (1,500 training individuals, holdout 500): 20 axes
    caught a verbatim copy of AGBL4 only at AUC 0.77, 50 axes at 0.92; fresh real samples stayed within 0.5 +- 0.05. The ``domias`` package's
    "kde" variant computes the same ratio on raw features; it was not taken as a dependency because its entry point
    trains its own generator and a CTGAN on every call.

    Roles (holdout cut in three seeded equal parts A, B, C): population A; non-members B; members as many training
    individuals (seeded). value: the attack on the synthetic cohort; reference: the same with part C (a fresh real
    sample) as the release, 0.5 in expectation. Returns ``{"domias_auc": ..., "domias_tpr_at_1pct_fpr": ...}``
    (the second named for ``fpr`` = 0.01; the TPR is NaN with a note when a part has fewer than 1 / fpr
    individuals). ``details``: ``ci``, ``reference_ci`` (95%: DeLong for the AUC, bootstrap for the TPR),
    ``n_each``, ``null_sd``."""
    train, holdout, synthetic = _checked(train, holdout, synthetic)
    if not 0 < fpr < 1 or n_components < 1:
        raise InputError(f"DOMIAS needs 0 < fpr < 1 and n_components >= 1, got {fpr} and {n_components}")
    tpr_name = f"domias_tpr_at_{fpr * 100:g}pct_fpr"
    members, (pop, non, fresh) = _roles(len(train), len(holdout), 3, seed)
    n = len(non)
    if n < MIN_PART or len(synthetic) < MIN_PART:
        why = (f"skipped: needs at least {MIN_PART} individuals in each third of the holdout and in the synthetic "
               f"set, has {n} and {len(synthetic)}")
        return {"domias_auc": skipped(why), tpr_name: skipped(why)}
    axes = max(1, min(n_components, n // 3, len(synthetic) // 3))
    pca = fit_pca(holdout[pop], axes, seed=seed)
    if pca is None:
        why = "skipped: the population sample has too few polymorphic SNPs for a PCA"
        return {"domias_auc": skipped(why), tpr_name: skipped(why)}
    queries = np.r_[train[members], holdout[non]]
    labels = _labels(n, n)
    scores = _log_density_ratio(queries, synthetic, holdout[pop], pca, bandwidth)
    ref_scores = _log_density_ratio(queries, holdout[fresh], holdout[pop], pca, bandwidth)
    auc, lo, hi = auc_ci(labels, scores)
    ref, ref_lo, ref_hi = auc_ci(labels, ref_scores)
    common = {"n_each": n, "n_components": pca.components.shape[0], "bandwidth": bandwidth}
    out = {"domias_auc": MetricValue(auc, ref, note=f"95% CI {lo:.3f}-{hi:.3f}; holdout-as-release {ref_lo:.3f}-"
                                     f"{ref_hi:.3f}; {n} members vs {n} non-members", details={
        "ci": [lo, hi], "reference_ci": [ref_lo, ref_hi], "null_sd": auc_null_sd(n, n), **common})}
    need = math.ceil(1 / fpr - 1e-9)
    if n < need:
        out[tpr_name] = skipped(f"undefined: {n} non-members, at least {need} needed to resolve {fpr:.1%} FPR")
        return out
    tpr, lo, hi = _tpr_with_ci(labels, scores, fpr, [seed, 1])
    ref, ref_lo, ref_hi = _tpr_with_ci(labels, ref_scores, fpr, [seed, 2])
    out[tpr_name] = MetricValue(tpr, ref, note=f"95% CI {lo:.3f}-{hi:.3f}; holdout-as-release {ref_lo:.3f}-"
                                f"{ref_hi:.3f}", details={"ci": [lo, hi], "reference_ci": [ref_lo, ref_hi],
                                                         "fpr": fpr, **common})
    return out


# ------------------------------------------------------------------------------------------------ shared segments

SEGMENT_MAX_PART = 500  # individuals per role of the shared-segment attack (members, non-members, fresh sample)
SEGMENT_MAX_RELEASE = 1000  # released individuals it searches: its cost grows as 2 x part x release x SNPs


def shared_segment_membership(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, segment=None,
                              seed: int = 0, device: str = "auto") -> dict[str, MetricValue]:
    """Shared-segment membership attack: does a real person share a longer identical stretch of genome with someone
    in the release when they were in the training data? The attack of identity-by-descent searches (genetic
    genealogy identifies people from the long segments they share with relatives in a database: Erlich et al.
    2018, Science 362:690). It sees what whole-panel distances dilute: a generator that copies stretches of
    training genomes and recombines them (a haplotype mosaic) sits far from everyone in L1 distance, yet each of
    its people shares long stretches with the training people it copied.

    Score of a real individual: the longest run of consecutive panel SNPs (within a chromosome, ``segment``
    (m,) labels) over which their genotypes equal one released individual's (``distances.longest_shared_runs``).
    Roles (holdout cut in two seeded equal parts B and C, at most ``SEGMENT_MAX_PART`` each): non-members B;
    members as many training individuals; the release: the synthetic set (a seeded subsample of
    ``SEGMENT_MAX_RELEASE`` beyond that). value: the attack's AUC (members vs non-members, ties one half);
    reference: the same with part C (a fresh real sample) as the release, 0.5 in expectation.

    Returns ``{"segment_membership_auc": ..., "shared_segment_length": ...}``. The second row is fidelity: the
    median over the non-members of their longest stretch shared with as many released people as part C holds,
    against the same with part C. Real people share long stretches with other real people of their population
    (common haplotypes, distant relatedness); a release whose people share shorter ones lacks that haplotype
    structure, which a detector on principal components also sees. ``details``: ``ci``, ``reference_ci`` (95%
    DeLong), ``tpr_at_1pct_fpr`` (None below 100 non-members), ``n_each``, ``n_released``, ``null_sd``; the length
    row's ``quantiles`` of both; ``member_scores``, ``non_member_scores`` (float arrays, for histograms)."""
    train, holdout, synthetic = _checked(train, holdout, synthetic)
    members, (non, fresh) = _roles(len(train), len(holdout), 2, seed)
    rng = np.random.default_rng([seed, 3])
    n = min(len(non), len(synthetic), SEGMENT_MAX_PART)
    if n < MIN_PART:
        why = (f"skipped: needs at least {MIN_PART} individuals in each half of the holdout and in the synthetic "
               f"set, has {len(non)} and {len(synthetic)}")
        return {"segment_membership_auc": skipped(why), "shared_segment_length": skipped(why)}
    members, non, fresh = (np.sort(rng.permutation(rows)[:n]) for rows in (members, non, fresh))
    released = synthetic[rng.permutation(len(synthetic))[:SEGMENT_MAX_RELEASE]]
    queries = np.r_[train[members], holdout[non]]
    labels = _labels(n, n)
    equal = longest_shared_runs(queries, released[:n], segment, device=device)  # as many as the fresh sample
    scores = equal.astype(float)
    if len(released) > n:
        scores = np.maximum(scores, longest_shared_runs(queries, released[n:], segment, device=device))
    ref_scores = longest_shared_runs(queries, holdout[fresh], segment, device=device).astype(float)
    auc, lo, hi = auc_ci(labels, scores)
    ref, ref_lo, ref_hi = auc_ci(labels, ref_scores)
    membership = MetricValue(auc, ref, note=f"95% CI {lo:.3f}-{hi:.3f}; holdout-as-release {ref_lo:.3f}-"
                             f"{ref_hi:.3f}; {n} members vs {n} non-members, {len(released)} released people",
                             details={"ci": [lo, hi], "reference_ci": [ref_lo, ref_hi], "n_each": n,
                                      "n_released": len(released), "null_sd": auc_null_sd(n, n),
                                      "tpr_at_1pct_fpr": tpr_at_fpr(labels, scores, 0.01) if n >= 100 else None,
                                      "member_scores": scores[:n], "non_member_scores": scores[n:]})
    strangers, strangers_ref = equal[n:], ref_scores[n:]
    value, reference = float(np.median(strangers)), float(np.median(strangers_ref))
    quantiles = [50, 90, 99]
    length = MetricValue(value, reference, note=(
        f"median longest stretch (SNPs) a real stranger shares with one of {n} released people: {value:.0f}; with "
        f"one of {n} people of a fresh real sample: {reference:.0f}"), details={
        "quantiles": {"synthetic": np.percentile(strangers, quantiles).tolist(),
                      "holdout": np.percentile(strangers_ref, quantiles).tolist(), "percent": quantiles},
        "n_each": n})
    return {"segment_membership_auc": membership, "shared_segment_length": length}


# ------------------------------------------------------------------------------------------------ attribute inference


def _recovered(targets: np.ndarray, released: np.ndarray, n_blocks: int, k: int, device) -> np.ndarray:
    """(n_targets,) share of each target's genotypes recovered, hiding each of ``n_blocks`` contiguous SNP blocks
    in turn: the block is predicted from the k nearest released individuals on the other SNPs (L1), by a vote
    per SNP whose ties go to the nearest neighbour."""
    m = targets.shape[1]
    hits = np.zeros(len(targets))
    for block in np.array_split(np.arange(m), n_blocks):
        known = np.setdiff1d(np.arange(m), block)
        _, idx = nearest_neighbours(targets[:, known], released[:, known], k, device=device)  # (n, k)
        votes = released[idx][:, :, block]  # (n, k, |block|)
        if k == 1:
            guess = votes[:, 0]
        else:  # one vote each, and a half vote more for the nearest so that ties go to it
            counts = np.stack([(votes == g).sum(axis=1) + 0.5 * (votes[:, 0] == g) for g in (0, 1, 2)], axis=-1)
            guess = counts.argmax(axis=-1)
        hits += (guess == targets[:, block]).sum(axis=1)
    return hits / m


def _gap_with_ci(member_acc: np.ndarray, other_acc: np.ndarray) -> tuple[float, float, float]:
    gap = float(member_acc.mean() - other_acc.mean())
    sd = math.sqrt(member_acc.var(ddof=1) / len(member_acc) + other_acc.var(ddof=1) / len(other_acc))
    return gap, gap - Z95 * sd, gap + Z95 * sd


def attribute_inference(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, n_blocks: int = 5,
                        k: int = 1, seed: int = 0, device: str = "auto") -> MetricValue:
    """Attribute inference: how much better the release reveals a training individual's hidden genotypes than an
    unseen individual's.

    The attacker knows all of a target's genotypes but one block of contiguous SNPs (the panel cut in ``n_blocks``
    blocks, each hidden in turn), finds the ``k`` synthetic individuals nearest the target on the known SNPs (L1 /
    IBS) and reads the hidden block from them (k = 1: the nearest one's genotypes; k > 1: a vote per SNP). A
    target's accuracy is the share of its genotypes (0/1/2 dosage classes) recovered exactly. Linkage alone lets
    anyone impute some of a block from a population sample; what the release must not add is accuracy on its own
    training individuals. Stadler, Oprisanu & Troncoso (USENIX Security 2022) frame attribute inference this way;
    the nearest-neighbour reader is their "linkage" attacker's.

    value: mean accuracy on members - mean accuracy on non-members (the leak, ideal 0); reference: the same gap when
    a fresh real sample is the release (holdout halves: A released, B non-members; members as many training
    individuals). ``details``: ``member_accuracy``, ``non_member_accuracy`` (and ``reference_`` ones), ``ci`` and
    ``reference_ci`` (95% normal intervals of the gaps), ``auc`` (per-target accuracy as a membership score) with
    ``auc_ci``, ``n_each``."""
    train, holdout, synthetic = _checked(train, holdout, synthetic)
    if n_blocks < 2 or k < 1:
        raise InputError(f"attribute inference needs n_blocks >= 2 and k >= 1, got {n_blocks} and {k}")
    members, (fresh, non) = _roles(len(train), len(holdout), 2, seed)
    n = len(non)
    if n < MIN_PART or len(synthetic) < k or train.shape[1] < n_blocks:
        return skipped(f"skipped: needs at least {MIN_PART} individuals in each holdout half, {k} synthetic and "
                       f"{n_blocks} SNPs; has {n}, {len(synthetic)} and {train.shape[1]}")
    targets = np.r_[train[members], holdout[non]]
    acc = _recovered(targets, synthetic, n_blocks, k, device)
    ref_acc = _recovered(targets, holdout[fresh], n_blocks, k, device)
    gap, lo, hi = _gap_with_ci(acc[:n], acc[n:])
    ref, ref_lo, ref_hi = _gap_with_ci(ref_acc[:n], ref_acc[n:])
    auc, auc_lo, auc_hi = auc_ci(_labels(n, n), acc)
    return MetricValue(gap, ref, note=(
        f"members {acc[:n].mean():.3f} vs non-members {acc[n:].mean():.3f} of hidden genotypes recovered; "
        f"gap 95% CI {lo:.3f}-{hi:.3f}; {n} each"), details={
        "member_accuracy": float(acc[:n].mean()), "non_member_accuracy": float(acc[n:].mean()),
        "reference_member_accuracy": float(ref_acc[:n].mean()),
        "reference_non_member_accuracy": float(ref_acc[n:].mean()),
        "ci": [lo, hi], "reference_ci": [ref_lo, ref_hi], "auc": auc, "auc_ci": [auc_lo, auc_hi],
        "n_each": n, "n_blocks": n_blocks, "k": k})


# ------------------------------------------------------------------------------------------------ kinship replay


def kinship_null(synthetic_max_kinship: np.ndarray, holdout_max_kinship: np.ndarray, threshold: float, *,
                 n_snps: int | None = None) -> MetricValue:
    """A KING count of synthetic individuals judged against what real unrelated individuals show on this panel.

    Inputs: each synthetic and each holdout individual's maximum KING-robust kinship to the training individuals
    (``kinship.max_kinship``; NaN = no estimate, counted as below). On a panel of a few hundred or thousand SNPs
    KING is noisy, and some real strangers cross 0.354 or 0.177 by chance; the holdout, never used in training,
    shows how often. Null: each synthetic individual crosses ``threshold`` with the holdout's rate q; q is uncertain
    (Jeffreys posterior Beta(c_h + 1/2, n_h - c_h + 1/2)), so a real sample of n_s individuals shows a count from
    the beta-binomial(n_s, c_h + 1/2, n_h - c_h + 1/2) distribution. value: the synthetic count c_s; reference: the
    holdout's count rescaled, c_h n_s / n_h; ``details``: ``ci`` (the null's central 95% range of counts),
    ``p_value`` P[null count >= c_s] (one-sided), holdout quantiles of the maximum kinship. ``note``: one sentence
    a board can read. Manichaikul et al. 2010 for KING; the thresholds are 2^-1.5 and 2^-2.5."""
    syn = np.nan_to_num(np.asarray(synthetic_max_kinship, dtype=float), nan=-np.inf)
    hold = np.nan_to_num(np.asarray(holdout_max_kinship, dtype=float), nan=-np.inf)
    n_s, n_h = len(syn), len(hold)
    if n_s == 0 or n_h == 0:
        return skipped(f"skipped: needs synthetic and holdout individuals, has {n_s} and {n_h}")
    c_s, c_h = int(np.sum(syn >= threshold)), int(np.sum(hold >= threshold))
    null = stats.betabinom(n_s, c_h + 0.5, n_h - c_h + 0.5)
    lo, hi = (int(v) for v in null.ppf([0.025, 0.975]))
    p = float(null.sf(c_s - 1))
    finite = hold[np.isfinite(hold)]
    q50, q99, top = (float(v) for v in np.percentile(finite, [50, 99, 100])) if len(finite) else (np.nan,) * 3
    panel = f" on this {n_snps}-SNP panel" if n_snps else ""
    chance = "< 1e-15" if p < 1e-15 else f"= {p:.2g}"
    verdict = ("no more than chance" if p >= 0.05 else
               "more than chance: synthetic individuals replay real ones' genomes")
    note = (f"{c_s} of {n_s} synthetic individuals have a training relative at KING >= {threshold:.3f}; "
            f"{c_h} of {n_h} real holdout strangers do{panel} (their closest: median {q50:.3f}, 99th percentile "
            f"{q99:.3f}), so a real sample of {n_s} would show {lo}-{hi} (95%); P(>= {c_s} by chance) {chance}: "
            f"{verdict}")
    return MetricValue(float(c_s), c_h * n_s / n_h, note=note, details={
        "ci": [lo, hi], "p_value": p, "threshold": threshold, "synthetic_count": c_s, "holdout_count": c_h,
        "n_synthetic": n_s, "n_holdout": n_h, "holdout_max_kinship_quantiles": {"50": q50, "99": q99, "max": top}})


def kinship_replay(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                   device: str = "auto") -> dict[str, MetricValue]:
    """``kinship_null`` at the duplicate (0.354) and first-degree (0.177) thresholds, from the dosages (int8
    0/1/2, -1 missing, pairwise-complete KING). Keys ``kinship_duplicates``, ``kinship_first_degree``."""
    phi_s = max_kinship(synthetic, train, device=device)[0]
    phi_h = max_kinship(holdout, train, device=device)[0]
    m = np.asarray(train).shape[1]
    return {"kinship_duplicates": kinship_null(phi_s, phi_h, KING_DUPLICATE, n_snps=m),
            "kinship_first_degree": kinship_null(phi_s, phi_h, KING_FIRST_DEGREE, n_snps=m)}


# ------------------------------------------------------------------------------------------------ shadow models

TrainGenerator = Callable[[np.ndarray, "np.ndarray | None", int], object]
SampleGenerator = Callable[[object, int, int], np.ndarray]
SHADOW_FEATURES = ("log_d1_ratio", "log_d2_ratio", "log_dk_ratio", "log_d1_over_d2", "log_d1_population")


def _shadow_features(targets: np.ndarray, released: np.ndarray, population_d1: np.ndarray, k: int,
                     device) -> np.ndarray:
    """(n_targets, 5) features of one released set relative to each target (see SHADOW_FEATURES): its nearest,
    second and k-th nearest distances in the release over its nearest distance in the population sample (logs, +1
    against zeros), the d1/d2 ratio, and the population distance itself (how typical the target is)."""
    d, _ = nearest_neighbours(targets, released, k, device=device)
    d = d.astype(float) + 1.0
    pop = population_d1.astype(float) + 1.0
    return np.column_stack([np.log(d[:, 0] / pop), np.log(d[:, 1] / pop), np.log(d[:, k - 1] / pop),
                            np.log(d[:, 0] / d[:, 1]), np.log(pop)])


def shadow_model_attack(train: np.ndarray, holdout: np.ndarray, train_generator: TrainGenerator,
                        sample: SampleGenerator, *, cond: np.ndarray | None = None, n_shadow: int = 4,
                        n_synthetic: int | None = None, k: int = 5, fpr: float = 0.01, seed: int = 0,
                        device: str = "auto", callback: Callable[[dict], None] | None = None) -> MetricValue:
    """Shadow-model membership attack (Stadler, Oprisanu & Troncoso, USENIX Security 2022, "Synthetic data -
    anonymisation groundhog day"; TAPAS, Houssiau et al. 2022): how well can an attacker who knows the generator's
    configuration tell its training individuals from others?

    ``n_shadow`` (>= 4) generators are trained with ``train_generator(dosages, cond, seed) -> generator`` on
    seeded random halves of ``train`` (the run's own configuration goes in the callable), and each releases
    ``sample(generator, n, seed) -> (n, m) int8 dosages`` individuals (``n_synthetic``, default the half's size).
    Every training individual is then a member of some shadow releases and a non-member of the others. Its features
    relative to a release (``SHADOW_FEATURES``: nearest, second and k-th nearest L1 distances to the release, each
    over its nearest distance to the real ``holdout``, the population sample that calibrates how typical the
    individual is) are labelled member / non-member, and a logistic regression learns the difference on all shadow
    releases but one and scores the held-out one (leave-one-generator-out; the individuals scored are also kept
    out of the fit, two seeded folds). value: the mean over releases of the AUC of those out-of-fold scores;
    reference: 0.5, the AUC when the releases are independent of their training individuals (a fresh real sample),
    with its null sd. ``details``: ``ci`` (95% t interval from the spread of the per-release AUCs: the releases
    share individuals, so pooled pairs are not independent), ``per_release_auc``, ``tpr_at_fpr`` of the pooled
    scores. ``callback`` receives ``{"event": "shadow", "index": i, "n_shadow": n}`` after each generator.

    train (n_t, m), holdout (n_h, m): int8 dosages 0/1/2, complete; cond: (n_t,) conditions passed to the
    generator (or None). Raises InputError for n_shadow < 4 or too few individuals (each half needs >= 10)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not 0 < fpr < 1:
        raise InputError(f"fpr {fpr} must lie in (0, 1)")
    if n_shadow < 4:
        raise InputError(f"shadow-model attack needs at least 4 shadow generators, got {n_shadow}",
                         hint="use --shadow-models 4 or more")
    train = check_complete_dosages(train, "train")
    holdout = check_complete_dosages(holdout, "holdout")
    if train.shape[1] != holdout.shape[1]:
        raise InputError(f"train has {train.shape[1]} SNPs and holdout {holdout.shape[1]}; align them first")
    half = len(train) // 2
    if half < MIN_PART or len(holdout) < 1:
        raise InputError(f"too few individuals for shadow models: {len(train)} training and {len(holdout)} holdout",
                         hint=f"needs at least {2 * MIN_PART} training individuals and a holdout")
    if cond is not None and len(cond) != len(train):
        raise InputError(f"cond has {len(cond)} values for {len(train)} training individuals")
    n_synthetic = n_synthetic or half
    k = max(2, min(k, n_synthetic))
    rng = np.random.default_rng(seed)
    population_d1 = nearest_neighbours(train, holdout, 1, device=device)[0][:, 0]
    features, labels = [], []
    for i in range(n_shadow):
        inside = np.zeros(len(train), dtype=bool)
        inside[rng.permutation(len(train))[:half]] = True
        g_seed = int(rng.integers(2**31))
        generator = train_generator(train[inside], None if cond is None else np.asarray(cond)[inside], g_seed)
        released = check_complete_dosages(sample(generator, n_synthetic, g_seed + 1), f"shadow release {i}")
        if released.shape[1] != train.shape[1]:
            raise InputError(f"shadow release {i} has {released.shape[1]} SNPs, training {train.shape[1]}")
        features.append(_shadow_features(train, released, population_d1, k, device))
        labels.append(inside.astype(np.int8))
        if callback is not None:
            callback({"event": "shadow", "index": i + 1, "n_shadow": n_shadow})
    # Out-of-fold scores: leave one release out *and* keep the scored individuals out of the fit. Fitted on their
    # own other releases, the classifier would learn each individual's membership count there, which is
    # anti-correlated with its label in the held-out release (AUC biased below 0.5 with no signal at all).
    fold = np.zeros(len(train), dtype=bool)
    fold[rng.permutation(len(train))[: len(train) // 2]] = True
    scores = [np.empty(len(train)) for _ in range(n_shadow)]
    for i in range(n_shadow):
        others = [j for j in range(n_shadow) if j != i]
        for scored in (fold, ~fold):
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            model.fit(np.concatenate([features[j][~scored] for j in others]),
                      np.concatenate([labels[j][~scored] for j in others]))
            scores[i][scored] = model.decision_function(features[i][scored])
    all_labels, all_scores = np.concatenate(labels), np.concatenate(scores)
    per_release = np.array([roc_auc_score(y, s) for y, s in zip(labels, scores)])
    # the releases share individuals, so pooled pairs are not independent: the interval comes from the spread of
    # the per-release AUCs (t with n_shadow - 1 degrees of freedom), which carries that dependence
    auc = float(per_release.mean())
    half_width = stats.t.ppf(0.975, n_shadow - 1) * per_release.std(ddof=1) / math.sqrt(n_shadow)
    lo, hi = max(0.0, auc - half_width), min(1.0, auc + half_width)
    n_pairs = len(all_labels)
    return MetricValue(auc, 0.5, note=(
        f"{n_shadow} shadow generators on random halves ({half} individuals each); 95% CI {lo:.3f}-{hi:.3f}; "
        "reference 0.5: a release independent of its training individuals"), details={
        "ci": [lo, hi], "per_release_auc": per_release.tolist(), "tpr_at_fpr": tpr_at_fpr(all_labels, all_scores, fpr),
        "fpr": fpr, "n_shadow": n_shadow, "n_train_half": half, "n_synthetic": n_synthetic,
        "null_sd": auc_null_sd(n_pairs // 2, n_pairs - n_pairs // 2), "features": list(SHADOW_FEATURES)})


# ------------------------------------------------------------------------------------------------ known answers
# Releases and shadow generators whose leak is known, to calibrate the attacks on a cohort (tests, benchmarks).


def noisy_copy(rows: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """A copy of ``rows`` (n, m) int8 dosages with each genotype, with probability ``share``, redrawn from
    Binomial(2, p_j), p_j the rows' own allele frequency: an overfitted model's release (share 0: verbatim)."""
    rng = np.random.default_rng(seed)
    out = np.array(rows, dtype=np.int8, copy=True)
    p = np.broadcast_to(out.mean(axis=0) / 2, out.shape)
    redraw = rng.random(out.shape) < share
    out[redraw] = rng.binomial(2, p[redraw])
    return out


def mosaic(rows: np.ndarray, n: int, stretch: int, seed: int = 0) -> np.ndarray:
    """(n, m) int8: each individual stitched from stretches of ``stretch`` consecutive SNPs, each copied from a
    random one of ``rows`` (n_r, m): a release that recombines training genomes (haplotype copying without any
    whole-genome copy)."""
    rows = np.asarray(rows, dtype=np.int8)
    rng = np.random.default_rng(seed)
    m = rows.shape[1]
    donors = rng.integers(len(rows), size=(n, -(-m // stretch)))
    return rows[donors.repeat(stretch, axis=1)[:, :m], np.arange(m)[None, :]]


def copier(dosages: np.ndarray, cond: np.ndarray | None, seed: int) -> np.ndarray:
    """Shadow "training" that remembers its individuals (overfit); sample with ``resample``."""
    return dosages


def resample(generator: np.ndarray, n: int, seed: int, *, noise: float = 0.0) -> np.ndarray:
    """n individuals drawn with replacement from a ``copier``'s (n_g, m) rows, then ``noisy_copy``-ed."""
    rows = generator[np.random.default_rng(seed).integers(len(generator), size=n)]
    return noisy_copy(rows, noise, seed) if noise else rows


def independent_snps(dosages: np.ndarray, cond: np.ndarray | None, seed: int) -> np.ndarray:
    """Shadow training of a private generator: each SNP's genotype-class frequencies (m, 3), nothing else;
    sample with ``draw_independent``."""
    return np.stack([(dosages == g).mean(axis=0) for g in (0, 1, 2)], axis=1)


def draw_independent(frequencies: np.ndarray, n: int, seed: int) -> np.ndarray:
    """(n, m) int8 dosages, each SNP drawn on its own from its (m, 3) genotype-class frequencies."""
    u = np.random.default_rng(seed).random((n, len(frequencies), 1))
    return (u > np.cumsum(frequencies, axis=1)[None]).sum(axis=-1).astype(np.int8)


def attack_metrics(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, segment=None, seed: int = 0,
                   device: str = "auto") -> dict[str, MetricValue]:
    """The attacks cheap enough for every evaluation: DOMIAS (AUC, TPR at 1% FPR), attribute inference and the
    shared-segment attack (with its fidelity row; ``segment``: (m,) chromosome labels, None = one chromosome).
    (Kinship replay explains the privacy rows' KING counts, see ``kinship_null``; the shadow-model attack trains
    generators and is run on request, see ``shadow_model_attack``.) Inputs as the module docstring."""
    out = domias_membership(train, holdout, synthetic, seed=seed)
    out["attribute_inference_gap"] = attribute_inference(train, holdout, synthetic, seed=seed, device=device)
    out.update(shared_segment_membership(train, holdout, synthetic, segment=segment, seed=seed, device=device))
    return out
