"""Generation: PLINK output (read back by bed-reader and plink1.9), seeding, checkpoint round trip, condition
control on a planted causal SNP, condition mixes and bad input."""
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from snpgen_core.cli import main
from snpgen_core.errors import InputError
from snpgen_core.export import condition_text, generation_settings
from snpgen_core.genotypes import make_samples, make_variants, Genotypes
from snpgen_core.generation import INDEPENDENT, RULED_CONDITION, WHY_CONDITION, condition_mix, generate
from snpgen_core.io.plink import read_plink, write_plink
from snpgen_core.models import SamplingOptions
from snpgen_core.phenotypes import read_phenotype
from snpgen_core.runs import RunModels, load_run, run_config
from snpgen_core.pipeline import train_run

CAUSAL = 7  # the planted causal SNP (column of the panel)


def _planted_cohort(n=800, m=24, seed=0) -> Genotypes:
    """Blocks of 3 SNPs in strong LD; SNP ``CAUSAL`` raises the odds of being a case ~4.5x per copy of a1."""
    rng = np.random.default_rng(seed)
    base = rng.binomial(2, rng.uniform(0.2, 0.5, m // 3), size=(n, m // 3))
    x = np.repeat(base, 3, axis=1)
    flip = rng.random(x.shape) < 0.03
    x[flip] = rng.integers(0, 3, flip.sum())
    logit = -2.2 + 1.5 * x[:, CAUSAL]
    case = rng.random(n) < 1 / (1 + np.exp(-logit))
    variants = make_variants("3", [f"rs{100 + j}" for j in range(m)], 10_000 + 500 * np.arange(m),
                             ["A"] * m, ["G"] * m, cm=np.round(np.arange(m) * 0.01, 2))
    samples = make_samples([f"P{i:04d}" for i in range(n)], pheno=np.where(case, "2", "1"))
    return Genotypes(x.astype(np.int8), variants, samples)


CONFIG = {  # the MLP latent path, on which the measured values quoted below were taken (auto: test_training.py)
    "vae": {"hidden": 64, "latent_dim": 8, "kl_warmup_epochs": 5, "dropout": 0.1, "kl_weight": 0.1,
            "decoder_latent": "mlp"},
    "denoiser": {"hidden": 64, "depth": 2},
    "vae_fit": {"epochs": 40, "batch_size": 64, "lr": 1e-2, "min_epochs": 0},
    "diffusion_fit": {"epochs": 120, "batch_size": 128, "lr": 2e-3, "min_epochs": 0, "patience": 1000,
                      "val_repeats": 1, "ema_decay": 0.99},
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """(cohort prefix, trained run dir) of the planted cohort, trained once for the module (seconds)."""
    root = tmp_path_factory.mktemp("planted")
    write_plink(root / "cohort", _planted_cohort())
    (root / "panel.txt").write_text("\n".join(f"rs{100 + j}" for j in range(24)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(root / "cohort", root / "run", panel_path=root / "panel.txt", config=CONFIG, seed=0,
                        device="cpu")
    return root / "cohort", run


def test_generate__plink_files_match_the_panel_and_the_conditions(planted, tmp_path):
    cohort, run = planted
    prefix = generate(run, 50, out_prefix=tmp_path / "syn", case_fraction=0.3, seed=1, batch_size=16)
    dotted = generate(run, 5, out_prefix=tmp_path / "syn.cases", case_fraction=1.0)
    assert read_plink(dotted).n_samples == 5 and (tmp_path / "syn.cases.pheno.tsv").exists()
    g = read_plink(prefix)
    assert g.dosages.shape == (50, 24) and g.dosages.dtype == np.int8 and set(np.unique(g.dosages)) <= {0, 1, 2}
    assert (tmp_path / "syn.bim").read_bytes() == (run / "panel.bim").read_bytes()
    assert g.samples["iid"].tolist() == [f"SYN{i:06d}" for i in range(1, 51)]
    assert (g.samples["fid"] == g.samples["iid"]).all()
    assert (g.samples["pheno"] == "2").sum() == 15 and set(g.samples["pheno"]) == {"1", "2"}
    side = pd.read_csv(tmp_path / "syn.pheno.tsv", sep="\t", dtype=str)
    assert side.columns.tolist() == ["FID", "IID", "PHENO"] and (side["PHENO"] == g.samples["pheno"]).all()
    trait = read_phenotype(g.samples, tmp_path / "syn.pheno.tsv")
    assert trait.kind == "binary" and np.nansum(trait.values) == 15
    prov = json.loads((tmp_path / "syn.provenance.json").read_text())
    assert prov["seed"] == 1 and prov["model"] == "diffusion" and prov["guidance"] == 1.5
    assert prov["run_provenance"]["inputs"]["bed"]["sha256"]
    assert not list(tmp_path.glob(".*"))  # no scratch or temporary file left


def test_generate__plink19_reads_the_output(planted, tmp_path):
    plink = shutil.which("plink1.9") or shutil.which("plink")
    if plink is None:
        pytest.skip("plink1.9 is not installed")
    _, run = planted
    prefix = generate(run, 200, out_prefix=tmp_path / "syn", seed=2)
    done = subprocess.run([plink, "--bfile", str(prefix), "--freq", "--keep-allele-order", "--out",
                           str(tmp_path / "freq")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    frq = pd.read_csv(tmp_path / "freq.frq", sep=r"\s+")
    ours = read_plink(prefix).a1_frequency()
    assert frq["SNP"].tolist() == [f"rs{100 + j}" for j in range(24)]
    np.testing.assert_allclose(frq["MAF"].to_numpy(), ours, atol=1e-4)  # --keep-allele-order: MAF of A1


def test_generate__same_seed_same_files_other_seed_differs(planted, tmp_path):
    _, run = planted
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        generate(run, 100, out_prefix=tmp_path / name, seed=seed)
    assert (tmp_path / "a.bed").read_bytes() == (tmp_path / "b.bed").read_bytes()
    assert (tmp_path / "a.fam").read_bytes() == (tmp_path / "b.fam").read_bytes()
    assert (tmp_path / "a.bed").read_bytes() != (tmp_path / "c.bed").read_bytes()


def test_checkpoint_round_trip__reloaded_weights_give_identical_samples(planted, tmp_path):
    _, run_dir = planted
    run = load_run(run_dir)
    save_file(run.models.state_tensors(), str(tmp_path / "copy.safetensors"))
    from safetensors import safe_open

    with safe_open(str(tmp_path / "copy.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    fresh = RunModels.build(run.config, run.phenotype["kind"], len(run.phenotype["labels"]))
    fresh.load_tensors(tensors, "copy")
    fresh.to(torch.device("cpu"))
    cond = torch.tensor([0.0, 1.0] * 20)
    for model in ("diffusion", "vae_gaussian", "independent"):
        a = run.generator(model).sample(cond, torch.Generator().manual_seed(9), SamplingOptions())
        b = fresh.generator(model).sample(cond, torch.Generator().manual_seed(9), SamplingOptions())
        assert torch.equal(a, b), model


@pytest.mark.parametrize("model", ["diffusion", "vae_gaussian", "independent"])
def test_condition_control__cases_carry_more_risk_alleles_at_the_causal_snp(planted, tmp_path, model):
    cohort, run = planted
    real = read_plink(cohort)
    is_case = real.samples["pheno"] == "2"
    real_diff = real.dosages[is_case, CAUSAL].mean() / 2 - real.dosages[~is_case, CAUSAL].mean() / 2
    assert real_diff > 0.15  # the planted effect
    freq = {}
    for label in ("case", "control"):
        prefix = generate(run, 1500, out_prefix=tmp_path / label, label=label, seed=3, model=model)
        freq[label] = read_plink(prefix).a1_frequency()
    diff = freq["case"] - freq["control"]
    assert diff[CAUSAL] > 0.3 * real_diff  # the condition moves the causal SNP, in the right direction
    far = [j for j in range(24) if j // 3 != CAUSAL // 3]  # SNPs outside the causal LD block
    assert diff[CAUSAL] > np.abs(diff[far]).max()


def test_generate__latent_noise_moves_the_decoded_latents_by_its_scale_and_is_recorded(planted, tmp_path):
    _, run_dir = planted
    run = load_run(run_dir)
    seen = []
    decode = run.models.vae.sample_genotypes

    def spy(z, trait, generator, **kwargs):  # the latents the decoder is given
        seen.append(z.clone())
        return decode(z, trait, generator, **kwargs)

    run.models.vae.sample_genotypes = spy
    cond = torch.tensor([0.0, 1.0] * 500)
    scales = {"vae_gaussian": run.models.latent_gaussian.chol[-1].norm(dim=1),
              "diffusion": run.models.diffusion.latent_std}
    for model, scale in scales.items():
        seen.clear()
        for noise in (0.0, 0.5):  # same seed: the same latents before the noise is added
            run.generator(model).sample(cond, torch.Generator().manual_seed(8), SamplingOptions(latent_noise=noise))
        plain, noisy = seen
        shift = (noisy - plain) / scale  # N(0, 0.5^2) in units of the latents' sd
        assert shift.mean().abs().item() < 0.03, model
        assert shift.std().item() == pytest.approx(0.5, rel=0.05), model
    generate(run_dir, 20, out_prefix=tmp_path / "noisy", seed=8, latent_noise=0.5, model="vae_gaussian")
    assert json.loads((tmp_path / "noisy.provenance.json").read_text())["latent_noise"] == 0.5
    with pytest.raises(InputError, match="latent noise"):
        generate(run, 5, out_prefix=tmp_path / "bad", latent_noise=-1)


@pytest.mark.parametrize("model", ["diffusion", "vae_gaussian"])
def test_generate__planted_ld_blocks_are_reproduced_and_the_independent_baseline_loses_them(planted, tmp_path,
                                                                                           model):
    from snpgen_core.ld import ld_r2

    cohort, run = planted
    blocks = np.arange(24) // 3  # _planted_cohort: blocks of 3 SNPs copied from one draw, 3% of calls redrawn
    within = (blocks[:, None] == blocks[None, :]) & ~np.eye(24, dtype=bool)
    between = blocks[:, None] != blocks[None, :]

    def mean_r2(dosages):
        r2 = ld_r2(dosages)
        return np.nanmean(r2[within]), np.nanmean(r2[between])

    real_within, real_between = mean_r2(read_plink(cohort).dosages)
    assert real_within > 0.8 and real_between < 0.01
    syn_within, syn_between = mean_r2(read_plink(generate(run, 1500, out_prefix=tmp_path / model, seed=3,
                                                          model=model)).dosages)
    assert syn_within > 0.6 * real_within  # measured ~0.88x
    assert syn_between < 0.02
    ind_within, _ = mean_r2(read_plink(generate(run, 1500, out_prefix=tmp_path / "ind", seed=3,
                                                model="independent")).dosages)
    assert ind_within < 0.05  # independent SNPs: no LD, the check has teeth


def test_generate__stop_event_writes_nothing(planted, tmp_path):
    import threading

    from snpgen_core.training import Cancelled

    _, run = planted
    stop = threading.Event()
    seen = []

    def callback(event):
        seen.append(event["done"])
        stop.set()

    with pytest.raises(Cancelled):
        generate(run, 100, out_prefix=tmp_path / "syn", batch_size=30, callback=callback, stop_event=stop)
    assert seen == [30] and not list(tmp_path.iterdir())


def test_condition_mix__shares_labels_values_and_training_default():
    binary = {"kind": "binary", "labels": ["control", "case"], "counts": [300, 100], "name": "CASE"}
    mix = condition_mix(binary, 1000, case_fraction=0.25, seed=0)
    assert mix.sum() == 250 and set(np.unique(mix)) == {0.0, 1.0}
    assert (condition_mix(binary, 10, label="2") == 1).all() and (condition_mix(binary, 10, label="control") == 0).all()
    default = condition_mix(binary, 20000, seed=1)
    assert default.mean() == pytest.approx(0.25, abs=0.01)
    cat = {"kind": "categorical", "labels": ["AFR", "EAS", "EUR"], "counts": [1, 1, 2], "name": "POP"}
    assert (condition_mix(cat, 5, label="EUR") == 2).all()
    qt = {"kind": "quantitative", "labels": [], "mean": 10.0, "sd": 2.0, "name": "QT"}
    assert (condition_mix(qt, 4, value=1.5) == 1.5).all()
    drawn = condition_mix(qt, 500, values=[1.0, 2.0, np.nan], seed=0)
    assert set(np.unique(drawn)) == {1.0, 2.0}
    assert condition_mix(qt, 20000, seed=0).std() == pytest.approx(2.0, rel=0.03)
    assert np.isnan(condition_mix({"kind": "none", "name": ""}, 3)).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"case_fraction": 1.5}, "outside"),
    ({"case_fraction": -0.1}, "outside"),
    ({"label": "sick"}, "never seen"),
    ({"value": 2.5}, "quantitative value"),
    ({"case_fraction": 0.5, "label": "case"}, "at most one"),
])
def test_condition_mix__bad_conditions_for_a_binary_model(kwargs, message):
    binary = {"kind": "binary", "labels": ["control", "case"], "counts": [3, 1], "name": "CASE"}
    with pytest.raises(InputError, match=message):
        condition_mix(binary, 10, **kwargs)


def test_condition_mix__bad_conditions_for_other_kinds():
    qt = {"kind": "quantitative", "labels": [], "mean": 0.0, "sd": 1.0, "name": "QT"}
    with pytest.raises(InputError, match="case/control"):
        condition_mix(qt, 10, case_fraction=0.5)
    with pytest.raises(InputError, match="--value"):
        condition_mix(qt, 10, label="high")
    with pytest.raises(InputError, match="without a trait"):
        condition_mix({"kind": "none", "name": ""}, 10, label="x")


def test_generate__bad_run_directories_and_arguments(planted, tmp_path):
    _, run = planted
    out = tmp_path / "syn"
    with pytest.raises(InputError, match="not found"):
        generate(tmp_path / "nowhere", 10, out_prefix=out)
    incomplete = tmp_path / "incomplete"
    shutil.copytree(run, incomplete)
    (incomplete / "run.json").unlink()
    with pytest.raises(InputError, match="incomplete.*--resume"):
        generate(incomplete, 10, out_prefix=out)
    old = tmp_path / "old"
    shutil.copytree(run, old)
    marker = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({**marker, "format_version": 0}))
    with pytest.raises(InputError, match="format version 0"):
        generate(old, 10, out_prefix=out)
    for kwargs, message in [({"n": 0}, "positive"), ({"n": -5}, "positive"), ({"n": 10, "model": "gan"}, "unknown"),
                            ({"n": 10, "sample": "mode"}, "mode 'mode' must be one of probabilities, argmax"),
                            ({"n": 10, "temperature": 0}, "temperature 0 must be at least 0.01"),
                            ({"n": 10, "guidance": -1}, "guidance -1 must be at least 0"),
                            ({"n": 10, "steps": 2.5}, "steps 2.5 must be a whole number"),
                            ({"n": 10, "label": "sick"}, "never seen")]:
        n = kwargs.pop("n")
        with pytest.raises(InputError, match=message):
            generate(run, n, out_prefix=out, **kwargs)
    assert not list(tmp_path.glob("syn*")) and not list(tmp_path.glob(".syn*"))


def test_cli_generate__writes_and_bad_input_exits_2(planted, tmp_path, capsys):
    _, run = planted
    assert main(["generate", "--run", str(run), "--n", "30", "--case-fraction", "0.5", "--seed", "4",
                 "--model", "independent", "--out", str(tmp_path / "ok")]) == 0
    assert read_plink(tmp_path / "ok").n_samples == 30
    for sampler in ("ddim", "dpm-solver++"):  # the diffusion's solver, recorded; the run's (the default) unless given
        args = [] if sampler == "dpm-solver++" else ["--sampler", sampler]
        assert main(["generate", "--run", str(run), "--n", "30", "--steps", "6", *args, "--out",
                     str(tmp_path / sampler)]) == 0
        prov = json.loads((tmp_path / f"{sampler}.provenance.json").read_text())
        assert (prov["sampler"], prov["steps"]) == (sampler, 6)
    assert (tmp_path / "ddim.bed").read_bytes() != (tmp_path / "dpm-solver++.bed").read_bytes()
    with pytest.raises(InputError, match="sampler 'euler' must be one of dpm-solver\\+\\+, ddim"):
        generate(run, 5, out_prefix=tmp_path / "bad", sampler="euler")
    capsys.readouterr()
    bad = [
        (["--run", str(tmp_path / "nowhere"), "--n", "5"], "run directory not found"),
        (["--run", str(run), "--n", "0"], "positive"),
        (["--run", str(run), "--n", "5", "--case-fraction", "2"], "outside [0, 1]"),
        (["--run", str(run), "--n", "5", "--label", "sick"], "never seen"),
        (["--run", str(run), "--n", "5", "--value", "1.5"], "quantitative value"),
    ]
    if not torch.cuda.is_available():
        bad.append((["--run", str(run), "--n", "5", "--device", "cuda"], "CUDA is not available"))
    for args, message in bad:
        assert main(["generate", *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("snpgen generate: error:") and message in err[0]
    assert not list(tmp_path.glob("bad*"))


def test_generate__categorical_and_quantitative_runs(sim_prefix, tmp_path):
    tiny = {"vae": {"hidden": 32, "latent_dim": 4}, "denoiser": {"hidden": 32, "depth": 1},
            "vae_fit": {"epochs": 1}, "diffusion_fit": {"epochs": 1, "val_repeats": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = {col: train_run(sim_prefix, tmp_path / col, pheno_path=str(sim_prefix) + ".pheno.tsv",
                               pheno_col=col, gwas_path=str(sim_prefix) + ".gwas.tsv", top=20, config=tiny,
                               device="cpu") for col in ("POP", "QT")}
    pop = generate(runs["POP"], 12, out_prefix=tmp_path / "pop", label="EAS")
    assert (read_plink(pop).samples["pheno"] == "-9").all()  # categorical: the label lives in the sidecar
    side = pd.read_csv(tmp_path / "pop.pheno.tsv", sep="\t")
    assert side.columns.tolist() == ["FID", "IID", "POP"] and (side["POP"] == "EAS").all()
    qt = generate(runs["QT"], 12, out_prefix=tmp_path / "qt", value=1.25)
    assert (read_plink(qt).samples["pheno"] == "1.25").all()
    assert (pd.read_csv(tmp_path / "qt.pheno.tsv", sep="\t")["QT"] == 1.25).all()
    # guidance by default: 1.5 for classes, the plain conditional model (1) for a quantitative trait, recorded
    provenance = {k: json.loads((tmp_path / f"{k}.provenance.json").read_text()) for k in ("pop", "qt")}
    assert (provenance["pop"]["guidance"], provenance["qt"]["guidance"]) == (1.5, 1.0)
    latents = {g: load_run(runs["QT"]).generator("diffusion").sample_latents(
        torch.full((50,), 1.25), torch.Generator().manual_seed(0), SamplingOptions(guidance=g)) for g in (None, 1, 1.5)}
    assert torch.equal(latents[None], latents[1]) and not torch.allclose(latents[None], latents[1.5])
    # a run written before guidance was a setting keeps 1.5, whatever its trait
    train = json.loads((runs["QT"] / "config.json").read_text())["train"]
    assert train["diffusion"]["guidance"] is None and run_config(train, "x").diffusion.guidance is None
    del train["diffusion"]["guidance"]
    assert run_config(train, "x").diffusion.guidance == 1.5
    with pytest.raises(InputError, match="never seen"):
        generate(runs["POP"], 5, out_prefix=tmp_path / "x", label="MARS")
    with pytest.raises(InputError, match="case/control"):
        generate(runs["QT"], 5, out_prefix=tmp_path / "x", case_fraction=0.5)


def test_generate__a_quantitative_trait_is_drawn_from_the_trait_model_given_the_genotypes(tmp_path):
    """Known answer: the trait is 1.2 per copy at the causal SNP plus N(0, 1). The released trait is the run's
    trait model's draw given each synthetic individual's genotypes (so its slope on the causal SNP is the real
    one), or with ``trait_from="condition"`` the value the same genotypes were drawn given."""
    cohort = _planted_cohort()
    y = 1.2 * cohort.dosages[:, CAUSAL] + np.random.default_rng(5).normal(0, 1, cohort.n_samples)
    write_plink(tmp_path / "qt", cohort)
    pd.DataFrame({"FID": cohort.samples["fid"], "IID": cohort.samples["iid"], "QT": y}).to_csv(
        tmp_path / "qt.tsv", sep="\t", index=False)
    (tmp_path / "panel.txt").write_text("\n".join(f"rs{100 + j}" for j in range(24)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(tmp_path / "qt", tmp_path / "run", pheno_path=tmp_path / "qt.tsv", pheno_col="QT",
                        panel_path=tmp_path / "panel.txt", config=CONFIG, seed=0, device="cpu")
    record = json.loads((run / "run.json").read_text())["trait_model"]
    assert record["validation_r"] > 0.45  # the causal SNP explains r^2 ~ 0.4 of the trait
    model = load_run(run).models.trait

    out = generate(run, 3000, out_prefix=tmp_path / "syn", seed=3)
    x = read_plink(out).dosages
    released = pd.read_csv(tmp_path / "syn.pheno.tsv", sep="\t")["QT"].to_numpy()
    assert np.array_equal(read_plink(out).samples["pheno"].astype(float), released)  # .fam column 6 too
    resid = released - model.predict(torch.as_tensor(x)).numpy()
    assert resid.std() == pytest.approx(record["noise_sd"], rel=0.08) and abs(resid.mean()) < 0.06
    slope = np.polyfit(x[:, CAUSAL], released, 1)[0]
    assert slope == pytest.approx(1.2, abs=0.2)
    assert json.loads((tmp_path / "syn.provenance.json").read_text())["trait_drawn_from"].startswith("genotypes")

    assert main(["generate", "--run", str(run), "--n", "3000", "--seed", "3", "--trait-from", "condition",
                 "--out", str(tmp_path / "cond")]) == 0
    assert (tmp_path / "cond.bed").read_bytes() == (tmp_path / "syn.bed").read_bytes()  # the same genotypes
    given = pd.read_csv(tmp_path / "cond.pheno.tsv", sep="\t")["QT"].to_numpy()
    np.testing.assert_allclose(given, condition_mix(load_run(run).phenotype, 3000, seed=3), rtol=1e-5)
    assert json.loads((tmp_path / "cond.provenance.json").read_text())["trait_drawn_from"] == "condition"
    generate(run, 50, out_prefix=tmp_path / "fixed", value=0.5)  # a given value is released as given
    assert (pd.read_csv(tmp_path / "fixed.pheno.tsv", sep="\t")["QT"] == 0.5).all()
    with pytest.raises(InputError, match="trait source"):
        generate(run, 5, out_prefix=tmp_path / "x", trait_from="phenotype")


def test_generate__a_trait_nothing_predicts_is_released_independently_of_the_genotypes(tmp_path, capsys):
    """The planted cohort with its classes shuffled among the individuals (no SNP, nor ancestry, tells them), on a
    panel of 18 of its 24 SNPs: training says the trait model is not used and records it (the z of the 6 SNPs
    outside the panel too), and ``snpgen generate`` at the training mix releases
    classes drawn independently of the genotypes, exactly as many cases as asked for, and says so (the model card
    too). The same classes drawn given the genotypes' condition would copy the training sample's chance
    differences (BENCHMARKS.md, forty-second pass)."""
    g = _planted_cohort(n=400, seed=3)
    shuffled = np.random.default_rng(5).permutation(g.samples["pheno"].to_numpy())
    write_plink(tmp_path / "cohort", Genotypes(g.dosages, g.variants, make_samples(
        g.samples["iid"].tolist(), pheno=shuffled)))
    (tmp_path / "panel.txt").write_text("\n".join(g.variants["snp"][:18]) + "\n")  # 6 SNPs outside it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(tmp_path / "cohort", tmp_path / "run", panel_path=tmp_path / "panel.txt", config={
            **CONFIG, "vae_fit": {**CONFIG["vae_fit"], "epochs": 4}, "diffusion_fit": {
                **CONFIG["diffusion_fit"], "epochs": 4}}, seed=0, device="cpu")
    record = json.loads((run / "run.json").read_text())["trait_model"]
    assert record["released"] == "independent" and record["link"]["z"] < 1.645 and record["ancestry_z"] < 1.645
    assert record["outside_panel_snps"] == 6 and record["outside_panel_z"] < 1.645  # read from the .bed
    model = load_run(run).models.trait
    assert model.releases and not model.tells
    capsys.readouterr()
    assert main(["generate", "--run", str(run), "--n", "60", "--out", str(tmp_path / "syn"), "--seed", "2"]) == 0
    assert "the released trait is drawn independently of the genotypes" in capsys.readouterr().out
    assert json.loads((tmp_path / "syn.provenance.json").read_text())["trait_drawn_from"] == INDEPENDENT
    released = read_plink(tmp_path / "syn").samples["pheno"].to_numpy() == "2"
    assert released.sum() == (condition_mix(load_run(run).phenotype, 60, seed=2) == 1).sum()  # the count asked for
    line = condition_text(generation_settings(tmp_path / "syn"), record, "binary")  # the model card's
    assert "drawn independently of the genotypes: in training neither the run's trait model nor" in line


def test_generate__where_training_released_the_condition_generate_and_the_card_say_why(tmp_path, capsys):
    """Six populations whose case rates rise from 10% to 60% (``test_trait_model``'s known answer): training does
    not use the trait model and releases the condition, which ``snpgen generate`` at the training mix records
    (``RULED_CONDITION``) and says why, as the model card does; one class asked for is the condition as asked,
    and says nothing of the rule."""
    from conftest import populations

    rng = np.random.default_rng(0)
    x = populations(rng, [150] * 6, 300, fst=0.005)
    pop = np.repeat(np.arange(6), 150)
    case = rng.random(len(pop)) < np.linspace(0.1, 0.6, 6)[pop]
    variants = make_variants("3", [f"rs{j}" for j in range(300)], 10_000 + 5_000 * np.arange(300), ["A"] * 300,
                             ["G"] * 300)
    write_plink(tmp_path / "cohort", Genotypes(x, variants, make_samples(
        [f"P{i:04d}" for i in range(len(pop))], pheno=np.where(case, "2", "1"))))
    (tmp_path / "panel.txt").write_text("\n".join(variants["snp"]) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(tmp_path / "cohort", tmp_path / "run", panel_path=tmp_path / "panel.txt", config={
            **CONFIG, "vae_fit": {**CONFIG["vae_fit"], "epochs": 2}, "diffusion_fit": {
                **CONFIG["diffusion_fit"], "epochs": 2}}, seed=0, device="cpu")
    record = json.loads((run / "run.json").read_text())["trait_model"]
    assert record["released"] == "condition"
    capsys.readouterr()
    assert main(["generate", "--run", str(run), "--n", "40", "--out", str(tmp_path / "syn"), "--seed", "2"]) == 0
    said = capsys.readouterr().out
    assert f"the released trait is the condition the genotypes were drawn given: {WHY_CONDITION}" in said
    generation = generation_settings(tmp_path / "syn")
    assert generation["trait_drawn_from"] == RULED_CONDITION
    assert f"the released class is the one the genotypes were drawn given: {WHY_CONDITION}" in condition_text(
        generation, record, "binary")
    assert main(["generate", "--run", str(run), "--n", "40", "--out", str(tmp_path / "cases"), "--label", "case"]) == 0
    assert "drawn given" not in capsys.readouterr().out
    cases = generation_settings(tmp_path / "cases")
    assert cases["trait_drawn_from"] == "condition" and WHY_CONDITION not in condition_text(cases, record, "binary")


def test_generate__a_binary_traits_classes_come_from_the_trait_model_given_the_genotypes(planted, tmp_path,
                                                                                       monkeypatch):
    """Known answer: SNP ``CAUSAL`` raises the odds of being a case ~4.5x per copy. Each individual's class is
    drawn from the run's trait model given its genotypes: at the training mix the released case rate by genotype
    follows the training's; with more cases asked for, the odds ratio stays; every count asked for is met
    exactly; the same seed repeats the files; ``trait_from="condition"`` and a single class
    release the conditions; a count the model cannot fill within ``MAX_PROPOSALS`` draws is refused and leaves
    nothing behind."""
    import snpgen_core.generation as generation

    cohort, run = planted
    real = read_plink(cohort)
    real_case = real.samples["pheno"].to_numpy() == "2"
    model = load_run(run).models.trait
    assert model.is_fitted and json.loads((run / "run.json").read_text())["trait_model"]["validation_r"] > 0.1

    def rates(x, case):  # the case rate by genotype at the causal SNP
        return np.array([case[x[:, CAUSAL] == genotype].mean() for genotype in (0, 1, 2)])

    def log_odds_ratio(r):  # of genotype 2 against genotype 0
        return np.log(r[2] / (1 - r[2])) - np.log(r[0] / (1 - r[0]))

    mix = read_plink(generate(run, 3000, out_prefix=tmp_path / "mix", seed=5))  # the training mix
    np.testing.assert_allclose(rates(mix.dosages, mix.samples["pheno"].to_numpy() == "2"),
                               rates(real.dosages, real_case), atol=0.08)
    out = generate(run, 3000, out_prefix=tmp_path / "syn", case_fraction=0.5, seed=4)
    g = read_plink(out)
    case = g.samples["pheno"].to_numpy() == "2"
    assert case.sum() == 1500  # round(0.5 * 3000), exactly
    assert (pd.read_csv(tmp_path / "syn.pheno.tsv", sep="\t")["PHENO"] == np.where(case, 2, 1)).all()
    # more cases than the training's ~22% raise every genotype's case rate, as a case-control study's sampling
    # does, and leave the odds ratio near the planted 2 x 1.5 (classes by a ranking of risk would not)
    assert rates(g.dosages, case)[0] > rates(real.dosages, real_case)[0] + 0.05
    assert log_odds_ratio(rates(g.dosages, case)) == pytest.approx(3.0, abs=0.75)
    p = model.probability(torch.as_tensor(g.dosages)).numpy()
    assert p[case].mean() - p[~case].mean() > 0.15  # cases are those the model gives a higher risk
    prov = json.loads((tmp_path / "syn.provenance.json").read_text())
    assert prov["trait_drawn_from"].startswith("genotypes") and prov["draws"] >= 3000
    again = generate(run, 3000, out_prefix=tmp_path / "again", case_fraction=0.5, seed=4)
    assert Path(str(again) + ".bed").read_bytes() == Path(str(out) + ".bed").read_bytes()
    assert Path(str(again) + ".fam").read_bytes() == Path(str(out) + ".fam").read_bytes()

    cond = generate(run, 200, out_prefix=tmp_path / "cond", case_fraction=0.3, seed=4, trait_from="condition")
    given = read_plink(cond).samples["pheno"].to_numpy() == "2"
    assert np.array_equal(given, condition_mix(load_run(run).phenotype, 200, case_fraction=0.3, seed=4) == 1)
    assert json.loads((tmp_path / "cond.provenance.json").read_text())["trait_drawn_from"] == "condition"
    cases = generate(run, 40, out_prefix=tmp_path / "cases", label="case")
    assert (read_plink(cases).samples["pheno"] == "2").all()

    monkeypatch.setattr(generation, "MAX_PROPOSALS", 1)
    with pytest.raises(InputError, match="still missing") as err:
        generate(run, 300, out_prefix=tmp_path / "many", case_fraction=0.9, seed=4)
    assert "--trait-from condition" in err.value.hint
    assert not list(tmp_path.glob("many*"))


def test_generate_cli__reports_the_runs_validation_privacy_check_and_warns_when_it_failed(planted, tmp_path, capsys):
    from snpgen_core.memorisation import limits
    from snpgen_core.runs import read_privacy_check

    _, run = planted
    check = read_privacy_check(run)
    assert check is not None and check.n_validation == 80 and check.likelihood_gap is not None
    assert set(check.values) == set(check.limits) == {"membership_auc", "dcr_share", "aats_privacy_loss"}
    plain = limits(check.n_validation, check.n_synthetic)  # the DCR limit shifted by training people (the reference)
    assert check.limits["dcr_share"] == pytest.approx(max(plain["dcr_share"], check.reference["dcr_share"] + plain["dcr_share"] - 0.5))
    assert check.association_copying is not None  # a binary trait: measured on the validation people too
    assert 0 < check.segment_membership < 1 and check.segment_limit > 0.5  # the shared-segment attack, measured
    assert main(["generate", "--run", str(run), "--n", "20", "--seed", "1", "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert check.summary() in out and f"association copying {check.association_copying:.2f}" in out
    assert f"shared-segment membership {check.segment_membership:.3f}" in out
    assert check.label_membership is not None and f"label attack {check.label_membership:.3f}" in out
    assert json.loads((tmp_path / "a.provenance.json").read_text())["release_check"] == check.to_dict()

    def as_if(name, change):  # the same run with its recorded check changed (run.json is the marker, not hashed)
        shutil.copytree(run, tmp_path / name)
        info = json.loads((tmp_path / name / "run.json").read_text())
        change(info["privacy_check"])
        (tmp_path / name / "run.json").write_text(json.dumps(info))
        assert main(["generate", "--run", str(tmp_path / name), "--n", "20", "--seed", "1",
                     "--out", str(tmp_path / name / "syn")]) == 0
        return [line for line in capsys.readouterr()[1].splitlines() if line.startswith("warning:")]

    assert as_if("clean", lambda c: c.update(association_copying=1.0, segment_membership=0.5)) == []
    failed = as_if("failed", lambda c: c.update(passed=False, association_copying=1.0,
                                                values={**c["values"], "dcr_share": c["limits"]["dcr_share"] + 0.1}))
    assert len(failed) == 1 and "dcr share" in failed[0] and "snpgen evaluate" in failed[0]
    copied = as_if("copied", lambda c: c.update(association_copying=3.5, segment_membership=0.5))
    assert len(copied) == 1 and "association copying 3.50" in copied[0] and "--guidance 1" in copied[0]
    stitched = as_if("stitched", lambda c: c.update(segment_membership=0.9, association_copying=1.0))
    assert len(stitched) == 1 and "shared-segment membership 0.900" in stitched[0] and "--epochs" in stitched[0]
    labelled = as_if("labelled", lambda c: c.update(label_membership=0.7, label_limit=0.575, association_copying=1.0,
                                                    segment_membership=0.5))
    assert len(labelled) == 1 and "label attack 0.700 > 0.575" in labelled[0] and "--guidance 1" in labelled[0]
    older = as_if("older", lambda c: [c.pop(k, None) for k in ("segment_membership", "segment_limit",  # runs before
                                                                "label_membership", "label_limit")]
                  + [c.update(association_copying=1.0)])
    assert older == []


@pytest.mark.parametrize("model", ["diffusion", "vae_gaussian"])
def test_generate__argmax_takes_each_snps_mode_given_its_past_and_loses_diversity(planted, tmp_path, model):
    """``sample="argmax"`` (SNPgen's and Xie et al.'s decoding) for every VAE-based generator: each genotype is
    the most probable class of the decoder given the latent, the trait and the genotypes already decoded, so each
    SNP's modal genotype is over-drawn and its rarest one under-drawn. Measured on the planted run (diffusion):
    rarest-class frequency 0.143 -> 0.088 (real 0.142), minor-allele frequency 0.348 -> 0.313, genotype entropy
    0.96 -> 0.86 nats, distinct individuals 1,136 -> 577 of 1,500. Heterozygosity is no measure of it: at a common
    SNP the heterozygote is the mode, and it rose (0.41 -> 0.45)."""
    _, run_dir = planted
    run = load_run(run_dir)
    seen = []
    decode = run.models.vae.sample_genotypes

    def spy(z, trait, generator, **kwargs):
        out = decode(z, trait, generator, **kwargs)
        seen.append((z, trait, out))
        return out

    run.models.vae.sample_genotypes = spy
    run.generator(model).sample(torch.tensor([0.0, 1.0] * 100), torch.Generator().manual_seed(4),
                                SamplingOptions(mode="argmax"))
    z, trait, out = seen[0]
    with torch.no_grad():
        mode = run.models.vae.decoder.logits(out, run.models.vae.decoder_input(z, trait)).argmax(-1)
    assert torch.equal(mode.to(torch.int8), out)  # the per-SNP mode of the decoder's probabilities

    real = read_plink(planted[0]).dosages
    rarest = np.argmin(np.stack([(real == g).mean(0) for g in range(3)]), axis=0)  # per SNP, in the real cohort

    def summary(d):
        classes = np.stack([(d == g).mean(0) for g in range(3)])  # (3, m)
        p = np.clip(classes, 1e-12, 1)
        return {"rarest": classes[rarest, np.arange(d.shape[1])].mean(),
                "maf": np.minimum(d.mean(0) / 2, 1 - d.mean(0) / 2).mean(),
                "entropy": -(classes * np.log(p)).sum(0).mean(), "distinct": len(np.unique(d, axis=0))}

    drawn, argmax = (summary(read_plink(generate(run_dir, 1500, out_prefix=tmp_path / s, seed=3, model=model,
                                                 case_fraction=0.3, sample=s)).dosages)
                     for s in ("probabilities", "argmax"))
    assert argmax["rarest"] < 0.8 * drawn["rarest"]
    assert argmax["maf"] < drawn["maf"] and argmax["entropy"] < drawn["entropy"]
    assert argmax["distinct"] < 0.8 * drawn["distinct"]
    assert json.loads((tmp_path / "argmax.provenance.json").read_text())["sample"] == "argmax"


def test_generate__each_class_keeps_its_training_mix_of_populations_and_the_flag_turns_it_off(tmp_path, capsys):
    """Two populations with opposite allele frequencies (0.1, 0.9); cases are 10% of population A and 50% of B, so
    5 in 6 cases are from B. Training finds groups in the latent (the independent decoder and a 2-d latent, so that
    the latent carries the populations; the mixture may split a population in two) and records each class's mix.
    At guidance 3 the synthetic cases come out nearly all B and the controls mostly A; with the mix kept, each
    class's share of B is the training class's. Provenance and the model card's line say which was done."""
    from snpgen_core.export import _group_mix_text, generation_settings

    rng = np.random.default_rng(3)
    n, m = 1200, 48
    pop_b = rng.random(n) < 0.5
    freq = np.where(pop_b[:, None], 0.9, 0.1) + rng.normal(0, 0.03, m)[None]
    x = rng.binomial(2, np.clip(freq, 0.05, 0.95)).astype(np.int8)
    case = rng.random(n) < np.where(pop_b, 0.5, 0.1)
    variants = make_variants("5", [f"rs{j}" for j in range(m)], 10_000 + 50_000 * np.arange(m), ["A"] * m, ["G"] * m)
    write_plink(tmp_path / "cohort", Genotypes(x, variants, make_samples([f"Q{i:04d}" for i in range(n)],
                                                                         pheno=np.where(case, "2", "1"))))
    (tmp_path / "panel.txt").write_text("\n".join(f"rs{j}" for j in range(m)) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(tmp_path / "cohort", tmp_path / "run", panel_path=tmp_path / "panel.txt", seed=0,
                        config={**CONFIG, "vae": {**CONFIG["vae"], "window": 0, "latent_dim": 2}}, device="cpu")
    record = json.loads((run / "run.json").read_text())["group_mix"]
    assert record["groups"] >= 2 and len(record["class_shares"]) == 2
    assert np.allclose(np.sum(record["class_shares"], axis=1), 1, atol=1e-3)
    real_share = [(~case & pop_b).sum() / (~case).sum(), (case & pop_b).sum() / case.sum()]  # 0.36, 0.83
    share = {}
    for args, kept in (([], True), (["--no-group-mix"], False)):
        main(["generate", "--run", str(run), "--n", "1000", "--case-fraction", "0.5", "--seed", "2", "--out",
              str(tmp_path / f"syn{kept}"), "--guidance", "3", "--trait-from", "condition", *args])
        assert json.loads((tmp_path / f"syn{kept}.provenance.json").read_text())["group_mix"] is kept
        assert generation_settings(tmp_path / f"syn{kept}")["group_mix"] is kept  # and the model card says it:
        assert (f"latent's {record['groups']} groups" in _group_mix_text(kept, record)) is kept
        g = read_plink(tmp_path / f"syn{kept}")
        synthetic_b = g.dosages.mean(1) > 1.0  # the populations' frequencies are 0.1 and 0.9: no overlap
        cases = g.samples["pheno"].to_numpy() == "2"
        share[kept] = [synthetic_b[~cases].mean(), synthetic_b[cases].mean()]
    assert share[True] == pytest.approx(real_share, abs=0.05)  # each class's share of population B kept
    assert share[False][1] - share[False][0] > real_share[1] - real_share[0] + 0.1  # guidance 3 exaggerates it
    capsys.readouterr()
