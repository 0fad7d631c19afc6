"""simulate: msprime cohorts are deterministic, realistic (MAF, LD, structure) and carry the traits they claim."""
import json
import subprocess
import sys
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from snpgen_core import cli
from snpgen_core.association import per_snp_association
from snpgen_core.errors import InputError
from snpgen_core.io.plink import read_plink
from snpgen_core.splits import read_split
from snpgen_core.simulate import (SimulatedCohort, SimulationConfig, hotspot_map, mean_adjacent_r2,
                                  simulate_cohort, write_cohort)

SUFFIXES = (".bed", ".bim", ".fam", ".pheno.tsv", ".gwas.tsv", ".causal.tsv", ".split.tsv", ".params.json")


def _files(prefix):
    return {s: prefix.with_name(prefix.name + s).read_bytes() for s in SUFFIXES}


def _hudson_fst(p1: np.ndarray, p2: np.ndarray) -> float:
    """Ratio of averages (Bhatia et al. 2013) without the small-sample correction: > 0 when frequencies differ."""
    return float(((p1 - p2) ** 2).sum() / (p1 * (1 - p2) + p2 * (1 - p1)).sum())


def _r2_to_nearest_causal(cohort: SimulatedCohort) -> np.ndarray:
    x = cohort.genotypes.dosages.astype(float)
    z = (x - x.mean(0)) / x.std(0)
    r = z.T @ z[:, cohort.causal["COLUMN"]] / len(z)
    return (r**2).max(axis=1)


# --- determinism -------------------------------------------------------------------------------------------------

def test_simulate_cohort__same_seed_gives_identical_files(sim_prefix, tmp_path):
    again = simulate_cohort(n=500, n_snps=200, seed=7)
    write_cohort(again, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(sim_prefix)


def test_simulate_cohort__different_seed_gives_different_cohort(sim_cohort, sim_prefix, tmp_path):
    other = simulate_cohort(n=500, n_snps=200, seed=8)
    assert not np.array_equal(other.genotypes.variants["pos"], sim_cohort.genotypes.variants["pos"])
    assert not np.array_equal(other.phenotypes["QT"], sim_cohort.phenotypes["QT"])
    write_cohort(other, tmp_path / "other")
    assert all(a != b for a, b in zip(_files(tmp_path / "other").values(), _files(sim_prefix).values()))


# --- variants ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, n_snps, seed", [(500, 200, 7), (37, 53, 3), (120, 1, 0)])
def test_simulate_cohort__exact_snp_count_and_maf_at_least_one_percent(n, n_snps, seed, sim_cohort):
    cohort = sim_cohort if (n, n_snps, seed) == (500, 200, 7) else simulate_cohort(n=n, n_snps=n_snps, seed=seed)
    g = cohort.genotypes
    assert g.dosages.shape == (n, n_snps) and g.dosages.dtype == np.int8
    assert set(np.unique(g.dosages)) <= {0, 1, 2}  # no missing calls in a simulation
    freq = g.a1_frequency()
    assert np.minimum(freq, 1 - freq).min() >= 0.01


def test_simulate_cohort__variant_table_is_well_formed(sim_cohort):
    v = sim_cohort.genotypes.variants
    assert (np.diff(v["pos"]) > 0).all() and v["pos"].min() >= 1
    assert v["snp"].is_unique
    assert (np.diff(v["cm"]) >= 0).all() and v["cm"].iloc[-1] > 0
    assert set(v["a1"]) | set(v["a2"]) <= set("ACGT") and (v["a1"] != v["a2"]).all()
    assert (v["chrom"] == "1").all()


def test_simulate_cohort__region_is_lengthened_until_enough_snps_pass(tmp_path):
    cohort = simulate_cohort(n=60, n_snps=80, seed=5, bp_per_snp=60)  # far too short a region at first
    attempts = cohort.params["attempts"]
    assert len(attempts) >= 2 and attempts[0]["candidate_snps"] < 80 <= attempts[-1]["candidate_snps"]
    assert cohort.genotypes.n_variants == 80


def test_hotspot_map__hotspots_are_10_to_100_fold_and_disjoint():
    config = SimulationConfig()
    rate_map = hotspot_map(1_000_000, config, np.random.default_rng(1))
    base = config.recombination_rate
    hot = rate_map.rate > base
    assert 10 <= hot.sum() <= 35  # Poisson(20) hotspots, overlapping ones dropped
    assert np.all((rate_map.rate[~hot] == base))
    assert np.all((rate_map.rate[hot] >= 10 * base) & (rate_map.rate[hot] <= 100 * base))
    assert np.allclose(rate_map.span[hot], config.hotspot_width_bp)
    assert rate_map.sequence_length == 1_000_000
    # most of the genetic map lies in the hotspots, as in human genomes
    assert (rate_map.span * rate_map.rate)[hot].sum() > 0.5 * rate_map.get_cumulative_mass(1_000_000)


# --- linkage disequilibrium and structure ------------------------------------------------------------------------

def test_simulate_cohort__adjacent_snps_are_in_linkage_disequilibrium(sim_cohort):
    x = sim_cohort.genotypes.dosages.astype(float)
    r2 = np.array([np.corrcoef(x[:, j], x[:, j + 1])[0, 1] ** 2 for j in range(x.shape[1] - 1)])
    assert r2.mean() > 0.1
    assert mean_adjacent_r2(sim_cohort.genotypes.dosages) == pytest.approx(r2.mean())
    # control: the same SNPs with individuals shuffled per SNP have no LD (r^2 ~ 1/n)
    rng = np.random.default_rng(0)
    shuffled = np.column_stack([rng.permutation(col) for col in sim_cohort.genotypes.dosages.T])
    assert mean_adjacent_r2(shuffled) < 0.01


def test_simulate_cohort__ld_decays_with_distance(sim_cohort):
    x = sim_cohort.genotypes.dosages.astype(float)
    pos = sim_cohort.genotypes.variants["pos"].to_numpy()
    r2 = np.corrcoef(x.T) ** 2
    dist = np.abs(pos[:, None] - pos[None, :])
    near = r2[(dist > 0) & (dist < 5_000)].mean()
    far = r2[dist > 100_000].mean()
    assert near > 3 * far


def test_simulate_cohort__populations_differ_in_allele_frequencies(sim_cohort):
    x = sim_cohort.genotypes.dosages
    pops = sim_cohort.genotypes.samples["fid"].to_numpy()
    assert set(pops) == {"AFR", "EUR", "EAS"}
    assert (sim_cohort.phenotypes["POP"] == pops).all()
    counts = pd.Series(pops).value_counts()
    assert counts["EUR"] == 250 and counts["AFR"] == counts["EAS"] == 125
    freq = {p: x[pops == p].mean(axis=0) / 2 for p in ("AFR", "EUR", "EAS")}
    for a, b in combinations(freq, 2):
        assert _hudson_fst(freq[a], freq[b]) > 0.02, (a, b)
    assert _hudson_fst(freq["AFR"], freq["EUR"]) > 0.05
    # control: two random halves of one population are not structured
    eur = np.flatnonzero(pops == "EUR")
    halves = np.random.default_rng(0).permutation(eur).reshape(2, -1)
    assert _hudson_fst(*(x[h].mean(axis=0) / 2 for h in halves)) < 0.01


def test_simulate_cohort__individuals_are_not_sorted_by_population(sim_cohort):
    pops = sim_cohort.genotypes.samples["fid"].to_numpy()
    assert (pops[1:] != pops[:-1]).sum() > 50
    assert sim_cohort.genotypes.samples["iid"].is_unique
    assert set(sim_cohort.genotypes.samples["sex"]) == {1, 2}


# --- traits ------------------------------------------------------------------------------------------------------

def test_simulate_cohort__case_prevalence_near_target(sim_cohort):
    case = sim_cohort.phenotypes["CASE"]
    assert set(case) == {1, 2}
    assert abs((case == 2).mean() - 0.3) < 0.06
    assert (sim_cohort.genotypes.samples["pheno"] == case.astype(str)).all()


def test_simulate_cohort__qt_heritability_and_liability_follow_causal_effects(sim_prefix):
    """From the files alone: the causal table's effects explain h2 of QT and separate cases as the model says."""
    g = read_plink(sim_prefix)
    pheno = pd.read_csv(f"{sim_prefix}.pheno.tsv", sep="\t", dtype={"FID": str, "IID": str})
    causal = pd.read_csv(f"{sim_prefix}.causal.tsv", sep="\t")
    assert 10 <= len(causal) <= 20 and (pheno["IID"] == g.samples["iid"]).all()
    cols = g.variants.reset_index().set_index("snp").loc[causal["SNP"], "index"].to_numpy()
    assert (g.variants["a1"].to_numpy()[cols] == causal["A1"]).all()
    x = g.dosages[:, cols].astype(float)
    value_qt = x @ causal["EFFECT"].to_numpy()
    assert np.var(value_qt) / np.var(pheno["QT"]) == pytest.approx(0.5, abs=0.1)
    assert np.corrcoef(value_qt, pheno["QT"])[0, 1] ** 2 == pytest.approx(0.5, abs=0.1)
    # liability threshold: E[g | case] - E[g | control] = h2 * phi(t) / (K (1 - K)) in liability-sd units
    value = x @ causal["EFFECT_LIABILITY"].to_numpy()
    case = pheno["CASE"].to_numpy() == 2
    k = 0.3
    expected = 0.5 * stats.norm.pdf(stats.norm.isf(k)) / (k * (1 - k))
    assert value[case].mean() - value[~case].mean() == pytest.approx(expected, abs=0.2)


def test_simulate_cohort__top_gwas_hits_are_causal_or_in_ld_with_them(sim_cohort):
    near_causal = _r2_to_nearest_causal(sim_cohort) >= 0.2
    top = sim_cohort.gwas["P"].to_numpy().argsort()[:10]
    hits = near_causal[top].mean()
    assert hits >= 0.7 and hits > 1.5 * near_causal.mean()


# --- GWAS and split ----------------------------------------------------------------------------------------------

def test_simulate_cohort__gwas_uses_only_the_training_part(sim_cohort):
    c = sim_cohort
    train = c.split.train
    assert len(train) == 400 and len(c.split.holdout) == 100 and len(c.split.validation) == 0
    assert (c.gwas["N"] == 400).all()
    case = (c.phenotypes["CASE"].to_numpy() == 2).astype(float)
    ancestry = pd.get_dummies(c.phenotypes["POP"], drop_first=True, dtype=float).to_numpy()

    def gwas(rows):
        return per_snp_association(c.genotypes.dosages[rows], case[rows], "binary", ancestry[rows])

    on_train, on_all = gwas(train), gwas(np.arange(len(case)))
    np.testing.assert_allclose(c.gwas["BETA"], on_train["beta"], rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(c.gwas["P"], on_train["p"], rtol=1e-10, equal_nan=True)
    assert np.nanmax(np.abs(c.gwas["BETA"] - on_all["beta"])) > 0.05
    np.testing.assert_allclose(c.gwas["A1_FREQ"], c.genotypes.subset(samples=train).a1_frequency())
    np.testing.assert_allclose(c.gwas["OR"], np.exp(c.gwas["BETA"]))


def test_simulate_cohort__split_is_stratified_and_recorded(sim_cohort, sim_prefix):
    c = sim_cohort
    case = c.phenotypes["CASE"].to_numpy() == 2
    assert abs(case[c.split.train].mean() - case[c.split.holdout].mean()) < 0.02
    recorded = read_split(f"{sim_prefix}.split.tsv", c.genotypes.samples)
    for name in ("train", "validation", "holdout"):
        np.testing.assert_array_equal(getattr(recorded, name), getattr(c.split, name))


# --- files and CLI -----------------------------------------------------------------------------------------------

def test_write_cohort__files_read_back(sim_cohort, sim_prefix):
    g = read_plink(sim_prefix)
    np.testing.assert_array_equal(g.dosages, sim_cohort.genotypes.dosages)
    pheno = pd.read_csv(f"{sim_prefix}.pheno.tsv", sep="\t", dtype={"FID": str, "IID": str})
    assert list(pheno.columns) == ["FID", "IID", "POP", "CASE", "QT"]
    assert (g.samples["pheno"] == pheno["CASE"].astype(str)).all() and (g.samples["fid"] == pheno["FID"]).all()
    np.testing.assert_allclose(pheno["QT"], sim_cohort.phenotypes["QT"], rtol=1e-7)
    gwas = pd.read_csv(f"{sim_prefix}.gwas.tsv", sep="\t", dtype={"SNP": str, "CHR": str})
    assert list(gwas.columns[:8]) == ["SNP", "CHR", "BP", "A1", "A2", "A1_FREQ", "OR", "BETA"]
    assert {"SE", "P", "N"} <= set(gwas.columns)
    assert (gwas["SNP"] == g.variants["snp"]).all() and (gwas["A1"] == g.variants["a1"]).all()
    causal = pd.read_csv(f"{sim_prefix}.causal.tsv", sep="\t")
    assert {"SNP", "CHR", "BP", "A1", "EFFECT"} <= set(causal.columns)
    params = json.loads(open(f"{sim_prefix}.params.json").read())
    assert params["seed"] == 7 and params["n"] == 500 and "msprime" in params["software"]


def test_write_cohort__failure_leaves_no_file(sim_cohort, tmp_path):
    broken = SimulatedCohort(sim_cohort.genotypes, sim_cohort.phenotypes, sim_cohort.causal, sim_cohort.gwas,
                             sim_cohort.split, {"not json": object()})
    with pytest.raises(TypeError):
        write_cohort(broken, tmp_path / "broken")
    assert list(tmp_path.iterdir()) == []


def test_cli_simulate__writes_files_that_read_back(tmp_path):
    out = tmp_path / "demo" / "p"
    done = subprocess.run([sys.executable, "-m", "snpgen_core", "simulate", "--out", str(out), "--n", "300",
                           "--snps", "100", "--seed", "1"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for suffix in (".bed", ".bim", ".fam", ".pheno.tsv", ".gwas.tsv", ".causal.tsv", ".split.tsv"):
        assert out.with_name("p" + suffix).is_file()
    g = read_plink(out)
    assert g.dosages.shape == (300, 100)
    assert "300 individuals x 100 SNPs" in done.stdout


@pytest.mark.parametrize("argv, word", [
    (["--n", "5"], "n = 5"),
    (["--snps", "0"], "--snps"),
    (["--snps", "-3"], "--snps"),
    (["--snps", "1000000"], "snps = 1000000"),
    (["--seed", "-1"], "--seed"),
])
def test_cli_simulate__bad_parameters_exit_2_with_one_line(argv, word, tmp_path, capsys):
    code = cli.main(["simulate", "--out", str(tmp_path / "x"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and word in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [
    {"prevalence": 1.5}, {"h2_qt": 0.0}, {"h2_liability": 1.0}, {"n_causal": 0}, {"n_causal": 300},
    {"holdout": 1.0}, {"min_maf": 0.6}, {"population_shares": {"AFR": 0.0, "EUR": 1.0}},
    {"population_shares": {"SAS": 1.0}}, {"hotspot_fold": (50.0, 10.0)}, {"colour": "red"},
])
def test_simulate_cohort__bad_options_raise_input_error(options):
    with pytest.raises(InputError):
        simulate_cohort(n=100, n_snps=200, seed=0, **options)
