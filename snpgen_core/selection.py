"""The recorded train / validation / holdout split, QC filters, LD r^2, PLINK-style clumping and SNP panel choice.

Holdout individuals never take part in SNP selection or training: every function here that looks at genotypes is
meant to be given the training part only (``genotypes.subset(samples=split.train)``).

Reading order: split -> quality control -> linkage disequilibrium (r^2 from two-locus genotype counts) -> clumping
(PLINK 1.9 ``--clump``, reproduced rule for rule) -> panels (top-K index SNPs or a user list, as a TSV).
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .genotypes import Genotypes
from .io.atomic import atomic_path

SPLIT_NAMES = ("train", "validation", "holdout")


# ---------------------------------------------------------------------------------------------------------------
# Split


@dataclass
class Split:
    """Row indices (into the cohort's sample table) of the three disjoint parts, each sorted."""

    train: np.ndarray
    validation: np.ndarray
    holdout: np.ndarray

    def labels(self, n: int) -> np.ndarray:
        """One of "train"/"validation"/"holdout" per sample, shape (n,)."""
        out = np.empty(n, dtype=object)
        for name in SPLIT_NAMES:
            out[getattr(self, name)] = name
        return out


def split_samples(n: int, *, strata: np.ndarray | None = None, holdout: float = 0.2, validation: float = 0.0,
                  seed: int = 0) -> Split:
    """Seeded split of ``n`` samples, stratified on ``strata`` (e.g. the phenotype class; NaN = its own stratum).

    Within each stratum the samples are shuffled with ``numpy.random.default_rng(seed)`` and the first
    ``round(holdout * size)`` go to the holdout, the next ``round(validation * size)`` to validation, the rest to
    training. The same ``(n, strata, fractions, seed)`` always gives the same split.
    """
    if not (0 <= holdout < 1 and 0 <= validation < 1 and holdout + validation < 1):
        raise InputError(f"split fractions holdout={holdout}, validation={validation} must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    if strata is None:
        keys = np.zeros(n, dtype=np.int64)
    else:
        strata = np.asarray(strata)
        if strata.dtype.kind == "f":
            strata = np.where(np.isnan(strata), np.inf, strata)  # missing values form their own stratum
        _, keys = np.unique(strata.astype(str) if strata.dtype == object else strata, return_inverse=True)
    parts = {name: [] for name in SPLIT_NAMES}
    for key in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == key))
        n_hold = int(round(holdout * len(members)))
        n_val = int(round(validation * len(members)))
        parts["holdout"].append(members[:n_hold])
        parts["validation"].append(members[n_hold:n_hold + n_val])
        parts["train"].append(members[n_hold + n_val:])
    return Split(*(np.sort(np.concatenate(parts[name])).astype(np.int64) for name in SPLIT_NAMES))


def trait_strata(values: np.ndarray, kind: str, n_bins: int = 5) -> np.ndarray:
    """Strata for :func:`split_samples` from a trait: the class for binary/categorical traits, the quantile bin
    (``n_bins`` equal-count bins) for a quantitative one; NaN (missing) stays NaN, its own stratum."""
    values = np.asarray(values, dtype=np.float64)
    if kind != "quantitative":
        return values
    ok = ~np.isnan(values)
    out = np.full(values.shape, np.nan)
    edges = np.quantile(values[ok], np.linspace(0, 1, n_bins + 1)[1:-1])
    out[ok] = np.searchsorted(edges, values[ok], side="right")
    return out


def split_file_beside(prefix: str | os.PathLike) -> Path:
    """Where a cohort's recorded split lives by convention: ``PREFIX.split.tsv`` next to its ``.bed``."""
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".split.tsv")


def write_split_cohorts(bfile: str | os.PathLike, split: Split, out: str | os.PathLike) -> list[Path]:
    """Write each non-empty part of ``split`` of the PLINK cohort ``bfile`` as ``OUT.<part>.bed/.bim/.fam`` and
    the split itself as ``OUT.split.tsv``; returns the paths written. Every file is written atomically."""
    from .io.plink import plink_path, read_fam, read_plink, write_plink

    out = Path(out)
    written = []
    for part in SPLIT_NAMES:
        idx = getattr(split, part)
        if idx.size == 0:
            continue
        part_prefix = out.with_name(f"{out.name}.{part}")
        write_plink(part_prefix, read_plink(bfile, samples=idx))
        written += [plink_path(part_prefix, s) for s in (".bed", ".bim", ".fam")]
    path = out.with_name(out.name + ".split.tsv")
    write_split(split, read_fam(plink_path(bfile, ".fam")), path)
    return written + [path]


def write_split(split: Split, samples: pd.DataFrame, path: str | Path) -> None:
    """Record a split as a TSV with columns FID, IID, SPLIT (atomic write)."""
    frame = pd.DataFrame({"FID": samples["fid"], "IID": samples["iid"], "SPLIT": split.labels(len(samples))})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def read_text_table(path: str | os.PathLike, columns: list[str], what: str, origin: str) -> pd.DataFrame:
    """A tab-separated table with a header holding at least ``columns``, every cell as text (nothing turned into
    NaN). InputError for a missing, unreadable or incomplete file; ``what`` names it, ``origin`` says where a good
    one comes from."""
    where = str(path)
    header = "a tab-separated header " + " ".join(columns)
    if not Path(path).is_file():
        raise InputError(f"{what} not found", path=where, hint=origin)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"cannot be read as a tab-separated table ({str(err).splitlines()[0]})", path=where,
                         hint=f"expected {header}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {missing}", path=where, hint=f"expected {header}")
    return frame


def read_split(path: str | Path, samples: pd.DataFrame) -> Split:
    """Reuse a recorded split for the cohort whose sample table is ``samples`` (matched by FID and IID).

    Raises InputError for a missing, empty or malformed file, duplicate samples, unknown SPLIT labels, cohort
    samples absent from the file, and a split without training samples.
    """
    where = str(path)
    frame = read_text_table(path, ["FID", "IID", "SPLIT"], "split file", "make one with snpgen split")
    keys = frame["FID"] + "\t" + frame["IID"]
    dup = keys.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(f"sample {keys[i].replace(chr(9), ' ')} appears twice", path=where, line=i + 2,
                         hint="keep one row per sample")
    labels_in_file = frame["SPLIT"].str.strip().str.lower()
    bad = ~labels_in_file.isin(SPLIT_NAMES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"unknown SPLIT value {frame['SPLIT'][i]!r}", path=where, line=i + 2,
                         hint="use train, validation or holdout")
    lookup = dict(zip(keys, labels_in_file))
    cohort = samples["fid"].astype(str) + "\t" + samples["iid"].astype(str)
    labels = cohort.map(lookup)
    if labels.isna().any():
        first = cohort[labels.isna()].iloc[0].replace("\t", " ")
        raise InputError(f"sample {first} is not in the split file ({int(labels.isna().sum())} cohort samples are "
                         "not)", path=where, hint="the split was recorded for another cohort; make a new one")
    labels = labels.to_numpy()
    split = Split(*(np.flatnonzero(labels == name).astype(np.int64) for name in SPLIT_NAMES))
    if split.train.size == 0:
        raise InputError("no sample of this cohort is labelled train", path=where,
                         hint="SNP selection and training need training samples")
    return split


# ---------------------------------------------------------------------------------------------------------------
# Quality control


@dataclass
class QcReport:
    """Which variants pass QC and why the others fail.

    mask: (n_variants,) bool, True = kept. A variant is dropped when it is monomorphic among its called genotypes
    (or has none), when its minor-allele frequency is below ``maf``, or when its share of missing calls exceeds
    ``max_missing`` (PLINK ``--maf``/``--geno`` semantics: MAF >= maf and missing <= max_missing are kept). The
    three counts may overlap; ``n_low_maf`` counts polymorphic variants only.
    """

    mask: np.ndarray
    maf: float
    max_missing: float
    n_samples: int
    n_monomorphic: int
    n_low_maf: int
    n_high_missing: int

    @property
    def n_variants(self) -> int:
        return int(self.mask.size)

    @property
    def n_pass(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        return (f"QC on {self.n_samples} individuals: {self.n_pass} of {self.n_variants} SNPs pass "
                f"({self.n_monomorphic} monomorphic, {self.n_low_maf} with MAF < {self.maf:g}, "
                f"{self.n_high_missing} with missing calls > {self.max_missing:.0%})")


def qc_report(genotypes: Genotypes, maf: float = 0.01, max_missing: float = 0.05) -> QcReport:
    """Minor-allele-frequency, call-rate and monomorphism filters (see :class:`QcReport`).

    MAF = min(f, 1 - f) with f = a1 frequency among called genotypes (``Genotypes.a1_frequency``).
    """
    if not 0 <= maf <= 0.5:
        raise InputError(f"MAF threshold {maf} must be within [0, 0.5]")
    if not 0 <= max_missing <= 1:
        raise InputError(f"maximum missing-call share {max_missing} must be within [0, 1]")
    freq = genotypes.a1_frequency()
    minor = np.minimum(freq, 1 - freq)  # NaN when no genotype is called
    missing = genotypes.missing_rate()
    monomorphic = ~(minor > 0)
    low_maf = ~monomorphic & (minor < maf)
    high_missing = missing > max_missing
    mask = ~(monomorphic | low_maf | high_missing)
    return QcReport(mask, maf, max_missing, genotypes.n_samples, int(monomorphic.sum()), int(low_maf.sum()),
                    int(high_missing.sum()))


def qc_mask(genotypes: Genotypes, maf: float = 0.01, max_missing: float = 0.05) -> np.ndarray:
    """(n_variants,) bool: True for variants passing :func:`qc_report`'s filters."""
    return qc_report(genotypes, maf, max_missing).mask


# ---------------------------------------------------------------------------------------------------------------
# Linkage disequilibrium
#
# Every r^2 here is a function of the 3 x 3 table of two SNPs' genotypes over the individuals called at both
# (pairwise complete). The tables come from bit masks of the genotype classes, 64 individuals per word, and a
# popcount of their AND: exact integer counts at a fraction of the memory of float dosages.

R2_ESTIMATORS = ("dosage", "haplotype")
# PLINK 1.9's tolerances (plink_common.h): 2^-30, 2^-35, 2^-44
_EPSILON = 2.0 ** -30
_SMALLISH_EPSILON = 2.0 ** -35
_SMALL_EPSILON = 2.0 ** -44


def pack_genotype_classes(dosages: np.ndarray, columns: np.ndarray | None = None, block: int = 1024) -> np.ndarray:
    """Bit masks of the genotype classes: (k, 3, ceil(n / 64)) uint64 for the k ``columns`` (default all).

    ``dosages`` is (n_samples, n_variants) int8; bit i of ``[j, c]`` is set when sample i has dosage c (0, 1, 2)
    at variant ``columns[j]``. Missing calls set no bit, so counts from these masks are pairwise complete.
    """
    n, m = dosages.shape
    columns = np.arange(m) if columns is None else np.asarray(columns, dtype=np.int64)
    k = columns.size
    words = max(1, -(-n // 64))
    bits = np.zeros((k, 3, words), dtype=np.uint64)
    raw = np.zeros((min(block, k), words * 8), dtype=np.uint8)
    rows = np.empty((min(block, k), n), dtype=dosages.dtype)
    for lo in range(0, k, block):
        cols = columns[lo:lo + block]
        b = cols.size
        contiguous = cols[-1] - cols[0] == b - 1 and np.all(np.diff(cols) == 1)
        src = dosages[:, cols[0]:cols[-1] + 1] if contiguous else dosages[:, cols]
        for i in range(0, n, 256):  # transposed in cache-sized tiles: numpy's whole-array transpose is slow
            rows[:b, i:i + 256] = src[i:i + 256].T
        for c in range(3):
            packed = np.packbits(rows[:b] == c, axis=1, bitorder="little")
            raw[:b, :packed.shape[1]] = packed
            bits[lo:lo + b, c] = raw[:b].view("<u8")
    return bits


def two_locus_counts(bits_a: np.ndarray, bits_b: np.ndarray, *, complete: tuple | None = None) -> np.ndarray:
    """Genotype tables of one SNP against several: (w, 3, 3) int64, ``[k, g, h]`` = individuals with dosage g at
    SNP a and h at SNP ``k`` of b, among those called at both. ``bits_a`` is (3, words), ``bits_b`` (w, 3, words)
    from :func:`pack_genotype_classes`.

    ``complete=(class_counts_a (3,), class_counts_b (w, 3))`` promises that no individual is missing at either
    SNP: then 4 of the 9 cells are counted and the rest follow from the margins.
    """
    if complete is None:
        both = bits_b[:, None, :, :] & bits_a[None, :, None, :]  # (w, g, h, words)
        return np.bitwise_count(both).sum(axis=-1, dtype=np.int64)
    rows_a, cols_b = complete
    inner = np.bitwise_count(bits_b[:, None, 1:, :] & bits_a[None, 1:, None, :]).sum(axis=-1, dtype=np.int64)
    out = np.empty((bits_b.shape[0], 3, 3), dtype=np.int64)
    out[:, 1:, 1:] = inner
    out[:, 0, 1:] = cols_b[:, 1:] - inner.sum(axis=1)
    out[:, 1:, 0] = rows_a[None, 1:] - inner.sum(axis=2)
    out[:, 0, 0] = rows_a[0] - out[:, 0, 1:].sum(axis=1)
    return out


def r2_dosage(counts: np.ndarray) -> np.ndarray:
    """Squared Pearson correlation of dosages from (w, 3, 3) genotype tables; NaN when either SNP is monomorphic
    among the individuals called at both. This is PLINK 1.9 ``--r2`` (without ``dprime``)."""
    g = np.arange(3)
    n = counts.sum(axis=(1, 2))
    row, col = counts.sum(axis=2), counts.sum(axis=1)  # (w, 3) genotype counts of a and b
    sa, sb = row @ g, col @ g
    saa, sbb = row @ (g * g), col @ (g * g)
    sab = np.einsum("kgh,g,h->k", counts, g, g)
    # integer moments are exact; only the final ratio rounds
    cov = (n * sab - sa * sb).astype(np.float64)
    var_a = (n * saa - sa * sa).astype(np.float64)
    var_b = (n * sbb - sb * sb).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = cov * cov / (var_a * var_b)
    return np.where((var_a > 0) & (var_b > 0), r2, np.nan)


def _cubic_real_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Real roots of x^3 + a x^2 + b x + c, PLINK 1.9's ``cubic_real_roots`` vectorised operation for operation:
    (k, 3) sorted roots (NaN padded) and their count (k,)."""
    a2 = a * a
    qq = (a2 - 3 * b) * (1.0 / 9.0)
    rr = (2 * a2 * a - 9 * a * b + 27 * c) * (1.0 / 54.0)
    r2 = rr * rr
    q3 = qq * qq * qq
    adiv3 = a * (1.0 / 3.0)
    roots = np.full(a.shape + (3,), np.nan)
    count = np.ones(a.shape, dtype=np.int64)
    three = r2 < q3
    with np.errstate(invalid="ignore", divide="ignore"):
        # three real roots (trigonometric form)
        sq = np.sqrt(qq)
        ang = np.arccos(rr / (qq * sq)) * (1.0 / 3.0)
        sq = sq * -2
        t = np.sort(np.stack([sq * np.cos(ang) - adiv3, sq * np.cos(ang + (2.0 * math.pi / 3.0)) - adiv3,
                              sq * np.cos(ang - (2.0 * math.pi / 3.0)) - adiv3], axis=-1), axis=-1)
        close01 = t[..., 1] - t[..., 0] < _EPSILON
        merged = np.where(close01[..., None], np.stack([t[..., 0], t[..., 2], t[..., 2]], axis=-1), t)
        n_three = np.where(close01, np.where(t[..., 2] - t[..., 0] < _EPSILON, 1, 2),
                           np.where(t[..., 2] - t[..., 1] < _EPSILON, 2, 3))
        # one real root, or a double root (Cardano)
        d = -np.power(np.abs(rr) + np.sqrt(r2 - q3), 1.0 / 3.0)
        d = np.where(rr < 0, -d, d)
        s = qq / d
        first = d + s - adiv3
        double = np.abs(d - s) < _EPSILON * 8
        low = np.where(d >= 0, -d - adiv3, first)
        high = np.where(d >= 0, first, -d - adiv3)
    zero = ~three & (d == 0)
    one = ~three & ~zero & ~double
    two = ~three & ~zero & double
    roots[three] = merged[three]
    count[three] = n_three[three]
    roots[zero, 0] = -adiv3[zero]
    roots[one, 0] = first[one]
    roots[two, 0], roots[two, 1] = low[two], high[two]
    count[two] = 2
    idx = np.arange(3)
    roots[idx >= count[:, None]] = np.nan
    return roots, count


def _lnlike(k11, k12, k21, k22, center, f11, f12, f21, f22, half, incr):
    """PLINK 1.9's ``calc_lnlike``: log likelihood of the genotype table when double heterozygotes contribute
    ``incr`` of 11/22 haplotype frequency (arrays broadcast; a zero count contributes 0, not 0 * -inf)."""
    f11, f22 = f11 + incr, f22 + incr
    f12, f21 = f12 + (half - incr), f21 + (half - incr)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = center * np.log(f11 * f22 + f12 * f21)
        for k, f in ((k11, f11), (k12, f12), (k21, f21), (k22, f22)):
            out = out + np.where(k != 0, k * np.log(f), 0.0)
    return out


@dataclass
class _TwoLocus:
    """Haplotype-frequency pieces of PLINK 1.9's ``em_phase_hethet`` for w SNP pairs, before phasing the double
    heterozygotes: counts of unambiguous haplotypes k11..k22 (allele 1 = a1), double heterozygotes, their
    frequencies (over all 2N haplotypes) and the a1 frequencies p_a = freq1x, p_b = freqx1."""

    k11: np.ndarray
    k12: np.ndarray
    k21: np.ndarray
    k22: np.ndarray
    center: np.ndarray
    f11: np.ndarray
    f12: np.ndarray
    f21: np.ndarray
    f22: np.ndarray
    half: np.ndarray
    freq1x: np.ndarray
    freq2x: np.ndarray
    freqx1: np.ndarray
    freqx2: np.ndarray
    failed: np.ndarray

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> "_TwoLocus":
        # PLINK indexes genotypes from homozygous a1 (our dosage 2) down to homozygous a2 (dosage 0)
        c = counts[:, ::-1, ::-1].astype(np.float64)
        k11 = 2 * c[:, 0, 0] + c[:, 0, 1] + c[:, 1, 0]
        k12 = 2 * c[:, 0, 2] + c[:, 0, 1] + c[:, 1, 2]
        k21 = 2 * c[:, 2, 0] + c[:, 1, 0] + c[:, 2, 1]
        k22 = 2 * c[:, 2, 2] + c[:, 1, 2] + c[:, 2, 1]
        center = c[:, 1, 1]
        twice_tot = k11 + k12 + k21 + k22 + 2 * center
        with np.errstate(divide="ignore", invalid="ignore"):
            recip = 1.0 / twice_tot
        f11, f12, f21, f22 = k11 * recip, k12 * recip, k21 * recip, k22 * recip
        half = center * recip
        freq1x = f11 + f12 + half
        freqx1 = f11 + f21 + half
        failed = (twice_tot == 0) | ((center == 0) & (f11 * f22 == 0) & (f12 * f21 == 0))
        return cls(k11, k12, k21, k22, center, f11, f12, f21, f22, half, freq1x, 1.0 - freq1x, freqx1,
                   1.0 - freqx1, failed)

    def take(self, rows: np.ndarray) -> "_TwoLocus":
        return _TwoLocus(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))

    def r2(self, incr: np.ndarray | float) -> np.ndarray:
        """PLINK's r^2 when the double heterozygotes add ``incr`` to the 11-haplotype frequency (NaN if failed)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = self.freqx1 * self.freq1x
            d = (self.f11 + incr) - expected
            r2 = np.where(np.abs(d) >= _SMALL_EPSILON, np.abs(d) * d / (expected * self.freq2x * self.freqx2), 0.0)
        return np.where(self.failed, np.nan, np.abs(r2))

    def phase_increment(self) -> np.ndarray:
        """The double heterozygotes' share of 11 haplotypes chosen as PLINK 1.9 chooses it (w,)."""
        w = self.center.size
        p1122, p1221 = self.f11 * self.f22, self.f12 * self.f21
        cand = np.full((w, 3), np.nan)  # candidate increments of f11, in PLINK's order
        has_center = self.center > 0
        cubic = has_center & ((p1122 != 0) | (p1221 != 0))
        if cubic.any():
            h, f11, f12, f21, f22 = (x[cubic] for x in (self.half, self.f11, self.f12, self.f21, self.f22))
            roots, _ = _cubic_real_roots(0.5 * (f11 + f22 - f12 - f21 - 3 * h),
                                         0.5 * (p1122[cubic] + p1221[cubic] + h * (f12 + f21 - f11 - f22 + h)),
                                         -0.5 * h * p1122[cubic])
            inside = (roots <= h[:, None] + _SMALLISH_EPSILON) & (roots >= -_SMALLISH_EPSILON)  # NaN: False
            n_in = inside.sum(axis=1)
            some = n_in > 0
            rows = np.flatnonzero(some)
            first = np.argmax(inside, axis=1)[some]
            last = first + n_in[some] - 1
            kept = np.where(inside, roots, np.nan)
            kept[rows, first] = np.maximum(kept[rows, first], 0.0)
            kept[rows, last] = np.minimum(kept[rows, last], h[some])
            # left-align the surviving roots; when none survives the optimum is a boundary: try 0 and h
            packed = np.take_along_axis(kept, np.argsort(~inside, axis=1, kind="stable"), axis=1)
            packed[~some] = np.nan
            packed[~some, 0] = 0.0
            packed[~some, 1] = h[~some]
            cand[cubic] = packed
        flat = has_center & ~cubic
        if flat.any():
            h, g21, g22 = self.half[flat], self.f21[flat], self.f22[flat]
            mid = (g22 + _SMALLISH_EPSILON < h + g21) & (g21 + _SMALLISH_EPSILON < h + g22)
            block = np.full((h.size, 3), np.nan)
            block[:, 0] = 0.0
            block[:, 1] = np.where(mid, (h + g21 - g22) * 0.5, h)
            block[:, 2] = np.where(mid, h, np.nan)
            cand[flat] = block
        # PLINK keeps the first candidate unless a later one beats the FIRST one's likelihood (its running best
        # is never updated), and then the last such candidate wins: reproduced as is
        incr = np.zeros(w)
        if has_center.any():
            hc = has_center
            args = [getattr(self, f)[hc, None] for f in
                    ("k11", "k12", "k21", "k22", "center", "f11", "f12", "f21", "f22", "half")]
            ll = _lnlike(*args, np.nan_to_num(cand[hc]))
            better = ~np.isnan(cand[hc]) & (ll > ll[:, :1])
            better[:, 0] = False
            pick = np.where(better.any(axis=1), 2 - np.argmax(better[:, ::-1], axis=1), 0)
            incr[hc] = cand[hc][np.arange(pick.size), pick]
        return incr


def r2_haplotype(counts: np.ndarray) -> np.ndarray:
    """r^2 from maximum-likelihood two-SNP haplotype frequencies, exactly as PLINK 1.9 ``--clump`` computes it.

    The (w, 3, 3) genotype tables give the unambiguous haplotype counts; the double heterozygotes' phase is the
    likelihood-maximising root of PLINK's cubic (``em_phase_hethet``, including its choice among several roots).
    r^2 = D^2 / (p_a (1 - p_a) p_b (1 - p_b)) with D = f11 - p_a p_b over the a1 alleles; 0 when |D| < 2^-44.
    NaN where PLINK gives up (no individual called at both, or a SNP monomorphic without double heterozygotes):
    such pairs are never clumped.
    """
    pairs = _TwoLocus.from_counts(counts)
    return pairs.r2(pairs.phase_increment())


def _haplotype_r2_exceeds(counts: np.ndarray, threshold: float) -> np.ndarray:
    """``r2_haplotype(counts) > threshold`` (w,) bool, phasing only the pairs whose answer depends on the phase.

    The double heterozygotes move f11 by an increment in [0, h], so D lies between D(0) and D(h): r^2 is at most
    max(r^2(0), r^2(h)), and at least min(r^2(0), r^2(h)) when D(0) and D(h) share their sign (exactly so in
    floating point, where every step is monotonic). Pairs decided by these bounds skip the cubic.
    """
    pairs = _TwoLocus.from_counts(counts)
    r2_low, r2_high = pairs.r2(0.0), pairs.r2(pairs.half)
    expected = pairs.freqx1 * pairs.freq1x
    same_sign = ((pairs.f11 - expected) > 0) == (((pairs.f11 + pairs.half) - expected) > 0)
    out = same_sign & (np.fmin(r2_low, r2_high) > threshold)  # NaN: False
    unsure = np.flatnonzero(~out & (np.fmax(r2_low, r2_high) > threshold))
    if unsure.size:
        some = pairs.take(unsure)
        out[unsure] = some.r2(some.phase_increment()) > threshold
    return out


def haplotype_r2_ceiling(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """The largest haplotype r^2 two SNPs with a1 frequencies ``pa`` and ``pb`` allow (NaN if one is monomorphic):
    D <= min(pa qb, qa pb) and D >= -min(pa pb, qa qb), so r^2 <= max of their squares / (pa qa pb qb)."""
    qa, qb = 1 - pa, 1 - pb
    d = np.maximum(np.minimum(pa * qb, qa * pb), np.minimum(pa * pb, qa * qb))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((pa > 0) & (qa > 0) & (pb > 0) & (qb > 0), d * d / (pa * qa * pb * qb), np.nan)


def _r2_function(estimator: str):
    if estimator == "dosage":
        return r2_dosage
    if estimator == "haplotype":
        return r2_haplotype
    raise InputError(f"r^2 estimator {estimator!r} unknown; choose from {R2_ESTIMATORS}")


def _exceeds_function(estimator: str):
    """counts, threshold -> r^2 > threshold (bool), NaN never exceeding."""
    if estimator == "haplotype":
        return _haplotype_r2_exceeds
    fn = _r2_function(estimator)
    return lambda counts, threshold: fn(counts) > threshold


def ld_r2(a: np.ndarray, b: np.ndarray | None = None, *, estimator: str = "dosage") -> np.ndarray:
    """r^2 between every SNP of ``a`` and every SNP of ``b`` (default ``a``): (k, l) float64.

    ``a`` (n, k) and ``b`` (n, l) are int8 dosages of the same individuals (0/1/2 copies of a1, -1 missing).
    Missing calls are handled pairwise-complete: each pair uses the individuals called at both SNPs (as PLINK
    does; no imputation). ``estimator="dosage"``: squared Pearson correlation of the dosages (PLINK 1.9 ``--r2``,
    the r^2 of the evaluation report). ``"haplotype"``: r^2 of maximum-likelihood haplotype frequencies (PLINK 1.9
    ``--clump`` and ``--r2 dprime``). NaN for a pair where either SNP is monomorphic (see :func:`r2_haplotype`).
    The genotype tables come from 9 matrix products of class indicators (exact in float32 below 2^24 people).
    """
    fn = _r2_function(estimator)
    a = np.asarray(a)
    a = a[:, None] if a.ndim == 1 else a
    b = a if b is None else (np.asarray(b)[:, None] if np.ndim(b) == 1 else np.asarray(b))
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a has {a.shape[0]} individuals, b has {b.shape[0]}")
    k, l = a.shape[1], b.shape[1]
    ind_b = [(b == c).astype(np.float32) for c in range(3)]  # (n, l) class indicators
    out = np.empty((k, l))
    block = max(1, (1 << 19) // max(l, 1))  # (block, l, 3, 3) counts at a time, ~40 MB
    for lo in range(0, k, block):
        ind_a = [(a[:, lo:lo + block] == c).astype(np.float32) for c in range(3)]
        counts = np.empty((ind_a[0].shape[1], l, 3, 3), dtype=np.int64)
        for g in range(3):
            for h in range(3):
                counts[:, :, g, h] = ind_a[g].T @ ind_b[h]
        out[lo:lo + block] = fn(counts.reshape(-1, 3, 3)).reshape(-1, l)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Clumping (PLINK 1.9 --clump)

CLUMP_COLUMNS = ["CHR", "F", "SNP", "BP", "P", "TOTAL", "NSIG", "S05", "S01", "S001", "S0001", "SP2", "variant_index"]
_P_BINS = np.array([1e-4, 1e-3, 1e-2, 0.05])  # S0001 | S001 | S01 | S05 | NSIG


def check_clump_parameters(p1: float, p2: float, r2: float, kb: float) -> None:
    """InputError unless 0 < p1 <= p2 <= 1 (PLINK refuses p2 < p1), 0 < r2 <= 1 and kb > 0."""
    for name, value in (("p1", p1), ("p2", p2)):
        if not (0 < value <= 1):
            raise InputError(f"clump {name} = {value:g} must be in (0, 1]", hint=f"e.g. --clump-{name} 1e-4")
    if p2 < p1:
        raise InputError(f"clump p2 = {p2:g} is below p1 = {p1:g}; like PLINK, p2 must be at least p1",
                         hint="p1 chooses index SNPs, p2 (>= p1) the clumped SNPs listed with them")
    if not (0 < r2 <= 1):
        raise InputError(f"clump r2 = {r2:g} must be in (0, 1]", hint="LD threshold, e.g. --clump-r2 0.5")
    if not (kb > 0 and math.isfinite(kb)):
        raise InputError(f"clump kb = {kb:g} must be a positive distance in kilobases", hint="e.g. --clump-kb 250")


def _chrom_rank(chrom: np.ndarray) -> np.ndarray:
    """Integer rank of each chromosome name in natural order: 1..22 (numerically), X/23, Y/24, XY/25, MT/26, then
    other contigs alphabetically. "chr1" and "1" are the same chromosome."""
    names = pd.Series(chrom, dtype=str).str.strip()
    canon = names.str.replace(r"^chr", "", case=False, regex=True).str.upper()
    canon = canon.replace({"X": "23", "Y": "24", "XY": "25", "M": "26", "MT": "26"})
    uniq = sorted(set(canon), key=lambda c: (0, int(c), "") if c.isdigit() else (1, 0, c))
    rank = {c: i for i, c in enumerate(uniq)}
    return canon.map(rank).to_numpy(dtype=np.int64)


def _gwas_frame(aligned, n_variants: int) -> pd.DataFrame:
    """variant_index and p from an AlignedGwas or its table: finite p only, one row per variant (smallest p)."""
    table = aligned.table if hasattr(aligned, "table") else aligned
    missing = {"variant_index", "p"} - set(table.columns)
    if missing:
        raise ValueError(f"the GWAS table lacks column(s) {sorted(missing)}; pass align_gwas(...) output")
    t = pd.DataFrame({"variant_index": table["variant_index"].to_numpy(dtype=np.int64),
                      "p": pd.to_numeric(table["p"], errors="coerce").to_numpy(dtype=np.float64)})
    if len(t) and (t["variant_index"].min() < 0 or t["variant_index"].max() >= n_variants):
        raise ValueError("variant_index out of range for these genotypes: align the GWAS to the same variant table")
    t = t[np.isfinite(t["p"])]
    bad = (t["p"] < 0) | (t["p"] > 1)
    if bad.any():
        raise InputError(f"p-value {t['p'][bad].iloc[0]} outside [0, 1] in the GWAS table",
                         hint="p-values must be probabilities")
    return t.sort_values(["p", "variant_index"], kind="stable").drop_duplicates("variant_index")


def clump(genotypes: Genotypes, aligned, p1: float = 1e-4, p2: float = 1e-2, r2: float = 0.5, kb: float = 250,
          estimator: str = "haplotype") -> pd.DataFrame:
    """LD clumping with PLINK 1.9 ``--clump`` semantics; ``genotypes`` must be the TRAINING individuals.

    ``aligned``: an ``AlignedGwas`` (or its table) with ``variant_index`` into ``genotypes.variants`` and ``p``.
    Only variants with a finite p take part (as only variants in PLINK's ``--clump`` file do). Rules, checked
    against plink1.9 v1.90b6.26:

    - index candidates: p <= p1, taken greedily by ascending p; equal p in variant-table order;
    - a candidate already clumped into an earlier index is skipped;
    - an index clumps every variant not yet clumped on the same chromosome with |bp distance| < kb * 1000 and
      r^2 > r2 (strictly), whatever its p; variants with p < p2 (strictly) are listed in SP2;
    - r^2 is ``estimator`` over the individuals called at both SNPs: "haplotype" is PLINK 1.9's (maximum-
      likelihood haplotype frequencies, :func:`r2_haplotype`), "dosage" the squared correlation of dosages.
      PLINK uses founders only; here every individual given counts. Sex chromosomes are treated as autosomes.

    Returns one row per index SNP in clumping order, PLINK's ``.clumped`` columns: CHR, F (1), SNP, BP, P, TOTAL
    (variants clumped into it), NSIG / S05 / S01 / S001 / S0001 (of those, p >= 0.05, [0.01, 0.05), [1e-3, 0.01),
    [1e-4, 1e-3), < 1e-4), SP2 (IDs with p < p2 in position order, comma-separated, "NONE" if none), plus
    ``variant_index``. Cost: one popcount of bit masks per index SNP and window, O(window * n / 64) words.
    """
    check_clump_parameters(p1, p2, r2, kb)
    exceeds = _exceeds_function(estimator)
    gw = _gwas_frame(aligned, genotypes.n_variants)
    variants = genotypes.variants
    vi = gw["variant_index"].to_numpy()
    pv = gw["p"].to_numpy()
    rank = _chrom_rank(variants["chrom"].to_numpy()[vi])
    pos = variants["pos"].to_numpy(dtype=np.int64)[vi]
    order = np.lexsort((vi, pos, rank))  # position order within chromosomes
    vi, pv, rank, pos = vi[order], pv[order], rank[order], pos[order]
    # |d| < kb * 1000 for integer d  <=>  |d| <= ceil(kb * 1000) - 1; chromosomes kept 2^40 bp apart
    radius = min(math.ceil(kb * 1000) - 1, 1 << 38)
    key = rank * (1 << 40) + pos
    lo_all = np.searchsorted(key, key - radius, side="left")
    hi_all = np.searchsorted(key, key + radius, side="right")
    candidates = np.flatnonzero(pv <= p1)
    candidates = candidates[np.lexsort((vi[candidates], pv[candidates]))]
    # genotypes are only needed within the windows of candidate index SNPs
    cover = np.zeros(vi.size + 1, dtype=np.int64)
    np.add.at(cover, lo_all[candidates], 1)
    np.add.at(cover, hi_all[candidates], -1)
    needed = np.flatnonzero(np.cumsum(cover[:-1]) > 0)
    n = genotypes.n_samples
    bits = np.zeros((vi.size, 3, max(1, -(-n // 64))), dtype=np.uint64)
    bits[needed] = pack_genotype_classes(genotypes.dosages, vi[needed])
    class_counts = np.bitwise_count(bits).sum(axis=-1, dtype=np.int64)  # (k, 3) individuals per dosage
    complete = class_counts.sum(axis=1) == n  # no missing call at this SNP
    freq = (class_counts[:, 1] + 2 * class_counts[:, 2]) / (2.0 * n)  # a1 frequency where complete
    # pairs whose allele frequencies cap the haplotype r^2 at r2 or below cannot be clumped: skip their counts
    # (complete SNPs only, where the pair's frequencies are these; the margin absorbs rounding)
    prune = estimator == "haplotype"
    clumped = np.zeros(vi.size, dtype=bool)
    ids = variants["snp"].astype(str).to_numpy()[vi]
    chrom_names = variants["chrom"].astype(str).to_numpy()[vi]
    records = []
    for row in candidates:
        if clumped[row]:
            continue
        lo, hi = lo_all[row], hi_all[row]
        window = np.arange(lo, hi)
        window = window[~clumped[lo:hi] & (window != row)]
        if prune and complete[row] and window.size:
            ceiling = haplotype_r2_ceiling(freq[row], freq[window])
            window = window[~(complete[window] & (ceiling * (1 + 1e-9) <= r2))]
        members = window[:0]
        if window.size:
            margins = (class_counts[row], class_counts[window]) if complete[row] and complete[window].all() else None
            members = window[exceeds(two_locus_counts(bits[row], bits[window], complete=margins), r2)]
            clumped[members] = True
        bins = np.bincount(np.searchsorted(_P_BINS, pv[members], side="right"), minlength=5)
        sp2 = members[pv[members] < p2]
        records.append((chrom_names[row], 1, ids[row], int(pos[row]), float(pv[row]), int(members.size),
                        int(bins[4]), int(bins[3]), int(bins[2]), int(bins[1]), int(bins[0]),
                        ",".join(ids[sp2]) if sp2.size else "NONE", int(vi[row])))
    out = pd.DataFrame.from_records(records, columns=CLUMP_COLUMNS)
    return out.astype({"F": np.int64, "BP": np.int64, "P": np.float64, "TOTAL": np.int64, "variant_index": np.int64})


# ---------------------------------------------------------------------------------------------------------------
# Panels

PANEL_COLUMNS = ["SNP", "CHR", "BP", "A1", "A2", "BETA", "P"]


class PanelWarning(UserWarning):
    """A panel was chosen, but not quite as asked (fewer SNPs than requested, listed IDs not found)."""


@dataclass
class Panel:
    """The SNPs the models learn, in chromosome then position order.

    table: ``PANEL_COLUMNS``: SNP (variant ID), CHR, BP, A1 / A2 (the genotypes' ``.bim`` alleles; dosages count
           A1), BETA (GWAS effect per copy of A1; NaN for a listed SNP without GWAS row), P.
    variant_index: (k,) rows of the genotype variant table, in ``table`` order.
    qc: the QC of the training genotypes; clumps: the clumping result and n_candidates the SNPs that entered it
    (GWAS mode); notes: what differs from the request, in words (also raised as :class:`PanelWarning`);
    missing_ids: listed IDs absent from the genotypes.
    """

    table: pd.DataFrame
    variant_index: np.ndarray
    qc: QcReport | None = None
    clumps: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    n_candidates: int | None = None  # GWAS SNPs with a p-value that passed QC (GWAS mode)

    def __len__(self) -> int:
        return len(self.table)


def _panel_table(variants: pd.DataFrame, vi: np.ndarray, beta: np.ndarray, p: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    order = np.lexsort((vi, variants["pos"].to_numpy()[vi], _chrom_rank(variants["chrom"].to_numpy()[vi])))
    vi, beta, p = vi[order], beta[order], p[order]
    table = pd.DataFrame({
        "SNP": variants["snp"].astype(str).to_numpy()[vi],
        "CHR": variants["chrom"].astype(str).to_numpy()[vi],
        "BP": variants["pos"].to_numpy(dtype=np.int64)[vi],
        "A1": variants["a1"].astype(str).to_numpy()[vi],
        "A2": variants["a2"].astype(str).to_numpy()[vi],
        "BETA": beta.astype(np.float64),
        "P": p.astype(np.float64),
    })
    return table, vi.astype(np.int64)


def _note(notes: list[str], text: str) -> None:
    notes.append(text)
    warnings.warn(text, PanelWarning, stacklevel=3)


def select_panel(genotypes_train: Genotypes, aligned, top: int = 1000, p1: float = 1.0, p2: float = 1.0,
                 r2: float = 0.5, kb: float = 250, *, maf: float = 0.01, max_missing: float = 0.05,
                 estimator: str = "haplotype", snps: list[str] | None = None) -> Panel:
    """Choose the SNP panel from the TRAINING genotypes: QC, then clumping, then the ``top`` index SNPs by p.

    Defaults: p1 = p2 = 1 so that every QC-passing SNP with a GWAS p-value is a candidate (PLINK's own defaults,
    1e-4 / 1e-2, suit finding loci, not filling a panel); r2 = 0.5 and kb = 250 as PLINK; MAF >= 0.01 and at most
    5% missing calls. ``aligned`` is ``align_gwas(...)`` output (or its table) for ``genotypes_train.variants``.
    When fewer index SNPs than ``top`` exist, all are used and a :class:`PanelWarning` says so.

    With ``snps`` (variant IDs, e.g. from :func:`read_snp_list`) the panel is exactly those found in the
    genotypes, whatever their p or QC; BETA/P come from the GWAS rows with the same ID (by ``variant_index`` when
    the table has no ``snp`` column) where it has them. IDs not in the genotypes are reported (``missing_ids``, a
    warning); none found raises InputError.
    """
    variants = genotypes_train.variants
    notes: list[str] = []
    qc = qc_report(genotypes_train, maf, max_missing)
    table = aligned.table if hasattr(aligned, "table") else aligned
    by_variant = pd.DataFrame({"variant_index": table["variant_index"].to_numpy(dtype=np.int64),
                               "beta": table["beta"].to_numpy(dtype=np.float64),
                               "p": table["p"].to_numpy(dtype=np.float64)}).drop_duplicates("variant_index")
    by_variant = by_variant.set_index("variant_index")

    if snps is not None:
        wanted = list(dict.fromkeys(str(s) for s in snps))
        lookup = pd.Index(variants["snp"].astype(str))
        hit = lookup.get_indexer(wanted)
        missing = [s for s, h in zip(wanted, hit) if h < 0]
        if not (hit >= 0).any():
            raise InputError(f"none of the {len(wanted)} listed SNPs is in the genotypes (e.g. {', '.join(wanted[:3])})",
                             hint="IDs must match the .bim column 2")
        vi = hit[hit >= 0].astype(np.int64)
        if missing:
            _note(notes, f"{len(missing)} of {len(wanted)} listed SNPs are not in the genotypes "
                         f"(e.g. {', '.join(missing[:3])}); the panel has the other {vi.size}")
        if "snp" in table.columns:  # listed SNPs are IDs: take their GWAS rows by ID too
            by_id = pd.DataFrame({"beta": table["beta"].to_numpy(dtype=np.float64),
                                  "p": table["p"].to_numpy(dtype=np.float64)},
                                 index=table["snp"].astype(str)).groupby(level=0).first()
            stats = by_id.reindex(variants["snp"].astype(str).to_numpy()[vi])
        else:
            stats = by_variant.reindex(vi)
        if stats["p"].isna().any():
            _note(notes, f"{int(stats['p'].isna().sum())} listed SNPs have no GWAS row: BETA and P are NA for them")
        failing = int((~qc.mask[vi]).sum())
        if failing:
            _note(notes, f"{failing} listed SNPs fail QC on the training individuals; kept as listed")
        t, vi = _panel_table(variants, vi, stats["beta"].to_numpy(), stats["p"].to_numpy())
        return Panel(t, vi, qc, None, notes, missing)

    if int(top) != top or top < 1:
        raise InputError(f"top = {top} must be a positive whole number of SNPs", hint="e.g. --top 1000")
    check_clump_parameters(p1, p2, r2, kb)
    eligible = table[qc.mask[table["variant_index"].to_numpy(dtype=np.int64)]]
    n_candidates = int(np.isfinite(pd.to_numeric(eligible["p"], errors="coerce")).sum())
    if n_candidates == 0:
        raise InputError(f"no GWAS SNP passes QC ({qc.describe()})",
                         hint="lower --maf or raise --max-missing, or check that the GWAS matches the genotypes")
    clumps = clump(genotypes_train, eligible, p1=p1, p2=p2, r2=r2, kb=kb, estimator=estimator)
    if clumps.empty:
        best = float(pd.to_numeric(eligible["p"], errors="coerce").min())
        raise InputError(f"no GWAS SNP passing QC has p <= p1 = {p1:g} (smallest p {best:.3g})",
                         hint="raise --clump-p1 (1 makes every SNP a candidate)")
    if len(clumps) < top:
        _note(notes, f"--top {top} asked for more SNPs than the {len(clumps)} index SNPs left after QC and "
                     f"clumping (r2 > {r2:g} within {kb:g} kb, p <= {p1:g}); using all {len(clumps)}")
    chosen = clumps["variant_index"].to_numpy(dtype=np.int64)[:int(top)]
    stats = by_variant.reindex(chosen)
    t, vi = _panel_table(variants, chosen, stats["beta"].to_numpy(), stats["p"].to_numpy())
    return Panel(t, vi, qc, clumps, notes, [], n_candidates)


def read_snp_list(path: str | os.PathLike) -> list[str]:
    """Variant IDs from a file: one ID per line, or a table whose header has a SNP column (tab, comma or
    whitespace separated; case-insensitive). Blank lines and ``#`` comments are skipped; repeats kept once."""
    p = Path(path)
    if not p.is_file():
        raise InputError("SNP list file not found", path=str(p), hint="one variant ID per line, or a table with a SNP column")
    with open(p, "r", encoding="utf-8", errors="replace") as fh:
        lines = [(i + 1, ln.strip()) for i, ln in enumerate(fh) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InputError("SNP list file is empty", path=str(p), hint="one variant ID per line")

    def fields(text: str) -> list[str]:
        return [f.strip() for f in text.split("\t")] if "\t" in text else (
            [f.strip() for f in text.split(",")] if "," in text else text.split())

    header = [h.upper() for h in fields(lines[0][1])]
    if "SNP" in header:
        col = header.index("SNP")
        ids = []
        for no, ln in lines[1:]:
            f = fields(ln)
            if len(f) <= col:
                raise InputError(f"line has {len(f)} fields, the header has a SNP column at position {col + 1}",
                                 path=str(p), line=no)
            ids.append(f[col])
    elif len(header) == 1:
        ids = [ln for _, ln in lines]
    else:
        raise InputError(f"several columns ({', '.join(fields(lines[0][1])[:5])}) but none named SNP", path=str(p),
                         line=lines[0][0], hint="name the ID column SNP, or give one ID per line")
    if not ids:
        raise InputError("SNP list has a header but no IDs", path=str(p))
    return list(dict.fromkeys(ids))


def write_panel(panel: Panel | pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the panel as a tab-separated table with a header (``PANEL_COLUMNS``; NA for a missing value),
    atomically."""
    table = panel.table if isinstance(panel, Panel) else panel
    with atomic_path(path) as tmp:
        table[PANEL_COLUMNS].to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.10g")


def read_panel(path: str | os.PathLike) -> pd.DataFrame:
    """Read a panel TSV written by :func:`write_panel` (or by hand): columns ``PANEL_COLUMNS`` with SNP, CHR,
    A1, A2 as text, BP int64, BETA and P float (NA -> NaN), rows in file order. Raises InputError for a missing
    file, missing columns, non-numeric values and repeated SNP IDs."""
    where = str(path)
    raw = read_text_table(path, PANEL_COLUMNS, "panel", "make one with snpgen select")
    if raw.empty:
        raise InputError("panel has no SNPs", path=where)
    out = pd.DataFrame({c: raw[c].str.strip() for c in ("SNP", "CHR", "A1", "A2")})
    for col, kind in (("BP", "an integer"), ("BETA", "a number"), ("P", "a number")):
        text = raw[col].str.strip()
        na = text.str.upper().isin(["NA", "NAN", ""])
        values = pd.to_numeric(text.where(~na, None), errors="coerce")
        bad = values.isna() & ~na | (na & (col == "BP"))
        if col == "BP":
            bad |= values.notna() & (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"column {col} must be {kind}, found {raw[col][i]!r}", path=where, line=i + 2)
        out[col] = values.astype(np.int64) if col == "BP" else values.astype(np.float64)
    dup = out["SNP"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"SNP {out['SNP'][i]!r} appears twice", path=where, line=i + 2, hint="one row per SNP")
    return out[PANEL_COLUMNS]


def panel_variant_indices(panel: pd.DataFrame, variants: pd.DataFrame, path: str | None = None) -> np.ndarray:
    """Rows of ``variants`` holding the panel's SNP IDs, in panel order; InputError naming absent IDs."""
    hit = pd.Index(variants["snp"].astype(str)).get_indexer(panel["SNP"].astype(str))
    if (hit < 0).any():
        absent = panel["SNP"][hit < 0].astype(str).tolist()
        raise InputError(f"{len(absent)} panel SNPs are not in the genotypes (e.g. {', '.join(absent[:3])})",
                         path=path, hint="use the genotypes the panel was selected from")
    return hit.astype(np.int64)
