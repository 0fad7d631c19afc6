"""Per-SNP additive association tests, vectorised across SNPs, as PLINK 1.9 ``--linear`` and ``--logistic`` do.

For every SNP j the model is ``y ~ 1 + covariates + x_j`` where ``x_j`` is the dosage (copies of the ``.bim``
column-5 allele a1). Individuals with a missing call at SNP j are left out of SNP j's fit only; individuals with a
missing phenotype or covariate are left out of every fit. All SNPs are solved together: the normal equations (or
the logistic Hessian) of every SNP are assembled with one matrix product over individuals and solved as a stack
of small (q+1) x (q+1) systems, q = 1 + number of covariates.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from .errors import InputError
from .genotypes import MISSING, Genotypes

KINDS = ("binary", "quantitative")
RESULT_COLUMNS = ["beta", "se", "stat", "p", "n"]
GWAS_COLUMNS = ["SNP", "CHR", "BP", "A1", "A2", "A1_FREQ", "OR", "BETA", "SE", "P", "N"]  # OR: binary traits only
_BLOCK_ELEMENTS = 1 << 23  # individuals x SNPs per block: bounds memory at ~64 MB per float64 temporary


def per_snp_association(dosages: np.ndarray, y: np.ndarray, kind: str, covariates: np.ndarray | None = None,
                        *, max_iter: int = 25, tol: float = 1e-8) -> pd.DataFrame:
    """Additive per-SNP regression of ``y`` on each column of ``dosages``.

    dosages:    (n, m) int8, copies of a1 (0/1/2), ``MISSING`` (-1) = no call.
    y:          (n,) float; ``kind="binary"``: 0 = control, 1 = case; ``"quantitative"``: any value; NaN = missing.
    covariates: optional (n, k) float, NaN = missing; an intercept is always added, do not include one.

    ``"quantitative"``: ordinary least squares; ``beta`` per copy of a1, ``se`` from the residual variance with
    ``n_j - q - 1`` degrees of freedom, ``stat`` = t, ``p`` two-sided from Student's t (PLINK 1.9 ``--linear``).
    ``"binary"``: logistic regression by Newton-Raphson from beta = 0 (at most ``max_iter`` steps, until every
    coefficient moves less than ``tol``); ``beta`` = ln(odds ratio) per copy of a1, ``se`` from the inverse
    Hessian, ``stat`` = Wald z, ``p`` two-sided normal (PLINK 1.9 ``--logistic beta``).

    Returns a DataFrame with one row per SNP and columns ``beta, se, stat, p, n`` (``n`` = individuals in that
    SNP's fit). Monomorphic SNPs (among those individuals), SNPs collinear with the covariates, too few
    individuals, and logistic fits that do not converge (e.g. complete separation) give NaN.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} unknown; choose from {KINDS}")
    dosages = np.asarray(dosages)
    y = np.asarray(y, dtype=float)
    if dosages.ndim != 2 or y.shape != (dosages.shape[0],):
        raise ValueError(f"dosages must be (n, m) and y (n,), got {dosages.shape} and {y.shape}")
    n, m = dosages.shape
    design = np.ones((n, 1))
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=float).reshape(n, -1)
        design = np.column_stack([design, covariates])
    rows = ~np.isnan(y) & ~np.isnan(design).any(axis=1)
    y, design = y[rows], design[rows]
    _check_inputs(y, design, kind)

    out = np.full((m, len(RESULT_COLUMNS)), np.nan)
    step = max(1, _BLOCK_ELEMENTS // max(len(y), 1))
    for start in range(0, m, step):
        block = dosages[rows, start:start + step]
        fit = _fit_linear if kind == "quantitative" else _fit_logistic
        out[start:start + step] = fit(block, y, design, max_iter=max_iter, tol=tol)
    frame = pd.DataFrame(out, columns=RESULT_COLUMNS)
    frame["n"] = frame["n"].astype(np.int64)
    return frame


def gwas_table(genotypes: Genotypes, y: np.ndarray, kind: str, covariates: np.ndarray | None = None) -> pd.DataFrame:
    """A GWAS of ``y`` on every SNP of ``genotypes`` (:func:`per_snp_association`), as a PLINK-like summary table
    that ``io.gwas.read_gwas`` reads: SNP CHR BP A1 A2 A1_FREQ (a1 frequency among called genotypes), OR (binary
    traits), BETA (per copy of A1), SE, P, N. Give it the training individuals only: a GWAS that saw the holdout
    would let SNP selection see it too."""
    if kind not in KINDS:
        raise InputError(f"a GWAS needs a case/control or quantitative trait, not a {kind} one",
                         hint="give summary statistics instead, or a binary or quantitative trait")
    fit = per_snp_association(genotypes.dosages, y, kind, covariates)
    v = genotypes.variants
    table = pd.DataFrame({
        "SNP": v["snp"], "CHR": v["chrom"], "BP": v["pos"], "A1": v["a1"], "A2": v["a2"],
        "A1_FREQ": genotypes.a1_frequency(), "OR": np.exp(fit["beta"]), "BETA": fit["beta"], "SE": fit["se"],
        "P": fit["p"], "N": fit["n"],
    })
    return table if kind == "binary" else table.drop(columns="OR")


def write_gwas_table(table: pd.DataFrame, path) -> None:
    """Write a :func:`gwas_table` as tab-separated text (NA for a missing value, 8 significant digits), atomically."""
    from .io.atomic import atomic_path

    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.8g")


def selection_prior(p: np.ndarray, *, grid_size: int = 200, bin_width: float = 0.02,
                    iterations: int = 500) -> dict | None:
    """The distribution of true association strengths behind a GWAS, from every tested SNP's p-value: the prior
    that corrects the selection bias of the SNPs a panel keeps.

    A panel chosen by the GWAS of the training individuals keeps the SNPs whose observed |z| came out large, chance
    included (the winner's curse). Tweedie's formula (Efron 2011, "Tweedie's formula and selection bias") gives
    E[mu | z], which holds whatever chose the SNP, from the distribution of all the z's. That distribution is
    modelled as z ~ N(mu, 1), mu ~ sum_k w_k delta(+-g_k): a symmetric mixture (allele coding is arbitrary) on a
    fixed grid g_k in [0, max |z|], its weights the nonparametric maximum-likelihood estimate (Kiefer-Wolfowitz;
    Koenker & Mizera 2014), fitted by EM on the |z|'s binned ``bin_width`` wide (a million SNPs cost what a
    thousand do). Returns {"grid", "weights", "n_tested"}, or None with fewer than 100 usable p-values (a table of
    top hits only says nothing about the nulls)."""
    p = np.asarray(p, dtype=np.float64)
    p = p[usable_p(p)]
    if p.size < 100:
        return None
    z = _abs_z(p)
    top = float(z.max())
    grid = np.linspace(0.0, top, grid_size)
    edges = np.arange(0.0, top + bin_width, bin_width)
    counts, _ = np.histogram(z, np.append(edges, np.inf))
    keep = counts > 0
    centre = np.minimum(edges + bin_width / 2, top)[keep]
    counts = counts[keep].astype(np.float64)
    like = _folded(centre, grid)  # (bins, grid): density of |z| given |mu| = g
    w = np.full(grid_size, 1.0 / grid_size)
    for _ in range(iterations):
        w *= (counts / (like @ w)) @ like / counts.sum()
    return {"grid": grid.tolist(), "weights": w.tolist(), "n_tested": int(p.size)}


def association_share(p: np.ndarray, prior: dict | None) -> np.ndarray:
    """E[mu | z] / |z| for each SNP of p-value ``p`` under ``prior`` (:func:`selection_prior`): the share of its
    observed association that the prior expects to be real, in [0, 1]; 1 where p is missing or no prior was fitted.
    A SNP among thousands of nulls whose z came out 3 keeps little; one far in the tail keeps nearly all."""
    p = np.asarray(p, dtype=np.float64)
    share = np.ones(p.shape)
    ok = usable_p(p)
    if prior is None or not ok.any():
        return share
    grid, w = np.asarray(prior["grid"]), np.asarray(prior["weights"])
    z = _abs_z(p[ok])
    near, far = stats.norm.pdf(z[:, None] - grid), stats.norm.pdf(z[:, None] + grid)
    mean = ((near - far) * w) @ grid / ((near + far) @ w)  # E[mu | z] for z > 0 under the symmetric prior
    share[ok] = np.clip(mean / np.maximum(z, 1e-12), 0.0, 1.0)
    return share


def trait_share_summary(record: dict | None) -> str:
    """One line on the decoder's trait shares (``run.json``'s ``trait_share`` record), for ``train`` and the model
    card."""
    if not record:
        return ("none: each SNP keeps the training cohort's own trait effect (no GWAS of all tested SNPs, a trait "
                "the decoder does not see, --no-trait-shrinkage, or DP)")
    q = record["quantiles_10_50_90"]
    return (f"each SNP's trait effect shrunk for the panel's selection bias (empirical Bayes over "
            f"{record['n_tested']} GWAS SNPs): mean share kept {record['mean']:.2f}, 10-90% {q[0]:.2f}-{q[2]:.2f}")


def lambda_gc(p) -> float:
    """Genomic inflation factor: median of the 1-df chi-square statistics the p-values stand for, over its expected
    value under the null (0.4549). 1 = no inflation; NaN without usable p-values."""
    p = np.asarray(p, dtype=float)
    p = p[usable_p(p)]
    return float(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)) if p.size else float("nan")


def usable_p(p: np.ndarray) -> np.ndarray:
    """The p-values in (0, 1] (finite)."""
    return np.isfinite(p) & (p > 0) & (p <= 1)


def _abs_z(p: np.ndarray) -> np.ndarray:
    """|z| of two-sided p-values."""
    return stats.norm.isf(np.clip(p, 1e-300, 1.0) / 2)


def _folded(z: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Density of |z| for z ~ N(+-g, 1): (len(z), len(grid))."""
    return stats.norm.pdf(z[:, None] - grid) + stats.norm.pdf(z[:, None] + grid)


def _check_inputs(y: np.ndarray, design: np.ndarray, kind: str) -> None:
    if len(y) == 0:
        raise InputError("no individual has both a phenotype and all covariates", hint="check the missing-value coding")
    if kind == "binary":
        classes = np.unique(y)
        if not np.isin(classes, (0.0, 1.0)).all():
            raise InputError(f"a binary phenotype must be coded 0 = control, 1 = case; found {classes[:5].tolist()}",
                             hint="PLINK 1/2 coding is decoded by snpgen_core.phenotypes")
        if len(classes) < 2:
            raise InputError("the binary phenotype has a single class",
                             hint="association needs both cases and controls")
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise InputError("the covariates are constant or collinear", hint="drop redundant covariate columns")


def _design_blocks(design: np.ndarray) -> np.ndarray:
    """Row-wise outer products of the covariate design, (n, q*q): one product with weights gives C' V_j C for all j."""
    q = design.shape[1]
    return (design[:, :, None] * design[:, None, :]).reshape(len(design), q * q)


def _assemble(v: np.ndarray, x: np.ndarray, design: np.ndarray, outer: np.ndarray, *, x_weighted: bool) -> np.ndarray:
    """Stack of per-SNP matrices [[C'V C, C'V x], [x'V C, x'V x]], shape (m, q+1, q+1), V_j = diag(v[:, j]).

    ``v`` (n, m) is zero for individuals not called at SNP j, and so is ``x``; when ``v`` is just that 0/1 mask
    (``x_weighted=False``) the products with x need no weighting.
    """
    m = x.shape[1]
    q = design.shape[1]
    vx = v * x if x_weighted else x
    mat = np.empty((m, q + 1, q + 1))
    mat[:, :q, :q] = (v.T @ outer).reshape(m, q, q)
    mat[:, :q, q] = vx.T @ design
    mat[:, q, :q] = mat[:, :q, q]
    mat[:, q, q] = np.einsum("nb,nb->b", vx, x)
    return mat


def _solve(mat: np.ndarray, rhs: np.ndarray, usable: np.ndarray):
    """Solve the stack where ``usable``; elsewhere return NaN. Returns (solution (m, p), inverse (m, p, p))."""
    eye = np.eye(mat.shape[1])
    safe = np.where(usable[:, None, None], mat, eye)  # singular systems would abort the whole batched solve
    try:
        inverse = np.linalg.inv(safe)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(safe)
    solution = np.einsum("mab,mb->ma", inverse, rhs)
    solution[~usable] = np.nan
    inverse[~usable] = np.nan
    return solution, inverse


def _usable(called: np.ndarray, x: np.ndarray, q: int) -> np.ndarray:
    """SNPs with more individuals than coefficients and a polymorphic dosage among their called individuals."""
    x_max = np.where(called, x, -np.inf).max(axis=0, initial=-np.inf)
    x_min = np.where(called, x, np.inf).min(axis=0, initial=np.inf)
    return (called.sum(axis=0) > q + 1) & (x_max > x_min)


def _identifiable(mat: np.ndarray) -> np.ndarray:
    """False where x_j is (numerically) a linear combination of the intercept and covariates on its rows.

    ``mat`` is the unweighted stack from :func:`_assemble`. The Schur complement ``x'x - x'C (C'C)^+ C'x`` (the
    sum of squares of x left after regressing it on the covariates) is compared with x's centred sum of squares.
    """
    q = mat.shape[1] - 1
    cross = mat[:, :q, q]
    left = mat[:, q, q] - np.einsum("ma,mab,mb->m", cross, np.linalg.pinv(mat[:, :q, :q]), cross)
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = mat[:, q, q] - mat[:, 0, q] ** 2 / mat[:, 0, 0]
        return left > 1e-9 * centred


def _prepare(block: np.ndarray, design: np.ndarray):
    """Called mask, its 0/1 float form, dosages as float with 0 where not called, and the unweighted stack."""
    called = block != MISSING
    mask = called.astype(float)
    x = np.where(called, block, 0).astype(float)  # (n, b)
    return called, mask, x, _assemble(mask, x, design, _design_blocks(design), x_weighted=False)


def _fit_linear(block: np.ndarray, y: np.ndarray, design: np.ndarray, **_) -> np.ndarray:
    q = design.shape[1]
    called, mask, x, mat = _prepare(block, design)
    usable = _usable(called, x, q) & _identifiable(mat)
    rhs = np.column_stack([mask.T @ (design * y[:, None]), x.T @ y])  # (b, q+1)
    coef, inverse = _solve(mat, rhs, usable)
    residual = y[:, None] - design @ coef[:, :q].T - x * coef[:, q]  # (n, b)
    n_fit = called.sum(axis=0)
    df = n_fit - (q + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = np.einsum("nb,nb->b", mask * residual, residual) / df
        se = np.sqrt(sigma2 * inverse[:, q, q])
        t = coef[:, q] / se
    p = 2.0 * stats.t.sf(np.abs(t), np.maximum(df, 1))
    res = np.column_stack([coef[:, q], se, t, p, n_fit])
    res[~usable, :4] = np.nan
    return res


def _fit_logistic(block: np.ndarray, y: np.ndarray, design: np.ndarray, *, max_iter: int, tol: float) -> np.ndarray:
    q = design.shape[1]
    called, mask, x, mat = _prepare(block, design)
    mask = None if called.all() else mask  # nothing to zero out: skip the masking passes
    outer = _design_blocks(design)
    usable = _usable(called, x, q) & _identifiable(mat)
    coef = np.zeros((x.shape[1], q + 1))
    active = usable.copy()  # SNPs still iterating; converged ones are frozen to save work
    converged = np.zeros_like(usable)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sub_mask = None if mask is None else mask[:, idx]
        mat, grad = _newton_terms(coef[idx], x[:, idx], sub_mask, y, design, outer)
        step, _ = _solve(mat, grad, np.ones(idx.size, dtype=bool))
        bad = ~np.isfinite(step).all(axis=1)
        coef[idx] += np.where(bad[:, None], 0.0, step)
        done = np.abs(step).max(axis=1) < tol
        converged[idx[done]] = True
        active[idx[done | bad]] = False
    # SE from the Hessian at the final estimate
    mat, _ = _newton_terms(coef, x, mask, y, design, outer)
    ok = usable & converged
    _, inverse = _solve(mat, np.zeros_like(coef), ok)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(inverse[:, q, q])
        z = coef[:, q] / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    res = np.column_stack([coef[:, q], se, z, p, called.sum(axis=0)])
    res[~ok, :4] = np.nan
    return res


def _newton_terms(coef, x, mask, y, design, outer):
    """Negative Hessian (b, q+1, q+1) and score (b, q+1) of every SNP's logistic log-likelihood.

    ``mask`` (n, b) is 1 where called, 0 where not (``None``: all called); ``x`` is 0 where not called.
    """
    q = design.shape[1]
    eta = design @ coef[:, :q].T  # (n, b)
    eta += x * coef[:, q]
    mu = special.expit(eta, out=eta)
    resid = y[:, None] - mu
    v = mu * (1.0 - mu)  # binomial variance: the IRLS weights
    if mask is not None:
        resid *= mask
        v *= mask
    grad = np.column_stack([resid.T @ design, np.einsum("nb,nb->b", resid, x)])
    return _assemble(v, x, design, outer, x_weighted=True), grad
