"""Privacy of a synthetic cohort: does it sit closer to its training individuals than a fresh real sample would?

Inputs: ``train``, ``holdout``, ``synthetic``, each (n, m) int8 dosages 0/1/2 over the same aligned SNPs
(samples x variants; the dosage counts the ``.bim`` column-5 allele). The holdout never trained the generator.
Missing calls are refused (see ``distances``): impute them first with ``distances.impute_missing`` (seeded).

Every statistic is computed twice, the same way: for the synthetic cohort (``MetricValue.value``) and for the real
holdout in its place (``MetricValue.reference``, what a perfect generator, i.e. a fresh real sample of the same
population, would get). Distances are exact L1 (identity-by-state) distances; ties count one half; sets compared
with each other have equal sizes, drawn by seeded subsampling. Where the holdout must play two parts at once (the
real non-members and the fresh sample), it is split in two seeded halves A and B, and the reference is computed on
the halves: it then carries the sampling noise of half the holdout size. Definitions follow SNPgen (Lampis et al.
2026) and the GUIDE "Evaluation"; each function names its source.

Sets too small for a statistic give ``value`` NaN and a ``note`` saying why; nothing here raises for size.

We never filter synthetic individuals by their distance to real ones: the filter itself leaks which real
individuals were near (Ganev & De Cristofaro, "On the inadequacy of similarity-based privacy metrics:
reconstruction attacks against 'truly anonymous' synthetic data", ReconSyn, 2023).
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import InputError
from .align import sets_that_fit
from .card import MetricValue
from .distances import check_complete_dosages, nearest_both_ways, nearest_neighbours
from .kinship import KING_DUPLICATE, KING_FIRST_DEGREE, max_kinship

MIN_PERCENTILE_SAMPLE = 100  # below this many holdout individuals per half, a 1st percentile is a coarse estimate


class PrivacyInputs:
    """The three cohorts, their seeded equal-size subsets, and the nearest-neighbour searches the statistics share.

    Subsets (row indices drawn once from ``seed``):
      ``train_eq``, ``holdout_eq``: n_eq = min(|train|, |holdout|) individuals each (usually all the holdout);
      ``train_eq<r>`` for r = 1 .. ``eq_rounds`` - 1: further disjoint sets of n_eq training individuals
      (``train_sets``), as many as the training set holds, at most ``align.EQUAL_SIZE_ROUNDS``;
      ``holdout_a``, ``holdout_b``: two disjoint halves of ``holdout_eq``, n_eq // 2 each; ``train_half``: as many
      training individuals, a subset of ``train_eq``;
      ``train_aa``, ``holdout_aa``, ``synthetic_aa``: n_aa = min(n_eq, |synthetic|) each, for adversarial
      accuracy; ``train_aa<r>`` and ``synthetic_aa<r>`` for r = 1 .. ``aa_rounds`` - 1: further disjoint sets of
      n_aa training and synthetic individuals (``aa_sets``), as many as both cohorts hold, at most
      ``align.EQUAL_SIZE_ROUNDS``.
    Nearest-neighbour searches and kinship scans are run once, on first use, and kept (``nearest``,
    ``max_kinship``), so that ``privacy_metrics`` pays for each distance computation only once.
    """

    def __init__(self, train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                 device: str = "auto"):
        sets = {"train": train, "holdout": holdout, "synthetic": synthetic}
        sets = {name: check_complete_dosages(x, name) for name, x in sets.items()}
        widths = {name: x.shape[1] for name, x in sets.items()}
        if len(set(widths.values())) != 1:
            raise InputError(f"the cohorts have different SNP counts {widths}; align them on the same SNPs first")
        if widths["train"] == 0:
            raise InputError("no SNPs to compare: the cohorts share no aligned SNP")
        self.seed, self.device = seed, device
        rng = np.random.default_rng(seed)
        n_t, n_h, n_s = (len(sets[k]) for k in ("train", "holdout", "synthetic"))
        perm_t, perm_h, perm_s = rng.permutation(n_t), rng.permutation(n_h), rng.permutation(n_s)
        self.n_eq = min(n_t, n_h)
        self.n_half = self.n_eq // 2
        self.n_aa = min(self.n_eq, n_s)
        self.eq_rounds, self.aa_rounds = sets_that_fit(self.n_eq, n_t), sets_that_fit(self.n_aa, n_t, n_s)
        subsets = {  # rows of train / holdout / synthetic behind every subset
            "train_eq": perm_t[: self.n_eq], "holdout_eq": perm_h[: self.n_eq],
            "holdout_a": perm_h[: self.n_half], "holdout_b": perm_h[self.n_half: 2 * self.n_half],
            "train_half": perm_t[: self.n_half],
            "train_aa": perm_t[: self.n_aa], "holdout_aa": perm_h[: self.n_aa], "synthetic_aa": perm_s[: self.n_aa],
        }
        for r in range(1, self.eq_rounds):
            subsets[f"train_eq{r}"] = perm_t[r * self.n_eq:(r + 1) * self.n_eq]
        for r in range(1, self.aa_rounds):
            rows = slice(r * self.n_aa, (r + 1) * self.n_aa)
            subsets[f"train_aa{r}"], subsets[f"synthetic_aa{r}"] = perm_t[rows], perm_s[rows]
        self.index = {name: np.sort(rows) for name, rows in subsets.items()}
        self.sets = dict(sets)
        self._same = {name: name for name in sets}  # subsets with the same rows share their searches
        for name, rows in self.index.items():
            base = name.split("_")[0]
            self.sets[name] = sets[base][rows]
            twins = [other for other, o_rows in self.index.items() if other.split("_")[0] == base
                     and other in self._same and np.array_equal(o_rows, rows)]
            self._same[name] = base if len(rows) == len(sets[base]) else (twins[0] if twins else name)
        self._nearest: dict = {}
        self._kinship: dict = {}

    def size(self, name: str) -> int:
        return len(self.sets[name])

    def train_sets(self) -> list[str]:
        """The disjoint training sets of the holdout's size that DCR share and membership average over."""
        return [f"train_eq{r or ''}" for r in range(self.eq_rounds)]

    def aa_sets(self) -> list[tuple[str, str]]:
        """The (training, synthetic) pairs of disjoint equal-size sets adversarial accuracy averages over."""
        return [(f"train_aa{r or ''}", f"synthetic_aa{r or ''}") for r in range(self.aa_rounds)]

    def nearest(self, queries: str, reference: str, k: int = 1) -> np.ndarray:
        """(n_queries, k) L1 distances from each individual of set ``queries`` to its k nearest in ``reference``
        (itself excluded when both name the same set). Two neighbours are searched whenever available, since
        the second costs almost nothing more, and the nearest of the other direction comes with the same pass."""
        queries, reference = self._same[queries], self._same[reference]
        own = queries == reference
        cached = self._nearest.get((queries, reference))
        if cached is None or cached.shape[1] < k:
            k_search = max(k, min(2, self.size(reference) - int(own)))
            q, r = self.sets[queries], self.sets[reference]
            if own or len(q) == 0 or (reference, queries) in self._nearest:
                cached, _ = nearest_neighbours(q, r, k_search, exclude_self=own, device=self.device)
            else:  # the statistics ask for most pairs both ways: one pass over the blocks serves both
                (cached, _), (back, _) = nearest_both_ways(q, r, k_search, device=self.device)
                self._nearest[(reference, queries)] = back
            self._nearest[(queries, reference)] = cached
        return cached[:, :k]

    def max_kinship(self, queries: str) -> np.ndarray:
        """(n_queries,) maximum KING-robust kinship of each individual of ``queries`` to any training individual."""
        if queries not in self._kinship:
            self._kinship[queries] = max_kinship(self.sets[queries], self.sets["train"], device=self.device)[0]
        return self._kinship[queries]


# ------------------------------------------------------------------------------------------------ shared pieces


def _skipped(note: str) -> MetricValue:
    return MetricValue(value=float("nan"), reference=None, note=note)


_SET_LABELS = {
    "train": "the training set", "holdout": "the holdout", "synthetic": "the synthetic set",
    "train_eq": "the training subsample", "holdout_eq": "the holdout", "holdout_a": "each holdout half",
    "holdout_b": "each holdout half", "train_half": "each holdout half",
    "train_aa": "each equal-size set", "holdout_aa": "each equal-size set", "synthetic_aa": "each equal-size set",
}


AA_SETS = "training and synthetic sets"


def _over_sets(note: str, rounds: int, n: int, what: str) -> str:
    """``note`` with the disjoint equal-size sets a row averaged over (nothing added for one set)."""
    if rounds < 2:
        return note
    part = f"the mean over {rounds} disjoint {what} of {n}"
    return f"{note}; {part}" if note else part


def _too_small(data: PrivacyInputs, **needs: int) -> str | None:
    """A note naming the first set smaller than it must be, or None when every set is large enough."""
    for name, need in needs.items():
        if data.size(name) < need:
            return f"skipped: needs at least {need} individuals in {_SET_LABELS[name]}, has {data.size(name)}"
    return None


def share_closer(a: np.ndarray, b: np.ndarray) -> float:
    """P[a < b] + 1/2 P[a = b] over paired entries (ties count one half)."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.mean(a < b) + 0.5 * np.mean(a == b))


def _share_below(d: np.ndarray, threshold: float) -> float:
    return float(np.mean(d < threshold) + 0.5 * np.mean(d == threshold))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """True-positive rate of the score threshold attack at false-positive rate ``fpr`` (labels 1 = member).

    Between two ROC vertices the rate is interpolated linearly, which an attacker achieves by randomising
    between the two thresholds; at a vertical step (tied scores) the highest rate reachable without exceeding
    ``fpr`` is taken."""
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    after = int(np.searchsorted(fprs, fpr, side="right"))  # first vertex beyond fpr; fprs[0] = 0 <= fpr
    if after == len(fprs):
        return float(tprs[-1])
    lo = after - 1
    step = (fpr - fprs[lo]) / (fprs[after] - fprs[lo])
    return float(tprs[lo] + step * (tprs[after] - tprs[lo]))


def auc_null_sd(n_members: int, n_non_members: int) -> float:
    """Standard deviation of the AUC of a useless score (Mann-Whitney null, no ties): sqrt((n1+n2+1)/(12 n1 n2))."""
    return math.sqrt((n_members + n_non_members + 1) / (12 * n_members * n_non_members))


# ------------------------------------------------------------------------------------------------ statistics


def exact_copies(data: PrivacyInputs) -> MetricValue:
    """Synthetic individuals whose whole genotype row equals a training individual's (row comparison by hash).

    Source: SNPgen (Lampis et al. 2026); the "exact match" check of SDMetrics. value: the count among all
    synthetic individuals; reference: the holdout's count of training copies, rescaled to the synthetic size
    (n_synthetic / n_holdout x count: a count grows with the number of individuals looked at). Raw counts and sizes
    in ``details``. Real cohorts can hold genuine duplicates (monozygotic twins, resampled individuals); the
    reference shows them."""
    n_s, n_h = data.size("synthetic"), data.size("holdout")
    if n_s == 0 or data.size("train") == 0:
        return _skipped(_too_small(data, synthetic=1, train=1))
    train_rows = {row.tobytes() for row in data.sets["train"]}
    syn = sum(row.tobytes() in train_rows for row in data.sets["synthetic"])
    hold = sum(row.tobytes() in train_rows for row in data.sets["holdout"])
    reference = hold * n_s / n_h if n_h else None
    note = "" if n_h else "no holdout individuals: no reference"
    if n_h and n_h != n_s:
        note = f"reference: the holdout's {hold} copies among {n_h} individuals, rescaled to {n_s} individuals"
    return MetricValue(float(syn), reference, note=note, details={
        "synthetic_copies": syn, "holdout_copies": hold, "n_synthetic": n_s, "n_holdout": n_h})


def dcr_share(data: PrivacyInputs) -> MetricValue:
    """Distance-to-closest-record share: P[d(s, T) < d(s, H)] + 1/2 P[d(s, T) = d(s, H)] over synthetic s.

    T: training subsampled to |H| (seeded; the mean over up to ``align.EQUAL_SIZE_ROUNDS`` disjoint such sets,
    ``train_sets``, where the training set holds several), H: holdout; ideal 0.5 (a synthetic individual is no
    nearer to the training individuals than to equally many unseen ones), 1 for copies. Source: SNPgen (Lampis et
    al. 2026); SDMetrics ``DCROverfittingProtection``. reference: the same share for holdout half A against training
    (subsampled to |B|) and holdout half B: 0.5 in expectation, with the sampling noise of that size.
    ``details``: per-individual nearest distances to the whole training set, ``synthetic_to_train`` and
    ``holdout_to_train`` (int64 arrays, for histograms)."""
    note = _too_small(data, synthetic=1, train_eq=1)
    if note:
        return _skipped(note)
    to_holdout = data.nearest("synthetic", "holdout_eq")[:, 0]
    value = float(np.mean([share_closer(data.nearest("synthetic", t)[:, 0], to_holdout) for t in data.train_sets()]))
    reference, note = None, "reference skipped: fewer than 2 holdout individuals to split in halves"
    if data.n_half >= 1:
        reference = share_closer(data.nearest("holdout_a", "train_half")[:, 0],
                                 data.nearest("holdout_a", "holdout_b")[:, 0])
        note = ""
    return MetricValue(value, reference, note=_over_sets(note, data.eq_rounds, data.n_eq, "training sets"), details={
        "synthetic_to_train": data.nearest("synthetic", "train")[:, 0],
        "holdout_to_train": data.nearest("holdout", "train")[:, 0],
        "n_compared": data.n_eq, "n_reference_half": data.n_half, "rounds": data.eq_rounds})


def closer_than_holdout_p1(data: PrivacyInputs) -> MetricValue:
    """Share of synthetic individuals nearer to training than the 1st percentile of holdout-to-training distances.

    d(x, T) is the L1 distance to the nearest training individual; ties with the threshold count one half; ideal
    about 0.01. Source: SNPgen (Lampis et al. 2026); the "distance to closest record, 5th/1st percentile" checks
    of SDMetrics and synthcity. So that the holdout's own reference is out of sample, the threshold comes from one
    holdout half and is applied to the other (cross-fitting): value = mean over the halves h of share(d(S, T) <
    p1(d(H_h, T))); reference = mean of share(d(H_B, T) < p1(d(H_A, T))) and share(d(H_A, T) < p1(d(H_B, T)))."""
    note = _too_small(data, synthetic=1, holdout_a=1)
    if note:
        return _skipped(note)
    to_train_s = data.nearest("synthetic", "train")[:, 0]
    to_train_h = data.nearest("holdout", "train")[:, 0]
    h_a, h_b = to_train_h[data.index["holdout_a"]], to_train_h[data.index["holdout_b"]]
    thr_a, thr_b = float(np.percentile(h_a, 1)), float(np.percentile(h_b, 1))
    value = 0.5 * (_share_below(to_train_s, thr_a) + _share_below(to_train_s, thr_b))
    reference = 0.5 * (_share_below(h_b, thr_a) + _share_below(h_a, thr_b))
    note = "" if data.n_half >= MIN_PERCENTILE_SAMPLE else (
        f"coarse: each 1st percentile is estimated from only {data.n_half} holdout individuals")
    return MetricValue(value, reference, note=note, details={"thresholds": [thr_a, thr_b]})


def nndr(data: PrivacyInputs) -> MetricValue:
    """Mean nearest-neighbour distance ratio d1 / d2 of synthetic individuals to training.

    d1, d2: L1 distances to the nearest and second-nearest training individuals; a ratio near 0 marks an individual
    much nearer one training individual than any other (0/0, a copy of duplicated training individuals, counts as
    0). Source: SDMetrics / synthcity "NNDR"; SNPgen (Lampis et al. 2026). reference: the holdout's mean ratio to
    the same training set."""
    note = _too_small(data, synthetic=1, train=2)
    if note:
        return _skipped(note)

    def mean_ratio(queries: str) -> float:
        d = data.nearest(queries, "train", 2).astype(float)
        return float(np.mean(np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)))

    reference = mean_ratio("holdout") if data.size("holdout") else None
    return MetricValue(mean_ratio("synthetic"), reference, note="" if reference is not None else "no holdout")


def adversarial_accuracy(data: PrivacyInputs, real: str, synthetic: str) -> tuple[float, float, float]:
    """(AATS, AA_truth, AA_syn) of two equal-size sets named in ``data`` (Yale et al. 2020; Yelmen et al. 2021).

    AA_truth = P[d_RR(i) < d_RS(i)] over real i (its nearest other real individual is nearer than its nearest
    synthetic one: a 1-NN classifier labels it correctly); AA_syn = P[d_SS(j) < d_SR(j)] over synthetic j; ties
    count one half; AATS = (AA_truth + AA_syn) / 2. 0.5: the sets are indistinguishable; near 0: synthetic
    individuals sit on top of real ones (copies); near 1: they are far from every real one."""
    truth = share_closer(data.nearest(real, real)[:, 0], data.nearest(real, synthetic)[:, 0])
    syn = share_closer(data.nearest(synthetic, synthetic)[:, 0], data.nearest(synthetic, real)[:, 0])
    return 0.5 * (truth + syn), truth, syn


def aats(data: PrivacyInputs) -> MetricValue:
    """Nearest-neighbour adversarial accuracy AATS between training and synthetic individuals (ideal 0.5).

    See ``adversarial_accuracy``; Yelmen et al. 2021 (PLoS Genetics 17:e1009303) after Yale et al. 2020, on L1
    (IBS) distances. Equal sizes: min(|train|, |holdout|, |synthetic|) of each, seeded; where the training and
    synthetic cohorts hold several such sets, the mean over up to ``align.EQUAL_SIZE_ROUNDS`` disjoint ones
    (``aa_sets``), each against the same holdout set. reference: the same with the holdout in the synthetic
    individuals' place."""
    note = _too_small(data, train_aa=2, synthetic_aa=2)
    if note:
        return _skipped(note)
    pairs = data.aa_sets()
    value, truth, syn = np.mean([adversarial_accuracy(data, t, s) for t, s in pairs], axis=0)
    ref, ref_truth, ref_syn = np.mean([adversarial_accuracy(data, t, "holdout_aa") for t, _ in pairs], axis=0)
    note = _over_sets("", len(pairs), data.n_aa, AA_SETS)
    return MetricValue(float(value), float(ref), note=note, details={
        "aa_truth": float(truth), "aa_syn": float(syn), "reference_aa_truth": float(ref_truth),
        "reference_aa_syn": float(ref_syn), "n_each": data.n_aa, "rounds": len(pairs)})


def aats_privacy_loss(data: PrivacyInputs) -> MetricValue:
    """Privacy loss AATS(holdout, synthetic) - AATS(training, synthetic) (Yelmen et al. 2021: AA_test - AA_train).

    Positive when the synthetic individuals are harder to tell from their training individuals than from unseen
    ones, i.e. when they sit nearer the training set; ideal 0. Equal sizes as in ``aats``. reference: holdout
    half A in the synthetic individuals' place, half B as the unseen set and as many training individuals:
    AATS(B, A) - AATS(T, A), 0 in expectation."""
    note = _too_small(data, holdout_aa=2, synthetic_aa=2)
    if note:
        return _skipped(note)
    pairs = data.aa_sets()
    test = float(np.mean([adversarial_accuracy(data, "holdout_aa", s)[0] for _, s in pairs]))
    train = float(np.mean([adversarial_accuracy(data, t, s)[0] for t, s in pairs]))
    reference, note = None, "reference skipped: needs at least 2 individuals in each holdout half"
    if data.n_half >= 2:
        reference = (adversarial_accuracy(data, "holdout_b", "holdout_a")[0]
                     - adversarial_accuracy(data, "train_half", "holdout_a")[0])
        note = ""
    return MetricValue(test - train, reference, note=_over_sets(note, len(pairs), data.n_aa, AA_SETS),
                       details={"aats_test": test, "aats_train": train, "n_each": data.n_aa, "rounds": len(pairs)})


def _membership_scores(data: PrivacyInputs, members: str, non_members: str, synthetic: str):
    """Labels (1 = member) and attack scores -d(x, nearest synthetic) of the members and non-members."""
    scores = np.concatenate([-data.nearest(members, synthetic)[:, 0], -data.nearest(non_members, synthetic)[:, 0]])
    labels = np.r_[np.ones(data.size(members)), np.zeros(data.size(non_members))]
    return labels, scores.astype(float)


def membership_auc(data: PrivacyInputs) -> MetricValue:
    """AUC of the distance-to-closest-synthetic membership attack (ideal 0.5; ties count one half).

    Score of a real individual: minus its L1 distance to the nearest synthetic individual. Members: training
    individuals subsampled to |holdout| (seeded; the mean AUC over up to ``align.EQUAL_SIZE_ROUNDS`` disjoint such
    sets, ``train_sets``, where the training set holds several); non-members: the holdout. Source: TAPAS
    (Houssiau et al. 2022, closest-distance attack); SNPgen (Lampis et al. 2026). reference: the same attack when
    the "synthetic" set is holdout half A, members as many training individuals, non-members half B (0.5 in
    expectation)."""
    note = _too_small(data, train_eq=1, synthetic=1)
    if note:
        return _skipped(note)
    value = float(np.mean([roc_auc_score(*_membership_scores(data, t, "holdout_eq", "synthetic"))
                           for t in data.train_sets()]))
    reference, note = None, "reference skipped: fewer than 2 holdout individuals to split in halves"
    if data.n_half >= 1:
        reference = float(roc_auc_score(*_membership_scores(data, "train_half", "holdout_b", "holdout_a")))
        note = ""
    return MetricValue(value, reference, note=_over_sets(note, data.eq_rounds, data.n_eq, "training sets"), details={
        "n_members": data.n_eq, "n_non_members": data.n_eq, "null_sd": auc_null_sd(data.n_eq, data.n_eq),
        "rounds": data.eq_rounds})


def membership_tpr(data: PrivacyInputs, fpr: float) -> MetricValue:
    """True-positive rate at false-positive rate ``fpr`` of the attack of ``membership_auc`` (ideal: ``fpr``).

    Undefined (NaN, with a note) when there are fewer than 1 / fpr non-members: no threshold can then reach that
    false-positive rate by counting, and any value would be an extrapolation. See ``tpr_at_fpr`` for ties and
    interpolation; Carlini et al. 2022 ("Membership inference attacks from first principles") for why the low-FPR
    region matters. Members as in ``membership_auc``: the mean over its training sets."""
    note = _too_small(data, train_eq=1, synthetic=1)
    if note:
        return _skipped(note)
    need = math.ceil(1 / fpr - 1e-9)
    if data.n_eq < need:
        return _skipped(f"undefined: {data.n_eq} holdout non-members, at least {need} needed to resolve {fpr:.1%} FPR")
    value = float(np.mean([tpr_at_fpr(*_membership_scores(data, t, "holdout_eq", "synthetic"), fpr)
                           for t in data.train_sets()]))
    reference, note = None, f"reference undefined: each holdout half has {data.n_half} < {need} non-members"
    if data.n_half >= need:
        reference = tpr_at_fpr(*_membership_scores(data, "train_half", "holdout_b", "holdout_a"), fpr)
        note = ""
    return MetricValue(value, reference, note=_over_sets(note, data.eq_rounds, data.n_eq, "training sets"),
                       details={"fpr": fpr})


def kinship_matches(data: PrivacyInputs, threshold: float) -> MetricValue:
    """Synthetic individuals whose closest training relative has KING-robust kinship >= ``threshold``.

    Kinship: KING-robust between-family estimator (Manichaikul et al. 2010; PLINK 2 ``--make-king``), see
    ``kinship``; thresholds 0.354 (duplicate / monozygotic twin) and 0.177 (first degree, duplicates included).
    reference: the holdout's count at the same threshold, rescaled to the synthetic size (n_synthetic / n_holdout).
    ``details``: each individual's maximum kinship to training (``synthetic_max_kinship``,
    ``holdout_max_kinship``, float64 arrays, NaN where undefined) and the raw counts."""
    note = _too_small(data, synthetic=1, train=1)
    if note:
        return _skipped(note)
    phi_s = data.max_kinship("synthetic")
    count_s = int(np.sum(phi_s >= threshold))
    details = {"threshold": threshold, "synthetic_count": count_s, "synthetic_max_kinship": phi_s}
    n_s, n_h = data.size("synthetic"), data.size("holdout")
    if n_h == 0:
        return MetricValue(float(count_s), None, note="no holdout individuals: no reference", details=details)
    phi_h = data.max_kinship("holdout")
    count_h = int(np.sum(phi_h >= threshold))
    details.update(holdout_count=count_h, holdout_max_kinship=phi_h, n_synthetic=n_s, n_holdout=n_h)
    note = "" if n_h == n_s else f"reference: the holdout's {count_h} among {n_h}, rescaled to {n_s} individuals"
    return MetricValue(float(count_s), count_h * n_s / n_h, note=note, details=details)


def allele_frequency_lr_auc(data: PrivacyInputs) -> MetricValue:
    """AUC of the allele-frequency likelihood-ratio membership attack (Sankararaman et al. 2009, Nat Genet 41:965).

    The attacker knows only the synthetic cohort's allele frequencies p (the "pool") and a reference population's
    q, and scores individual x by the log likelihood ratio of being drawn from the pool rather than the population:
        LR(x) = sum_j x_j log(p_j / q_j) + (2 - x_j) log((1 - p_j) / (1 - q_j)).
    Frequencies are smoothed away from 0 and 1 as (allele count + 1/2) / (2n + 1). Reference population: holdout
    half A; members: as many training individuals; non-members: holdout half B (a non-member must not be in the
    reference panel). reference: 0.5, the expected AUC when the synthetic cohort is independent of its training
    individuals (members and non-members are then exchangeable); the null standard deviation is in ``details``."""
    note = _too_small(data, synthetic=1, holdout_a=1)
    if note:
        return _skipped(note)

    def smoothed_frequency(x: np.ndarray) -> np.ndarray:
        return (x.sum(axis=0, dtype=np.int64) + 0.5) / (2 * len(x) + 1)

    p, q = smoothed_frequency(data.sets["synthetic"]), smoothed_frequency(data.sets["holdout_a"])
    w_a1, w_a2 = np.log(p / q), np.log((1 - p) / (1 - q))

    def lr(x: np.ndarray) -> np.ndarray:
        x = x.astype(float)
        return x @ w_a1 + (2 - x) @ w_a2

    members, non_members = data.sets["train_half"], data.sets["holdout_b"]
    scores = np.r_[lr(members), lr(non_members)]
    labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    return MetricValue(float(roc_auc_score(labels, scores)), 0.5,
                       note="reference: 0.5 expected for a generator independent of its training individuals",
                       details={"null_sd": auc_null_sd(len(members), len(non_members)), "n_each": len(members)})


COPYING_SLACK = 0.02  # two standard errors of a correlation near 0.95 over 100 SNPs


def copying(agreement: MetricValue, what: str) -> MetricValue:
    """Does the synthetic cohort follow the training sample's own noise? From an agreement row (a correlation with
    the training cohort's statistic: ``value`` the synthetic's r, ``reference`` the holdout's, both at equal size,
    e.g. ``ld.ld_r``, ``association.case_control_af_diff_r``): q = (1 - r_holdout + s) / (1 - r_synthetic + s), how
    many times less the synthetic cohort disagrees with the training cohort than a fresh real sample of the same
    size does. A faithful generator of the population scores about 1 (below 1 when less faithful); a large q means
    it reproduces the training sample's chance LD or chance associations, which a fresh sample does not share: a
    privacy finding, not better fidelity (issue 13; a hidden 873-person cohort showed case-control r 0.94 against
    the holdout's 0.57). s = ``COPYING_SLACK`` keeps two agreements near 1 that differ by sampling noise alone
    (0.97 against 0.95) near q = 1, and q finite for r_synthetic = 1. value: q; reference: 1, the holdout's by
    definition. ``what`` names the statistic in the note."""
    if agreement.skipped or agreement.reference is None or not np.isfinite(agreement.reference):
        return _skipped(f"no {what} agreement to compare" + (f" ({agreement.note})" if agreement.note else ""))
    rs, rh = float(agreement.value), float(agreement.reference)
    q = (1.0 - rh + COPYING_SLACK) / (1.0 - rs + COPYING_SLACK)
    return MetricValue(q, 1.0, note=(f"{what}: synthetic r {rs:.3f} with the training cohort's, a fresh real sample "
                                     f"of the same size r {rh:.3f}; disagreement (1 - r) {1 - rs:.3f} against "
                                     f"{1 - rh:.3f}"),
                       details={"r_synthetic": rs, "r_holdout": rh})


def privacy_metrics(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray, *, seed: int = 0,
                    device: str = "auto") -> dict[str, MetricValue]:
    """Every privacy statistic of a synthetic cohort, each beside the real holdout's reference.

    train (n_t, m), holdout (n_h, m), synthetic (n_s, m): int8 dosages 0/1/2 over the same aligned SNPs (missing
    calls refused: impute first). ``seed`` draws the equal-size subsets and the holdout halves; ``device``:
    "auto" (CUDA when present), "cpu" or a torch device. Keys, in report order: exact_copies, dcr_share,
    closer_than_holdout_p1, nndr, aats, aats_privacy_loss, membership_auc, membership_tpr_at_1pct_fpr,
    membership_tpr_at_0.1pct_fpr, kinship_duplicates (>= 0.354), kinship_first_degree (>= 0.177),
    af_lr_membership_auc. Status is left to the report card."""
    data = PrivacyInputs(train, holdout, synthetic, seed=seed, device=device)
    return {
        "exact_copies": exact_copies(data),
        "dcr_share": dcr_share(data),
        "closer_than_holdout_p1": closer_than_holdout_p1(data),
        "nndr": nndr(data),
        "aats": aats(data),
        "aats_privacy_loss": aats_privacy_loss(data),
        "membership_auc": membership_auc(data),
        "membership_tpr_at_1pct_fpr": membership_tpr(data, 0.01),
        "membership_tpr_at_0.1pct_fpr": membership_tpr(data, 0.001),
        "kinship_duplicates": kinship_matches(data, KING_DUPLICATE),
        "kinship_first_degree": kinship_matches(data, KING_FIRST_DEGREE),
        "af_lr_membership_auc": allele_frequency_lr_auc(data),
    }
