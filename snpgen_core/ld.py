"""Linkage disequilibrium: r^2 between SNPs, the one estimator every module uses (selection, evaluation, simulation).

Two estimators, both pairwise complete (each pair uses the individuals called at both SNPs, as PLINK does):
``"dosage"``, the squared Pearson correlation of dosages (PLINK 1.9 ``--r2``; the r^2 of the evaluation report),
computed by :func:`r2_from_moments` from exact integer sums; and ``"haplotype"``, r^2 of maximum-likelihood
two-SNP haplotype frequencies (PLINK 1.9 ``--clump``), from 3 x 3 genotype tables. The tables come from bit
masks of the genotype classes, 64 individuals per word, and a popcount of their AND: exact integer counts at a
fraction of the memory of float dosages.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .genotypes import MISSING

R2_ESTIMATORS = ("dosage", "haplotype")
# PLINK 1.9's tolerances (plink_common.h): 2^-30, 2^-35, 2^-44
_EPSILON = 2.0 ** -30
_SMALLISH_EPSILON = 2.0 ** -35
_SMALL_EPSILON = 2.0 ** -44
_PAIR_BLOCK = 128  # SNPs per block of ld_r2_pairs: memory O(n * (block + window))


# ---------------------------------------------------------------------------------------------------------------
# Dosage r^2


def r2_from_moments(n, sa, sb, saa, sbb, sab) -> np.ndarray:
    """Squared Pearson correlation of two SNPs' dosages from sums over the individuals called at both: their
    number ``n``, sum a, sum b, sum a^2, sum b^2 and sum ab (arrays that broadcast together). Integer-valued sums
    make the moments exact; only the final ratio rounds. NaN where either SNP is monomorphic (or fewer than two
    individuals are called at both)."""
    cov = np.asarray(n * sab - sa * sb).astype(np.float64)
    var_a = np.asarray(n * saa - sa * sa).astype(np.float64)
    var_b = np.asarray(n * sbb - sb * sb).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = cov * cov / (var_a * var_b)
    return np.where((var_a > 0) & (var_b > 0), r2, np.nan)


def dosage_r2(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Dosage r^2 (k, l) between the columns of ``a`` (n, k) and ``b`` (n, l; default ``a``), int8 dosages of the
    same individuals with ``MISSING`` calls, pairwise complete. The sums are float64 matrix products of small
    integers, hence exact (below 2^53)."""
    same = b is None
    b = a if same else b
    ma = a != MISSING
    fa = np.where(ma, a, 0).astype(np.float64)
    mb, fb = (ma, fa) if same else (b != MISSING, np.where(b != MISSING, b, 0).astype(np.float64))
    if ma.all() and mb.all():
        sa, sb = fa.sum(0), fb.sum(0)
        saa, sbb = (fa * fa).sum(0), (fb * fb).sum(0)
        return r2_from_moments(float(len(a)), sa[:, None], sb[None, :], saa[:, None], sbb[None, :], fa.T @ fb)
    wa = ma.astype(np.float64)
    wb = wa if same else mb.astype(np.float64)
    return r2_from_moments(wa.T @ wb, fa.T @ wb, wa.T @ fb, (fa * fa).T @ wb, wa.T @ (fb * fb), fa.T @ fb)


def ld_r2_pairs(dosages: np.ndarray, chrom, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """r^2 for every SNP pair (i, j), i < j, on the same chromosome with j - i <= ``window``.

    dosages: (n, m) int8, -1 missing; chrom: (m,) chromosome labels. Returns (i, j, r2), each (n_pairs,);
    r2 is NaN for a monomorphic SNP or fewer than two individuals called at both.
    """
    m = dosages.shape[1]
    chrom = np.asarray(chrom).astype(str)
    out_i, out_j, out_r = [], [], []
    for start in range(0, m, _PAIR_BLOCK):
        a_end = min(start + _PAIR_BLOCK, m)
        b_end = min(a_end + window, m)
        r2 = dosage_r2(dosages[:, start:a_end], dosages[:, start:b_end])
        ia, jb = np.meshgrid(np.arange(start, a_end), np.arange(start, b_end), indexing="ij")
        keep = (jb > ia) & (jb - ia <= window) & (chrom[ia] == chrom[jb])
        out_i.append(ia[keep])
        out_j.append(jb[keep])
        out_r.append(r2[keep])
    if not out_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_r)


# ---------------------------------------------------------------------------------------------------------------
# Genotype tables and the haplotype r^2 (PLINK 1.9 --clump)


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
    """Dosage r^2 (w,) from (w, 3, 3) genotype tables (:func:`two_locus_counts`); NaN when either SNP is
    monomorphic among the individuals called at both. This is PLINK 1.9 ``--r2`` (without ``dprime``)."""
    g = np.arange(3)
    n = counts.sum(axis=(1, 2))
    row, col = counts.sum(axis=2), counts.sum(axis=1)  # (w, 3) genotype counts of a and b
    return r2_from_moments(n, row @ g, col @ g, row @ (g * g), col @ (g * g), np.einsum("kgh,g,h->k", counts, g, g))


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


def r2_exceeds_function(estimator: str):
    """``(counts (w, 3, 3), threshold) -> r^2 > threshold`` (w,) bool for ``estimator``; NaN never exceeds."""
    if estimator == "haplotype":
        return _haplotype_r2_exceeds
    fn = _r2_function(estimator)
    return lambda counts, threshold: fn(counts) > threshold


# ---------------------------------------------------------------------------------------------------------------
# Any estimator


def ld_r2(a: np.ndarray, b: np.ndarray | None = None, *, estimator: str = "dosage") -> np.ndarray:
    """r^2 between every SNP of ``a`` and every SNP of ``b`` (default ``a``): (k, l) float64.

    ``a`` (n, k) and ``b`` (n, l) are int8 dosages of the same individuals (0/1/2 copies of a1, -1 missing).
    Missing calls are handled pairwise-complete: each pair uses the individuals called at both SNPs (as PLINK
    does; no imputation). ``estimator="dosage"``: squared Pearson correlation of the dosages (PLINK 1.9 ``--r2``,
    :func:`dosage_r2`). ``"haplotype"``: r^2 of maximum-likelihood haplotype frequencies (PLINK 1.9 ``--clump``
    and ``--r2 dprime``), from genotype tables of 9 matrix products of class indicators (exact in float32 below
    2^24 people). NaN for a pair where either SNP is monomorphic (see :func:`r2_haplotype`).
    """
    fn = _r2_function(estimator)
    a = np.asarray(a)
    a = a[:, None] if a.ndim == 1 else a
    b = None if b is None else (np.asarray(b)[:, None] if np.ndim(b) == 1 else np.asarray(b))
    if b is not None and a.shape[0] != b.shape[0]:
        raise ValueError(f"a has {a.shape[0]} individuals, b has {b.shape[0]}")
    if estimator == "dosage":
        return dosage_r2(a, b)
    b = a if b is None else b
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
