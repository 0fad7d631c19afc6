"""Relations between individuals: nearest neighbours by exact L1 (IBS) distance (against a brute-force loop and
plink1.9 --distance, across chunk boundaries, with self-exclusion, refusing missing calls) and KING-robust
kinship (against a brute-force loop with missing calls, and known relatives: duplicates, parent-offspring,
unrelated)."""
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpgen_core.errors import InputError
from snpgen_core.evaluation.distances import (
    FP32_EXACT_MAX_SNPS,
    impute_from_training,
    impute_missing,
    longest_shared_runs,
    nearest_both_ways,
    nearest_distance,
    nearest_neighbours,
)
from snpgen_core.evaluation.kinship import KING_DUPLICATE, KING_FIRST_DEGREE, king_kinship, max_kinship
from snpgen_core.genotypes import MISSING, Genotypes, make_samples, make_variants
from snpgen_core.io.plink import write_plink

PLINK = shutil.which("plink1.9")


def brute_force_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All pairwise sum_j |a_ij - b_kj| by an explicit loop over pairs (the definition, nothing clever)."""
    out = np.zeros((len(a), len(b)), dtype=np.int64)
    for i in range(len(a)):
        for j in range(len(b)):
            out[i, j] = sum(abs(int(x) - int(y)) for x, y in zip(a[i], b[j]))
    return out


def random_dosages(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    p = rng.uniform(0.05, 0.95, size=m)
    return rng.binomial(2, p, size=(n, m)).astype(np.int8)


def assert_matches_brute_force(q, r, k, exclude_self, chunk_rows):
    d, i = nearest_neighbours(q, r, k, exclude_self=exclude_self, device="cpu", chunk_rows=chunk_rows)
    full = brute_force_l1(q, r)
    if exclude_self:
        np.fill_diagonal(full, np.iinfo(np.int64).max)
    expected = np.sort(full, axis=1)[:, :k]
    np.testing.assert_array_equal(d, expected)
    # indices may differ among ties, but each must point at a reference at exactly the returned distance
    np.testing.assert_array_equal(np.take_along_axis(full, i, axis=1), d)
    assert all(len(set(row)) == k for row in i.tolist()), "the k neighbours of a row must be distinct individuals"
    if exclude_self:
        assert not (i == np.arange(len(q))[:, None]).any()


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("chunk_rows", [None, 1, 7, 16])
def test_nearest_neighbours__matches_brute_force_across_chunk_boundaries(k, chunk_rows):
    rng = np.random.default_rng(100 + k)
    q, r = random_dosages(rng, 23, 31), random_dosages(rng, 37, 31)
    assert_matches_brute_force(q, r, k, False, chunk_rows)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("chunk_rows", [None, 1, 5, 13])
def test_nearest_neighbours__exclude_self_never_returns_the_query_itself(k, chunk_rows):
    rng = np.random.default_rng(7)
    x = random_dosages(rng, 29, 17)
    x[5] = x[11]  # an identical twin must still be found at distance 0
    assert_matches_brute_force(x, x, k, True, chunk_rows)
    d, i = nearest_neighbours(x, x, 1, exclude_self=True, chunk_rows=chunk_rows, device="cpu")
    assert d[5, 0] == 0 and i[5, 0] == 11 and d[11, 0] == 0 and i[11, 0] == 5


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12), st.integers(3, 12), st.integers(1, 20), st.integers(1, 2), st.booleans(),
    st.integers(1, 6), st.integers(0, 2**32 - 1),
)
def test_nearest_neighbours__property_equals_brute_force(n_q, n_r, m, k, exclude_self, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 3, size=(n_r, m), dtype=np.int8)  # uniform 0/1/2: many ties and duplicates
    q = r.copy() if exclude_self else rng.integers(0, 3, size=(n_q, m), dtype=np.int8)
    assert_matches_brute_force(q, r, k, exclude_self, chunk_rows)


@pytest.mark.parametrize("chunk_rows", [None, 1, 6])
def test_nearest_both_ways__equals_two_one_way_searches(chunk_rows):
    rng = np.random.default_rng(9)
    a, b = random_dosages(rng, 17, 25), random_dosages(rng, 26, 25)
    b[4] = a[3]
    (d_ab, i_ab), (d_ba, i_ba) = nearest_both_ways(a, b, 2, device="cpu", chunk_rows=chunk_rows)
    full = brute_force_l1(a, b)
    np.testing.assert_array_equal(d_ab, np.sort(full, axis=1)[:, :2])
    np.testing.assert_array_equal(np.take_along_axis(full, i_ab, axis=1), d_ab)
    np.testing.assert_array_equal(d_ba[:, 0], full.min(axis=0))
    np.testing.assert_array_equal(full[i_ba[:, 0], np.arange(len(b))], d_ba[:, 0])
    assert d_ba[4, 0] == 0 and i_ba[4, 0] == 3


def test_nearest_neighbours__known_answer_on_hand_built_genomes():
    reference = np.array([[0, 0, 0, 0], [2, 2, 2, 2], [1, 1, 1, 1]], dtype=np.int8)
    queries = np.array([[0, 0, 0, 1], [2, 2, 0, 2], [2, 0, 2, 0]], dtype=np.int8)
    d, i = nearest_neighbours(queries, reference, 2, device="cpu")
    # [0,0,0,1]: 1 to zeros, 3 to ones; [2,2,0,2]: 2 to twos, 4 to ones; [2,0,2,0]: 4 to every reference
    np.testing.assert_array_equal(d, [[1, 3], [2, 4], [4, 4]])
    np.testing.assert_array_equal(i[:2], [[0, 2], [1, 2]])
    np.testing.assert_array_equal(nearest_distance(queries, reference, device="cpu"), [1, 2, 4])


def test_nearest_neighbours__extreme_distances_are_exact():
    m = 3000  # distance 2m = 6000 > 2048: would round in fp16/bf16, must be exact here
    zeros, twos = np.zeros((2, m), np.int8), np.full((3, m), 2, np.int8)
    d, _ = nearest_neighbours(zeros, twos, 2, device="cpu")
    assert (d == 2 * m).all()
    assert FP32_EXACT_MAX_SNPS * 6 < 2**24


@pytest.mark.skipif(PLINK is None, reason="plink1.9 not installed")
def test_nearest_neighbours__agrees_with_plink_allele_count_distance(tmp_path):
    rng = np.random.default_rng(3)
    x = random_dosages(rng, 40, 60)
    variants = make_variants("1", [f"rs{j}" for j in range(60)], np.arange(1, 61) * 1000, ["A"] * 60, ["G"] * 60)
    write_plink(tmp_path / "c", Genotypes(x, variants, make_samples([f"I{i}" for i in range(40)])))
    subprocess.run([PLINK, "--bfile", str(tmp_path / "c"), "--distance", "square", "allele-ct",
                    "--out", str(tmp_path / "d")], check=True, capture_output=True)
    plink_d = np.loadtxt(tmp_path / "d.dist")
    np.fill_diagonal(plink_d, np.inf)
    d, i = nearest_neighbours(x, x, 2, exclude_self=True, device="cpu", chunk_rows=9)
    np.testing.assert_array_equal(d, np.sort(plink_d, axis=1)[:, :2])
    np.testing.assert_array_equal(np.take_along_axis(plink_d, i, axis=1), d)


def test_nearest_neighbours__refuses_missing_calls_with_a_fix():
    x = np.zeros((3, 4), np.int8)
    x[1, 2] = MISSING
    with pytest.raises(InputError, match=r"queries has 1 missing calls.*impute"):
        nearest_neighbours(x, np.zeros((2, 4), np.int8), device="cpu")


def test_nearest_neighbours__bad_arguments_raise():
    x = np.zeros((3, 4), np.int8)
    with pytest.raises(InputError, match="reference has 5"):
        nearest_neighbours(x, np.zeros((2, 5), np.int8), device="cpu")
    with pytest.raises(InputError, match=r"\[0, 3\]"):
        nearest_neighbours(np.array([[0, 1, 2, 3]], np.int8), x, device="cpu")
    with pytest.raises(ValueError, match="offers only 2"):
        nearest_neighbours(x, x, 3, exclude_self=True, device="cpu")
    with pytest.raises(ValueError, match="same individuals"):
        nearest_neighbours(x, np.ones((3, 4), np.int8), exclude_self=True, device="cpu")


def test_nearest_neighbours__empty_queries_give_empty_results():
    d, i = nearest_neighbours(np.zeros((0, 4), np.int8), np.zeros((3, 4), np.int8), 2, device="cpu")
    assert d.shape == (0, 2) and i.shape == (0, 2)


def _longest_runs_brute_force(q, r, chrom):
    """Per query, the longest stretch of equal genotypes with any reference row, restarting at chromosome changes:
    a plain loop over SNPs."""
    out = []
    for a in q:
        best = 0
        for b in r:
            run = 0
            for j in range(len(a)):
                run = 0 if j and chrom[j] != chrom[j - 1] else run
                run = run + 1 if a[j] == b[j] else 0
                best = max(best, run)
        out.append(best)
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 30), st.integers(1, 3), st.integers(1, 200),
       st.integers(0, 2**32 - 1))
def test_longest_shared_runs__property_equals_brute_force(n_q, n_r, m, n_chrom, block, seed):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 3, size=(n_q, m), dtype=np.int8)
    r = rng.integers(0, 2, size=(n_r, m), dtype=np.int8)  # few genotypes: long runs
    chrom = np.sort(rng.integers(1, n_chrom + 1, m)).astype(str)
    got = longest_shared_runs(q, r, chrom, device="cpu", block_elements=block)
    np.testing.assert_array_equal(got, _longest_runs_brute_force(q, r, chrom))


def test_longest_shared_runs__known_answer_and_chromosome_restart():
    base = np.zeros((1, 60), np.int8)
    other = np.ones((2, 60), np.int8)
    other[0, 10:40] = 0  # a 30-SNP stretch shared with person 0 of the reference
    other[1, 45:55] = 0
    assert longest_shared_runs(base, other, device="cpu").tolist() == [30]
    chrom = np.r_[np.full(25, "1"), np.full(35, "2")]  # the stretch now spans a chromosome change at SNP 25
    assert longest_shared_runs(base, other, chrom, device="cpu").tolist() == [15]
    assert longest_shared_runs(other, other, device="cpu").tolist() == [60, 60]  # everyone shares all with itself
    with pytest.raises(InputError, match="segment has 3 labels for 60 SNPs"):
        longest_shared_runs(base, other, ["1", "1", "2"], device="cpu")


def test_impute_missing__fills_only_missing_calls_seeded_from_frequencies():
    rng = np.random.default_rng(0)
    x = random_dosages(rng, 4000, 3)
    holes = rng.random(x.shape) < 0.3
    x_missing = np.where(holes, MISSING, x).astype(np.int8)
    p = np.array([0.0, 0.5, 1.0])
    a = impute_missing(x_missing, p, seed=1)
    np.testing.assert_array_equal(a[~holes], x[~holes])
    np.testing.assert_array_equal(a, impute_missing(x_missing, p, seed=1))
    assert (a[:, 0][holes[:, 0]] == 0).all() and (a[:, 2][holes[:, 2]] == 2).all()
    assert abs(a[:, 1][holes[:, 1]].mean() - 1.0) < 0.05  # Binomial(2, 0.5) has mean 1



def test_impute_from_training__every_cohort_from_the_training_frequencies_each_with_its_own_seed():
    """The holes of the other cohorts are drawn from the training cohort's frequencies, not their own: a SNP that
    is all 2 in training fills the holdout's holes with 2 although the holdout's calls there are all 0."""
    train = np.array([[2, 0], [2, -1], [2, 0]] * 200, dtype=np.int8)
    holdout = np.array([[0, 1], [-1, -1]] * 300, dtype=np.int8)
    t, h = impute_from_training(train, holdout, seed=7)
    assert (h[1::2, 0] == 2).all() and (h[1::2, 1] == 0).all() and (t[1::3, 1] == 0).all()
    np.testing.assert_array_equal(h[::2], holdout[::2])  # calls stay
    # the seeds of evaluate's privacy rows, cohort k: [seed, 51, k] (the mixed cohort's frequencies are 0.5 and 0.5)
    x = np.where(np.random.default_rng(1).random((500, 2)) < 0.5, MISSING, 1).astype(np.int8)
    mixed = np.array([[1, 0], [1, 2]] * 300, dtype=np.int8)
    for k, out in enumerate(impute_from_training(mixed, x, x, seed=3)):
        np.testing.assert_array_equal(out, impute_missing((mixed, x, x)[k], np.array([0.5, 0.5]),
                                                          seed=np.random.default_rng([3, 51, k])))

# ---------------------------------------------------------------- KING-robust kinship


def brute_force_king(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Manichaikul et al. (2010) eq. 11, pair by pair over the SNPs both called, counting genotypes one by one."""
    out = np.full((len(a), len(b)), np.nan)
    for i in range(len(a)):
        for j in range(len(b)):
            hethet = ibs0 = het_i = het_j = 0
            for x, y in zip(a[i].tolist(), b[j].tolist()):
                if x < 0 or y < 0:
                    continue
                hethet += x == 1 and y == 1
                ibs0 += abs(x - y) == 2
                het_i += x == 1
                het_j += y == 1
            if min(het_i, het_j) > 0:
                out[i, j] = 0.5 + (2 * hethet - 4 * ibs0 - het_i - het_j) / (4 * min(het_i, het_j))
    return out


@pytest.mark.parametrize("missing_share", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [None, 4, 9])
def test_king_kinship__matches_brute_force(missing_share, chunk_rows):
    rng = np.random.default_rng(11)
    a, b = random_dosages(rng, 13, 40), random_dosages(rng, 21, 40)
    b[3] = a[2]  # a duplicate pair
    a[5, :20] = 0  # fewer heterozygotes on one side: where min() and mean() differ
    if missing_share:
        a = np.where(rng.random(a.shape) < missing_share, MISSING, a).astype(np.int8)
        b = np.where(rng.random(b.shape) < missing_share, MISSING, b).astype(np.int8)
    expected = brute_force_king(a, b)
    got = king_kinship(a, b, device="cpu", chunk_rows=chunk_rows)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    phi, idx = max_kinship(a, b, device="cpu", chunk_rows=chunk_rows)
    np.testing.assert_allclose(phi, np.nanmax(expected, axis=1), atol=1e-6)
    np.testing.assert_allclose(expected[np.arange(len(a)), idx], phi, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 15), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_max_kinship__property_equals_brute_force(n_a, n_b, m, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-1, 3, size=(n_a, m), dtype=np.int8)
    b = rng.integers(-1, 3, size=(n_b, m), dtype=np.int8)
    expected = brute_force_king(a, b)
    phi, idx = max_kinship(a, b, device="cpu", chunk_rows=chunk_rows)
    none = np.isnan(expected).all(axis=1)
    assert (np.isnan(phi) == none).all() and (idx[none] == -1).all()
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(phi[~none], np.nanmax(expected[~none], axis=1), atol=1e-6)


def _child(rng, mother, father):
    """Mendelian transmission at unlinked SNPs: one allele drawn from each parent."""
    return (rng.binomial(1, mother / 2) + rng.binomial(1, father / 2)).astype(np.int8)


def test_king_kinship__known_relatives():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, size=3000)
    parents = rng.binomial(2, p, size=(2, 3000)).astype(np.int8)
    child = _child(rng, parents[0], parents[1])
    sibling = _child(rng, parents[0], parents[1])
    strangers = rng.binomial(2, p, size=(50, 3000)).astype(np.int8)
    phi = king_kinship(np.vstack([parents[0], child, sibling]), np.vstack([parents[0], parents[1], strangers]),
                       device="cpu")
    assert phi[0, 0] == 0.5  # the same genome, exactly
    assert abs(phi[1, 0] - 0.25) < 0.03 and abs(phi[1, 1] - 0.25) < 0.03  # parent-offspring
    assert abs(phi[2, 0] - 0.25) < 0.03  # the sibling's parent
    assert np.abs(phi[:, 2:]).max() < 0.05  # unrelated draws from the same frequencies
    assert KING_FIRST_DEGREE < phi[1, 0] < KING_DUPLICATE


def test_king_kinship__sibling_pair_and_missing_calls_keep_the_duplicate_at_one_half():
    rng = np.random.default_rng(6)
    x = rng.binomial(2, 0.4, size=(1, 2000)).astype(np.int8)
    y = x.copy()
    y[0, rng.random(2000) < 0.2] = MISSING  # a duplicate with 20% of calls missing is still a duplicate
    assert king_kinship(x, y, device="cpu")[0, 0] == pytest.approx(0.5, abs=1e-12)
    assert np.isnan(king_kinship(np.zeros((1, 5), np.int8), x[:, :5], device="cpu")[0, 0])  # no het: no estimate
