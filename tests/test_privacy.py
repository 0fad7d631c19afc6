"""Privacy statistics: known answers for copies, fresh real individuals and per-SNP independent draws; the
building blocks (ties, ROC interpolation, NNDR, copy counts) on hand-built inputs; small sets; bad input."""
import math

import numpy as np
import pytest

from snpgen_core.errors import InputError
from snpgen_core.evaluation.card import MetricValue
from snpgen_core.evaluation.privacy import (
    PrivacyInputs,
    adversarial_accuracy,
    allele_frequency_lr_auc,
    copying,
    exact_copies,
    nndr,
    privacy_metrics,
    share_closer,
    tpr_at_fpr,
)
from snpgen_core.genotypes import MISSING

KEYS = [
    "exact_copies", "dcr_share", "closer_than_holdout_p1", "nndr", "aats", "aats_privacy_loss", "membership_auc",
    "membership_tpr_at_1pct_fpr", "membership_tpr_at_0.1pct_fpr", "kinship_duplicates", "kinship_first_degree",
    "af_lr_membership_auc",
]


@pytest.fixture(scope="module")
def three_parts(sim_cohort):
    """The shared simulated cohort cut at random into training (200), holdout (150) and 'synthetic' (150):
    three fresh samples of one population, so that the synthetic part behaves like a perfect generator's output."""
    x = sim_cohort.genotypes.dosages
    perm = np.random.default_rng(2024).permutation(len(x))
    return x[perm[:200]], x[perm[200:350]], x[perm[350:500]]


@pytest.fixture(scope="module")
def fresh(three_parts):
    return privacy_metrics(*three_parts, seed=0, device="cpu")


@pytest.fixture(scope="module")
def copied(three_parts):
    train, holdout, _ = three_parts
    return privacy_metrics(train, holdout, train[::-1].copy(), seed=0, device="cpu")


def test_privacy_metrics__returns_every_key_as_metric_values(fresh):
    assert list(fresh) == KEYS
    assert all(isinstance(v, MetricValue) for v in fresh.values())
    for key, v in fresh.items():
        assert math.isfinite(v.value) or v.note, f"{key} is NaN without a reason"


def test_privacy_metrics__verbatim_copies_are_caught_everywhere(copied, three_parts):
    n = len(three_parts[0])
    assert copied["exact_copies"].value == n and copied["exact_copies"].reference == 0
    # the 150 copies of the training subsample (|T| = |H|) sit at distance 0, the other 50 mostly nearer too
    assert copied["dcr_share"].value > 0.9
    assert copied["closer_than_holdout_p1"].value == 1.0
    assert copied["nndr"].value == 0.0
    assert copied["aats"].value < 0.2  # 1-NN finds the twin whenever both are among the equal-size subsets
    assert copied["aats_privacy_loss"].value > 0.4
    assert copied["membership_auc"].value == pytest.approx(1.0)
    assert copied["membership_tpr_at_1pct_fpr"].value == 1.0
    # KING has no estimate for an individual without a heterozygous call (exact_copies still catches it)
    with_het = int((three_parts[0] == 1).any(axis=1).sum())
    assert n - 3 <= with_het <= n
    assert copied["kinship_duplicates"].value == with_het
    assert copied["kinship_first_degree"].value == with_het
    assert np.sum(copied["kinship_duplicates"].details["synthetic_max_kinship"] == 0.5) == with_het  # KING <= 1/2
    d = copied["dcr_share"].details
    assert (d["synthetic_to_train"] == 0).all() and (d["holdout_to_train"] > 0).all()


def test_privacy_metrics__fresh_real_individuals_score_like_the_holdout(fresh):
    assert fresh["exact_copies"].value == 0
    assert abs(fresh["dcr_share"].value - 0.5) < 0.15 and abs(fresh["dcr_share"].reference - 0.5) < 0.15
    assert fresh["closer_than_holdout_p1"].value < 0.06
    assert abs(fresh["nndr"].value - fresh["nndr"].reference) < 0.05
    assert abs(fresh["aats"].value - 0.5) < 0.15 and abs(fresh["aats"].reference - 0.5) < 0.15
    assert abs(fresh["aats_privacy_loss"].value) < 0.15
    assert abs(fresh["membership_auc"].value - 0.5) < 0.12
    assert fresh["membership_tpr_at_1pct_fpr"].value < 0.1
    assert abs(fresh["af_lr_membership_auc"].value - 0.5) < 0.15
    # a single simulated region shares long haplotypes: KING counts are high for real individuals too, which is
    # why each count is read against the holdout's
    for key in ("kinship_duplicates", "kinship_first_degree"):
        v = fresh[key]
        assert abs(v.value - v.reference) <= 3 * math.sqrt(v.reference + 1), key


def test_dcr_share__copies_of_an_equal_size_training_set_score_one():
    rng = np.random.default_rng(4)
    train, holdout = (rng.integers(0, 3, size=(40, 30), dtype=np.int8) for _ in range(2))
    v = privacy_metrics(train, holdout, train[::-1].copy(), device="cpu")["dcr_share"]
    assert v.value == 1.0 and v.details["n_compared"] == 40


def test_privacy_metrics__tpr_at_low_fpr_is_undefined_for_small_holdouts(fresh):
    v = fresh["membership_tpr_at_0.1pct_fpr"]
    assert math.isnan(v.value) and "1000 needed" in v.note
    assert fresh["membership_tpr_at_1pct_fpr"].reference is None  # 75 per half < 100


def test_privacy_metrics__independent_per_snp_draws_copy_nobody(three_parts):
    train, holdout, _ = three_parts
    p = train.mean(axis=0) / 2
    independent = np.random.default_rng(1).binomial(2, p, size=(150, train.shape[1])).astype(np.int8)
    r = privacy_metrics(train, holdout, independent, seed=0, device="cpu")
    assert r["exact_copies"].value == 0
    assert r["kinship_duplicates"].value == 0
    assert r["membership_auc"].value < 0.6
    # no LD: a real individual's nearest neighbour is always real (shared haplotypes), unlike in the holdout
    assert r["aats"].details["aa_truth"] > 0.95 > 0.8 > r["aats"].details["reference_aa_truth"]


def test_privacy_metrics__is_seeded(three_parts):
    a = privacy_metrics(*three_parts, seed=5, device="cpu")
    b = privacy_metrics(*three_parts, seed=5, device="cpu")
    assert all(a[k].value == b[k].value or (math.isnan(a[k].value) and math.isnan(b[k].value)) for k in KEYS)


def test_share_closer__ties_count_one_half():
    assert share_closer([1, 2, 3, 0], [2, 2, 1, 0]) == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)


def test_tpr_at_fpr__known_roc_points():
    non_members = np.arange(100.0)  # scores 0..99
    members = np.array([200.0, 99.5, 98.5, -5.0])
    labels = np.r_[np.ones(4), np.zeros(100)]
    scores = np.r_[members, non_members]
    # thresholds: >= 99.5 -> (fpr 0, tpr 0.5); >= 99 -> (0.01, 0.5); >= 98.5 -> (0.01, 0.75)
    assert tpr_at_fpr(labels, scores, 0.01) == 0.75
    assert tpr_at_fpr(labels, scores, 0.005) == 0.5
    assert tpr_at_fpr(labels, scores, 1.0) == 1.0
    # all scores tied: the attacker can only guess, and TPR = FPR along the diagonal
    assert tpr_at_fpr(np.r_[np.ones(50), np.zeros(50)], np.zeros(100), 0.01) == pytest.approx(0.01)


def test_nndr__hand_built_ratio():
    train = np.zeros((3, 6), np.int8)
    train[1, :3] = 1  # at distance 3 from train[0]
    train[2, :] = 2
    synthetic = np.zeros((1, 6), np.int8)
    synthetic[0, 5] = 1  # 1 from train[0], 4 from train[1], 11 from train[2]
    holdout = np.full((2, 6), 2, np.int8)
    holdout[1, 0] = 0  # holdout[0] copies train[2] (ratio 0), holdout[1] is at 2 from it and 9 from train[1]
    v = nndr(PrivacyInputs(train, holdout, synthetic, device="cpu"))
    assert v.value == pytest.approx(1 / 4)
    assert v.reference == pytest.approx((0 + 2 / 9) / 2)


def test_exact_copies__reference_is_rescaled_to_the_synthetic_size():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 3, size=(30, 50), dtype=np.int8)
    holdout = rng.integers(0, 3, size=(10, 50), dtype=np.int8)
    holdout[[2, 7]] = train[[4, 9]]
    synthetic = rng.integers(0, 3, size=(20, 50), dtype=np.int8)
    synthetic[:3] = train[:3]
    v = exact_copies(PrivacyInputs(train, holdout, synthetic, device="cpu"))
    assert v.value == 3 and v.reference == pytest.approx(2 * 20 / 10)
    assert v.details["holdout_copies"] == 2


def test_adversarial_accuracy__separated_sets_score_one_and_copies_zero():
    real = np.zeros((4, 10), np.int8)
    real[:, 0] = [0, 1, 2, 2]
    real[3, 1] = 1  # four distinct real individuals within distance 3 of each other
    far = np.full((4, 10), 2, np.int8)
    far[:, 9] = [0, 1, 2, 2]
    data = PrivacyInputs(real, real.copy(), far, device="cpu")
    assert adversarial_accuracy(data, "train", "synthetic")[0] == 1.0
    twin = PrivacyInputs(real, real.copy(), real[::-1].copy(), device="cpu")
    aats, truth, syn = adversarial_accuracy(twin, "train", "synthetic")
    assert aats == 0.0 and truth == 0.0 and syn == 0.0


def test_aats__averages_disjoint_equal_size_sets_of_a_larger_release(three_parts):
    """A release and training set four times the holdout's size are read whole: four disjoint (training,
    synthetic) sets of the holdout's size, each against the same holdout set, checked against a brute-force AA on
    L1 distances. A release whose copies of training people all lie outside the first set is still caught."""
    from scipy.spatial.distance import cdist

    from snpgen_core.evaluation.privacy import aats, aats_privacy_loss

    train, holdout, _ = three_parts
    train, holdout = train[:200].astype(np.int8), holdout[:50].astype(np.int8)
    rng = np.random.default_rng(5)
    synthetic = rng.binomial(2, train.mean(0) / 2, (200, train.shape[1])).astype(np.int8)
    data = PrivacyInputs(train, holdout, synthetic, seed=3, device="cpu")
    assert data.aa_rounds == 4 and [data.size(s) for pair in data.aa_sets() for s in pair] == [50] * 8
    rows = np.concatenate([data.index[s] for _, s in data.aa_sets()])
    assert len(np.unique(rows)) == 200  # disjoint, the whole release

    def aa(real, syn):
        own = lambda x: np.sort(cdist(x, x, "cityblock"), axis=1)[:, 1]  # nearest other member
        cross = cdist(real, syn, "cityblock")
        return 0.5 * (share_closer(own(real), cross.min(1)) + share_closer(own(syn), cross.min(0)))

    sets = [(data.sets[t], data.sets[s]) for t, s in data.aa_sets()]
    h = data.sets["holdout_aa"]
    assert aats(data).value == pytest.approx(np.mean([aa(t, s) for t, s in sets]))
    assert aats(data).details["rounds"] == 4 and "the mean over 4 disjoint training and synthetic sets of 50" in (
        aats(data).note)
    loss = np.mean([aa(h, s) - aa(t, s) for t, s in sets])
    assert aats_privacy_loss(data).value == pytest.approx(loss)

    copied = synthetic.copy()  # copies of training people in every set but the first (the same seeded sets)
    for t_set, s_set in data.aa_sets()[1:]:
        copied[data.index[s_set]] = train[data.index[t_set]]
    leaky = PrivacyInputs(train, holdout, copied, seed=3, device="cpu")
    t0, s0 = (leaky.sets[k] for k in ("train_aa", "synthetic_aa"))
    first_only = aa(h, s0) - aa(t0, s0)  # what one seeded set saw: no copies
    assert first_only < 0.15 < 0.3 < aats_privacy_loss(leaky).value
    assert abs(aats_privacy_loss(data).value) < 0.1


def test_dcr_share_and_membership__average_disjoint_training_sets_of_the_holdouts_size(three_parts):
    """A training set four times the holdout's size is read whole by DCR share and the membership attack: the mean
    over four disjoint training sets of the holdout's size (brute-force L1 here); copies of training people outside
    the first set raise both."""
    from scipy.spatial.distance import cdist
    from sklearn.metrics import roc_auc_score

    from snpgen_core.evaluation.privacy import dcr_share, membership_auc

    train, holdout, synthetic = (x.astype(np.int8) for x in three_parts)
    train, holdout = train[:200], holdout[:50]
    data = PrivacyInputs(train, holdout, synthetic, seed=4, device="cpu")
    sets = [data.index[t] for t in data.train_sets()]
    assert len(sets) == 4 and len(np.unique(np.concatenate(sets))) == 200

    def nearest(a, b):
        return cdist(a, b, "cityblock").min(1)

    to_h = nearest(synthetic, holdout)
    dcr = np.mean([share_closer(nearest(synthetic, train[rows]), to_h) for rows in sets])
    assert dcr_share(data).value == pytest.approx(dcr) and dcr_share(data).details["rounds"] == 4
    assert dcr_share(data).note.endswith("the mean over 4 disjoint training sets of 50")
    labels = np.r_[np.ones(50), np.zeros(50)]
    auc = np.mean([roc_auc_score(labels, -np.r_[nearest(train[rows], synthetic), nearest(holdout, synthetic)])
                   for rows in sets])
    assert membership_auc(data).value == pytest.approx(auc)

    copied = train[np.concatenate(sets[1:])]  # a release of copies of everyone but the first set's people
    leaky = PrivacyInputs(train, holdout, copied, seed=4, device="cpu")
    first_dcr = share_closer(nearest(copied, train[sets[0]]), nearest(copied, holdout))
    assert first_dcr < 0.6 < dcr_share(leaky).value
    assert membership_auc(leaky).value > 0.8 > 0.6 > membership_auc(data).value


def test_allele_frequency_lr__detects_a_pool_of_members_with_many_snps():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, size=4000)  # many independent SNPs, few individuals: the regime of the attack
    train, holdout, fresh = (rng.binomial(2, p, size=(n, 4000)).astype(np.int8) for n in (100, 100, 100))
    leaked = allele_frequency_lr_auc(PrivacyInputs(train, holdout, train.copy(), device="cpu"))
    assert leaked.value > 0.95 and leaked.reference == 0.5
    independent = allele_frequency_lr_auc(PrivacyInputs(train, holdout, fresh, device="cpu"))
    assert abs(independent.value - 0.5) < 3 * independent.details["null_sd"]


def test_privacy_metrics__tiny_sets_give_nan_with_reasons_not_crashes():
    rng = np.random.default_rng(0)
    train, holdout = rng.integers(0, 3, size=(3, 8), dtype=np.int8), rng.integers(0, 3, size=(1, 8), dtype=np.int8)
    r = privacy_metrics(train, holdout, rng.integers(0, 3, size=(2, 8), dtype=np.int8), device="cpu")
    assert list(r) == KEYS
    assert math.isnan(r["aats"].value) and "at least 2" in r["aats"].note
    assert math.isfinite(r["dcr_share"].value) and r["dcr_share"].reference is None and r["dcr_share"].note
    empty = privacy_metrics(train, holdout, np.zeros((0, 8), np.int8), device="cpu")
    assert all(math.isnan(v.value) and v.note for v in empty.values())


def test_privacy_metrics__refuses_missing_calls_and_unaligned_snps():
    x = np.zeros((4, 5), np.int8)
    y = x.copy()
    y[0, 0] = MISSING
    with pytest.raises(InputError, match="holdout has 1 missing"):
        privacy_metrics(x, y, x, device="cpu")
    with pytest.raises(InputError, match="different SNP counts"):
        privacy_metrics(x, x, np.zeros((4, 6), np.int8), device="cpu")


def test_copying__disagreement_ratio_known_answers():
    """q = (1 - r_holdout + 0.02) / (1 - r_synthetic + 0.02): 1 when the synthetic agrees with training as a fresh
    sample does."""
    assert copying(MetricValue(0.5, 0.5), "LD").value == pytest.approx(1.0)
    row = copying(MetricValue(0.9, 0.5), "LD")
    assert row.value == pytest.approx(0.52 / 0.12) and row.reference == 1.0
    assert "r 0.900" in row.note and "r 0.500" in row.note
    assert copying(MetricValue(0.2, 0.6), "LD").value == pytest.approx(0.42 / 0.82)  # less faithful: below 1
    assert copying(MetricValue(1.0, 0.6), "LD").value == pytest.approx(21.0)  # training's statistic exactly: finite
    assert copying(MetricValue(0.97, 0.95), "LD").value < 1.5  # near 1, a noise-sized difference stays near 1
    for absent in (MetricValue(float("nan"), 0.5), MetricValue(0.9, None), MetricValue(0.9, float("nan"))):
        row = copying(absent, "LD")
        assert row.skipped and "no LD agreement" in row.note
