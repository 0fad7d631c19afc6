"""The Markov-chain generator (models/markov.py) and its differential privacy: one Gaussian mechanism on the
genotype-pair counts, calibrated by the analytic Gaussian mechanism (differential_privacy.gaussian_multiplier)."""
import json
import math
import warnings

import numpy as np
import pytest
import torch

from snpgen_core.cli import main
from snpgen_core.differential_privacy import DPConfig, markov_record, gaussian_epsilon, gaussian_multiplier
from snpgen_core.errors import InputError
from snpgen_core.models.generators import SamplingOptions
from snpgen_core.models.markov import MarkovChainSNPs, candidate_tables, chain_from_counts, pair_counts
from snpgen_core.pipeline import train_run

P = np.array([[0.8, 0.15, 0.05], [0.2, 0.6, 0.2], [0.05, 0.15, 0.8]])  # P(x_j = b | x_{j-1} = a)
START = np.array([0.5, 0.3, 0.2])


def _chain(n: int, lengths: list[int], seed: int = 0) -> np.ndarray:
    """First-order chains with transitions ``P``, one per chromosome of ``lengths`` SNPs, restarting from START."""
    rng = np.random.default_rng(seed)
    cols = []
    for length in lengths:
        x = rng.choice(3, n, p=START)
        cols.append(x)
        for _ in range(length - 1):
            u, cdf = rng.random(n), P[x].cumsum(1)
            x = (u > cdf[:, 0]).astype(int) + (u > cdf[:, 1])
            cols.append(x)
    return np.stack(cols, 1).astype(np.int8)


def _draw(model: MarkovChainSNPs, cond, seed: int = 1) -> np.ndarray:
    c = torch.as_tensor(np.asarray(cond, dtype=np.float32))
    return model.sample(c, torch.Generator().manual_seed(seed), SamplingOptions()).numpy()


def test_fit__recovers_known_transitions_and_restarts_at_each_chromosome():
    x = _chain(20000, [3, 3])
    model = MarkovChainSNPs(6).fit(x, np.full(len(x), np.nan), chrom=[1, 1, 1, 2, 2, 2])
    trans = model.trans[0].numpy()
    for j in (1, 2, 4, 5):
        assert np.abs(trans[j] - P).max() < 0.02
    for j in (0, 3):  # chromosome starts: every row is the SNP's genotype frequencies
        assert np.abs(trans[j] - START[None, :]).max() < 0.015
    assert model.parent.tolist() == [-1, 0, 1, -1, 3, 4]
    s = _draw(model, np.full(20000, np.nan))
    r = np.corrcoef(s.T)
    truth = np.corrcoef(x.T)
    assert abs(r[0, 1] - truth[0, 1]) < 0.03 and abs(r[3, 5] - truth[3, 5]) < 0.03 and r[0, 1] > 0.6
    assert np.abs(r[:3, 3:]).max() < 0.03  # nothing crosses the chromosome boundary


@pytest.mark.parametrize("window", [1, 3])
def test_pair_counts__equal_a_brute_force_loop_and_one_individual_moves_them_by_the_sensitivity(window):
    rng = np.random.default_rng(3)
    x = rng.integers(-1, 3, (9, 5)).astype(np.int8)  # -1 = missing
    groups = rng.integers(0, 2, 9)
    starts = np.array([True, False, False, True, False])
    used = candidate_tables(starts, window)
    counts = pair_counts(x, groups, used, starts, 2, chunk=4)
    brute = np.zeros((2, 5, window, 3, 3))
    chrom_start = [0, 0, 0, 3, 3]
    for i in range(9):
        for j in range(5):
            for k in range(window):
                if starts[j] and k == 0:
                    a = 0
                elif j - 1 - k >= chrom_start[j]:
                    a = x[i, j - 1 - k]
                else:
                    continue
                if x[i, j] >= 0 and a >= 0:
                    brute[groups[i], j, k, a, x[i, j]] += 1
    assert np.array_equal(counts, brute)
    assert used.sum() == {1: 5, 3: 1 + 1 + 2 + 1 + 1}[window]  # one per SNP, or per predecessor in reach
    # sensitivity: a fully called individual adds 1 to one cell of each counted table
    extra = np.vstack([x, [[2, 1, 0, 2, 2]]]).astype(np.int8)
    more = pair_counts(extra, np.append(groups, 1), used, starts, 2)
    assert np.linalg.norm(more - counts) == pytest.approx(math.sqrt(used.sum()))
    model = MarkovChainSNPs(5, window=window).fit(x, np.full(9, np.nan), [1, 1, 1, 2, 2])
    assert model.sensitivity == pytest.approx(math.sqrt(used.sum()))


def test_window__each_snp_takes_the_predecessor_in_strongest_ld_as_its_parent():
    rng = np.random.default_rng(4)
    n = 8000
    a = rng.integers(0, 3, n)
    noise = rng.integers(0, 3, (n, 2))
    copy = np.where(rng.random(n) < 0.9, a, rng.integers(0, 3, n))  # SNP 3 copies SNP 0 (r^2 about 0.8)
    x = np.stack([a, noise[:, 0], noise[:, 1], copy], 1).astype(np.int8)
    first = MarkovChainSNPs(4, window=1).fit(x, np.full(n, np.nan))
    best = MarkovChainSNPs(4, window=3).fit(x, np.full(n, np.nan))
    assert first.parent.tolist() == [-1, 0, 1, 2] and best.parent.tolist()[3] == 0
    for model, r in ((first, 0.0), (best, np.corrcoef(a, copy)[0, 1])):
        s = _draw(model, np.full(n, np.nan))
        assert abs(np.corrcoef(s[:, 0], s[:, 3])[0, 1] - r) < 0.04


def test_chain_from_counts__margins_consistent_along_the_chain_and_odds_ratios_kept():
    rng = np.random.default_rng(5)
    counts = rng.integers(1, 60, (1, 6, 1, 3, 3)).astype(float)  # inconsistent neighbouring margins
    starts = np.array([True, False, False, False, False, False])
    counts[0, 0, 0, 1:] = 0
    trans, parent = chain_from_counts(counts, candidate_tables(starts, 1), starts)
    trans = trans[0]
    assert parent.tolist() == [-1, 0, 1, 2, 3, 4]
    pi = trans[0, 0]
    for j in range(1, 6):  # the chain's own frequencies at j: pi_{j-1} P_j, a proper distribution
        pi = pi @ trans[j]
        assert pi.sum() == pytest.approx(1.0)
    # the fitted table of pair (1, 2) keeps the counts' odds ratio (IPF changes margins only)
    pi1 = trans[0, 0] @ trans[1]
    table = pi1[:, None] * trans[2]
    c = counts[0, 2, 0] + (1.0 / 9)  # the prior's pseudo-counts are tiny without noise
    ratio = lambda t: t[0, 0] * t[2, 2] / (t[0, 2] * t[2, 0])  # noqa: E731
    assert ratio(table) == pytest.approx(ratio(c), rel=0.05)


def test_condition__each_class_keeps_its_frequencies_and_no_trait_draws_from_everyone():
    rng = np.random.default_rng(2)
    n, m = 6000, 40
    cond = rng.integers(0, 2, n).astype(float)
    p = np.where(cond[:, None] == 1, 0.7, 0.2) * np.ones((1, m))
    x = (rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p).astype(np.int8)
    cond[:500] = np.nan  # individuals without a trait still count in the pooled chain
    model = MarkovChainSNPs(m, "binary", 2).fit(x, cond)
    for c, af in ((0, 0.2), (1, 0.7)):
        s = _draw(model, np.full(4000, c))
        assert abs(s.mean() / 2 - af) < 0.02
    pooled = _draw(model, np.full(4000, np.nan)).mean() / 2
    assert abs(pooled - x.mean() / 2) < 0.02


def test_condition__a_quantitative_trait_draws_from_its_quantile_bin():
    rng = np.random.default_rng(6)
    n, m = 5000, 20
    y = rng.normal(size=n)
    p = np.clip(0.5 + 0.15 * y, 0.05, 0.95)[:, None] * np.ones((1, m))
    x = (rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p).astype(np.int8)
    model = MarkovChainSNPs(m, "quantitative", n_bins=5).fit(x, y)
    low, high = _draw(model, np.full(3000, -2.0)).mean() / 2, _draw(model, np.full(3000, 2.0)).mean() / 2
    assert abs(low - x[y < np.quantile(y, 0.2)].mean() / 2) < 0.02
    assert abs(high - x[y > np.quantile(y, 0.8)].mean() / 2) < 0.02 and high - low > 0.3


def test_sample__the_same_seed_gives_the_same_cohort():
    x = _chain(500, [8])
    model = MarkovChainSNPs(8).fit(x, np.full(500, np.nan))
    a, b = _draw(model, np.full(50, np.nan), 4), _draw(model, np.full(50, np.nan), 4)
    assert np.array_equal(a, b) and not np.array_equal(a, _draw(model, np.full(50, np.nan), 5))


def test_noise__reproducible_only_from_its_generator_and_keeps_the_condition_at_epsilon_8():
    rng = np.random.default_rng(7)
    n, m = 2000, 200
    cond = rng.integers(0, 2, n).astype(float)
    diff = rng.normal(0, 0.15, m)
    p = np.clip(0.4 + np.where(cond[:, None] == 1, diff / 2, -diff / 2), 0.02, 0.98)
    x = (rng.random((n, m)) < p).astype(np.int8) + (rng.random((n, m)) < p).astype(np.int8)
    multiplier = gaussian_multiplier(8.0, 1 / (10 * n))

    def noisy(seed):
        return MarkovChainSNPs(m, "binary", 2).fit(x, cond, noise_multiplier=multiplier, prior=3.0,
                                                   generator=torch.Generator().manual_seed(seed))

    a, b, c = noisy(1), noisy(1), noisy(2)
    assert torch.equal(a.trans, b.trans) and not torch.equal(a.trans, c.trans)
    s0, s1 = _draw(a, np.zeros(3000)), _draw(a, np.ones(3000))
    synthetic = s1.mean(0) / 2 - s0.mean(0) / 2
    real = x[cond == 1].mean(0) / 2 - x[cond == 0].mean(0) / 2
    assert np.corrcoef(synthetic, real)[0, 1] > 0.8  # DP-SGD at epsilon 8 loses it (r about 0, BENCHMARKS.md)


def test_gaussian_multiplier__the_analytic_gaussian_mechanism():
    # Balle and Wang (2018): sigma = 3.73 for epsilon 1, delta 1e-5 (the classical bound gives 4.84)
    assert gaussian_multiplier(1.0, 1e-5) == pytest.approx(3.73, abs=0.01)
    for eps, delta in ((0.5, 1e-6), (3.0, 1e-4), (8.0, 1e-4)):
        s = gaussian_multiplier(eps, delta)
        assert gaussian_epsilon(s, delta) == pytest.approx(eps, rel=1e-6)
        if eps < 1:  # where the classical bound sqrt(2 ln(1.25 / delta)) / epsilon holds, tighter than it
            assert s < math.sqrt(2 * math.log(1.25 / delta)) / eps
    assert gaussian_multiplier(1.0, 1e-5) > gaussian_multiplier(3.0, 1e-5) > gaussian_multiplier(3.0, 1e-3)


def test_gaussian_epsilon__agrees_with_opacus_prv_accountant_for_one_release():
    from opacus.accountants import PRVAccountant

    for sigma in (0.8, 2.0):
        prv = PRVAccountant()
        prv.history = [(sigma, 1.0, 1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert gaussian_epsilon(sigma, 1e-5) == pytest.approx(prv.get_epsilon(1e-5), rel=0.02)


def test_markov_record__states_the_mechanism_and_what_it_covers():
    rec = markov_record(DPConfig(epsilon=3.0), 1000, gaussian_multiplier(3.0, 1e-4), math.sqrt(400))
    assert rec["epsilon"] == pytest.approx(3.0, rel=1e-6) and rec["delta"] == pytest.approx(1e-4)
    assert rec["count_noise_sd"] == pytest.approx(rec["noise_multiplier"] * 20)
    assert "pair counts" in rec["covers"] and "independent baseline" in rec["not_covered"]
    assert "mean and sd" in rec["not_covered"] and "panel" in rec["not_covered"]  # what config.json also holds
    with_counts = markov_record(DPConfig(epsilon=3.0), 1000, 1.3, 20.0, counts_multiplier=12.0)
    assert "class counts in config.json (Gaussian noise sd 12)" in with_counts["covers"]
    assert "class counts" not in with_counts["not_covered"]


@pytest.fixture(scope="module")
def markov_runs(sim_prefix, tmp_path_factory):
    root = tmp_path_factory.mktemp("markov")
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(root / "c")]) == 0
    for name, flags in (("dp", ["--dp-epsilon", "8"]), ("dp_again", ["--dp-epsilon", "8"]), ("plain", [])):
        assert main(["train", "--bfile", str(root / "c.train"), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "60",
                     "--model", "markov", "--device", "cpu", "--seed", "3", "--out", str(root / name), *flags]) == 0
    return root


def test_train_markov__dp_run_records_the_mechanism_and_its_noise_is_not_the_seeds(markov_runs):
    from snpgen_core.runs import load_run

    dp = json.loads((markov_runs / "dp" / "run.json").read_text())["differential_privacy"]
    # the pair counts and the trait's class counts, composed exactly (mu-GDP), spend the whole epsilon
    assert dp["epsilon"] == pytest.approx(8.0, rel=1e-6) and dp["sensitivity"] == pytest.approx(math.sqrt(60))
    mu2 = 1 / dp["noise_multiplier"] ** 2 + 1 / dp["trait_counts_noise_sd"] ** 2
    assert gaussian_epsilon(1 / math.sqrt(mu2), dp["delta"]) == pytest.approx(8.0, rel=1e-6)
    assert dp["noise_multiplier"] == pytest.approx(gaussian_multiplier(8.0, dp["delta"]) / math.sqrt(0.99))
    trait = json.loads((markov_runs / "dp" / "config.json").read_text())["phenotype"]
    assert trait["counts_noise_sd"] == dp["trait_counts_noise_sd"] and "class counts" in dp["covers"]
    assert dp["delta"] == pytest.approx(1 / (10 * dp["n_individuals"]))
    assert json.loads((markov_runs / "plain" / "run.json").read_text())["differential_privacy"] is None
    runs = [load_run(markov_runs / k) for k in ("dp", "dp_again", "plain")]
    assert all(r.models.available == ("markov", "independent") for r in runs)
    # the same seed, the same data: the noise differs (a secret seed), the plain chain does not
    assert not torch.equal(runs[0].models.markov.trans, runs[1].models.markov.trans)
    assert (runs[0].models.markov.trans - runs[2].models.markov.trans).abs().max() > 0.01


def test_generate_markov__dp_run_generates_states_its_epsilon_and_refuses_the_baseline(markov_runs, tmp_path, capsys):
    from snpgen_core.export import _dp_text
    from snpgen_core.generation import generate

    assert main(["generate", "--run", str(markov_runs / "dp"), "--n", "40", "--case-fraction", "0.5",
                 "--out", str(tmp_path / "syn")]) == 0
    assert "(markov)" in capsys.readouterr().out
    with pytest.raises(InputError, match="covers the markov generator only"):
        generate(markov_runs / "dp", 10, out_prefix=tmp_path / "b", model="independent")
    dp = json.loads((markov_runs / "dp" / "run.json").read_text())["differential_privacy"]
    assert _dp_text(dp).startswith("Gaussian noise on the genotype-pair counts, (epsilon = 8")


def test_train_markov__dp_with_a_quantitative_trait_is_refused_before_writing(sim_prefix, tmp_path):
    with pytest.raises(InputError, match="conditions on trait classes"):
        train_run(sim_prefix, tmp_path / "run", gwas_path=f"{sim_prefix}.gwas.tsv", top=20,
                  pheno_path=f"{sim_prefix}.pheno.tsv", pheno_col="QT",
                  config={"model": "markov", "dp": {"epsilon": 3.0}}, device="cpu")
    assert not (tmp_path / "run").exists()
