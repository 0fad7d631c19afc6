"""Evaluation statistics: known answers on tiny inputs, brute-force and PLINK 1.9 cross-checks, alignment, grading."""
import itertools
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from snpgen_core.errors import InputError
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.plink import write_plink
from snpgen_core.ld import dosage_r2, ld_r2_pairs
from snpgen_core.evaluation import frequencies, ld, structure, utility
from snpgen_core.evaluation.align import (align_cohorts, check_holdout_distinct, equal_sizes, impute_mean,
                                          subsample_index)
from snpgen_core.evaluation.card import CardThresholds, MetricValue, Rule, grade, grade_sections, skipped

PLINK = shutil.which("plink1.9") or shutil.which("plink")


def random_dosages(rng, n, m, missing=0.0):
    p = rng.uniform(0.05, 0.95, size=m)
    x = rng.binomial(2, p, size=(n, m)).astype(np.int8)
    if missing:
        x[rng.random((n, m)) < missing] = -1
    return x


def cohort(x, prefix="I", a1=None, a2=None, snps=None, chrom="1"):
    m = x.shape[1]
    variants = make_variants(chrom, snps or [f"rs{j}" for j in range(m)], np.arange(1, m + 1) * 1000,
                             a1 or ["A"] * m, a2 or ["G"] * m)
    return Genotypes(x, variants, make_samples([f"{prefix}{i}" for i in range(len(x))]))


# ---------------------------------------------------------------------------------------------------------------
# frequencies and Hardy-Weinberg


def test_allele_frequencies__counts_a1_over_called_genotypes():
    x = np.array([[0, 2, -1], [1, 2, -1], [2, -1, -1]], np.int8)
    p = frequencies.allele_frequencies(x)
    np.testing.assert_allclose(p[:2], [3 / 6, 4 / 4])
    assert np.isnan(p[2])


def test_allele_frequency_mae__known_answer_and_reference_from_holdout():
    train = np.array([[0, 0], [0, 0]], np.int8)  # p = (0, 0)
    holdout = np.array([[1, 0], [0, 0]], np.int8)  # p = (0.25, 0)
    synthetic = np.array([[2, 2], [2, 2]], np.int8)  # p = (1, 1)
    m = frequencies.allele_frequency_mae(train, holdout, synthetic)
    assert m.value == pytest.approx(1.0)
    assert m.reference == pytest.approx(0.125)


def test_genotype_class_and_heterozygosity__known_answer():
    train = np.array([[0], [1], [2], [1]], np.int8)  # classes 1/4, 1/2, 1/4
    synthetic = np.array([[1], [1], [1], [1]], np.int8)  # all heterozygous
    m = frequencies.genotype_class_mae(train, train.copy(), synthetic)
    assert m.value == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert m.reference == 0.0
    h = frequencies.heterozygosity_mae(train, train.copy(), synthetic)
    assert h.value == pytest.approx(0.5)


def test_equal_sizes__subsamples_the_larger_set_seeded():
    h, s = equal_sizes(10, 4, seed=1)
    assert len(h) == len(s) == 4 and (s == np.arange(4)).all()
    assert len(set(h)) == 4 and (np.diff(h) > 0).all()
    np.testing.assert_array_equal(h, equal_sizes(10, 4, seed=1)[0])
    assert not np.array_equal(h, equal_sizes(10, 4, seed=2)[0])


def test_disjoint_rows__disjoint_seeded_sets_as_many_as_fit():
    from snpgen_core.evaluation.align import disjoint_rows

    sets = disjoint_rows(10, 3, seed=1, stream=5)
    assert [len(s) for s in sets] == [3, 3, 3]  # 10 // 3 sets, at most four
    assert len(np.unique(np.concatenate(sets))) == 9 and all((np.diff(s) > 0).all() for s in sets)
    assert [s.tolist() for s in sets] == [s.tolist() for s in disjoint_rows(10, 3, seed=1, stream=5)]
    assert [s.tolist() for s in sets] != [s.tolist() for s in disjoint_rows(10, 3, seed=1, stream=6)]
    assert len(disjoint_rows(100, 3, seed=1, stream=5)) == 4 and len(disjoint_rows(100, 3, 1, stream=5, rounds=2)) == 2
    assert [s.tolist() for s in disjoint_rows(3, 5, seed=1, stream=5)] == [[0, 1, 2]]  # fewer rows than asked


def brute_force_hwe_p(n0, n1, n2):
    """Enumerate every genotype configuration with the observed allele counts (Levene's exact distribution)."""
    from fractions import Fraction
    from math import factorial

    n = n0 + n1 + n2
    n_a = 2 * n2 + n1
    probs = {}
    for het in range(0, n + 1):
        hom_a2 = n_a - het
        if hom_a2 < 0 or hom_a2 % 2:
            continue
        hom_a = hom_a2 // 2
        hom_b = n - het - hom_a
        if hom_b < 0:
            continue
        probs[het] = Fraction(factorial(n) * 2**het * factorial(n_a) * factorial(2 * n - n_a),
                              factorial(hom_a) * factorial(het) * factorial(hom_b) * factorial(2 * n))
    obs = probs[n1]
    return float(sum(p for p in probs.values() if p <= obs) / sum(probs.values()))


@pytest.mark.parametrize("counts", [(10, 0, 10), (25, 50, 25), (3, 14, 3), (40, 2, 1), (0, 7, 0), (5, 5, 0)])
def test_hwe_exact_p__matches_full_enumeration(counts):
    assert frequencies.hwe_exact_p(np.array([counts]))[0] == pytest.approx(brute_force_hwe_p(*counts), rel=1e-9)


def test_hwe_exact_p__monomorphic_is_one():
    assert frequencies.hwe_exact_p(np.array([[12, 0, 0], [0, 0, 0]])).tolist() == [1.0, 1.0]


@pytest.mark.skipif(PLINK is None, reason="plink1.9 not installed")
def test_hwe_exact_p__agrees_with_plink_hardy(tmp_path):
    rng = np.random.default_rng(5)
    x = random_dosages(rng, 80, 30)
    x[:20, :10] = 2  # push some SNPs out of equilibrium
    write_plink(tmp_path / "c", cohort(x))
    subprocess.run([PLINK, "--bfile", str(tmp_path / "c"), "--hardy", "--out", str(tmp_path / "h")],
                   check=True, capture_output=True)
    table = pd.read_csv(tmp_path / "h.hwe", sep=r"\s+")
    plink_p = table.loc[table["TEST"].str.startswith("ALL"), "P"].to_numpy(float)
    ours = frequencies.hwe_exact_p(frequencies.genotype_counts(x))
    np.testing.assert_allclose(ours, plink_p, rtol=1e-3, atol=1e-12)


def test_hwe_failure_share__excess_heterozygotes_fail():
    rng = np.random.default_rng(0)
    train = random_dosages(rng, 200, 20)
    synthetic = np.ones((200, 20), np.int8)
    synthetic[:2] = 0  # keep SNPs polymorphic
    m = frequencies.hwe_failure_share(train, random_dosages(rng, 200, 20), synthetic)
    assert m.value == 1.0 and m.reference < 0.1


# ---------------------------------------------------------------------------------------------------------------
# LD


def brute_force_r2(x, i, j):
    ok = (x[:, i] >= 0) & (x[:, j] >= 0)
    a, b = x[ok, i].astype(float), x[ok, j].astype(float)
    if ok.sum() < 2 or a.std() == 0 or b.std() == 0:
        return np.nan
    return np.corrcoef(a, b)[0, 1] ** 2


@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_ld_r2_pairs__matches_brute_force_within_window_and_chromosome(missing):
    rng = np.random.default_rng(1)
    x = random_dosages(rng, 60, 300, missing)
    x[:, 7] = 1  # monomorphic -> NaN
    chrom = np.array(["1"] * 200 + ["2"] * 100)
    i, j, r2 = ld_r2_pairs(x, chrom, window=5)
    expected = [(a, b) for a in range(300) for b in range(a + 1, min(a + 6, 300)) if chrom[a] == chrom[b]]
    assert sorted(zip(i.tolist(), j.tolist())) == expected
    brute = np.array([brute_force_r2(x, a, b) for a, b in zip(i, j)])
    np.testing.assert_allclose(r2, brute, rtol=1e-10, atol=1e-12)
    assert np.isnan(r2[(i == 7) | (j == 7)]).all()


def test_ld_r2_pairs__perfect_and_anti_correlation_give_one():
    x = np.array([[0, 0, 2], [1, 1, 1], [2, 2, 0], [1, 1, 1]], np.int8)
    _, _, r2 = ld_r2_pairs(x, ["1"] * 3, window=2)
    np.testing.assert_allclose(r2, [1.0, 1.0, 1.0])


@pytest.mark.skipif(PLINK is None, reason="plink1.9 not installed")
def test_ld_r2_pairs__agrees_with_plink_r2_with_missing_calls(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.binomial(2, 0.4, size=(120, 1))
    x = np.clip(base + rng.binomial(1, 0.3, size=(120, 25)) - rng.binomial(1, 0.3, size=(120, 25)), 0, 2)
    x = x.astype(np.int8)
    x[rng.random(x.shape) < 0.05] = -1
    write_plink(tmp_path / "c", cohort(x))
    subprocess.run([PLINK, "--bfile", str(tmp_path / "c"), "--r2", "--ld-window", "4", "--ld-window-kb", "100000",
                    "--ld-window-r2", "0", "--out", str(tmp_path / "ld")], check=True, capture_output=True)
    table = pd.read_csv(tmp_path / "ld.ld", sep=r"\s+")
    i, j, r2 = ld_r2_pairs(x, ["1"] * 25, window=3)
    ours = {(f"rs{a}", f"rs{b}"): v for a, b, v in zip(i, j, r2)}
    theirs = {(a, b): v for a, b, v in zip(table["SNP_A"], table["SNP_B"], table["R2"])}
    assert set(theirs) <= set(ours) and len(theirs) > 40
    np.testing.assert_allclose([ours[k] for k in theirs], list(theirs.values()), atol=2e-6)


def test_dosage_r2__matrix_matches_the_banded_pairs():
    rng = np.random.default_rng(3)
    x = random_dosages(rng, 50, 12, 0.1)
    mat = dosage_r2(x)
    i, j, r2 = ld_r2_pairs(x, ["1"] * 12, window=11)
    np.testing.assert_allclose(mat[i, j], r2)
    np.testing.assert_allclose(mat, mat.T)


def test_ld_r__independent_columns_lose_ld_and_copies_keep_it(sim_cohort):
    x = sim_cohort.genotypes.dosages
    chrom = sim_cohort.genotypes.variants["chrom"].to_numpy()
    train, holdout = x[:250], x[250:]
    rng = np.random.default_rng(0)
    shuffled = np.column_stack([rng.permutation(holdout[:, j]) for j in range(x.shape[1])])  # same AF, no LD
    lost = ld.ld_r(train, holdout, shuffled, chrom, window=20)
    assert lost.reference > 0.7 and abs(lost.value) < 0.2
    kept = ld.ld_r(train, holdout, train.copy(), chrom, window=20)
    assert kept.value == pytest.approx(1.0)


def test_ld_r__a_snp_the_synthetic_cohort_never_varies_counts_as_no_ld_not_as_no_pair(sim_cohort):
    """A generator that writes one genotype everywhere at a SNP must not drop that SNP's pairs from its own
    score (they would flatter it): they count with r^2 = 0, and the pairs judged are the real cohorts' pairs."""
    x = sim_cohort.genotypes.dosages
    chrom = sim_cohort.genotypes.variants["chrom"].to_numpy()
    train, holdout = x[:250], x[250:]
    frozen = holdout.copy()
    frozen[:, ::3] = 1  # every third SNP constant in the synthetic cohort
    full = ld.ld_r(train, holdout, holdout.copy(), chrom, window=20)
    part = ld.ld_r(train, holdout, frozen, chrom, window=20)
    assert part.details["n_pairs"] == full.details["n_pairs"]
    assert part.value < full.value - 0.2
    decay = ld.ld_decay(train, holdout, frozen, chrom, sim_cohort.genotypes.variants["pos"], window=20)
    assert np.mean(decay.details["synthetic"]) < np.mean(decay.details["holdout"])


def test_ld_decay__curves_by_distance_and_too_small_input_is_skipped(sim_cohort):
    g = sim_cohort.genotypes
    x, chrom, pos = g.dosages, g.variants["chrom"], g.variants["pos"]
    m = ld.ld_decay(x[:250], x[250:], x[250:], chrom, pos, window=199, n_bins=8)
    d = m.details
    assert m.value == pytest.approx(m.reference)
    assert len(d["distance"]) == len(d["train"]) == len(d["n_pairs"]) <= 8
    assert np.all(np.diff(d["distance"]) > 0) and min(d["n_pairs"]) >= 20
    assert max(d["train"][:3]) > 3 * d["train"][-1]  # LD decays with distance
    tiny = ld.ld_decay(x[:2], x[2:4], x[4:6], chrom, pos)
    assert tiny.skipped and "at least 3 individuals" in tiny.note


# ---------------------------------------------------------------------------------------------------------------
# structure: Fst, k-NN precision/recall, energy distance, PCA, detection


def brute_force_hudson_fst(a, b):
    """Hudson Fst = 1 - Hw / Hb, combined as sum(Hb - Hw) / sum(Hb), by enumerating allele pairs."""
    num = den = 0.0
    for j in range(a.shape[1]):
        alleles = []
        for x in (a[:, j], b[:, j]):
            called = x[x >= 0]
            alleles.append([1] * int(called.sum()) + [0] * int(2 * len(called) - called.sum()))
        within = [np.mean([u != v for u, v in itertools.combinations(al, 2)]) for al in alleles]
        between = np.mean([u != v for u in alleles[0] for v in alleles[1]])
        num += between - np.mean(within)
        den += between
    return num / den


def test_hudson_fst__matches_pairwise_difference_enumeration():
    rng = np.random.default_rng(4)
    a = random_dosages(rng, 12, 8, 0.1)
    b = random_dosages(rng, 9, 8, 0.1)
    assert structure.hudson_fst(a, b) == pytest.approx(brute_force_hudson_fst(a, b), rel=1e-10)


def test_hudson_fst__fixed_differences_give_one():
    assert structure.hudson_fst(np.zeros((5, 3), np.int8), np.full((7, 3), 2, np.int8)) == pytest.approx(1.0)


def brute_force_precision_recall(real, fake, k):
    def radius(points):
        d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radius(real), radius(fake)
    precision = np.mean([any(np.linalg.norm(f - r) <= rr for r, rr in zip(real, r_real)) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - f) <= rf for f, rf in zip(fake, r_fake)) for r in real])
    return precision, recall


@pytest.mark.parametrize("k", [1, 3])
def test_knn_precision_recall__matches_brute_force(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(40, 3))
    fake = rng.normal(loc=0.7, scale=0.6, size=(35, 3))
    assert structure.knn_precision_recall(real, fake, k) == pytest.approx(brute_force_precision_recall(real, fake, k))


def test_knn_precision_recall__copies_are_perfect_and_distant_sets_score_zero():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(30, 2))
    assert structure.knn_precision_recall(real, real.copy(), 3) == (1.0, 1.0)
    assert structure.knn_precision_recall(real, real + 100.0, 3) == (0.0, 0.0)


def test_energy_coefficient__zero_for_identical_clouds_near_one_for_distant():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 4))
    assert structure.energy_coefficient(a, a) == pytest.approx(0.0, abs=1e-12)
    assert structure.energy_coefficient(a, a + 1000.0) > 0.99


def test_fit_pca__separates_populations_and_projects_missing_as_mean(sim_cohort):
    g = sim_cohort.genotypes
    pca = structure.fit_pca(g.dosages, 4, seed=0)
    scores = pca.transform(g.dosages)
    pops = g.samples["fid"].to_numpy()
    afr, eas = scores[pops == "AFR", 0].mean(), scores[pops == "EAS", 0].mean()
    assert abs(afr - eas) > 2 * scores[:, 0].std() * 0.5
    one_missing = g.dosages[:1].copy()
    one_missing[0, :] = -1
    np.testing.assert_allclose(pca.transform(one_missing), 0.0, atol=1e-9)  # all at the training mean
    assert structure.fit_pca(g.dosages[:2], 4) is None


@pytest.mark.slow
def test_detection_auc__tells_shuffled_genotypes_from_real_ones(sim_cohort):
    x = sim_cohort.genotypes.dosages
    rng = np.random.default_rng(1)
    train, holdout = x[:250], x[250:]
    shuffled = np.column_stack([rng.permutation(holdout[:, j]) for j in range(x.shape[1])])
    m = structure.detection_auc(train, holdout, shuffled, seed=0)
    assert m.value > 0.9 and m.reference < 0.75
    assert m.details["holdout_vs_synthetic"] > 0.9 and "holdout people told from synthetic" in m.note
    again = structure.detection_auc(train, holdout, shuffled, seed=0)
    assert again.value == m.value  # seeded
    small = structure.detection_auc(train[:4], holdout[:4], shuffled[:4])
    assert small.skipped and "cross-validation" in small.note


@pytest.mark.slow
def test_detection_auc__reads_a_release_four_times_the_holdout_in_disjoint_sets(sim_cohort):
    """Training and synthetic cohorts four times the holdout's size: every AUC is the mean over four disjoint
    (training, synthetic) sets of the holdout's size against the same holdout set, computed here from the sets."""
    from snpgen_core.evaluation.align import HOLDOUT_STREAM, SYNTHETIC_STREAM, TRAIN_STREAM, disjoint_rows

    x = sim_cohort.genotypes.dosages
    rng = np.random.default_rng(2)
    train, holdout = x[:400], x[400:500]
    synthetic = np.column_stack([rng.permutation(train[:, j]) for j in range(x.shape[1])])  # LD broken
    m = structure.detection_auc(train, holdout, synthetic, seed=3)
    assert m.details["rounds"] == 4 and m.details["n_per_class"] == 100 and "over 4 disjoint" in m.note
    pca = structure.fit_pca(train, structure.DETECTION_COMPONENTS, seed=3)
    h = pca.transform(holdout[subsample_index(100, 100, 3, stream=HOLDOUT_STREAM)])
    pairs = [(pca.transform(train[a]), pca.transform(synthetic[b])) for a, b in
             zip(disjoint_rows(400, 100, 3, stream=TRAIN_STREAM), disjoint_rows(400, 100, 3, stream=SYNTHETIC_STREAM))]
    auc = structure.classifier_auc
    assert m.value == pytest.approx(np.mean([auc(a, b, seed=3) for a, b in pairs])) and m.value > 0.8
    assert m.reference == pytest.approx(np.mean([auc(a, h, seed=3) for a, _ in pairs])) and m.reference < 0.75
    one = structure.detection_auc(train, holdout, synthetic[:100], seed=3)  # a release of the holdout's size
    assert one.details["rounds"] == 1 and "disjoint" not in one.note


# ---------------------------------------------------------------------------------------------------------------
# utility


def test_tstr__perfectly_predictable_trait_gives_auc_one_and_chance_for_noise():
    rng = np.random.default_rng(0)
    x = random_dosages(rng, 600, 10)
    y = (x[:, 0] >= 1).astype(float)
    train, holdout, synthetic = x[:200], x[200:400], x[400:]
    m = utility.tstr(train, holdout, synthetic, y[:200], y[200:400], y[400:], "binary", n_boot=30, seed=0)
    assert m.value > 0.99 and m.reference > 0.99
    assert m.details["ci"][0] <= m.value <= m.details["ci"][1]
    noise = utility.tstr(train, holdout, synthetic, y[:200], y[200:400], rng.permutation(y[400:]), "binary",
                         n_boot=30, seed=0)
    assert abs(noise.value - 0.5) < 0.1 and noise.reference > 0.99


def test_tstr__quantitative_and_categorical_scores():
    rng = np.random.default_rng(1)
    x = random_dosages(rng, 600, 8)
    q = x[:, 0] * 1.0 + x[:, 1] + rng.normal(0, 0.3, 600)
    m = utility.tstr(x[:200], x[200:400], x[400:], q[:200], q[200:400], q[400:], "quantitative", n_boot=20)
    assert m.details["score"] == "pearson_r" and m.value > 0.9 and m.details["r2"] > 0.8
    c = x[:, 0].astype(float)  # three categories
    a = utility.tstr(x[:200], x[200:400], x[400:], c[:200], c[200:400], c[400:], "categorical", n_boot=20,
                     model="gbm")
    assert a.details["score"] == "accuracy" and a.value > 0.95
    assert 0.3 < a.details["chance"] < 0.7


def test_tstr__too_few_cases_is_skipped_with_a_reason():
    rng = np.random.default_rng(2)
    x = random_dosages(rng, 90, 5)
    y = np.zeros(90)
    y[:3] = 1
    m = utility.tstr(x[:30], x[30:60], x[60:], y[:30], y[30:60], y[60:], "binary")
    assert m.skipped and "at least 10" in m.note


def _label_cohort(seed: int, n: int = 1400, m: int = 150):
    """Independent SNPs and a binary trait of 10 of them plus noise (liability threshold, a third cases)."""
    rng = np.random.default_rng(seed)
    x = random_dosages(rng, n, m)
    liability = x[:, :10].sum(1) * 0.3 + rng.normal(0, 1, n)
    return x, (liability > np.quantile(liability, 2 / 3)).astype(float)


def test_label_membership__a_release_of_the_training_people_leaks_and_a_fresh_sample_does_not():
    x, y = _label_cohort(0)
    train, holdout, fresh = slice(0, 300), slice(300, 900), slice(900, 1400)
    args = (x[train], x[holdout])
    copier = utility.label_membership(*args, x[train], y[train], y[holdout], y[train], "binary", seed=1)
    independent = utility.label_membership(*args, x[fresh], y[train], y[holdout], y[fresh], "binary", seed=1)
    # a model fitted on its own 300 people with 150 SNPs fits their labels better than strangers'
    assert copier.value > 0.58 and copier.details["ci"][0] > 0.5
    assert abs(independent.value - 0.5) < 3 * independent.details["null_sd"]
    assert abs(copier.reference - 0.5) < 3 * copier.details["null_sd"]  # the fresh half of the holdout's model
    assert copier.details["n_each"] == 300 and copier.details["rounds"] == 1 and "within each class" in copier.note
    labels_swapped = utility.label_membership(*args, x[train], y[train], y[holdout], 1 - y[train], "binary", seed=1)
    assert labels_swapped.value < 0.45  # a model of the opposite labels fits members' own labels worst


def test_label_membership__compares_members_and_non_members_within_each_class():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    member = rng.random(400) < 0.5
    classes = rng.integers(0, 2, 400).astype(float)
    score = rng.normal(size=400) + 2 * classes  # one class easier: pooled, it would mix with membership
    auc, sd = utility._class_auc(member, score, classes)
    pairs = [(member[classes == c].sum() * (~member[classes == c]).sum(),
              roc_auc_score(member[classes == c], score[classes == c])) for c in (0, 1)]
    assert auc == pytest.approx(sum(p * a for p, a in pairs) / sum(p for p, _ in pairs))
    assert 0 < sd < 0.05
    # members mostly of the easy class: the pooled AUC reads a leak, the within-class one does not
    members_easy = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    cls = np.r_[(rng.random(200) < 0.8), (rng.random(200) < 0.2)].astype(float)
    s2 = rng.normal(size=400) + 2 * cls
    assert roc_auc_score(members_easy, s2) > 0.65
    assert abs(utility._class_auc(members_easy, s2, cls)[0] - 0.5) < 0.08


def test_label_membership__quantitative_trait_and_too_small_holdout():
    x, y = _label_cohort(1)
    q = x[:, :10].sum(1) * 0.3 + np.random.default_rng(2).normal(0, 1, len(x))
    copies = np.tile(x[:300], (4, 1)), np.tile(q[:300], 4)  # a copier's release: each training person 4 times
    m = utility.label_membership(x[:300], x[300:900], copies[0], q[:300], q[300:900], copies[1], "quantitative")
    assert m.value > 0.65 and "within each class" not in m.note and m.details["n_fit"] == 1200
    small = utility.label_membership(x[:300], x[300:315], x[:300], y[:300], y[300:315], y[:300], "binary")
    assert small.skipped and "at least 20 holdout" in small.note


def test_bootstrap_auc__matches_scikit_learn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200).astype(float)
    pred = np.round(rng.random(200), 1)  # ties
    idx = rng.integers(0, 200, size=(15, 200))
    ours = utility._scores(y, pred, "binary", idx)
    np.testing.assert_allclose(ours, [roc_auc_score(y[i], pred[i]) for i in idx])


# ---------------------------------------------------------------------------------------------------------------
# alignment of the three cohorts


def test_align_cohorts__swapped_alleles_are_flipped_and_missing_kept():
    x = np.array([[0, 1, 2], [2, -1, 0]], np.int8)
    train = cohort(x, "T")
    swapped = cohort(2 - np.where(x < 0, 1, x).astype(np.int8), "S", a1=["G"] * 3, a2=["A"] * 3)
    swapped.dosages[1, 1] = -1
    t, h, s, report = align_cohorts(train, train, swapped)
    np.testing.assert_array_equal(s.dosages, x)
    assert report.flipped == {"holdout": 0, "synthetic": 3}
    assert list(s.variants["a1"]) == ["A"] * 3


def test_align_cohorts__partial_overlap_uses_the_intersection_in_training_order():
    rng = np.random.default_rng(0)
    train = cohort(random_dosages(rng, 5, 4), "T", snps=["a", "b", "c", "d"])
    holdout = cohort(random_dosages(rng, 5, 3), "H", snps=["d", "b", "x"])
    synthetic = cohort(random_dosages(rng, 5, 3), "S", snps=["b", "d", "c"])
    t, h, s, report = align_cohorts(train, holdout, synthetic)
    assert list(t.variants["snp"]) == ["b", "d"]
    np.testing.assert_array_equal(h.dosages, holdout.dosages[:, [1, 0]])
    np.testing.assert_array_equal(s.dosages, synthetic.dosages[:, [0, 1]])
    assert report.n_shared == 2 and report.dropped == {"training": 2, "holdout": 1, "synthetic": 1}
    assert report.dropped_examples["holdout"] == ["x"]


def test_align_cohorts__no_shared_snp_raises():
    rng = np.random.default_rng(0)
    a = cohort(random_dosages(rng, 3, 2), snps=["a", "b"])
    b = cohort(random_dosages(rng, 3, 2), snps=["c", "d"])
    with pytest.raises(InputError, match="share no SNP ID"):
        align_cohorts(a, a, b)


def test_align_cohorts__mismatched_allele_codes_raise_naming_the_snp():
    rng = np.random.default_rng(0)
    a = cohort(random_dosages(rng, 3, 2))
    b = cohort(random_dosages(rng, 3, 2), a1=["A", "C"], a2=["G", "T"])
    with pytest.raises(InputError, match=r"rs1: C/T vs A/G"):
        align_cohorts(a, a, b)


def test_align_cohorts__unknown_allele_zero_matches_either_orientation():
    train = cohort(np.array([[0, 2], [1, 2]], np.int8))
    mono = cohort(np.array([[0, 0], [0, 0]], np.int8), "S", a1=["0", "0"], a2=["G", "A"])
    _, _, s, report = align_cohorts(train, train, mono)
    np.testing.assert_array_equal(s.dosages, [[0, 2], [0, 2]])  # all G/G = 0 copies of A; all A/A = 2
    assert report.flipped["synthetic"] == 1


def test_check_holdout_distinct__refuses_training_as_holdout():
    rng = np.random.default_rng(0)
    x = random_dosages(rng, 20, 30)
    train = cohort(x, "T")
    with pytest.raises(InputError, match="exactly the sample IDs"):
        check_holdout_distinct(train, train)
    with pytest.raises(InputError, match="identical"):
        check_holdout_distinct(train, cohort(x.copy(), "H"))
    with pytest.raises(InputError, match="exact genotype copies"):
        check_holdout_distinct(train, cohort(x[:12].copy(), "H"))
    check_holdout_distinct(train, cohort(random_dosages(rng, 20, 30), "H"))


def test_impute_mean_and_subsample_index():
    x = np.array([[0, -1], [2, 1]], np.int8)
    np.testing.assert_allclose(impute_mean(x, np.array([1.0, 0.5])), [[0, 0.5], [2, 1]])
    assert subsample_index(3, 5, 0).tolist() == [0, 1, 2]


# ---------------------------------------------------------------------------------------------------------------
# the report card


@pytest.mark.parametrize("value, expected", [(0.5, "pass"), (0.55, "pass"), (0.58, "warn"), (0.6, "warn"),
                                             (0.61, "fail")])
def test_grade__absolute_thresholds_of_the_guide(value, expected):
    rule = CardThresholds().rules["privacy.membership_auc"]
    assert grade(MetricValue(value, 0.5), rule)[0] == expected


@pytest.mark.parametrize("value, reference, expected", [(0.01, 0.01, "pass"), (0.02, 0.01, "pass"),
                                                        (0.025, 0.01, "warn"), (0.04, 0.01, "fail")])
def test_grade__error_metrics_relative_to_the_holdout(value, reference, expected):
    rule = CardThresholds().rules["fidelity.allele_frequency_mae"]
    assert grade(MetricValue(value, reference), rule)[0] == expected


@pytest.mark.parametrize("value, reference, expected", [(0.95, 1.0, "pass"), (0.8, 1.0, "warn"), (0.5, 1.0, "fail")])
def test_grade__ld_r_relative_to_the_holdout(value, reference, expected):
    assert grade(MetricValue(value, reference), CardThresholds().rules["fidelity.ld_r"])[0] == expected


def test_grade__detection_thresholds_shift_by_the_holdout_excess():
    rule = CardThresholds().rules["fidelity.detection_auc"]
    assert grade(MetricValue(0.65, 0.5), rule)[0] == "warn"
    assert grade(MetricValue(0.65, 0.58), rule)[0] == "pass"  # 0.6 + 0.08
    assert grade(MetricValue(0.9, 0.58), rule)[0] == "fail"


def test_grade__skill_ratio_and_unpredictable_traits():
    rule = CardThresholds().rules["utility.tstr_auc"]
    assert grade(MetricValue(0.75, 0.8, details={"chance": 0.5}), rule)[0] == "pass"  # 0.25 / 0.3
    assert grade(MetricValue(0.6, 0.8, details={"chance": 0.5}), rule)[0] == "fail"  # 0.1 / 0.3
    status, note = grade(MetricValue(0.45, 0.51), rule)
    assert status == "pass" and "not predictable" in note


def test_grade__skipped_metric_or_missing_reference_warns():
    assert grade(skipped("too small"), CardThresholds().rules["fidelity.ld_r"]) == ("warn", "too small")
    assert grade(MetricValue(0.9, None), CardThresholds().rules["fidelity.ld_r"])[0] == "warn"


def test_grade_sections__overall_is_the_worst_critical_row():
    sections = {
        "fidelity": {"ld_r": MetricValue(0.95, 1.0), "knn_precision": MetricValue(0.1, 1.0)},  # non-critical fail
        "association": {}, "utility": {},
        "privacy": {"exact_copies": MetricValue(0.0, 0.0), "dcr_share": MetricValue(0.56, 0.5)},
    }
    card = grade_sections(sections)
    assert sections["fidelity"]["knn_precision"].status == "fail"
    assert card["sections"] == {"fidelity": "pass", "association": "pass", "utility": "pass", "privacy": "warn"}
    assert card["overall"] == "warn"
    sections["privacy"]["exact_copies"] = MetricValue(2.0, 0.0)
    assert grade_sections(sections)["overall"] == "fail"


def test_card_thresholds__are_configurable():
    strict = CardThresholds().with_rule("privacy.dcr_share", pass_at=0.51, fail_at=0.52)
    sections = {"fidelity": {}, "association": {}, "utility": {}, "privacy": {"dcr_share": MetricValue(0.53, 0.5)}}
    assert grade_sections(sections)["overall"] == "pass"
    assert grade_sections(sections, strict)["overall"] == "fail"
    assert isinstance(CardThresholds().rules["privacy.exact_copies"], Rule)
    assert CardThresholds().rules["privacy.exact_copies"].critical


def test_cohort_effects__known_tables_are_reused_only_when_the_holdout_is_used_whole():
    """Another synthetic subsample with ``known`` gives the same tables as computing all three again; a holdout
    larger than the synthetic cohort is subsampled by the seed, so then nothing is reused."""
    from snpgen_core.evaluation.association import cohort_effects

    rng = np.random.default_rng(0)
    p = rng.uniform(0.1, 0.9, 40)

    def sample(n):
        return rng.binomial(2, p, (n, 40)).astype(np.int8), (rng.random(n) < 0.4).astype(float)

    (xt, yt), (xh, yh), (xs, ys) = sample(300), sample(100), sample(400)
    first = cohort_effects(xt, xh, xs, yt, yh, ys, "binary", seed=0)
    again = cohort_effects(xt, xh, xs, yt, yh, ys, "binary", seed=1, known=first)
    fresh = cohort_effects(xt, xh, xs, yt, yh, ys, "binary", seed=1)
    assert again.train is first.train and again.holdout is first.holdout  # reused, not recomputed
    for who in ("train", "holdout", "synthetic"):
        pd.testing.assert_frame_equal(getattr(again, who), getattr(fresh, who))
    assert not getattr(again, "synthetic").equals(first.synthetic)  # another subsample of the synthetic cohort
    small = cohort_effects(xt, xh, xs[:60], yt, yh, ys[:60], "binary", seed=1, known=first)  # holdout subsampled
    assert small.holdout is not first.holdout
    pd.testing.assert_frame_equal(small.holdout,
                                  cohort_effects(xt, xh, xs[:60], yt, yh, ys[:60], "binary", seed=1).holdout)


def test_case_control_af_diff_size__slopes_recover_a_doubled_difference_and_the_card_flags_it():
    """Cases and controls drawn at a1 frequencies p +- delta (training, holdout, and a synthetic cohort drawn like
    them) or p +- 2 delta (a synthetic cohort with every difference doubled, larger than the holdout): the size
    row's slope is about 2 for the doubled one and 1 for the others, equals the least-squares slope through 0
    computed by hand on the SNPs the correlation row reads and the whole synthetic cohort, and the card's rule
    grades the doubled cohort fail and the faithful one pass. The correlation row sees no difference between the
    two (r is blind to size)."""
    from snpgen_core.evaluation.association import (case_control_af_diff_r, case_control_af_diff_size,
                                                    cohort_effects)

    rng = np.random.default_rng(3)
    m = 60
    p, delta = rng.uniform(0.3, 0.7, m), rng.uniform(0.02, 0.1, m) * rng.choice([-1, 1], m)

    def cohort(n, scale):
        y = (np.arange(n) < n // 2).astype(float)
        freq = np.where(y[:, None] == 1, p + scale * delta, p - scale * delta)
        return rng.binomial(2, freq).astype(np.int8), y

    (xt, yt), (xh, yh), (xf, yf), (xd, yd) = cohort(4000, 1), cohort(4000, 1), cohort(4000, 1), cohort(6000, 2)
    rule = CardThresholds().rules["association.case_control_af_diff_size"]
    doubled = case_control_af_diff_size(xt, xh, xd, yt, yh, yd, "binary", top=40)
    faithful = case_control_af_diff_size(xt, xh, xf, yt, yh, yf, "binary", top=40)
    assert abs(doubled.value - 2) < 0.1 and abs(faithful.value - 1) < 0.1 and abs(doubled.reference - 1) < 0.1
    assert grade(doubled, rule)[0] == "fail" and grade(faithful, rule)[0] == "pass"
    r = case_control_af_diff_r(xt, xh, xd, yt, yh, yd, "binary", top=40)
    assert r.value > 0.95 and abs(r.value - r.reference) < 0.03

    effects = cohort_effects(xt, xh, xd, yt, yh, yd, "binary")
    idx = np.argsort(effects.train["p"].to_numpy(), kind="stable")[:40]
    d = {who: (x[y == 1][:, idx].mean(0) - x[y == 0][:, idx].mean(0)) / 2
         for who, (x, y) in {"train": (xt, yt), "synthetic": (xd, yd)}.items()}
    by_hand = np.linalg.lstsq(d["train"][:, None], d["synthetic"], rcond=None)[0][0]
    assert doubled.value == pytest.approx(by_hand, rel=1e-9)
    assert doubled.details["n_snps"] == 40
    assert case_control_af_diff_size(xt, xh, xd, yt, yh, yd, "quantitative").skipped
