"""A trait drawn from the genotypes: a penalised linear regression on the panel (and covariates), plus Gaussian
noise for a quantitative trait, or a case drawn with the predicted probability for a binary one.

Why (BENCHMARKS.md, "Issue 13, nineteenth pass"): a generator of genotypes *given* the trait, as the conditional
VAE and diffusion are, shifts every associated SNP towards the trait on its own. In a real cohort the trait follows
from a few causal SNPs and the other SNPs are associated only through their LD with those, so once the causal SNPs
are known the rest say little more; in such a synthetic cohort they still do, and a model trained on it spreads
its weights over them. On 1000 Genomes AGBL4 QT (20 causal SNPs) the TSTR r of a ridge regression fell to 0.83x
the TRTR's. Drawing the released trait from genotypes that were drawn first (x given a trait value from the
training distribution, then y given x from this model) gives the synthetic cohort the direction of real
genetics, genotype to trait.

A binary trait (thirty-ninth pass) is released the same way: the genotypes are drawn given classes at the training
mix, then each individual's class from this model given them, and ``generation.generate`` keeps the draws until
each class's quota is filled. Why: a class-conditional latent fitted to a few hundred training cases carries
their joint structure, chance included, and a classifier fitted on such a release predicts the training
individuals' own case status better than a stranger's (the card's ``privacy.label_membership_auc``: 0.55-0.58 on
fresh msprime cohorts, where a classifier fitted on the training individuals themselves reads about 0.58). The
model is the same penalised regression on the 0/1 class, one fit from the normal equations for both penalties as
the quantitative trait's, with a logistic link along its prediction (``fit_link``, on the training part's
out-of-fold predictions): P(case) = sigmoid(a + b prediction). Where those out-of-fold predictions do not tell
cases from controls beyond chance (the link's slope, ``pipeline.LINK_Z``), the model is not used: a weak trait in a
small cohort gave a slope of either sign with the folds, and classes drawn through it carried no association, or an
inverted one. Training then asks the panel's principal components: if they tell the classes, the condition is
released (``releases`` False); if not, the model is emptied (``forget``: everyone at the training prevalence,
``tells`` False) and the classes come out independent of the genotypes (BENCHMARKS.md, forty-second pass; a panel
chosen by the same individuals' GWAS tells their classes by that choice alone: forty-third pass).

The model: y = intercept + w . [x, c] + N(0, noise_sd^2), fitted on the training part on the standardised dosages
(missing calls at the column mean) and covariates from one eigendecomposition of the (p, p) cross-product, which is
accumulated in blocks (a biobank's n x p matrix is never held in float64). The penalty is L2 (ridge: every SNP
keeps a small weight) or L1 (lasso: most weights exactly 0; Tibshirani 1996), its strength chosen by generalised
cross-validation over ``ALPHAS`` or the lasso's path. Covariates are not penalised (as in polygenic-score practice:
an age or sex effect is not shrunk towards 0 with the SNPs'). Training fits both and keeps the one that predicts the
validation individuals better (``pipeline._fit_trait_model``, ``TrainConfig.trait_model``). Why both: the trait
model's weights are what a model trained on the synthetic cohort can learn at best, and a ridge spreads a few causal
SNPs' effects over every SNP in LD with them (AGBL4 QT, 3 runs: validation r 0.676 ridge, 0.714 lasso keeping 70-97 of
1,362 SNPs, TSTR 0.938x -> 0.952x; BENCHMARKS.md, thirty-second pass), while for a trait of many small effects the two
predict alike.
``noise_sd^2`` is the residual variance over the residual degrees of freedom (the lasso's: the columns it keeps).
Not fitted (no effect) for categorical or absent traits, and under differential privacy (the fit is outside the
accounting).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

ALPHAS = np.logspace(-2, 7, 37)  # ridge penalties tried, on standardised columns (GCV picks one)
LASSO_PATH = 40  # lasso penalties tried (GCV picks one)
PENALTIES = ("ridge", "lasso")
KINDS = ("quantitative", "binary")  # traits released from the model given the genotypes
BLOCK = 8192  # individuals per block of the cross-product


class NormalEquations(NamedTuple):
    """``TraitModel.normal_equations``: the data's part of a fit, whatever the penalty. On the standardised
    columns: ``gram`` (m, m) and ``xty`` (m,) of the SNPs once the covariates are taken out, their eigenvalues above
    zero ``d`` and eigenvectors ``v``, y's coordinates ``q`` along the left singular vectors and the part of its
    sum of squares no SNP reaches (``outside``); ``fixed_df`` the intercept's and covariates' degrees of freedom;
    the covariates' least-squares weights on the trait (``cov_on_trait``, (c,)) and on each SNP (``cov_on_snps``,
    (c, m)); the columns' ``mean`` and ``sd``, y's mean, and ``n`` individuals."""

    n: int
    y_mean: float
    mean: np.ndarray
    sd: np.ndarray
    gram: np.ndarray
    xty: np.ndarray
    d: np.ndarray
    v: np.ndarray
    q: np.ndarray
    outside: float
    fixed_df: float
    cov_on_trait: np.ndarray
    cov_on_snps: np.ndarray


class TraitModel(nn.Module):
    """A penalised linear regression of a trait (a quantitative value, or a binary trait's 0/1 class) on ``n_snps``
    dosages and ``n_covariates`` covariates."""

    def __init__(self, n_snps: int, n_covariates: int = 0):
        super().__init__()
        self.n_snps, self.n_covariates = int(n_snps), int(n_covariates)
        self.register_buffer("weight", torch.zeros(self.n_snps + self.n_covariates, dtype=torch.float64))
        self.register_buffer("intercept", torch.zeros((), dtype=torch.float64))
        self.register_buffer("noise_sd", torch.zeros((), dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.float64))  # 1 once fitted
        self.register_buffer("link", torch.zeros(2, dtype=torch.float64))  # a binary trait's (a, b); 0: unset

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, value in self.named_buffers():  # runs written before the model existed: not fitted
            state_dict.setdefault(prefix + name, torch.zeros_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted.item())

    @property
    def releases(self) -> bool:
        """Whether the released trait is drawn from this model (``generation.generate``, the release check): fitted,
        and a binary trait's link, where set, of positive slope. ``pipeline._fit_trait_model`` unfits a binary
        trait's model whose out-of-fold predictions do not tell cases from controls beyond chance where the
        panel's principal components do (the condition is released); a run trained before that rule may keep a
        link of negative slope, through which the released classes would turn the association round."""
        return self.is_fitted and (bool((self.link == 0).all()) or float(self.link[1]) > 0)

    def unfit(self) -> None:
        """Mark the model as not fitted: the condition is released instead (its weights stay, unused)."""
        with torch.no_grad():
            self.fitted.zero_()

    def fit(self, dosages: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None,
            penalty: str = "ridge", max_kept: int | None = None) -> dict:
        """Fit on dosages (n, m) int8 (-1 missing), trait ``y`` (n,) (NaN left out) and ``covariates`` (n, c)
        (NaN at the column mean), with an L2 (``"ridge"``) or L1 (``"lasso"``) penalty. Returns the record for
        run.json: the penalty's kind and strength, its effective degrees of freedom, the residual sd and the number
        of individuals (and for the lasso the SNPs it keeps). ``normal_equations`` then ``fit_equations``: fitting
        with both penalties needs the first (the pass over the individuals and the eigendecomposition) once.
        ``max_kept``: the lasso keeps at most that many SNPs (``_lasso``)."""
        return self.fit_equations(self.normal_equations(dosages, y, covariates), penalty, max_kept)

    def normal_equations(self, dosages: np.ndarray, y: np.ndarray,
                         covariates: np.ndarray | None = None) -> NormalEquations:
        """What every penalty's fit needs from the data (arguments as ``fit``): the standardised cross-products,
        the covariates taken out, and the SNPs' eigendecomposition. ValueError with fewer than 3 trait values or
        a constant trait."""
        keep = np.flatnonzero(np.isfinite(np.asarray(y, np.float64)))
        y = np.asarray(y, np.float64)[keep]
        n = len(keep)
        if n < 3 or np.ptp(y) == 0:
            raise ValueError(f"a trait model needs 3 or more individuals with differing values (has {n})")

        def block(rows):
            x = np.asarray(dosages[rows], np.float64)
            x[x < 0] = np.nan
            if self.n_covariates:
                x = np.hstack([x, np.asarray(covariates[rows], np.float64)])
            return x

        # column means and sds of the called values, then the standardised cross-products, block by block
        p = self.n_snps + self.n_covariates
        s1, s2, cnt = np.zeros(p), np.zeros(p), np.zeros(p)
        for start in range(0, n, BLOCK):
            x = block(keep[start:start + BLOCK])
            ok = np.isfinite(x)
            s1 += np.where(ok, x, 0).sum(0)
            s2 += np.where(ok, x * x, 0).sum(0)
            cnt += ok.sum(0)
        mean = s1 / np.maximum(cnt, 1)
        sd = np.sqrt(np.maximum(s2 / np.maximum(cnt, 1) - mean**2, 0.0))
        sd = np.where(sd > 1e-8, sd, np.inf)  # a constant column gets weight 0
        yc = y - y.mean()
        gram, xty = np.zeros((p, p)), np.zeros(p)
        for start in range(0, n, BLOCK):
            z = (block(keep[start:start + BLOCK]) - mean) / sd
            z[~np.isfinite(z)] = 0.0  # missing values at the mean
            gram += z.T @ z
            xty += z.T @ yc[start:start + BLOCK]
        # covariates are not penalised: the SNPs' penalised fit is made on what the covariates leave of the SNPs and
        # the trait (Frisch-Waugh-Lovell), and the covariates' weights are then least squares given the SNPs'
        m = self.n_snps
        cc_inv = np.linalg.pinv(gram[m:, m:])  # (c, c); a constant covariate's row and column are 0
        to_snps = gram[:m, m:] @ cc_inv  # (m, c): each SNP regressed on the covariates
        snp_gram, snp_xty = gram[:m, :m] - to_snps @ gram[m:, :m], xty[:m] - to_snps @ xty[m:]
        yy = yc @ yc - xty[m:] @ cc_inv @ xty[m:]
        fixed_df = 1.0 + (np.linalg.matrix_rank(gram[m:, m:]) if self.n_covariates else 0)  # intercept, covariates
        d, v = np.linalg.eigh(snp_gram)
        d = np.maximum(d, 0.0)
        pos = d > d.max() * 1e-10
        d, v = d[pos], v[:, pos]
        q = (v.T @ snp_xty) / np.sqrt(d)  # y's coordinates along the left singular vectors
        return NormalEquations(n, float(y.mean()), mean, sd, snp_gram, snp_xty, d, v, q, yy - q @ q, fixed_df,
                               cc_inv @ xty[m:], cc_inv @ gram[m:, :m])

    def fit_equations(self, eq: NormalEquations, penalty: str = "ridge", max_kept: int | None = None) -> dict:
        """``fit`` from ``normal_equations``' result."""
        if penalty not in PENALTIES:
            raise ValueError(f"penalty {penalty!r} unknown; choose from {PENALTIES}")
        beta, alpha, rss, df = _ridge(eq) if penalty == "ridge" else _lasso(eq, max_kept)
        w = np.r_[beta, eq.cov_on_trait - eq.cov_on_snps @ beta] / eq.sd
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(w))
            self.intercept.fill_(float(eq.y_mean - eq.mean @ w))
            self.noise_sd.fill_(float(np.sqrt(rss / max(eq.n - df, 1.0))))
            self.fitted.fill_(1.0)
        record = {"penalty": penalty, "alpha": alpha, "effective_df": float(df), "noise_sd": float(self.noise_sd),
                  "n": int(eq.n)}
        if penalty == "lasso":
            record["nonzero"] = int(np.count_nonzero(w[:self.n_snps]))  # SNPs kept
        return record

    def predict(self, dosages: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """The expected trait of each row: (B, m) dosages with no missing calls [, (B, c)] -> (B,) float64."""
        x = dosages.to(torch.float64)
        if self.n_covariates:
            x = torch.cat([x, covariates.to(torch.float64)], dim=1)
        return x @ self.weight + self.intercept

    def fit_link(self, score: np.ndarray, y: np.ndarray) -> dict:
        """A binary trait's link: P(case) = sigmoid(a + b ``predict``) (``logistic_link`` on individuals'
        predictions ``score`` (n,) and classes ``y`` (n,) 0/1, as Platt (1999) scaling). The linear model gives the
        direction, which for a single-index model is the logistic one's up to scale (Li & Duan 1989); the link gives
        a logistic model's shape along it, which the clipped line misses for a SNP of large effect. Returns {"a",
        "b", "z", "n"}."""
        record = logistic_link(score, y)
        with torch.no_grad():
            self.link.copy_(torch.tensor([record["a"], record["b"]], dtype=torch.float64))
        return record

    def forget(self, prevalence: float) -> None:
        """A binary trait model that tells nothing: no weights, P(case) = ``prevalence`` for everyone (the released
        classes are independent of the genotypes)."""
        with torch.no_grad():
            self.weight.zero_()
            self.link.zero_()
            self.intercept.fill_(float(prevalence))

    @property
    def tells(self) -> bool:
        """Whether any genotype (or covariate) moves the prediction: False for a model that ``forget`` emptied, or
        a lasso that kept no column."""
        return bool(self.weight.abs().sum() > 0)

    def probability(self, dosages: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """A binary trait's P(case) of each row (B,) float64: through the fitted link, or ``predict`` clipped to
        [0, 1] without one."""
        mean = self.predict(dosages, covariates)
        if bool((self.link == 0).all()):
            return mean.clamp(0.0, 1.0)
        return torch.sigmoid(self.link[0] + self.link[1] * mean)

    def draw(self, dosages: torch.Tensor, generator: torch.Generator, covariates: torch.Tensor | None = None,
             binary: bool = False) -> torch.Tensor:
        """One trait value per row, (B,) float64: ``predict`` plus seeded N(0, noise_sd^2) noise; ``binary``: 1 (a
        case) with ``probability``, else 0."""
        if binary:
            u = torch.rand(dosages.shape[0], generator=generator, device=dosages.device, dtype=torch.float64)
            return (u < self.probability(dosages, covariates)).to(torch.float64)
        noise = torch.randn(dosages.shape[0], generator=generator, device=dosages.device, dtype=torch.float64)
        return self.predict(dosages, covariates) + self.noise_sd * noise


def _gcv(n: int, rss: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Generalised cross-validation's estimate of the prediction error (Golub, Heath & Wahba 1979)."""
    return n * rss / np.maximum(n - df, 1.0) ** 2


def _ridge(eq: NormalEquations) -> tuple[np.ndarray, float, float, float]:
    """Ridge weights on the standardised columns, the penalty of ``ALPHAS`` with the least GCV: (weights, penalty,
    residual sum of squares, degrees of freedom, ``eq.fixed_df`` (the intercept's and covariates') included), from
    the eigendecomposition of the cross-products."""
    d, q = eq.d, eq.q
    f = d[None, :] / (d[None, :] + ALPHAS[:, None])
    rss = eq.outside + (((1 - f) * q) ** 2).sum(1)
    df = f.sum(1) + eq.fixed_df
    k = int(np.argmin(_gcv(eq.n, rss, df)))
    beta = eq.v @ (q * np.sqrt(d) / (d + ALPHAS[k]))
    return beta, float(ALPHAS[k]), float(rss[k]), float(df[k])


def _lasso(eq: NormalEquations, max_kept: int | None = None) -> tuple[np.ndarray, float, float, float]:
    """Lasso weights on the standardised columns (minimising ||y - Z b||^2 / 2n + alpha |b|_1), along a path of
    ``LASSO_PATH`` penalties from the one that keeps no column down to a thousandth of it, the one with the least
    GCV kept (among those keeping at most ``max_kept`` columns, if given); the degrees of freedom are the columns
    kept, plus ``eq.fixed_df`` (Zou, Hastie & Tibshirani 2007).
    Returns what ``_ridge`` returns. Solved by scikit-learn's coordinate descent on the cross-products: the rows
    sqrt(d) v' (at most p of them) have ``eq.gram`` as their own, and ``eq.q`` as the y they see, so the n x p matrix
    is never held."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lasso_path

    n, q, xty = eq.n, eq.q, eq.xty
    rows = np.sqrt(eq.d)[:, None] * eq.v.T
    top = np.abs(xty).max() / n
    if top == 0:  # no column tells anything: the mean alone
        return np.zeros(len(xty)), 0.0, float(eq.outside + q @ q), eq.fixed_df
    alphas = top * np.logspace(0, -3, LASSO_PATH)
    with warnings.catch_warnings():  # the path's weakest penalties (near least squares) converge slowly; GCV
        warnings.simplefilter("ignore", ConvergenceWarning)  # does not keep them where n is not far above p
        # scikit-learn scales the loss by its own row count (len(rows)), not n
        _, coefs, _ = lasso_path(rows, q, alphas=alphas * n / len(rows), precompute=eq.gram, Xy=xty, max_iter=5000)
    rss = eq.outside + ((q[:, None] - rows @ coefs) ** 2).sum(0)
    kept = np.count_nonzero(coefs, axis=0)
    df = kept + eq.fixed_df
    gcv = _gcv(n, rss, df)
    if max_kept is not None:  # the path's first penalty keeps no column, so one is always allowed
        gcv = np.where(kept <= max_kept, gcv, np.inf)
    k = int(np.argmin(gcv))
    return coefs[:, k], float(alphas[k]), float(rss[k]), float(df[k])


def logistic_link(score: np.ndarray, y: np.ndarray) -> dict:
    """P(y = 1) = sigmoid(a + b score) by maximum likelihood (scikit-learn's logistic regression, all but
    unpenalised: C = 1e6 keeps b finite should the classes separate). Returns {"a", "b", "z", "n"}: ``z`` is b over
    its standard error (Wald, from the fit's Fisher information), how far ``score`` tells the classes apart beyond
    chance."""
    from sklearn.linear_model import LogisticRegression

    y, score = np.asarray(y, np.float64), np.asarray(score, np.float64)
    fitted = LogisticRegression(C=1e6, tol=1e-10, max_iter=1000).fit(score[:, None], y)
    a, b = float(fitted.intercept_[0]), float(fitted.coef_.ravel()[0])
    p = 1.0 / (1.0 + np.exp(-(a + b * score)))
    design = np.c_[np.ones_like(score), score]
    information = design.T @ (design * (p * (1.0 - p))[:, None])
    se = float(np.sqrt(max(np.linalg.pinv(information)[1, 1], 0.0)))
    return {"a": a, "b": b, "z": b / se if se > 0 else 0.0, "n": int(len(y))}
