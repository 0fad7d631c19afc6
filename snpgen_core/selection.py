"""QC filters, the recorded train / validation / holdout split, LD clumping and SNP panel choice.

Holdout individuals never take part in SNP selection or training: every function here that looks at genotypes is
meant to be given the training part only (``genotypes.subset(samples=split.train)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io.atomic import atomic_path

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


def write_split(split: Split, samples: pd.DataFrame, path: str | Path) -> None:
    """Record a split as a TSV with columns FID, IID, SPLIT (atomic write)."""
    frame = pd.DataFrame({"FID": samples["fid"], "IID": samples["iid"], "SPLIT": split.labels(len(samples))})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False)


def read_split(path: str | Path, samples: pd.DataFrame) -> Split:
    """Reuse a recorded split for the cohort whose sample table is ``samples`` (matched by FID and IID)."""
    frame = pd.read_csv(path, sep="\t", dtype=str)
    missing = {"FID", "IID", "SPLIT"} - set(frame.columns)
    if missing:
        raise InputError(f"split file lacks column(s) {sorted(missing)}", path=str(path), hint="expected FID IID SPLIT")
    lookup = dict(zip(frame["FID"] + "\t" + frame["IID"], frame["SPLIT"]))
    keys = samples["fid"] + "\t" + samples["iid"]
    labels = keys.map(lookup)
    if labels.isna().any():
        first = keys[labels.isna()].iloc[0].replace("\t", " ")
        raise InputError(f"sample {first} is not in the split file", path=str(path),
                         hint="the split was recorded for another cohort; make a new one")
    bad = set(labels) - set(SPLIT_NAMES)
    if bad:
        raise InputError(f"unknown SPLIT value(s) {sorted(bad)}", path=str(path), hint="use train, validation or holdout")
    labels = labels.to_numpy()
    return Split(*(np.flatnonzero(labels == name) for name in SPLIT_NAMES))
