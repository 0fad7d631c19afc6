"""Lining up the training, holdout and synthetic cohorts on shared SNPs, and sizing them for a fair comparison.

Every evaluation statistic compares synthetic vs training with real holdout vs training, computed the same way.
That needs (1) the three cohorts on the same SNPs with the same counted allele, (2) holdout and synthetic at the
same size (seeded subsample of the larger), (3) one documented treatment of missing calls.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..genotypes import MISSING, Genotypes

# An allele written "0" is PLINK's "unknown" (a monomorphic SNP): it matches either allele of the other cohort.
_UNKNOWN_ALLELE = "0"


@dataclass
class Alignment:
    """What :func:`align_cohorts` kept, flipped and dropped (for the report's provenance)."""

    n_shared: int
    flipped: dict[str, int] = field(default_factory=dict)  # cohort -> SNPs whose a1/a2 were swapped (2 - x)
    dropped: dict[str, int] = field(default_factory=dict)  # cohort -> its SNPs absent from the intersection
    dropped_examples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"n_shared_snps": self.n_shared, "flipped": self.flipped, "dropped": self.dropped,
                "dropped_examples": self.dropped_examples}


def _orientation(a1, a2, t1, t2) -> np.ndarray:
    """Per SNP: 0 = same alleles as training, 1 = swapped, -1 = incompatible allele codes."""
    u = _UNKNOWN_ALLELE
    same = ((a1 == t1) | (a1 == u)) & ((a2 == t2) | (a2 == u))
    swap = ((a1 == t2) | (a1 == u)) & ((a2 == t1) | (a2 == u))
    return np.where(same, 0, np.where(swap, 1, -1))


def align_cohorts(train: Genotypes, holdout: Genotypes, synthetic: Genotypes, *,
                  names=("training", "holdout", "synthetic")) -> tuple[Genotypes, Genotypes, Genotypes, Alignment]:
    """The three cohorts restricted to the SNPs all share (matched by ID), in training order, every dosage
    counting the training ``a1``.

    A cohort whose ``a1``/``a2`` are swapped relative to training for a SNP gets ``2 - x`` there (missing stays -1).
    ``names`` label the cohorts in messages (e.g. their file prefixes). Raises InputError when no SNP ID is
    shared, or when a shared SNP has allele codes that are neither the same nor swapped (another strand or build):
    those cannot be compared and silently dropping them would hide a mix-up.
    """
    cohorts = [train, holdout, synthetic]
    ids = [c.variants["snp"].astype(str).to_numpy() for c in cohorts]
    shared = set(ids[0]).intersection(ids[1]).intersection(ids[2])
    if not shared:
        raise InputError(
            f"the {names[0]}, {names[1]} and {names[2]} cohorts share no SNP ID "
            f"(e.g. {ids[0][0]!r}, {ids[1][0]!r}, {ids[2][0]!r})",
            hint="all three must be genotyped on the same panel with the same SNP IDs (see the .bim column 2)",
        )
    keep_train = np.flatnonzero(np.isin(ids[0], list(shared)))
    order = ids[0][keep_train]
    t1 = train.variants["a1"].astype(str).to_numpy()[keep_train]
    t2 = train.variants["a2"].astype(str).to_numpy()[keep_train]
    out = [train.subset(variants=keep_train)]
    report = Alignment(n_shared=len(order))
    for c, ids_c, name in zip(cohorts, ids, names):
        dropped = ids_c[~np.isin(ids_c, order)]
        report.dropped[name] = int(dropped.size)
        report.dropped_examples[name] = dropped[:5].tolist()
    for c, ids_c, name in zip(cohorts[1:], ids[1:], names[1:]):
        pos = {s: i for i, s in enumerate(ids_c)}
        idx = np.array([pos[s] for s in order], dtype=np.int64)
        a1 = c.variants["a1"].astype(str).to_numpy()[idx]
        a2 = c.variants["a2"].astype(str).to_numpy()[idx]
        orient = _orientation(a1, a2, t1, t2)
        if (orient < 0).any():
            bad = np.flatnonzero(orient < 0)
            k = bad[0]
            raise InputError(
                f"{bad.size} SNPs have allele codes in the {name} cohort that match neither the {names[0]} "
                f"alleles nor their swap, e.g. {order[k]}: {a1[k]}/{a2[k]} vs {t1[k]}/{t2[k]}",
                hint="use the same strand and genome build for all cohorts, or exclude those SNPs "
                     "(plink --exclude)",
            )
        dos = c.dosages[:, idx]
        flip = orient == 1
        if flip.any():
            dos = dos.copy()
            block = dos[:, flip]
            dos[:, flip] = np.where(block == MISSING, MISSING, 2 - block).astype(np.int8)
        report.flipped[name] = int(flip.sum())
        out.append(Genotypes(np.ascontiguousarray(dos), out[0].variants.copy(), c.samples.reset_index(drop=True)))
    return out[0], out[1], out[2], report


MIN_COHORT = 10  # fewer individuals than this grade nothing: an AUC of one holdout individual is 0 or 1


def check_cohort_sizes(train: Genotypes, holdout: Genotypes, synthetic: Genotypes, *,
                       names=("training", "holdout", "synthetic")) -> None:
    """Refuse cohorts too small for any statistic of the report to mean something (InputError)."""
    for name, g in zip(names, (train, holdout, synthetic)):
        if g.n_samples < MIN_COHORT:
            raise InputError(f"the {name} cohort has {g.n_samples} individual(s); the evaluation needs at least "
                             f"{MIN_COHORT}", hint=f"give a {name} cohort of {MIN_COHORT} or more individuals "
                             "(hundreds for the privacy tests)")


def check_holdout_distinct(train: Genotypes, holdout: Genotypes, *, names=("training", "holdout"),
                           max_copy_share: float = 0.5) -> None:
    """Refuse a holdout that is the training cohort (same sample IDs, identical genotypes, or mostly exact copies
    of training rows): the reference values would then say nothing about fresh individuals.

    Call after :func:`align_cohorts` (same SNPs, same counted allele).
    """
    key_t = set(zip(train.samples["fid"].astype(str), train.samples["iid"].astype(str)))
    key_h = set(zip(holdout.samples["fid"].astype(str), holdout.samples["iid"].astype(str)))
    fix = "give real individuals never used for training: a holdout split off before training"
    if key_t == key_h:
        raise InputError(f"the {names[1]} cohort has exactly the sample IDs of the {names[0]} cohort", hint=fix)
    if train.dosages.shape == holdout.dosages.shape and np.array_equal(train.dosages, holdout.dosages):
        raise InputError(f"the {names[1]} genotypes are identical to the {names[0]} genotypes", hint=fix)
    copies = exact_row_matches(holdout.dosages, train.dosages)
    if copies.mean() >= max_copy_share:
        raise InputError(
            f"{int(copies.sum())} of {holdout.n_samples} {names[1]} individuals are exact genotype copies of "
            f"{names[0]} individuals", hint=fix,
        )


def exact_row_matches(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean (n_rows,): whether each row of ``rows`` occurs verbatim among the rows of ``reference``."""
    ref = {r.tobytes() for r in np.ascontiguousarray(reference)}
    return np.array([r.tobytes() in ref for r in np.ascontiguousarray(rows)], dtype=bool)


def equal_sizes(n_holdout: int, n_synthetic: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of holdout and synthetic subsampled (without replacement, seeded) to the smaller size.

    Statistics such as LD r^2, k-NN radii or a classifier's AUC depend on sample size; comparing the synthetic
    value with the holdout's is only fair at equal sizes (GUIDE "Evaluation": compare equal-size sets). The
    training side of a two-sample statistic uses ``subsample_index(n_train, n, seed, stream=TRAIN_STREAM)``.
    """
    n = min(n_holdout, n_synthetic)
    return subsample_index(n_holdout, n, seed, stream=HOLDOUT_STREAM), subsample_index(
        n_synthetic, n, seed, stream=SYNTHETIC_STREAM)


HOLDOUT_STREAM, SYNTHETIC_STREAM, TRAIN_STREAM = 1, 2, 3


def equal_size_rows(holdout: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The rows of :func:`equal_sizes` (holdout, synthetic), e.g. of two dosage matrices."""
    h, s = equal_sizes(len(holdout), len(synthetic), seed)
    return holdout[h], synthetic[s]


# A two-sample statistic compares equal-size sets; where the training or synthetic cohort holds several sets of
# the holdout's size (a release as large as the training part, say), it is cut into up to this many disjoint ones
# and the statistic averaged over them, so that the whole cohort is read, not one seeded subset of it (the
# expectation at that size is unchanged, the noise smaller). On the 18 default releases of issue 13's cohorts
# (2,000-2,400 people against a 500-600-person holdout) one set's AATS privacy loss moved by sd 0.004-0.039 within
# a release and its detection AUC by 0.005-0.053; on the 17 runs with four releases measured, the mean over the
# sets put the AATS loss within 0.010 (rms) of the mean of the releases' one-set values, one set within 0.022
# (BENCHMARKS.md, thirty-fourth pass)
EQUAL_SIZE_ROUNDS = 4


def sets_that_fit(n: int, *n_rows: int, rounds: int = EQUAL_SIZE_ROUNDS) -> int:
    """How many disjoint sets of ``n`` rows every cohort of ``n_rows`` holds, at most ``rounds``, at least one."""
    return max(1, min(rounds, *(k // max(n, 1) for k in n_rows)))


def disjoint_rows(n_rows: int, n: int, seed: int, *, stream: int, rounds: int = EQUAL_SIZE_ROUNDS) -> list[np.ndarray]:
    """Up to ``rounds`` disjoint sorted sets of ``n`` of ``n_rows`` rows (seeded; as many as fit, at least one), or
    one set of all rows if there are no more than ``n``."""
    if n_rows <= n:
        return [np.arange(n_rows)]
    perm = np.random.default_rng([seed, stream]).permutation(n_rows)
    return [np.sort(perm[r * n:(r + 1) * n]) for r in range(sets_that_fit(n, n_rows, rounds=rounds))]


def subsample_index(n_rows: int, n: int, seed: int, *, stream: int = 0) -> np.ndarray:
    """Sorted indices of ``n`` of ``n_rows`` rows drawn without replacement (seeded), or all rows if fewer.

    ``stream`` separates the draws made for different cohorts from one seed.
    """
    if n_rows <= n:
        return np.arange(n_rows)
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.choice(n_rows, size=n, replace=False))


def impute_mean(dosages: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Float64 copy of ``dosages`` (n, m) with missing calls (-1) replaced by ``means`` (m,) (training 2p).

    Used by the statistics that need complete vectors (PCA, k-NN, classifiers, prediction models). Mean
    imputation is deterministic and, for PCA and linear models, the neutral choice: it adds nothing to
    covariances.
    """
    x = dosages.astype(np.float64)
    miss = dosages == MISSING
    if miss.any():
        x[miss] = np.broadcast_to(means, x.shape)[miss]
    return x


def training_means(dosages: np.ndarray) -> np.ndarray:
    """Per-SNP mean dosage over called genotypes (m,); 0 for a SNP with no call."""
    called = dosages != MISSING
    total = np.where(called, dosages, 0).sum(axis=0, dtype=np.int64)
    n = called.sum(axis=0)
    return np.divide(total, n, out=np.zeros(dosages.shape[1]), where=n > 0)
