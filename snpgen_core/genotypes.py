"""Genotypes: a samples x variants matrix of int8 dosages with its variant and sample tables.

Orientation everywhere in the core is samples x variants (rows are individuals), as PyTorch and scikit-learn
expect. A dosage counts copies of the allele in ``.bim`` column 5 (``a1``), as PLINK and
``bed_reader(count_A1=True)`` do. Missing calls are ``MISSING`` (-1), never silently 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MISSING = -1
VARIANT_COLUMNS = ["chrom", "snp", "cm", "pos", "a1", "a2"]
SAMPLE_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]


@dataclass
class Genotypes:
    """A genotype cohort.

    dosages:  (n_samples, n_variants) int8, values 0/1/2 = copies of ``variants.a1``, ``MISSING`` (-1) = no call.
    variants: one row per column of ``dosages``; columns ``chrom`` (str), ``snp`` (str), ``cm`` (float),
              ``pos`` (int64), ``a1`` (str, the counted allele), ``a2`` (str).
    samples:  one row per row of ``dosages``; columns ``fid``, ``iid``, ``father``, ``mother`` (str),
              ``sex`` (int: 1 male, 2 female, 0 unknown), ``pheno`` (str, the raw ``.fam`` column 6 text;
              decode it with ``snpgen_core.phenotypes``).
    """

    dosages: np.ndarray
    variants: pd.DataFrame
    samples: pd.DataFrame

    def __post_init__(self) -> None:
        if self.dosages.ndim != 2:
            raise ValueError(f"dosages must be 2-D (samples x variants), got shape {self.dosages.shape}")
        n, m = self.dosages.shape
        if len(self.samples) != n or len(self.variants) != m:
            raise ValueError(
                f"dosages are {n} x {m} but there are {len(self.samples)} samples and {len(self.variants)} variants"
            )

    @property
    def n_samples(self) -> int:
        return self.dosages.shape[0]

    @property
    def n_variants(self) -> int:
        return self.dosages.shape[1]

    def subset(self, samples=None, variants=None) -> "Genotypes":
        """Rows/columns by integer index or boolean mask (``None`` keeps all); tables are re-indexed from 0."""
        s = slice(None) if samples is None else np.asarray(samples)
        v = slice(None) if variants is None else np.asarray(variants)
        dos = self.dosages[s][:, v]
        return Genotypes(
            np.ascontiguousarray(dos),
            self.variants.iloc[v].reset_index(drop=True),
            self.samples.iloc[s].reset_index(drop=True),
        )

    def missing_rate(self) -> np.ndarray:
        """Per-variant share of missing calls, shape (n_variants,)."""
        return (self.dosages == MISSING).mean(axis=0)

    def a1_frequency(self) -> np.ndarray:
        """Per-variant frequency of the counted allele ``a1`` among called genotypes (NaN if none called)."""
        return allele_frequencies(self.dosages)


def allele_frequencies(dosages: np.ndarray) -> np.ndarray:
    """Frequency p (m,) of the counted allele among called genotypes: sum(x) / (2 n_called); NaN if none called."""
    called = dosages != MISSING
    total = np.where(called, dosages, 0).sum(axis=0, dtype=np.int64)
    n_called = called.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / (2.0 * n_called)


_CHROMOSOME_CODES = {"X": "23", "Y": "24", "XY": "25", "M": "26", "MT": "26"}  # PLINK's numeric codes


def canonical_chromosome(chrom) -> pd.Series:
    """Chromosome names as PLINK numbers them, so that files spelling them differently compare equal: stripped,
    no "chr" prefix, no leading zeros, X/Y/XY/MT as 23/24/25/26, other contigs upper-cased."""
    canon = pd.Series(chrom, dtype=str).str.strip().str.replace(r"^[Cc][Hh][Rr]", "", regex=True).str.upper()
    digits = canon.str.isdigit()
    canon = canon.where(~digits, canon.str.lstrip("0").where(canon.str.lstrip("0") != "", canon))
    return canon.replace(_CHROMOSOME_CODES)


def chromosome_rank(chrom) -> np.ndarray:
    """Integer rank (n,) of each chromosome in natural order (the one chromosome order): 1..22 numerically,
    X/23, Y/24, XY/25, MT/26, then other contigs alphabetically; names compared by :func:`canonical_chromosome`."""
    canon = canonical_chromosome(chrom)
    uniq = sorted(set(canon), key=lambda c: (0, int(c), "") if c.isdigit() else (1, 0, c))
    rank = {c: i for i, c in enumerate(uniq)}
    return canon.map(rank).to_numpy(dtype=np.int64)


def make_variants(chrom, snp, pos, a1, a2, cm=None) -> pd.DataFrame:
    """Build a variant table with the canonical columns and dtypes."""
    n = len(snp)
    return pd.DataFrame(
        {
            "chrom": pd.Series(chrom, dtype=str).to_numpy() if not np.isscalar(chrom) else [str(chrom)] * n,
            "snp": np.asarray(snp, dtype=str),
            "cm": np.zeros(n) if cm is None else np.asarray(cm, dtype=float),
            "pos": np.asarray(pos, dtype=np.int64),
            "a1": np.asarray(a1, dtype=str),
            "a2": np.asarray(a2, dtype=str),
        }
    )


def make_samples(iid, fid=None, sex=None, pheno=None) -> pd.DataFrame:
    """Build a sample table with the canonical columns (father/mother '0'; pheno as PLINK text, ``trait_text``)."""
    from .phenotypes import trait_text

    n = len(iid)
    iid = np.asarray(iid, dtype=str)
    return pd.DataFrame(
        {
            "fid": iid if fid is None else np.asarray(fid, dtype=str),
            "iid": iid,
            "father": ["0"] * n,
            "mother": ["0"] * n,
            "sex": np.zeros(n, dtype=np.int64) if sex is None else np.asarray(sex, dtype=np.int64),
            "pheno": ["-9"] * n if pheno is None else [trait_text(p) for p in pheno],
        }
    )
