"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

A prediction model of the phenotype from the genotypes is fitted once on the synthetic cohort and once on the
same number of training individuals (equal sample size: seeded subsample of the larger), and both are scored on
the real holdout, which neither has seen. Bootstrap resamples of the holdout (seeded) give 95% percentile
intervals for both scores.

Inputs: int8 dosage matrices (n_i, m) on the same SNPs and counted allele (a1), missing = -1, imputed with the
training mean dosage; ``y_*`` phenotype values (n_i,), NaN = missing (left out): binary 0/1, categorical codes
0..k-1, or quantitative. Features are standardised on the fitted cohort.

Models: ``"linear"`` = L2-penalised logistic regression (binary, categorical; penalty chosen by 3-fold
cross-validation on the fitting cohort) or ridge regression (quantitative; penalty by generalised
cross-validation); ``"gbm"`` = scikit-learn histogram gradient boosting (early stopping on 10% of the fitting
cohort), which can use interactions and LD patterns a linear model cannot.
Scores: binary ROC AUC, quantitative Pearson r (details also hold R^2), categorical accuracy.

Sources: TSTR/TRTR, Esteban, Hyland & Ratsch (2017); for synthetic genotypes SNPgen (Lampis et al. 2026) and
Xie et al. (GigaScience 2026).

The same linear model, fitted on the release, is also attacked (``label_membership``, a privacy row): does it
predict the training individuals' own trait values better than strangers'?
"""
from __future__ import annotations

import numpy as np

from .align import impute_mean, subsample_index, training_means
from .card import MetricValue, skipped

MODELS = ("linear", "gbm")
SCORES = {"binary": "auc", "quantitative": "pearson_r", "categorical": "accuracy"}
MIN_PER_CLASS = 10
DEFAULT_BOOTSTRAP = 200


def prediction_model(kind: str, model: str, seed: int, n_fit: int):
    """The unfitted prediction model of the trait (see the module docstring), for ``n_fit`` fitting individuals."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "linear":
        if kind == "quantitative":
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))
        # scikit-learn minimises C * sum(loss) + |w|^2 / 2: C = c / n keeps the per-individual penalty 1/c
        # comparable across cohort sizes; on standardised SNPs the best c sits near 1 (few causal SNPs among many)
        return make_pipeline(StandardScaler(), LogisticRegressionCV(
            Cs=[c / n_fit for c in (0.1, 1.0, 10.0)], cv=3, l1_ratios=(0.0,), use_legacy_attributes=False,
            scoring="roc_auc" if kind == "binary" else "accuracy", max_iter=1000))
    if model == "gbm":
        cls = HistGradientBoostingRegressor if kind == "quantitative" else HistGradientBoostingClassifier
        return cls(max_iter=200, learning_rate=0.1, early_stopping=True, random_state=seed)
    raise ValueError(f"model {model!r} unknown; choose from {MODELS}")


def _predict(fitted, x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "binary":
        return fitted.predict_proba(x)[:, 1]
    return fitted.predict(x)


def _scores(y: np.ndarray, pred: np.ndarray, kind: str, idx: np.ndarray) -> np.ndarray:
    """Score of ``pred`` against ``y`` on each row of resample indices ``idx`` (b, n); NaN where undefined."""
    from scipy.stats import rankdata

    yb, pb = y[idx], pred[idx]
    if kind == "binary":
        # Mann-Whitney form of the ROC AUC, ties counted 1/2 through average ranks: all resamples at once
        n1 = yb.sum(axis=1)
        n0 = yb.shape[1] - n1
        ranks = rankdata(pb, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = ((ranks * yb).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
        return np.where((n1 > 0) & (n0 > 0), auc, np.nan)
    if kind == "categorical":
        return (yb == pb).mean(axis=1)
    yc = yb - yb.mean(axis=1, keepdims=True)
    pc = pb - pb.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc * pc).sum(1) / np.sqrt((yc**2).sum(1) * (pc**2).sum(1))


def _unusable(y: np.ndarray, kind: str, who: str, minimum: int) -> str | None:
    if kind == "quantitative":
        if len(y) < 2 * minimum or np.unique(y).size < 2:
            return f"the {who} set has fewer than {2 * minimum} phenotyped individuals or a constant trait"
        return None
    counts = np.bincount(y.astype(np.int64))
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < minimum:
        return (f"the {who} set needs at least {minimum} individuals in each of two or more classes "
                f"(has {counts.tolist()})")
    return None


def tstr(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, y_train: np.ndarray,
         y_holdout: np.ndarray, y_synthetic: np.ndarray, kind: str, *, model: str = "linear",
         n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> MetricValue:
    """TSTR score with its TRTR reference (see the module docstring).

    value: score on the holdout of ``model`` fitted on the synthetic cohort; reference: the same model fitted on
    an equal number of training individuals. details: ``score`` (auc / pearson_r / accuracy), ``ci`` and
    ``reference_ci`` (95% bootstrap percentile intervals over ``n_boot`` holdout resamples), ``n_fit``,
    ``n_test``, ``chance`` (0.5 for AUC, 0 for r, the holdout's majority-class share for accuracy), and for a
    quantitative trait ``r2`` / ``reference_r2`` (1 - SSE / SST on the holdout).
    """
    from threadpoolctl import threadpool_limits

    if kind not in SCORES:
        raise ValueError(f"kind {kind!r} unknown; choose from {tuple(SCORES)}")
    y_train, y_holdout, y_synthetic = (np.asarray(y, float) for y in (y_train, y_holdout, y_synthetic))
    sets = {}
    for who, x, y in (("training", train, y_train), ("holdout", holdout, y_holdout),
                      ("synthetic", synthetic, y_synthetic)):
        ok = ~np.isnan(y)
        sets[who] = (x[ok], y[ok])
    n_fit = min(len(sets["training"][1]), len(sets["synthetic"][1]))
    fit_sets = {who: tuple(a[subsample_index(len(sets[who][1]), n_fit, seed, stream=stream)] for a in sets[who])
                for who, stream in (("training", 31), ("synthetic", 32))}
    for who, (_, y) in fit_sets.items():
        if (why := _unusable(y, kind, who, MIN_PER_CLASS)) is not None:
            return skipped(why)
    if (why := _unusable(sets["holdout"][1], kind, "holdout", 2)) is not None:
        return skipped(why)

    means = training_means(train)
    x_test, y_test = impute_mean(sets["holdout"][0], means), sets["holdout"][1]
    preds = {}
    # one thread (BLAS and OpenMP): fits of a few thousand x a few thousand gain little from threads, and on
    # busy shared cores spin-waiting threads made them 10x slower (measured: 1.6 s vs 15 s, 2 cores)
    with threadpool_limits(limits=1):
        for who, (x, y) in fit_sets.items():
            fitted = prediction_model(kind, model, seed, n_fit).fit(impute_mean(x, means), y)
            preds[who] = _predict(fitted, x_test, kind)

    everything = np.arange(len(y_test))[None, :]
    rng = np.random.default_rng([seed, 33])
    boot = rng.integers(0, len(y_test), size=(n_boot, len(y_test)))
    value, reference = (float(_scores(y_test, preds[w], kind, everything)[0]) for w in ("synthetic", "training"))

    def interval(who):
        s = _scores(y_test, preds[who], kind, boot)
        s = s[np.isfinite(s)]
        return [float(np.percentile(s, 2.5)), float(np.percentile(s, 97.5))] if len(s) else [None, None]

    details = {"score": SCORES[kind], "model": model, "ci": interval("synthetic"),
               "reference_ci": interval("training"), "n_fit": int(n_fit), "n_test": int(len(y_test)),
               "n_boot": int(n_boot)}
    if kind == "binary":
        details["chance"] = 0.5
    elif kind == "categorical":
        details["chance"] = float(np.bincount(y_test.astype(np.int64)).max() / len(y_test))
    else:
        details["chance"] = 0.0
        sst = ((y_test - y_test.mean()) ** 2).sum()
        details["r2"] = float(1 - ((y_test - preds["synthetic"]) ** 2).sum() / sst)
        details["reference_r2"] = float(1 - ((y_test - preds["training"]) ** 2).sum() / sst)
    return MetricValue(value, reference, details=details)


# ---------------------------------------------------------------------------------------------------------------
# The trait's privacy: what a model fitted on the release knows of the training individuals' own trait values

LABEL_MAX_FIT = 5000  # synthetic individuals the attacked model is fitted on (a seeded subsample beyond that)


def _losses(fitted, x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """Each individual's loss under ``fitted``: the squared error of a quantitative trait, else minus the log
    probability the model gives the individual's own class (1e-12 for a class it never saw)."""
    if kind == "quantitative":
        return (fitted.predict(x) - y) ** 2
    proba, classes = fitted.predict_proba(x), np.asarray(fitted.classes_)
    col = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    own = np.where(classes[col] == y, proba[np.arange(len(y)), col], 0.0)
    return -np.log(np.maximum(own, 1e-12))


def _class_auc(member: np.ndarray, score: np.ndarray, classes: np.ndarray | None) -> tuple[float, float]:
    """(AUC, its DeLong sd) of ``score`` for ``member`` (bool); with ``classes``, members and non-members are
    compared within each class only: the mean of the classes' AUCs weighted by their member x non-member pairs
    (variance: the sum of weight^2 x variance). Classes without two of each role are left out; (NaN, NaN) when
    none is left."""
    from .attacks import Z95, auc_ci

    groups = [np.ones(len(member), bool)] if classes is None else [classes == c for c in np.unique(classes)]
    parts = [(int(member[g].sum()) * int((~member[g]).sum()), auc_ci(member[g], score[g])) for g in groups
             if member[g].sum() >= 2 and (~member[g]).sum() >= 2]
    if not parts:
        return float("nan"), float("nan")
    pairs = np.array([p for p, _ in parts], float)
    w = pairs / pairs.sum()
    auc = float(sum(wi * a for wi, (_, (a, _, _)) in zip(w, parts)))
    sd = float(np.sqrt(sum(wi ** 2 * ((hi - lo) / (2 * Z95)) ** 2 for wi, (_, (_, lo, hi)) in zip(w, parts))))
    return auc, sd


def label_membership(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, y_train: np.ndarray,
                     y_holdout: np.ndarray, y_synthetic: np.ndarray, kind: str, *, seed: int = 0) -> MetricValue:
    """Membership attack through a model fitted on the release: the loss attack of Yeom, Giacomelli, Fredrikson &
    Jha (2018, IEEE CSF 268), which tells a model's training individuals by how well it fits their labels. Here the
    model is the card's linear TSTR model fitted on the synthetic cohort, as a user of the release would fit it. A
    release that carries the training sample's chance associations between genotypes and trait (what
    ``privacy.association_copying`` measures as a ratio) hands them to every model fitted on it, and that model then
    predicts the training individuals' own trait values better than a stranger's: the attacker needs a person's
    genotypes and trait, as in every membership attack on a prediction model.

    Score of a real individual: minus their loss (``_losses``). Roles (the convention of ``attacks``): the holdout
    cut into two seeded halves, non-members B and a fresh sample C; members as many training individuals, up to
    ``align.EQUAL_SIZE_ROUNDS`` disjoint such sets (the value is the mean of their AUCs). For a class trait members
    and non-members are compared within their own class (``_class_auc``), so that classes that are easier to
    predict cannot pass for a leak where the cohorts' class shares differ. value: the AUC with the model fitted on
    the synthetic cohort (a seeded subsample of at most ``LABEL_MAX_FIT``); reference: the same attack, same people,
    with the model fitted on C, a fresh real sample that never saw a training individual (0.5 in expectation).
    details: ``ci`` and ``reference_ci`` (95%, from the DeLong sd of the first member set), ``n_each``, ``rounds``,
    ``n_fit``, ``null_sd``."""
    from threadpoolctl import threadpool_limits

    from .align import disjoint_rows
    from .attacks import MIN_PART, Z95, _roles
    from .privacy import auc_null_sd

    y_train, y_holdout, y_synthetic = (np.asarray(y, float) for y in (y_train, y_holdout, y_synthetic))
    t_ok, h_ok, s_ok = (np.flatnonzero(~np.isnan(y)) for y in (y_train, y_holdout, y_synthetic))
    _, (non, fresh) = _roles(len(t_ok), len(h_ok), 2, seed)
    if len(non) < MIN_PART:
        return skipped(f"needs at least {2 * MIN_PART} holdout individuals with a trait value, has {len(h_ok)}")
    non, fresh = h_ok[non], h_ok[fresh]
    fit_rows = s_ok[subsample_index(len(s_ok), LABEL_MAX_FIT, seed, stream=34)]
    if (why := _unusable(y_synthetic[fit_rows], kind, "synthetic", MIN_PER_CLASS)) is not None:
        return skipped(why)
    means = training_means(train)
    member_sets = [t_ok[r] for r in disjoint_rows(len(t_ok), len(non), seed, stream=35)]
    members = np.concatenate(member_sets)
    x = impute_mean(np.concatenate([train[members], holdout[non]]), means)  # member sets in turn, then B
    y = np.r_[y_train[members], y_holdout[non]]
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(non), bool)]

    def attack(fit_x, fit_y) -> tuple[float, float]:
        with threadpool_limits(limits=1):  # as ``tstr``
            fitted = prediction_model(kind, "linear", seed, len(fit_y)).fit(impute_mean(fit_x, means), fit_y)
        score = -_losses(fitted, x, y, kind)
        per_set = [_class_auc(is_member[pick], score[pick], None if kind == "quantitative" else y[pick])
                   for pick in (np.r_[r * len(non):r * len(non) + len(rows), len(members):len(y)]
                                for r, rows in enumerate(member_sets))]
        return float(np.mean([auc for auc, _ in per_set])), per_set[0][1]

    value, sd = attack(synthetic[fit_rows], y_synthetic[fit_rows])
    if not np.isfinite(value):
        return skipped("no class holds two members and two non-members to compare")
    reference, ref_sd = None, None
    if _unusable(y_holdout[fresh], kind, "fresh", MIN_PER_CLASS) is None:
        reference, ref_sd = attack(holdout[fresh], y_holdout[fresh])
    ci = [max(0.0, value - Z95 * sd), min(1.0, value + Z95 * sd)]
    ref_ci = None if reference is None else [max(0.0, reference - Z95 * ref_sd), min(1.0, reference + Z95 * ref_sd)]
    n_each = len(non)
    note = (f"95% CI {ci[0]:.3f}-{ci[1]:.3f}"
            + ("" if ref_ci is None else f"; a model fitted on a fresh real sample {ref_ci[0]:.3f}-{ref_ci[1]:.3f}")
            + f"; the linear model fitted on {len(fit_rows)} synthetic people; {n_each} members (the mean over "
            f"{len(member_sets)} disjoint training sets) vs {n_each} non-members"
            + ("" if kind == "quantitative" else ", compared within each class"))
    return MetricValue(value, reference, note=note, details={
        "ci": ci, "reference_ci": ref_ci, "n_each": n_each, "rounds": len(member_sets), "n_fit": len(fit_rows),
        "null_sd": auc_null_sd(n_each, n_each)})
