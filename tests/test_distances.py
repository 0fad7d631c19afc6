"""Nearest neighbours by exact L1 (IBS) distance: against a brute-force loop, plink1.9 --distance, chunk
boundaries, self-exclusion, and refusal of missing calls."""
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpgen_core.errors import InputError
from snpgen_core.evaluation.distances import (
    FP32_EXACT_MAX_SNPS,
    impute_missing,
    nearest_distance,
    nearest_neighbours,
)
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
    st.integers(1, 12), st.integers(2, 12), st.integers(1, 20), st.integers(1, 2), st.booleans(),
    st.integers(1, 6), st.integers(0, 2**32 - 1),
)
def test_nearest_neighbours__property_equals_brute_force(n_q, n_r, m, k, exclude_self, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    r = rng.integers(0, 3, size=(n_r, m), dtype=np.int8)  # uniform 0/1/2: many ties and duplicates
    q = r.copy() if exclude_self else rng.integers(0, 3, size=(n_q, m), dtype=np.int8)
    assert_matches_brute_force(q, r, k, exclude_self, chunk_rows)


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
