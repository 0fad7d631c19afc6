"""Population structure: PCA fitted on training, groups of training people on it, distance between clouds, k-NN
precision/recall, Hudson Fst, admixture proportions against the groups and a real-vs-synthetic detection
classifier.

Sources: PCA of standardised genotypes, Patterson, Price & Reich (PLoS Genet 2006); energy distance, Szekely &
Rizzo (2013); improved precision/recall, Kynkaanniemi et al. (NeurIPS 2019); Hudson Fst, Bhatia et al. (Genome
Res 2013); PCA, k-NN and detection for synthetic genomes, Yelmen et al. (PLoS Genet 2021), SNPgen (Lampis et al.
2026), Xie et al. (GigaScience 2026).

Inputs: int8 dosage matrices (n_i, m) on the same SNPs and counted allele, missing = -1. For the statistics in PC
space, each SNP is standardised with the training allele frequency, z = (x - 2p) / sqrt(2p(1 - p)) (Patterson,
Price & Reich 2006), a missing call set to the training mean (z = 0), and projected on the top PCs of the
training cohort. Holdout and synthetic are subsampled to equal size n (seeded); the training side of each
two-sample statistic is one seeded training subsample of the same n, shared by the synthetic and the holdout
comparison so that both see the same real cloud.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from .align import (HOLDOUT_STREAM, SYNTHETIC_STREAM, TRAIN_STREAM, disjoint_rows, equal_size_rows, equal_sizes,
                    impute_mean, subsample_index, training_means)
from .card import MetricValue, skipped
from .frequencies import allele_frequencies

DEFAULT_COMPONENTS = 10
DETECTION_COMPONENTS = 20  # the detection classifier's training PCs (SNPgen's and Xie et al.'s setting)


@dataclass
class TrainingPCA:
    """Top principal axes of the standardised training genotypes.

    mean: (m,) training mean dosage 2p; scale: (m,) sqrt(2p(1-p)), 0 for a SNP monomorphic in training (left
    out); components: (k, m) unit axes; explained_variance: (k,) variance of the training scores per axis.
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    def transform(self, dosages: np.ndarray) -> np.ndarray:
        """PC scores (n, k) of dosages (n, m); missing calls count as the training mean."""
        z = impute_mean(dosages, self.mean) - self.mean
        np.divide(z, self.scale, out=z, where=self.scale > 0)
        z[:, self.scale == 0] = 0.0
        return z @ self.components.T


def fit_pca(train: np.ndarray, n_components: int = DEFAULT_COMPONENTS, *, seed: int = 0) -> TrainingPCA | None:
    """PCA of the standardised training dosages (randomised SVD, seeded); None if fewer than 3 individuals or
    2 polymorphic SNPs (k is capped at min(n, m) - 1)."""
    from sklearn.decomposition import PCA

    mean = training_means(train)
    p = mean / 2
    scale = np.sqrt(2 * p * (1 - p))
    k = min(n_components, train.shape[0] - 1, int((scale > 0).sum()) - 1)
    if k < 1 or train.shape[0] < 3:
        return None
    z = (impute_mean(train, mean) - mean).astype(np.float32)
    np.divide(z, scale.astype(np.float32), out=z, where=scale > 0)
    z[:, scale == 0] = 0.0
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(z)
    return TrainingPCA(mean, scale, pca.components_.astype(np.float64), pca.explained_variance_)


GROUP_COMPONENTS = 4  # training PCs that ``training_groups`` clusters on


def group_model(train: np.ndarray, k: int | None = None, *, seed: int = 0):
    """``training_groups``' training PCA, the training people's scores on it and their group labels (n,), or None
    where it finds no groups."""
    from ..models.group_mix import MIN_GROUP, mixture_by_bic

    if k is None and len(train) < 2 * MIN_GROUP:
        return None
    pca = fit_pca(train, GROUP_COMPONENTS, seed=seed)
    if pca is None:
        return None
    scores = pca.transform(train)  # raw: ancestry axes keep their weight over the noise axes
    mixture = mixture_by_bic(scores, k, seed=seed)
    return None if mixture is None else (pca, scores, mixture.predict(scores))


def training_groups(train: np.ndarray, k: int | None = None, *, seed: int = 0) -> np.ndarray | None:
    """Groups of training individuals by population structure: a Gaussian mixture (full covariances) on their
    scores on the top ``GROUP_COMPONENTS`` training PCs, with the number of groups k chosen by
    BIC among 1..``MAX_GROUPS`` and only among mixtures whose every group holds at least ``MIN_GROUP`` people
    (``models.group_mix.mixture_by_bic``; ``k`` given: that many groups, whatever their sizes). Returns (n,) group
    labels 0..k-1, or None when one group fits best or the cohort is too small for two."""
    model = group_model(train, k, seed=seed)
    return None if model is None else model[2]


def group_mix_tv(groups: np.ndarray, classes: np.ndarray, other_groups: np.ndarray,
                 other_classes: np.ndarray) -> float:
    """Total variation distance between the group shares of each class, training (``groups``, ``classes``)
    against another cohort's, averaged over the training classes weighted by their shares."""
    k, tv = int(max(groups.max(), other_groups.max(initial=0))) + 1, 0.0
    for c in np.unique(classes):
        mine = np.bincount(groups[classes == c], minlength=k) / (classes == c).sum()
        theirs = np.bincount(other_groups[other_classes == c], minlength=k) / max((other_classes == c).sum(), 1)
        tv += 0.5 * np.abs(mine - theirs).sum() * (classes == c).mean()
    return float(tv)


def group_assigner(train: np.ndarray, k: int | None = None, *, seed: int = 0):
    """``training_groups``' labels of the training people, and a function giving anyone else's dosages the group of
    the nearest group mean on those PCs: (labels (n,), assign); None where no groups are found."""
    model = group_model(train, k, seed=seed)
    if model is None:
        return None
    pca, scores, groups = model
    centres = np.stack([scores[groups == g].mean(0) for g in range(groups.max() + 1)])

    def assign(x: np.ndarray) -> np.ndarray:
        return np.argmin(((pca.transform(x)[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)

    return groups, assign


ADMIXED_BELOW = 0.9  # a person whose largest ancestry proportion is under this reads as admixed
PLOT_PEOPLE = 300  # people of each cohort whose proportions the report keeps for its bar plot
SOURCE_FST = 0.02  # groups less differentiated than this are one source population for admixture


def source_groups(train: np.ndarray, *, seed: int = 0) -> np.ndarray | None:
    """``training_groups``, with groups merged (closest pair first) while their Hudson Fst is under
    ``SOURCE_FST``: the mixture on the top PCs also splits a population along axes of long-range LD, and
    proportions between two groups of one population are not ancestry. (n,) labels 0..k-1, or None when fewer
    than two groups remain."""
    groups = training_groups(train, seed=seed)
    labels = [] if groups is None else list(np.unique(groups))
    while len(labels) > 1:
        closest, a, b = min((hudson_fst(train[groups == a], train[groups == b]), a, b)
                            for i, a in enumerate(labels) for b in labels[i + 1:])
        if not closest < SOURCE_FST:
            return np.unique(groups, return_inverse=True)[1]
        groups = np.where(groups == b, a, groups)
        labels.remove(b)
    return None


def ancestry_proportions(dosages: np.ndarray, frequencies: np.ndarray, *, iterations: int = 100,
                         tolerance: float = 1e-6, chunk: int = 1000) -> np.ndarray:
    """Each person's ancestry proportions q (n, K) over K source groups with fixed allele frequencies
    ``frequencies`` (K, m) of the counted allele: the maximum-likelihood q of x_ij ~ Binomial(2, sum_k q_ik F_kj),
    ADMIXTURE's projection mode (Alexander, Novembre & Lange, Genome Res 2009). Fitted by the EM of frappe (Tang et
    al., Genet Epidemiol 2005; each allele copy's source group is the latent variable), each step a SQUAREM
    extrapolation of two (Varadhan & Roland, Scand J Stat 2008): plain EM creeps towards a proportion of 0 (200
    steps leave 0.05 where 0.037 is the optimum). Missing calls (-1) are left out; a person without calls keeps
    equal shares."""
    f = np.clip(np.asarray(frequencies, dtype=np.float64), 1e-6, 1 - 1e-6)
    k = len(f)
    out = np.empty((len(dosages), k))
    for start in range(0, len(dosages), chunk):
        x = dosages[start:start + chunk]
        a1 = np.where(x >= 0, x, 0).astype(np.float64)  # copies of the counted allele
        a2 = np.where(x >= 0, 2 - x, 0).astype(np.float64)

        def em(q):  # expected copies from each group: q_k sum_j (a1 F_kj / p_j + a2 (1 - F_kj) / (1 - p_j))
            p = q @ f
            counts = q * ((a1 / p) @ f.T + (a2 / (1 - p)) @ (1 - f).T)
            total = counts.sum(1, keepdims=True)
            return np.where(total > 0, counts / np.maximum(total, 1e-300), 1.0 / k)

        def loglik(q):
            p = q @ f
            return (a1 * np.log(p) + a2 * np.log(1 - p)).sum(1)

        q = np.full((len(x), k), 1.0 / k)
        for _ in range(iterations):
            q1 = em(q)
            q2 = em(q1)
            r, v = q1 - q, q2 - 2 * q1 + q
            alpha = -np.sqrt((r ** 2).sum(1, keepdims=True) / np.maximum((v ** 2).sum(1, keepdims=True), 1e-300))
            alpha = np.minimum(alpha, -1.0)  # -1 is the plain two steps
            jump = np.clip(q - 2 * alpha * r + alpha ** 2 * v, 1e-12, None)
            jump = em(jump / jump.sum(1, keepdims=True))
            new = np.where((loglik(jump) >= loglik(q2))[:, None], jump, q2)  # a jump that loses is not taken
            done = np.abs(new - q).max() < tolerance
            q = new
            if done:
                break
        out[start:start + chunk] = q
    return out


def admixed_share(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0) -> MetricValue:
    """Share of people who look admixed between the training cohort's ancestry groups: whose largest ancestry
    proportion (``ancestry_proportions``, against each ``source_groups`` group's training allele frequencies,
    with half a count added on each side) is under ``ADMIXED_BELOW``, synthetic against the real holdout at equal
    size (seeded). The supervised ADMIXTURE comparison of Yelmen et al. (PLoS Genet 2021). A generator whose
    latent blurs the groups releases people who are part one population and part another along the genome, where
    the real cohort has few; the holdout's share is a fresh sample's. Skipped where the training PCs separate no
    groups."""
    groups = source_groups(train, seed=seed)
    if groups is None:
        return skipped(f"the training PCs separate no groups of 50 or more people at Fst {SOURCE_FST} or more "
                       "(no ancestry to compare)")
    called = train >= 0
    copies = np.where(called, train, 0).astype(np.float64)
    freq = np.stack([(copies[groups == g].sum(0) + 0.5) / (2 * called[groups == g].sum(0) + 1)
                     for g in range(int(groups.max()) + 1)])
    h, s = equal_size_rows(holdout, synthetic, seed)
    q = {"synthetic": ancestry_proportions(s, freq), "holdout": ancestry_proportions(h, freq)}
    shown = subsample_index(len(s), min(len(s), PLOT_PEOPLE), seed)  # the report's bar plot: a few hundred each
    share = [float(np.mean(q[k].max(1) < ADMIXED_BELOW)) for k in ("synthetic", "holdout")]
    return MetricValue(value=share[0], reference=share[1], details={
        "groups": len(freq), "n": int(len(s)), "below": ADMIXED_BELOW,
        "proportions": {k: np.round(v[shown], 3).tolist() for k, v in q.items()}})


def trait_classes(y: np.ndarray, kind: str, y_train: np.ndarray) -> np.ndarray:
    """The classes the trait's group mix is compared in: class codes, or a quantitative trait's training terciles
    (0, 1, 2); -1 where the trait is missing."""
    if kind == "quantitative":
        out = np.digitize(y, np.nanquantile(y_train, [1 / 3, 2 / 3]))
    else:
        out = np.nan_to_num(y, nan=-1).astype(np.int64)
    return np.where(np.isnan(y), -1, out)


def trait_group_mix(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, y_train: np.ndarray,
                    y_holdout: np.ndarray, y_synthetic: np.ndarray, kind: str, *, seed: int = 0) -> MetricValue:
    """How far each trait class's mix of ancestry groups is from the training cohort's: per class
    (``trait_classes``), the total variation distance between the shares of the groups ``training_groups`` finds,
    synthetic against training, averaged over the classes weighted by their training shares (``group_mix_tv``).
    Holdout and synthetic people take the group of the nearest group mean on those PCs (``group_assigner``), at
    equal labelled size (seeded). A trait whose prevalence differs between populations ties each class to a mix; a
    generator that exaggerates the tie (classifier-free guidance can: ``models/group_mix.py``) releases
    confounding the real cohort does not have, which a GWAS of the release would inherit. The holdout's distance is
    a fresh sample's noise. Skipped where the training PCs separate no groups."""
    found = group_assigner(train, seed=seed)
    if found is None:
        return skipped("the training PCs separate no groups of 50 or more people (no ancestry mix to compare)")
    groups, assign = found
    known = ~np.isnan(y_train)
    h_ok, s_ok = np.flatnonzero(~np.isnan(y_holdout)), np.flatnonzero(~np.isnan(y_synthetic))
    h_rows, s_rows = equal_sizes(len(h_ok), len(s_ok), seed)
    h, s = h_ok[h_rows], s_ok[s_rows]
    mine = groups[known], trait_classes(y_train[known], kind, y_train)
    return MetricValue(value=group_mix_tv(*mine, assign(synthetic[s]), trait_classes(y_synthetic[s], kind, y_train)),
                       reference=group_mix_tv(*mine, assign(holdout[h]), trait_classes(y_holdout[h], kind, y_train)),
                       details={"groups": int(groups.max()) + 1, "n": int(len(s))})


def _pc_sets(train, holdout, synthetic, pca, seed, max_points):
    """Scores of (train subsample, holdout, synthetic), all of the same size min(n_h, n_s, max_points)."""
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    n = min(len(holdout), max_points)
    h = holdout[subsample_index(len(holdout), n, seed, stream=11)]
    s = synthetic[subsample_index(len(synthetic), n, seed, stream=12)]
    t = train[subsample_index(len(train), n, seed, stream=TRAIN_STREAM)]
    return pca.transform(t), pca.transform(h), pca.transform(s)


def _ensure_pca(train, pca, n_components, seed):
    if pca is None:
        pca = fit_pca(train, n_components, seed=seed)
    return pca


# ---------------------------------------------------------------------------------------------------------------
# Distance between clouds in PC space


def energy_coefficient(a: np.ndarray, b: np.ndarray) -> float:
    """Energy-distance coefficient of inhomogeneity H = (2 E|A-B| - E|A-A'| - E|B-B'|) / (2 E|A-B|) between two
    point clouds (n_a, d), (n_b, d), Euclidean distance (Szekely & Rizzo 2013).

    H lies in [0, 1]: 0 for identical clouds, 1 for clouds far apart relative to their spread; it is scale-free.
    Means run over all pairs including each point with itself (V-statistic): H >= 0 always, and for two samples
    of one distribution it keeps a small positive bias of order 1/n, the same for synthetic and holdout at equal
    sizes.
    """
    ab = cdist(a, b).mean()
    if ab == 0:
        return 0.0
    return float((2 * ab - cdist(a, a).mean() - cdist(b, b).mean()) / (2 * ab))


def pca_distance(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, pca: TrainingPCA | None = None,
                 n_components: int = DEFAULT_COMPONENTS, max_points: int = 2000, seed: int = 0) -> MetricValue:
    """Energy coefficient H (see :func:`energy_coefficient`) between the training cloud and a cohort's cloud in
    the top training PCs (raw scores, so the axes keep their natural weight: structure over noise).

    value: H(train, synthetic); reference: H(train, holdout); all three clouds of equal size, at most
    ``max_points`` (seeded subsample; the cost is quadratic). details: centroid distances.
    """
    if min(len(train), len(holdout), len(synthetic)) < 3:
        return skipped("needs at least 3 individuals in each cohort")
    pca = _ensure_pca(train, pca, n_components, seed)
    if pca is None:
        return skipped("PCA needs at least 3 training individuals and 2 polymorphic SNPs")
    t, h, s = _pc_sets(train, holdout, synthetic, pca, seed, max_points)
    return MetricValue(energy_coefficient(t, s), energy_coefficient(t, h), details={
        "centroid_distance": {"synthetic": float(np.linalg.norm(s.mean(0) - t.mean(0))),
                              "holdout": float(np.linalg.norm(h.mean(0) - t.mean(0)))},
        "n_points": int(len(t)), "n_components": int(pca.components.shape[0]),
    })


# ---------------------------------------------------------------------------------------------------------------
# k-NN precision and recall


def _kth_neighbour_radius(points: np.ndarray, k: int) -> np.ndarray:
    """Distance (n,) from each point to its k-th nearest other point in the same set."""
    d, _ = cKDTree(points).query(points, k=k + 1)
    return d[:, k]


def _covered(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Boolean (n_q,): whether each query lies within some centre's ball (||q - c|| <= r_c)."""
    out = np.zeros(len(queries), dtype=bool)
    for start in range(0, len(queries), chunk):
        d = cdist(queries[start:start + chunk], centres)
        out[start:start + chunk] = (d <= radii[None, :]).any(axis=1)
    return out


def knn_precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019) of ``generated`` (n_g, d) against
    ``real`` (n_r, d).

    Each real point gets the ball reaching its k-th nearest real neighbour; precision = share of generated
    points inside at least one real ball (are the generated points realistic?). Symmetrically, recall = share of
    real points inside at least one generated point's k-NN ball (is the real variety covered?).
    """
    precision = _covered(generated, real, _kth_neighbour_radius(real, k)).mean()
    recall = _covered(real, generated, _kth_neighbour_radius(generated, k)).mean()
    return float(precision), float(recall)


def _knn(train, holdout, synthetic, pca, n_components, k, max_points, seed):
    if min(len(train), len(holdout), len(synthetic)) < k + 2:
        return f"needs more than {k + 1} individuals in each cohort (k = {k})"
    pca = _ensure_pca(train, pca, n_components, seed)
    if pca is None:
        return "PCA needs at least 3 training individuals and 2 polymorphic SNPs"
    t, h, s = _pc_sets(train, holdout, synthetic, pca, seed, max_points)
    return knn_precision_recall(t, s, k), knn_precision_recall(t, h, k), len(t)


def knn_precision(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, pca: TrainingPCA | None = None,
                  n_components: int = DEFAULT_COMPONENTS, k: int = 3, max_points: int = 5000,
                  seed: int = 0) -> MetricValue:
    """k-NN precision (:func:`knn_precision_recall`) in the top training PCs, real = an equal-size training
    subsample (at most ``max_points``). value: synthetic's; reference: holdout's."""
    res = _knn(train, holdout, synthetic, pca, n_components, k, max_points, seed)
    if isinstance(res, str):
        return skipped(res)
    (ps, _), (ph, _), n = res
    return MetricValue(ps, ph, details={"k": k, "n_points": n})


def knn_recall(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, pca: TrainingPCA | None = None,
               n_components: int = DEFAULT_COMPONENTS, k: int = 3, max_points: int = 5000,
               seed: int = 0) -> MetricValue:
    """k-NN recall (:func:`knn_precision_recall`) in the top training PCs, real = an equal-size training
    subsample (at most ``max_points``). value: synthetic's; reference: holdout's."""
    res = _knn(train, holdout, synthetic, pca, n_components, k, max_points, seed)
    if isinstance(res, str):
        return skipped(res)
    (_, rs), (_, rh), n = res
    return MetricValue(rs, rh, details={"k": k, "n_points": n})


# ---------------------------------------------------------------------------------------------------------------
# Fst


def hudson_fst(a: np.ndarray, b: np.ndarray) -> float:
    """Hudson's Fst between two cohorts' dosages (n_a, m), (n_b, m), combined over SNPs as a ratio of averages
    (Bhatia, Patterson, Sankararaman & Price, Genome Res 2013, eq. 10):

        N = (p1 - p2)^2 - p1 (1 - p1) / (n1 - 1) - p2 (1 - p2) / (n2 - 1),   D = p1 (1 - p2) + p2 (1 - p1),
        Fst = sum N / sum D,

    p = a1 frequency among called genotypes, n = number of called alleles (2 x called individuals) per SNP.
    Unbiased: near 0 (possibly slightly negative) for two samples of one population. SNPs with fewer than 2
    called alleles on a side, or D = 0, are left out; NaN if none remains.
    """
    p1, p2 = allele_frequencies(a), allele_frequencies(b)
    n1 = 2.0 * (a >= 0).sum(axis=0)
    n2 = 2.0 * (b >= 0).sum(axis=0)
    ok = (n1 >= 2) & (n2 >= 2) & np.isfinite(p1) & np.isfinite(p2)
    p1, p2, n1, n2 = p1[ok], p2[ok], n1[ok], n2[ok]
    num = (p1 - p2) ** 2 - p1 * (1 - p1) / (n1 - 1) - p2 * (1 - p2) / (n2 - 1)
    den = p1 * (1 - p2) + p2 * (1 - p1)
    if den.sum() <= 0:
        return float("nan")
    return float(num.sum() / den.sum())


def fst(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0) -> MetricValue:
    """Hudson Fst (:func:`hudson_fst`) between training and a cohort. value: Fst(train, synthetic); reference:
    Fst(train, holdout), holdout and synthetic at equal size."""
    if min(len(train), len(holdout), len(synthetic)) < 2:
        return skipped("needs at least 2 individuals in each cohort")
    holdout, synthetic = equal_size_rows(holdout, synthetic, seed)
    return MetricValue(hudson_fst(train, synthetic), hudson_fst(train, holdout))


# ---------------------------------------------------------------------------------------------------------------
# Detection: can a classifier tell the cohorts apart?


def classifier_auc(a: np.ndarray, b: np.ndarray, *, n_folds: int = 5, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a gradient-boosted classifier (scikit-learn HistGradientBoostingClassifier,
    seeded) telling rows of ``a`` (n_a, d) from rows of ``b`` (n_b, d): out-of-fold probabilities of stratified,
    shuffled ``n_folds``-fold splits, pooled into one AUC. 0.5 = indistinguishable, 1 = perfectly separable."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from threadpoolctl import threadpool_limits

    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = HistGradientBoostingClassifier(max_iter=100, early_stopping=True, random_state=seed)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    # one OpenMP thread: on a few-thousand x 10 problem, thread start-up and spin-waiting on busy shared cores
    # cost 10-50x the work itself
    with threadpool_limits(limits=1, user_api="openmp"):
        prob = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, prob))


def detection_auc(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *,
                  pca: TrainingPCA | None = None, n_components: int = DETECTION_COMPONENTS, n_folds: int = 5,
                  max_per_class: int = 5000, seed: int = 0) -> MetricValue:
    """Real-vs-synthetic detection: cross-validated AUC (:func:`classifier_auc`, gradient boosting sees
    non-linear structure) on the top training PCs. A classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017),
    as the detection AUC of SNPgen (Lampis et al. 2026) and Xie et al. (GigaScience 2026).

    value: AUC(training subsample vs synthetic); reference: AUC(training subsample vs holdout), the same
    training rows, equal class sizes n = min(|holdout|, |synthetic|, ``max_per_class``). Where the training and
    synthetic cohorts hold several sets of n, each AUC is the mean over up to ``align.EQUAL_SIZE_ROUNDS`` disjoint
    (training, synthetic) pairs of them, against the same holdout set. A PCA fitted on training spreads training
    rows a little more than fresh ones, so the reference may sit above 0.5: that is the floor a perfect generator
    gets. details: ``holdout_vs_synthetic`` AUC (the GUIDE's "telling real holdout from synthetic"), ``rounds``.
    """
    if min(len(train), len(holdout), len(synthetic)) < 2 * n_folds:
        return skipped(f"needs at least {2 * n_folds} individuals in each cohort for {n_folds}-fold cross-validation")
    pca = _ensure_pca(train, pca, n_components, seed)
    if pca is None:
        return skipped("PCA needs at least 3 training individuals and 2 polymorphic SNPs")
    n = min(len(holdout), len(synthetic), max_per_class)
    h = pca.transform(holdout[subsample_index(len(holdout), n, seed, stream=HOLDOUT_STREAM)])
    pairs = [(pca.transform(train[t]), pca.transform(synthetic[s])) for t, s in zip(
        disjoint_rows(len(train), n, seed, stream=TRAIN_STREAM),
        disjoint_rows(len(synthetic), n, seed, stream=SYNTHETIC_STREAM))]
    value, reference, fresh = (float(np.mean([classifier_auc(a, b, n_folds=n_folds, seed=seed) for a, b in ab]))
                               for ab in (pairs, [(t, h) for t, _ in pairs], [(h, s) for _, s in pairs]))
    over = f"; each the mean over {len(pairs)} disjoint training and synthetic sets of {n}" if len(pairs) > 1 else ""
    note = (f"real holdout people told from synthetic ones: AUC {fresh:.3f} (0.5 = indistinguishable). Against "
            f"training people even a fresh real sample scores {reference:.3f}: the PCs are fitted on them, and spread "
            f"them more than anyone else{over}")
    return MetricValue(value, reference, note=note,
                       details={"holdout_vs_synthetic": fresh, "n_per_class": int(len(h)), "rounds": len(pairs),
                                "n_components": int(pca.components.shape[0])})
