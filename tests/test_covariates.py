"""Covariates: the summary generation draws them from (known answers on planted distributions), fixed values,
sex, and conditioning wired end to end: ``train --covar`` -> ``generate --covar-value`` moves the genotypes the
way the real populations differ."""
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from snpgen_core.cli import main
from snpgen_core.covariates import draw, parse_fixed, summarise
from snpgen_core.errors import InputError
from snpgen_core.generation import generate
from snpgen_core.io.plink import read_plink
from snpgen_core.phenotypes import read_covariates
from snpgen_core.pipeline import train_run
from snpgen_core.runs import load_run


def _binary_cohort(n=4000, seed=0):
    """Controls: AGE ~ N(40, 5); cases: AGE ~ N(60, 5); BMI = 20 + 0.2 AGE + N(0, 1); SMOKER 0/1 (30% / 70%);
    sex 1/2 with 80% females among cases, 40% among controls."""
    rng = np.random.default_rng(seed)
    cond = (rng.random(n) < 0.4).astype(float)
    age = np.where(cond == 1, 60.0, 40.0) + rng.normal(0, 5, n)
    bmi = 20 + 0.2 * age + rng.normal(0, 1, n)
    smoker = (rng.random(n) < np.where(cond == 1, 0.7, 0.3)).astype(float)
    sex = np.where(rng.random(n) < np.where(cond == 1, 0.8, 0.4), 2, 1)
    return np.column_stack([age, bmi, smoker]), ["AGE", "BMI", "SMOKER"], sex, cond


def test_draw__reproduces_the_per_class_means_correlations_levels_and_sex_shares():
    covs, names, sex, cond = _binary_cohort()
    summary = summarise(covs, names, sex, cond, "binary")
    assert summary["discrete"] == [False, False, True]
    new_cond = np.r_[np.zeros(3000), np.ones(3000)]
    drawn, drawn_sex = draw(summary, new_cond, np.random.default_rng(1))
    controls, cases = drawn[:3000], drawn[3000:]
    assert abs(controls[:, 0].mean() - 40) < 0.5 and abs(cases[:, 0].mean() - 60) < 0.5
    assert abs(cases[:, 0].std() - 5) < 0.3
    slope = np.polyfit(cases[:, 0], cases[:, 1], 1)[0]  # BMI on AGE within a class: 0.2
    assert abs(slope - 0.2) < 0.03
    assert set(np.unique(drawn[:, 2])) <= {0.0, 1.0}
    assert abs(cases[:, 2].mean() - 0.7) < 0.06 and abs(controls[:, 2].mean() - 0.3) < 0.06
    assert abs((drawn_sex[3000:] == 2).mean() - 0.8) < 0.03 and abs((drawn_sex[:3000] == 2).mean() - 0.4) < 0.03
    # unconditioned individuals get the pooled distribution (40% cases: mean age 48)
    pooled, _ = draw(summary, np.full(3000, np.nan), np.random.default_rng(2))
    assert abs(pooled[:, 0].mean() - 48) < 0.8
    # the summary holds moments and counts of discrete combinations (sex, SMOKER), never a continuous value
    assert set(summary["groups"]) == {"all", "0", "1"}
    assert summary["groups"]["1"]["combinations"]["values"] == [[1, 0], [1, 1], [2, 0], [2, 1]]
    assert not np.isin(np.round(covs[:, 0], 6), np.round(np.ravel(summary["groups"]["1"]["mean"]), 6)).any()


def test_draw__fixed_values_condition_the_others_and_quantitative_traits_keep_their_slope():
    covs, names, sex, cond = _binary_cohort()
    summary = summarise(covs, names, sex, cond, "binary")
    fixed = parse_fixed(["age=70"], names)
    assert fixed == {"AGE": 70.0}
    drawn, _ = draw(summary, np.ones(4000), np.random.default_rng(3), fixed)
    assert (drawn[:, 0] == 70).all()
    assert abs(drawn[:, 1].mean() - (20 + 0.2 * 70)) < 0.1  # BMI's conditional mean given AGE
    # quantitative trait: covariate X = 2 * trait + N(0, 1); drawn X given a trait value follows the slope
    rng = np.random.default_rng(4)
    trait = rng.normal(0, 1, 5000)
    x = 2 * trait + rng.normal(0, 1, 5000)
    q = summarise(x[:, None], ["X"], np.ones(5000), trait, "quantitative")
    at = np.r_[np.full(2000, -1.0), np.full(2000, 1.0)]
    xs, _ = draw(q, at, np.random.default_rng(5))
    assert abs(xs[:2000, 0].mean() + 2) < 0.1 and abs(xs[2000:, 0].mean() - 2) < 0.1
    assert abs(xs[2000:, 0].std() - 1) < 0.06


def test_draw__one_hot_labels_get_exactly_one_label_and_sex_follows_a_sex_covariate():
    rng = np.random.default_rng(6)
    site = rng.choice(3, 3000, p=[0.5, 0.3, 0.2])  # labels A (baseline), B, C
    sex = rng.integers(1, 3, 3000)
    covs = np.column_stack([site == 1, site == 2, sex]).astype(float)
    names = ["SITE=B", "SITE=C", "SEX"]
    summary = summarise(covs, names, sex, np.full(3000, np.nan), "none")
    drawn, drawn_sex = draw(summary, np.full(3000, np.nan), np.random.default_rng(7))
    assert (drawn[:, :2].sum(1) <= 1).all() and set(np.unique(drawn[:, :2])) <= {0.0, 1.0}
    assert abs(drawn[:, 1].mean() - 0.2) < 0.025 and abs(drawn[:, 0].mean() - 0.3) < 0.025
    assert (drawn_sex == drawn[:, 2]).all() and set(np.unique(drawn_sex)) <= {1, 2}
    fixed = parse_fixed(["SITE=C", "SEX=2"], names)
    assert fixed == {"SITE=B": 0.0, "SITE=C": 1.0, "SEX": 2.0}
    drawn, drawn_sex = draw(summary, np.full(10, np.nan), np.random.default_rng(8), fixed)
    assert (drawn[:, 1] == 1).all() and (drawn[:, 0] == 0).all() and (drawn_sex == 2).all()


@pytest.mark.parametrize("texts, message", [
    (["AGE"], "not NAME=VALUE"), (["HEIGHT=3"], "not one this run was trained on"),
    (["AGE=old"], "finite number"), (["SITE=Z"], "no label 'Z'"),
])
def test_parse_fixed__bad_values_are_refused_with_the_fix(texts, message):
    with pytest.raises(InputError, match=message):
        parse_fixed(texts, ["AGE", "SITE=B", "SITE=C"])


TINY = {"vae": {"hidden": 64, "latent_dim": 8, "kl_warmup_epochs": 5, "kl_weight": 0.1},
        "denoiser": {"hidden": 64, "depth": 2},
        "vae_fit": {"epochs": 20, "batch_size": 64, "lr": 5e-3, "min_epochs": 0, "check_every": 0},
        "diffusion_fit": {"epochs": 100, "batch_size": 128, "lr": 2e-3, "min_epochs": 0, "patience": 1000,
                          "val_repeats": 1, "ema_decay": 0.99, "check_every": 0}}


def _pop_run(sim_prefix, out, trait: str):
    """A run of the msprime cohort's ``trait`` conditioned on the covariate POP (AFR / EAS / EUR, one-hot)."""
    pheno = str(sim_prefix) + ".pheno.tsv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_run(sim_prefix, out, pheno_path=pheno, pheno_col=trait, covar_path=pheno, covar_names=["POP"],
                         gwas_path=str(sim_prefix) + ".gwas.tsv", top=60, config=TINY, seed=0, device="cpu")


@pytest.fixture(scope="module")
def covar_run(sim_prefix, tmp_path_factory):
    """The CASE run with the covariate POP."""
    return _pop_run(sim_prefix, tmp_path_factory.mktemp("covar") / "run", "CASE")


def test_covariate_conditioning__fixing_the_population_moves_allele_frequencies_as_the_real_populations_differ(
        sim_prefix, covar_run, tmp_path):
    real = read_plink(sim_prefix)
    panel = pd.read_csv(covar_run / "panel.bim", sep="\t", header=None)[1]
    cols = real.variants.reset_index(drop=True).index[real.variants["snp"].isin(panel)].to_numpy()
    pops = real.samples["fid"].to_numpy()
    af = {p: real.dosages[pops == p][:, cols].mean(0) / 2 for p in ("AFR", "EAS")}
    out = {}
    for p in ("AFR", "EAS"):
        prefix = generate(covar_run, 300, out_prefix=tmp_path / p, covariate_values=[f"POP={p}"], seed=1)
        cov = pd.read_csv(f"{prefix}.covar.tsv", sep="\t")
        assert cov.columns.tolist() == ["FID", "IID", "POP=EAS", "POP=EUR"]
        assert (cov["POP=EAS"] == float(p == "EAS")).all() and (cov["POP=EUR"] == 0).all()
        out[p] = read_plink(prefix).dosages.mean(0) / 2
    real_diff, syn_diff = af["EAS"] - af["AFR"], out["EAS"] - out["AFR"]
    # conditioning on the population reproduces most of the between-population differences
    assert np.corrcoef(real_diff, syn_diff)[0, 1] > 0.7
    assert np.abs(syn_diff).mean() > 0.4 * np.abs(real_diff).mean()
    # a model that ignored the covariate (the independent-SNP baseline) shows none of it
    base = {p: read_plink(generate(covar_run, 300, out_prefix=tmp_path / f"b{p}", covariate_values=[f"POP={p}"],
                                   model="independent", seed=1)).dosages.mean(0) / 2 for p in ("AFR", "EAS")}
    assert np.abs(base["EAS"] - base["AFR"]).mean() < 0.3 * np.abs(real_diff).mean()


def test_generate__covariates_and_sex_follow_the_training_cohort_and_plink_tests_without_allow_no_sex(
        sim_prefix, covar_run, tmp_path):
    prefix = generate(covar_run, 600, out_prefix=tmp_path / "mix", seed=2)
    syn = read_plink(prefix)
    assert set(np.unique(syn.samples["sex"])) == {1, 2}  # drawn from the training shares, not 0
    cov = read_covariates(syn.samples, f"{prefix}.covar.tsv")[0]
    real = read_plink(sim_prefix).samples["fid"]
    for j, p in enumerate(("EAS", "EUR")):
        assert abs(cov[:, j].mean() - (real == p).mean()) < 0.08
    assert (cov.sum(1) <= 1).all()
    plink = shutil.which("plink1.9") or shutil.which("plink")
    if plink:  # sexes are known, so PLINK tests the phenotype without --allow-no-sex
        res = subprocess.run([plink, "--bfile", str(prefix), "--assoc", "--out", str(tmp_path / "a")],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "Ignoring phenotypes of missing-sex samples" not in res.stdout
        assert (tmp_path / "a.assoc").exists()


def test_cli__train_with_covariates_and_generate_with_fixed_values(sim_prefix, covar_run, tmp_path, capsys):
    assert main(["generate", "--run", str(covar_run), "--n", "20", "--covar-value", "POP=EUR",
                 "--out", str(tmp_path / "c")]) == 0
    assert ".covar.tsv" in capsys.readouterr().out
    assert (pd.read_csv(tmp_path / "c.covar.tsv", sep="\t")["POP=EUR"] == 1).all()
    assert main(["generate", "--run", str(covar_run), "--n", "5", "--covar-value", "AGE=3",
                 "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "AGE" in err and "POP=EAS" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("d.*"))
    # train: --covar-name without --covar, and an unknown column, are one line each and leave nothing
    pheno = str(sim_prefix) + ".pheno.tsv"
    base = ["train", "--bfile", str(sim_prefix), "--gwas", str(sim_prefix) + ".gwas.tsv", "--top", "20",
            "--epochs", "1"]
    assert main(base + ["--covar-name", "POP", "--out", str(tmp_path / "r1")]) == 2
    assert "--covar-name needs --covar" in capsys.readouterr().err
    assert main(base + ["--covar", pheno, "--covar-name", "HEIGHT", "--out", str(tmp_path / "r2")]) == 2
    assert "HEIGHT" in capsys.readouterr().err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_model_card__names_the_covariates_file_and_the_conditioning(sim_prefix, covar_run, tmp_path):
    from snpgen_core.evaluation import evaluate
    from snpgen_core.export import generation_settings, model_card

    prefix = generate(covar_run, 200, out_prefix=tmp_path / "syn", seed=3)
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(tmp_path / "c")]) == 0
    report = evaluate(read_plink(tmp_path / "c.train"), read_plink(tmp_path / "c.holdout"), read_plink(prefix))
    card = model_card("syn", report, run_dir=covar_run, generation=generation_settings(prefix))
    assert "`syn.covar.tsv`: each individual's covariates (POP=EAS, POP=EUR)" in card
    assert "conditioned on the trait and the covariates POP=EAS, POP=EUR" in card
    assert "Sex (`.fam` column 5) is drawn from the training shares" in card


def test_quantitative_trait_with_covariates__the_released_trait_is_the_trait_models_draw_given_both(
        sim_prefix, tmp_path):
    """A quantitative run with a covariate: its trait model reads the genotypes and the covariate columns, and the
    released trait is its prediction from each synthetic individual's genotypes and covariates plus noise."""
    run = _pop_run(sim_prefix, tmp_path / "run", "QT")
    model = load_run(run).models.trait
    assert model.is_fitted and model.weight.shape == (60 + 2,)  # 60 SNPs, POP one-hot (EAS, EUR)
    prefix = generate(run, 1500, out_prefix=tmp_path / "syn", covariate_values=["POP=EAS"], seed=2)
    x = torch.as_tensor(read_plink(prefix).dosages)
    cov = torch.as_tensor(pd.read_csv(f"{prefix}.covar.tsv", sep="\t")[["POP=EAS", "POP=EUR"]].to_numpy())
    released = pd.read_csv(f"{prefix}.pheno.tsv", sep="\t")["QT"].to_numpy()
    resid = released - model.predict(x, cov).numpy()
    assert resid.std() == pytest.approx(float(model.noise_sd), rel=0.1) and abs(resid.mean()) < 0.1
