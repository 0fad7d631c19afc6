"""Covariates and sex of generated individuals: what a run conditions on besides the trait, and how a synthetic
individual gets them.

Training (``pipeline.train_run`` with ``covar_path``/``covar_names``, CLI ``--covar FILE --covar-name A,B``):
the diffusion's denoiser sees each training individual's covariates (``phenotypes.read_covariates`` coding:
numbers as they are, a label column one-hot against its first label) beside the trait. ``summarise`` keeps, in
``config.json``, the distribution they are drawn from at generation time: per trait class (binary,
categorical; plus the pooled "all") or jointly with the trait (quantitative), their means and covariance
matrix, and the counts of each combination of ``.fam`` sex and discrete covariates.

Generation (``draw``): each synthetic individual's discrete covariates (at most ``MAX_LEVELS`` distinct training
values: 0/1 indicators, one-hot labels, 1/2 codes, a batch number) and its ``.fam`` sex are drawn together from
the class's counts of their combinations (so shares and their mutual dependence are kept exactly); the other
covariates then from the class's Gaussian given them (and given the trait value, for a quantitative trait).
``--covar-value NAME=X`` fixes a covariate for everyone: combinations are drawn among those that agree with it
and the continuous covariates given it. The summary holds counts, means and covariances, never a continuous
value of one individual; a combination of discrete values seen once is still recorded (count 1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError

MAX_LEVELS = 10  # a covariate with at most this many distinct training values is discrete
_RIDGE = 1e-6  # added to covariance diagonals (relative to their scale) so conditionals stay defined


def _moments(block: np.ndarray) -> tuple[list[float], list[list[float]]]:
    """Mean and positive semi-definite covariance of the columns of ``block`` (NaN = missing; pairwise)."""
    frame = pd.DataFrame(block)
    mean = frame.mean().fillna(0.0).to_numpy()
    cov = frame.cov(ddof=0).fillna(0.0).to_numpy() if len(frame) > 1 else np.zeros((block.shape[1],) * 2)
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    cov = (v * np.clip(w, 0.0, None)) @ v.T  # pairwise estimates need not be PSD
    return mean.tolist(), cov.tolist()


def _combinations(block: np.ndarray) -> dict:
    """The distinct rows of ``block`` (sex, discrete covariates) with their counts; rows with a missing value are
    left out."""
    ok = ~np.isnan(block).any(1)
    if not ok.any():
        return {"values": [[0.0] * block.shape[1]], "counts": [1]}
    values, counts = np.unique(block[ok], axis=0, return_counts=True)
    return {"values": values.tolist(), "counts": counts.tolist()}


def _group(covariates: np.ndarray, sex: np.ndarray, discrete: np.ndarray, trait=None) -> dict:
    joint = covariates if trait is None else np.column_stack([trait, covariates])
    mean, cov = _moments(joint)
    return {"n": len(sex), "mean": mean, "cov": cov,
            "combinations": _combinations(np.column_stack([sex, covariates[:, discrete]]))}


def summarise(covariates: np.ndarray | None, names: list[str], sex: np.ndarray, cond: np.ndarray,
              kind: str) -> dict:
    """The summary ``draw`` samples from (JSON-ready), from the training individuals' ``covariates`` (n, c)
    (NaN = missing), their ``.fam`` ``sex`` codes (0/1/2) and conditions ``cond`` (class codes, trait values or
    NaN)."""
    cond = np.asarray(cond, dtype=np.float64)
    sex = np.asarray(sex, dtype=np.float64)
    covariates = np.zeros((len(cond), 0)) if covariates is None else np.asarray(covariates, dtype=np.float64)
    discrete = np.array([np.unique(c[~np.isnan(c)]).size <= MAX_LEVELS for c in covariates.T], dtype=bool)
    groups = {"all": _group(covariates, sex, discrete, cond if kind == "quantitative" else None)}
    if kind in ("binary", "categorical"):
        for k in np.unique(cond[~np.isnan(cond)]).astype(int):
            rows = cond == k
            groups[str(k)] = _group(covariates[rows], sex[rows], discrete)
    return {"names": list(names), "discrete": discrete.tolist(), "trait_kind": kind, "groups": groups}


def parse_fixed(texts, names: list[str]) -> dict[str, float]:
    """``["AGE=50", "SITE=B"]`` (CLI ``--covar-value``) as ``{covariate column: value}``: a number for a numeric
    covariate; for a label covariate ``SITE=B`` sets its one-hot columns (``SITE=B`` 1, the others 0)."""
    fixed: dict[str, float] = {}
    by_lower = {n.lower(): n for n in names}
    for text in texts or ():
        name, sep, value = str(text).partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise InputError(f"covariate value {text!r} is not NAME=VALUE", hint="e.g. --covar-value AGE=50")
        onehot = [n for n in names if n.lower().startswith(name.lower() + "=")]
        if onehot:
            labels = [n.split("=", 1)[1] for n in onehot]
            for n, label in zip(onehot, labels):
                fixed[n] = float(label == value)
            if value not in labels and not _is_first_label(value, labels):
                raise InputError(f"covariate {name} has no label {value!r} in this run",
                                 hint=f"its labels after the first are {', '.join(labels)}")
            continue
        if name.lower() not in by_lower:
            raise InputError(f"covariate {name!r} is not one this run was trained on",
                             hint=f"choose from {', '.join(names) or '(none: train with --covar)'}")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not np.isfinite(number):
            raise InputError(f"covariate {name} needs a finite number, not {value!r}", hint=f"e.g. {name}=1")
        fixed[by_lower[name.lower()]] = number
    return fixed


def _is_first_label(value: str, labels: list[str]) -> bool:
    # the baseline label of a one-hot group sorts before every other (phenotypes.read_covariates)
    return all(value < label for label in labels)


def _conditional(mean: np.ndarray, cov: np.ndarray, known: np.ndarray, values: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Draws (n, d) from N(mean, cov) with the columns ``known`` (bool (d,)) set to ``values`` (n, k) and the
    others from their conditional Gaussian given them."""
    n, d = values.shape[0], mean.size
    out = np.empty((n, d))
    out[:, known] = values
    free = ~known
    if not free.any():
        return out
    cov = cov + np.diag(_RIDGE * np.maximum(np.diag(cov), 1e-12))
    mu_f, s_ff = mean[free], cov[np.ix_(free, free)]
    if known.any():
        gain = np.linalg.solve(cov[np.ix_(known, known)], cov[np.ix_(known, free)]).T  # (f, k)
        mu_f = mu_f + (values - mean[known]) @ gain.T
        s_ff = s_ff - gain @ cov[np.ix_(known, free)]
    w, v = np.linalg.eigh((s_ff + s_ff.T) / 2)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    out[:, free] = mu_f + rng.standard_normal((n, int(free.sum()))) @ root.T
    return out


def _draw_combinations(combos: dict, n: int, fixed_at: dict[int, float], rng: np.random.Generator) -> np.ndarray:
    """(n, 1 + discrete) rows drawn by count among the combinations that agree with ``fixed_at`` {column:
    value}; when none does, drawn among all and the fixed columns overwritten."""
    values, counts = np.asarray(combos["values"], dtype=np.float64), np.asarray(combos["counts"], dtype=np.float64)
    agree = np.ones(len(values), dtype=bool)
    for j, v in fixed_at.items():
        agree &= values[:, j] == v
    if agree.any():
        values, counts = values[agree], counts[agree]
    rows = values[rng.choice(len(values), size=n, p=counts / counts.sum())]
    for j, v in fixed_at.items():
        rows[:, j] = v
    return rows


def draw(summary: dict | None, cond: np.ndarray, rng: np.random.Generator,
         fixed: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(covariates (n, c) float, sex (n,) int in 0/1/2) for individuals with conditions ``cond`` (n,), drawn from
    ``summarise``'s summary (see the module docstring); ``fixed`` from ``parse_fixed``. Without a summary (a run
    trained before covariates were recorded): no covariates and sex 0."""
    cond = np.asarray(cond, dtype=np.float64)
    n = cond.size
    if summary is None:
        if fixed:
            raise InputError("this run was trained without covariates", hint="drop --covar-value")
        return np.zeros((n, 0)), np.zeros(n, dtype=np.int64)
    names, fixed = summary["names"], dict(fixed or {})
    discrete = np.asarray(summary["discrete"], dtype=bool).reshape(len(names))
    quantitative = summary["trait_kind"] == "quantitative"
    # combination column 0 is sex, then the discrete covariates in order
    fixed_at = {1 + k: fixed[names[j]] for k, j in enumerate(np.flatnonzero(discrete)) if names[j] in fixed}
    covariates, sex = np.empty((n, len(names))), np.zeros(n, dtype=np.int64)
    if quantitative:  # one group; individuals with and without a trait value drawn apart
        keys = np.where(np.isnan(cond), "all", "all+trait")
    else:
        keys = np.array(["all" if np.isnan(v) or str(int(v)) not in summary["groups"] else str(int(v))
                         for v in cond])
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        g = summary["groups"][key.split("+")[0]]
        combos = _draw_combinations(g["combinations"], rows.size, fixed_at, rng)
        sex[rows] = combos[:, 0].astype(np.int64)
        known = discrete | np.array([name in fixed for name in names], dtype=bool)
        values = np.empty((rows.size, len(names)))
        values[:, discrete] = combos[:, 1:]
        for j, name in enumerate(names):
            if name in fixed and not discrete[j]:
                values[:, j] = fixed[name]
        values = values[:, known]
        mean, cov = np.asarray(g["mean"], dtype=np.float64), np.asarray(g["cov"], dtype=np.float64)
        if quantitative:  # the joint Gaussian's first coordinate is the trait
            with_trait = key == "all+trait"
            values = np.column_stack([cond[rows], values]) if with_trait else values
            covariates[rows] = _conditional(mean, cov, np.r_[with_trait, known], values, rng)[:, 1:]
        else:
            covariates[rows] = _conditional(mean, cov, known, values, rng)
    return covariates, sex
