"""The recorded train / validation / holdout split of a cohort: seeded, stratified by trait, saved as FID IID SPLIT.

Holdout individuals never take part in SNP selection or training: every function that looks at genotypes for
those steps is given the training part only (``genotypes.subset(samples=split.train)``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io.atomic import atomic_path
from .io.tables import read_text_table

SPLIT_NAMES = ("train", "validation", "holdout")


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
