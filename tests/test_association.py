"""association: per-SNP linear/logistic regression against brute force, scipy.optimize and plink1.9."""
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special, stats

from snpgen_core import association
from snpgen_core.association import per_snp_association
from snpgen_core.errors import InputError

PLINK = shutil.which("plink1.9")


def _random_data(seed, n=80, m=6, missing=0.1, k=2):
    rng = np.random.default_rng(seed)
    x = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(n, m)).astype(np.int8)
    x[rng.random((n, m)) < missing] = -1
    cov = rng.standard_normal((n, k))
    return rng, x, cov


def _ols_one(x, y, cov):
    """Brute force for one SNP: lstsq on the called rows, textbook SE and Student-t p."""
    keep = x >= 0
    design = np.column_stack([np.ones(keep.sum()), cov[keep], x[keep]])
    coef, *_ = np.linalg.lstsq(design, y[keep], rcond=None)
    resid = y[keep] - design @ coef
    df = keep.sum() - design.shape[1]
    se = np.sqrt(resid @ resid / df * np.linalg.inv(design.T @ design)[-1, -1])
    return coef[-1], se, 2 * stats.t.sf(abs(coef[-1] / se), df), keep.sum()


def _logistic_one(x, y, cov):
    """Independent fit for one SNP: minimise the negative log-likelihood with scipy, SE from its exact Hessian."""
    keep = x >= 0
    design = np.column_stack([np.ones(keep.sum()), cov[keep], x[keep]])
    yk = y[keep]

    def nll(b):
        eta = design @ b
        return np.sum(np.logaddexp(0, eta) - yk * eta)

    def grad(b):
        return design.T @ (special.expit(design @ b) - yk)

    fit = optimize.minimize(nll, np.zeros(design.shape[1]), jac=grad, method="BFGS", options={"gtol": 1e-10})
    mu = special.expit(design @ fit.x)
    hessian = design.T @ (design * (mu * (1 - mu))[:, None])
    se = np.sqrt(np.linalg.inv(hessian)[-1, -1])
    return fit.x[-1], se, 2 * stats.norm.sf(abs(fit.x[-1] / se)), keep.sum()


# --- known answers and brute force -------------------------------------------------------------------------------

def test_per_snp_association__linear_known_answer():
    x = np.array([[0], [1], [2], [0], [1], [2]], dtype=np.int8)
    y = np.array([1.0, 3.0, 5.0, 1.0, 3.0, 5.0])  # y = 1 + 2 x exactly
    res = per_snp_association(x, y, "quantitative")
    assert res.loc[0, "beta"] == pytest.approx(2.0)
    assert res.loc[0, "se"] == pytest.approx(0.0, abs=1e-7) and res.loc[0, "n"] == 6


@pytest.mark.parametrize("covariates", [False, True])
def test_per_snp_association__linear_matches_lstsq_per_snp(covariates):
    rng, x, cov = _random_data(0)
    y = 0.4 * np.where(x[:, 0] >= 0, x[:, 0], 1) + rng.standard_normal(len(x))
    cov = cov if covariates else np.empty((len(x), 0))
    res = per_snp_association(x, y, "quantitative", cov if covariates else None)
    for j in range(x.shape[1]):
        beta, se, p, n = _ols_one(x[:, j], y, cov)
        assert res.loc[j, "beta"] == pytest.approx(beta, rel=1e-9)
        assert res.loc[j, "se"] == pytest.approx(se, rel=1e-9)
        assert res.loc[j, "p"] == pytest.approx(p, rel=1e-7)
        assert res.loc[j, "stat"] == pytest.approx(beta / se, rel=1e-9)
        assert res.loc[j, "n"] == n


@pytest.mark.parametrize("covariates", [False, True])
def test_per_snp_association__logistic_matches_scipy_optimize(covariates):
    rng, x, cov = _random_data(1, n=150)
    eta = -0.8 + 0.6 * np.where(x[:, 0] >= 0, x[:, 0], 1) + (0.5 * cov[:, 0] if covariates else 0)
    y = (rng.random(len(x)) < special.expit(eta)).astype(float)
    cov = cov if covariates else np.empty((len(x), 0))
    res = per_snp_association(x, y, "binary", cov if covariates else None)
    for j in range(x.shape[1]):
        beta, se, p, n = _logistic_one(x[:, j], y, cov)
        assert res.loc[j, "beta"] == pytest.approx(beta, rel=1e-5, abs=1e-7)
        assert res.loc[j, "se"] == pytest.approx(se, rel=1e-5)
        assert res.loc[j, "p"] == pytest.approx(p, rel=1e-4)
        assert res.loc[j, "n"] == n


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(12, 60), m=st.integers(1, 5),
       missing=st.sampled_from([0.0, 0.2]))
def test_per_snp_association__linear_property_equals_brute_force(seed, n, m, missing):
    rng, x, cov = _random_data(seed, n=n, m=m, missing=missing, k=1)
    y = rng.standard_normal(n)
    res = per_snp_association(x, y, "quantitative", cov)
    for j in range(m):
        keep = x[:, j] >= 0
        if keep.sum() <= 3 or len(np.unique(x[keep, j])) < 2:
            assert np.isnan(res.loc[j, "beta"])
            continue
        beta, se, _, n_fit = _ols_one(x[:, j], y, cov)
        assert res.loc[j, "beta"] == pytest.approx(beta, rel=1e-6, abs=1e-9)
        assert res.loc[j, "n"] == n_fit


def test_per_snp_association__columns_fit_alone_equal_columns_fit_together(monkeypatch):
    rng, x, cov = _random_data(2, n=200, m=40, missing=0.15)
    y = (rng.random(200) < 0.4).astype(float)
    together = per_snp_association(x, y, "binary", cov)
    alone = pd.concat([per_snp_association(x[:, [j]], y, "binary", cov) for j in range(40)], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone, rtol=1e-8)
    monkeypatch.setattr(association, "_BLOCK_ELEMENTS", 7 * 200)  # force 7-SNP blocks
    pd.testing.assert_frame_equal(per_snp_association(x, y, "binary", cov), together, rtol=1e-10)


def test_per_snp_association__missing_phenotype_and_covariate_rows_are_dropped():
    rng, x, cov = _random_data(3, n=100, m=3, missing=0.0)
    y = rng.standard_normal(100)
    y_missing, cov_missing = y.copy(), cov.copy()
    y_missing[:5] = np.nan
    cov_missing[5:9, 1] = np.nan
    res = per_snp_association(x, y_missing, "quantitative", cov_missing)
    ref = per_snp_association(x[9:], y[9:], "quantitative", cov[9:])
    pd.testing.assert_frame_equal(res, ref)
    assert (res["n"] == 91).all()


# --- degenerate SNPs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["binary", "quantitative"])
def test_per_snp_association__degenerate_snps_give_nan(kind):
    rng = np.random.default_rng(4)
    n = 60
    good = rng.binomial(2, 0.4, n)
    mono = np.ones(n)
    mono_among_called = np.ones(n)
    mono_among_called[:3] = -1  # polymorphic only if missing calls were wrongly read as 0
    all_missing = -np.ones(n)
    x = np.column_stack([good, mono, mono_among_called, all_missing]).astype(np.int8)
    y = (rng.random(n) < 0.5).astype(float) if kind == "binary" else rng.standard_normal(n)
    res = per_snp_association(x, y, kind)
    assert np.isfinite(res.loc[0, ["beta", "se", "p"]].astype(float)).all()
    assert res.loc[1:, ["beta", "se", "stat", "p"]].isna().all().all()
    assert list(res["n"]) == [n, n, n - 3, 0]


@pytest.mark.parametrize("kind", ["binary", "quantitative"])
def test_per_snp_association__snp_collinear_with_a_covariate_gives_nan(kind):
    rng = np.random.default_rng(5)
    x = rng.binomial(2, 0.3, size=(80, 3)).astype(np.int8)
    cov = (2.0 * x[:, 1] - 1.0)[:, None]  # SNP 1 is a linear function of the covariate
    y = (rng.random(80) < 0.5).astype(float) if kind == "binary" else rng.standard_normal(80)
    res = per_snp_association(x, y, kind, cov)
    assert np.isnan(res.loc[1, "beta"]) and np.isfinite(res.loc[[0, 2], "beta"]).all()


def test_per_snp_association__complete_separation_gives_nan():
    rng = np.random.default_rng(6)
    y = np.repeat([0.0, 1.0], 30)
    separated = np.where(y == 1, 2, 0)  # every case carries a1 twice, every control none
    ordinary = rng.binomial(2, 0.4, 60)
    res = per_snp_association(np.column_stack([separated, ordinary]).astype(np.int8), y, "binary")
    assert np.isnan(res.loc[0, "beta"]) and np.isfinite(res.loc[1, "beta"])


# --- bad input ---------------------------------------------------------------------------------------------------

def test_per_snp_association__bad_inputs():
    x = np.zeros((10, 2), dtype=np.int8)
    x[:5] = 1
    with pytest.raises(InputError, match="0 = control, 1 = case"):
        per_snp_association(x, np.repeat([1.0, 2.0], 5), "binary")
    with pytest.raises(InputError, match="single class"):
        per_snp_association(x, np.zeros(10), "binary")
    with pytest.raises(InputError, match="constant or collinear"):
        per_snp_association(x, np.arange(10.0), "quantitative", np.ones((10, 1)))
    with pytest.raises(InputError, match="no individual"):
        per_snp_association(x, np.full(10, np.nan), "quantitative")
    with pytest.raises(ValueError, match="kind"):
        per_snp_association(x, np.arange(10.0), "survival")
    with pytest.raises(ValueError, match="shape|must be"):
        per_snp_association(x, np.arange(9.0), "quantitative")


def test_per_snp_association__2000_by_1000_logistic_converges_and_matches_one_snp_fits():
    # speed is measured by benchmarks/bench_simulate.py, not asserted here (a wall clock on a shared machine
    # proves nothing); this checks the blocked, vectorised solve at a realistic size against independent fits
    rng = np.random.default_rng(7)
    x = rng.binomial(2, rng.uniform(0.05, 0.5, 1000), size=(2000, 1000)).astype(np.int8)
    x[rng.random(x.shape) < 0.01] = -1
    y = (rng.random(2000) < 0.3).astype(float)
    cov = rng.standard_normal((2000, 2))
    res = per_snp_association(x, y, "binary", cov)
    assert res["beta"].notna().all()
    for j in (0, 499, 999):
        beta, se, p, n = _logistic_one(x[:, j], y, cov)
        assert res["beta"][j] == pytest.approx(beta, abs=1e-5) and res["se"][j] == pytest.approx(se, rel=1e-4)
        assert res["p"][j] == pytest.approx(p, rel=1e-3, abs=1e-8) and res["n"][j] == n


# --- plink1.9 ----------------------------------------------------------------------------------------------------

def _plink(tmp_path, prefix, *args) -> pd.DataFrame:
    out = tmp_path / "plink"
    subprocess.run([PLINK, "--bfile", str(prefix), "--allow-no-sex", "--ci", "0.95", *args, "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    report = next(tmp_path.glob("plink.assoc.*"))
    return pd.read_csv(report, sep=r"\s+", na_values="NA", dtype={"SNP": str, "A1": str})


def _assert_matches_plink(ours: pd.DataFrame, plink: pd.DataFrame, sign: np.ndarray):
    finite = plink["P"].notna().to_numpy()
    assert finite.mean() > 0.95
    assert (ours["beta"].notna().to_numpy() == finite).all()
    o, p = ours[finite], plink[finite]
    # plink prints 4 significant digits; its --logistic also runs in single precision
    np.testing.assert_allclose(o["beta"] * sign[finite], p["BETA"], rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(o["se"], p["SE"], rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(o["stat"] * sign[finite], p["STAT"], rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(o["p"], p["P"], rtol=5e-3, atol=1e-4)
    np.testing.assert_array_equal(o["n"], p["NMISS"])


@pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed (Debian package plink1.9; .ci/run installs it)")
def test_per_snp_association__linear_matches_plink19_aligned_by_allele(sim_cohort, sim_prefix, tmp_path):
    pheno = pd.read_csv(f"{sim_prefix}.pheno.tsv", sep="\t", dtype=str)
    pheno[["FID", "IID", "QT"]].to_csv(tmp_path / "qt.txt", sep="\t", index=False)
    # no --keep-allele-order: plink counts the minor allele, so align by allele names
    plink = _plink(tmp_path, sim_prefix, "--linear", "--pheno", str(tmp_path / "qt.txt"), "--pheno-name", "QT")
    variants = sim_cohort.genotypes.variants
    assert (plink["SNP"] == variants["snp"]).all()
    same = (plink["A1"] == variants["a1"]).to_numpy()
    assert (~same).any() and (same | (plink["A1"] == variants["a2"]).to_numpy()).all()
    ours = per_snp_association(sim_cohort.genotypes.dosages, sim_cohort.phenotypes["QT"].to_numpy(), "quantitative")
    _assert_matches_plink(ours, plink, np.where(same, 1.0, -1.0))


@pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed (Debian package plink1.9; .ci/run installs it)")
def test_per_snp_association__logistic_with_covariates_matches_plink19_on_training_part(sim_cohort, sim_prefix,
                                                                                       tmp_path):
    c = sim_cohort
    train = c.split.train
    samples = c.genotypes.samples
    samples.iloc[train][["fid", "iid"]].to_csv(tmp_path / "train.txt", sep="\t", index=False, header=False)
    ancestry = pd.get_dummies(c.phenotypes["POP"], drop_first=True, dtype=float)
    pd.concat([c.phenotypes[["FID", "IID"]], ancestry], axis=1).to_csv(tmp_path / "cov.txt", sep="\t", index=False)
    plink = _plink(tmp_path, sim_prefix, "--logistic", "beta", "hide-covar", "--keep-allele-order",
                   "--keep", str(tmp_path / "train.txt"), "--covar", str(tmp_path / "cov.txt"))
    assert (plink["A1"] == c.genotypes.variants["a1"]).all()
    case = (c.phenotypes["CASE"].to_numpy() == 2).astype(float)
    ours = per_snp_association(c.genotypes.dosages[train], case[train], "binary", ancestry.to_numpy()[train])
    _assert_matches_plink(ours, plink, np.ones(len(plink)))
    # the cohort's own GWAS file is this very analysis
    np.testing.assert_allclose(c.gwas["BETA"], ours["beta"], equal_nan=True)


# --- gwas_table and snpgen gwas ----------------------------------------------------------------------------------

def test_gwas_table__binary_has_odds_ratios_quantitative_not_categorical_refused(sim_cohort):
    from snpgen_core.association import gwas_table

    g = sim_cohort.genotypes.subset(samples=sim_cohort.split.train)
    case = (sim_cohort.phenotypes["CASE"].to_numpy()[sim_cohort.split.train] == 2).astype(float)
    binary = gwas_table(g, case, "binary")
    assert binary.columns.tolist() == ["SNP", "CHR", "BP", "A1", "A2", "A1_FREQ", "OR", "BETA", "SE", "P", "N"]
    direct = per_snp_association(g.dosages, case, "binary")
    np.testing.assert_array_equal(binary["BETA"], direct["beta"])
    np.testing.assert_array_equal(binary["P"], direct["p"])
    np.testing.assert_allclose(binary["OR"], np.exp(direct["beta"]))
    np.testing.assert_allclose(binary["A1_FREQ"], g.a1_frequency())
    assert (binary["SNP"] == g.variants["snp"]).all() and (binary["A1"] == g.variants["a1"]).all()
    qt = sim_cohort.phenotypes["QT"].to_numpy()[sim_cohort.split.train]
    quantitative = gwas_table(g, qt, "quantitative")
    assert "OR" not in quantitative.columns
    np.testing.assert_array_equal(quantitative["P"], per_snp_association(g.dosages, qt, "quantitative")["p"])
    with pytest.raises(InputError, match="case/control or quantitative"):
        gwas_table(g, np.zeros(g.n_samples), "categorical")


def test_cli_gwas__train_part_reads_back_as_summary_statistics(sim_cohort, sim_prefix, tmp_path, capsys):
    from snpgen_core.cli import main
    from snpgen_core.io.gwas import align_gwas, read_gwas

    out = tmp_path / "gwas.tsv"
    assert main(["gwas", "--bfile", str(sim_prefix), "--split", f"{sim_prefix}.split.tsv", "--out", str(out)]) == 0
    assert "logistic GWAS of" in capsys.readouterr().out
    aligned = align_gwas(read_gwas(out), sim_cohort.genotypes.variants).table.sort_values("variant_index")
    train = sim_cohort.split.train
    case = (sim_cohort.phenotypes["CASE"].to_numpy() == 2).astype(float)
    direct = per_snp_association(sim_cohort.genotypes.dosages[train], case[train], "binary")
    ok = np.isfinite(direct["p"].to_numpy())
    assert len(aligned) == ok.sum()
    np.testing.assert_allclose(aligned["p"], direct["p"][ok], rtol=1e-7)  # 8 significant digits written
    np.testing.assert_allclose(aligned["beta"], direct["beta"][ok], rtol=1e-7)
    # a trait that is neither case/control nor quantitative: one line, exit 2
    assert main(["gwas", "--bfile", str(sim_prefix), "--pheno", f"{sim_prefix}.pheno.tsv", "--pheno-col", "POP",
                 "--out", str(tmp_path / "pop.tsv")]) == 2
    assert "case/control or quantitative" in capsys.readouterr().err
    assert not (tmp_path / "pop.tsv").exists()


@pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed (Debian package plink1.9; .ci/run installs it)")
def test_cli_gwas__quantitative_matches_plink19_linear(sim_prefix, tmp_path):
    from snpgen_core.cli import main

    pheno = pd.read_csv(f"{sim_prefix}.pheno.tsv", sep="\t", dtype=str)
    pheno[["FID", "IID", "QT"]].to_csv(tmp_path / "qt.txt", sep="\t", index=False)
    assert main(["gwas", "--bfile", str(sim_prefix), "--pheno", str(tmp_path / "qt.txt"), "--out",
                 str(tmp_path / "ours.tsv")]) == 0
    ours = pd.read_csv(tmp_path / "ours.tsv", sep="\t")
    plink = _plink(tmp_path, sim_prefix, "--linear", "--keep-allele-order", "--pheno", str(tmp_path / "qt.txt"))
    assert (plink["A1"] == ours["A1"]).all()
    _assert_matches_plink(ours.rename(columns={"BETA": "beta", "SE": "se", "P": "p", "N": "n"})
                          .assign(stat=ours["BETA"] / ours["SE"]), plink, np.ones(len(plink)))


def _p_values(z: np.ndarray) -> np.ndarray:
    return 2 * stats.norm.sf(np.abs(z))


def test_selection_prior__posterior_means_match_the_true_prior_and_nulls_keep_little():
    """Known answer: 10% of 20,000 SNPs have true z +-5, the rest 0. Under that true prior E[mu | z] is
    5 (phi(z-5) - phi(z+5)) 0.05 / (0.9 phi(z) + 0.05 (phi(z-5) + phi(z+5))); the fitted prior's shares come
    within 0.12 of it where z is informative (2, 3, 5, 6), a chance z = 2 keeps under a tenth, and among pure
    nulls nothing is kept. A plain shrinkage factor, or no correction, would keep z = 2 and z = 6 alike."""
    from snpgen_core.association import association_share, selection_prior

    rng = np.random.default_rng(0)
    mu = np.where(rng.random(20000) < 0.1, 5.0, 0.0) * rng.choice([-1, 1], 20000)
    prior = selection_prior(_p_values(mu + rng.standard_normal(20000)))
    assert prior["n_tested"] == 20000 and abs(sum(prior["weights"]) - 1) < 1e-9
    z = np.array([2.0, 3.0, 5.0, 6.0])
    null, effect = 0.9 * stats.norm.pdf(z), 0.05 * (stats.norm.pdf(z - 5) + stats.norm.pdf(z + 5))
    truth = 0.05 * 5 * (stats.norm.pdf(z - 5) - stats.norm.pdf(z + 5)) / (null + effect) / z
    share = association_share(_p_values(z), prior)
    np.testing.assert_allclose(share, truth, atol=0.12)
    assert share[0] < 0.1 and share[2] > 0.9
    nulls = selection_prior(_p_values(rng.standard_normal(100_000)))
    assert association_share(_p_values(np.array([2.0, 3.0, 4.0, 5.0])), nulls).max() < 0.1


def test_association_share__missing_p_values_or_no_prior_leave_the_effect_whole():
    from snpgen_core.association import association_share, selection_prior

    assert selection_prior(np.full(99, 0.01)) is None  # a table of top hits only: no prior
    assert association_share(np.array([0.01, np.nan]), None).tolist() == [1.0, 1.0]
    prior = selection_prior(_p_values(np.random.default_rng(1).standard_normal(5000)))
    share = association_share(np.array([1e-4, np.nan, 0.0]), prior)
    assert share[0] < 0.2 and share[1] == 1.0 and share[2] == 1.0  # p = 0: as strong as it gets


def test_lambda_gc__known_answer():
    from snpgen_core.association import lambda_gc

    median = stats.chi2.ppf(0.5, 1)
    p = stats.chi2.sf(np.array([0.5, 4.0, 9.0]) * median, 1)  # median statistic 4x the null's
    assert lambda_gc(np.r_[p, np.nan, 0.0, 2.0]) == pytest.approx(4.0)  # unusable p-values left out
    assert np.isnan(lambda_gc(np.array([np.nan])))


@pytest.mark.skipif(PLINK is None or shutil.which("plink2") is None,
                    reason="plink1.9 and plink2 are not installed (Debian packages; .ci/run installs them)")
def test_cli_gwas__pcs_and_covariates_equal_plink2_pca_then_plink19_covar(sim_cohort, sim_prefix, tmp_path, capsys):
    """--pcs K --covar FILE is PLINK's ancestry adjustment: plink2 --pca K on the same individuals, then plink1.9
    --logistic --covar with those PCs and the file's columns. p-values do not depend on the PCs' scale or sign,
    only on the space they span, so they must agree; and the printed lambda_GC is the written table's."""
    from snpgen_core.association import lambda_gc
    from snpgen_core.cli import main

    samples = sim_cohort.genotypes.samples.iloc[sim_cohort.split.train]
    samples[["fid", "iid"]].to_csv(tmp_path / "train.txt", sep="\t", index=False, header=False)
    age = np.random.default_rng(0).normal(50, 10, len(sim_cohort.genotypes.samples)).round(1)
    covar = pd.DataFrame({"FID": sim_cohort.genotypes.samples["fid"], "IID": sim_cohort.genotypes.samples["iid"],
                          "AGE": age})
    covar.to_csv(tmp_path / "age.txt", sep="\t", index=False)
    out = tmp_path / "ours.tsv"
    assert main(["gwas", "--bfile", str(sim_prefix), "--split", f"{sim_prefix}.split.tsv", "--pcs", "3",
                 "--covar", str(tmp_path / "age.txt"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ours = pd.read_csv(out, sep="\t")
    assert ", adjusted for 3 PCs and 1 covariate (" in printed
    assert f"λGC {lambda_gc(ours['P']):.2f})" in printed
    subprocess.run(["plink2", "--bfile", str(sim_prefix), "--keep", str(tmp_path / "train.txt"), "--pca", "3",
                    "--threads", "1", "--out", str(tmp_path / "pca")], check=True, capture_output=True, timeout=120)
    pcs = pd.read_csv(tmp_path / "pca.eigenvec", sep="\t").rename(columns={"#FID": "FID"})
    pcs.merge(covar, on=["FID", "IID"]).to_csv(tmp_path / "cov.txt", sep="\t", index=False)
    plink = _plink(tmp_path, sim_prefix, "--logistic", "hide-covar", "--keep-allele-order", "--keep",
                   str(tmp_path / "train.txt"), "--covar", str(tmp_path / "cov.txt"))
    both = ours.merge(plink, on="SNP", suffixes=("", "_plink")).dropna(subset=["P", "P_plink"])
    assert len(both) > 0.95 * len(plink)
    np.testing.assert_allclose(-np.log10(both["P"]), -np.log10(both["P_plink"]), atol=0.01, rtol=0.01)
    unadjusted = per_snp_association(sim_cohort.genotypes.dosages[sim_cohort.split.train],
                                     (sim_cohort.phenotypes["CASE"].to_numpy()[sim_cohort.split.train] == 2) * 1.0,
                                     "binary")["p"].to_numpy()
    assert np.nanmax(np.abs(np.log10(unadjusted) - np.log10(ours["P"]))) > 0.1  # the adjustment did something
