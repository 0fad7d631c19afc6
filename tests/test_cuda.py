"""The CUDA paths against the CPU: the same model or data on both devices gives the same answer.

The tests marked ``needs_gpu`` are skipped without one (CI has none); ``benchmarks/gpu_check.sh`` runs this file on
a GPU machine, and BENCHMARKS.md records when it last passed there. The rest of the suite pins ``device="cpu"``.
The first tests run everywhere: with "meta" as the default device, a tensor made without naming a device cannot
meet the inputs' tensors, so a sampler or fit that would mix devices on a GPU fails on the CPU too (the bug the
first GPU session found: a CPU matrix added to CUDA covariances in ``LatentGaussian.fit``).
"""
import itertools
import json
import os
import warnings

import numpy as np
import pytest
import torch

from snpgen_core.models.decoder import GenotypeDecoder
from test_decoder import _decoder
from test_gan import TINY_GAN
from test_training import TINY  # the training tests' tiny models (as test_provenance.py takes them)

# SNPGEN_TEST_GPU=cpu runs the file on the CPU against itself: a check of the tests, not of a GPU
GPU = os.environ.get("SNPGEN_TEST_GPU", "cuda")
needs_gpu = pytest.mark.skipif(GPU == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")
OTHER = {"wgan": {**TINY, **TINY_GAN}, "markov": {**TINY, "model": "markov"}}  # the other generators' tiny runs


def _random_decoder(m: int) -> GenotypeDecoder:
    """The decoder tests' seeded decoder, with random neighbour weights too (its far weights are already random),
    so that the past matters."""
    dec = _decoder(m, window=4, hidden=3, far_rank=2, far_reach=8)
    with torch.no_grad():
        dec.W.normal_()
    return dec.eval()


def _dosages(n: int, m: int, seed: int, missing: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, m)
    x = rng.binomial(2, p, (n, m)).astype(np.int8)
    x[rng.random((n, m)) < missing] = -1
    return x


@pytest.fixture(scope="module")
def cpu_runs(sim_prefix, tmp_path_factory):
    """Tiny CPU runs of the diffusion (with its VAE + Gaussian and independent baselines), the WGAN and the Markov
    chain, loaded."""
    from snpgen_core.pipeline import train_run
    from snpgen_core.runs import load_run

    root = tmp_path_factory.mktemp("meta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {model: load_run(train_run(sim_prefix, root / model, gwas_path=f"{sim_prefix}.gwas.tsv", top=30,
                                          config=config, seed=0, device="cpu"))
                for model, config in (("diffusion", TINY), *OTHER.items())}


def test_every_generator_samples_on_its_inputs_device_not_the_default_one(cpu_runs):
    from snpgen_core.models.generators import SamplingOptions

    cond = torch.tensor([0.0, 1.0, float("nan"), 1.0])
    sampled = []
    for run in cpu_runs.values():
        for name in run.models.available:
            with torch.device("meta"):
                out = run.generator(name).sample(cond, torch.Generator().manual_seed(0), SamplingOptions())
            assert out.device.type == "cpu" and out.shape == (4, 30), name
            sampled.append(name)
    assert set(sampled) == {"diffusion", "vae_gaussian", "independent", "wgan", "markov"}


def test_fits_and_losses_make_their_tensors_on_the_inputs_device(cpu_runs):
    models = cpu_runs["diffusion"].models
    x = torch.from_numpy(_dosages(40, 30, 7))
    y = torch.tensor([0.0, 1.0] * 20)
    mu, logvar = torch.randn(40, models.vae.config.latent_dim), torch.zeros(40, models.vae.config.latent_dim)
    with torch.device("meta"):
        models.latent_gaussian.fit(mu, logvar, y)  # the GPU session's bug: its jitter on the default device
        losses = [models.vae.training_loss((x, y), 0)["loss"],
                  models.diffusion.training_loss((mu, logvar, y), 0)["loss"],
                  cpu_runs["wgan"].models.gan.training_loss((x, y), 0)["loss"]]
        nll = models.vae.log_likelihood(x, y)
    assert all(loss.device.type == "cpu" and torch.isfinite(loss) for loss in losses)
    assert nll.device.type == "cpu" and nll.shape == (40,)


@needs_gpu
def test_decoder_log_prob__cuda_equals_cpu_and_bf16_autocast_stays_close():
    dec = _random_decoder(40)
    x = torch.from_numpy(_dosages(300, 40, 1))
    z = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cpu = dec.log_prob(x, z)
        gpu = dec.to(GPU).log_prob(x.to(GPU), z.to(GPU))
        with torch.autocast(torch.device(GPU).type, dtype=torch.bfloat16):  # what training's loss runs under on CUDA
            bf16 = dec.log_prob(x.to(GPU), z.to(GPU)).float()
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-5)
    per_snp = (bf16.cpu() - cpu).abs() / 40
    assert per_snp.max().item() < 0.05  # nats per SNP: bf16 rounding, not a different model


@needs_gpu
def test_decoder_sample__seeded_on_cuda_and_follows_log_prob():
    dec = _random_decoder(3).to(GPU)
    z = torch.zeros(30000, 2, device=GPU)
    a = dec.sample(z, torch.Generator(device=GPU).manual_seed(7))
    b = dec.sample(z, torch.Generator(device=GPU).manual_seed(7))
    assert a.device.type == torch.device(GPU).type and a.dtype == torch.int8 and torch.equal(a, b)
    codes = (a.long() * torch.tensor([9, 3, 1], device=GPU)).sum(1)
    freq = torch.bincount(codes, minlength=27).float().cpu() / len(codes)
    every = torch.tensor(list(itertools.product(range(3), repeat=3)), dtype=torch.int8)
    with torch.no_grad():
        p = dec.cpu().log_prob(every, torch.zeros(27, 2)).exp()
    assert torch.allclose(freq, p, atol=0.012)


@needs_gpu
def test_distances_and_kinship__cuda_equals_cpu():
    from snpgen_core.evaluation.distances import nearest_both_ways, nearest_neighbours
    from snpgen_core.evaluation.kinship import king_kinship, max_kinship

    a, b = _dosages(700, 300, 2, 0), _dosages(500, 300, 3, 0)  # distances need complete calls
    b[:20] = a[:20]  # exact copies: distance 0, kinship 0.5
    d_cpu, i_cpu = nearest_neighbours(a, b, 2, device="cpu")
    d_gpu, i_gpu = nearest_neighbours(a, b, 2, device=GPU, chunk_rows=128)
    np.testing.assert_array_equal(d_gpu, d_cpu)
    unique = d_cpu[:, 0] < d_cpu[:, 1]  # ties may be broken differently; the nearest is the same where unique
    np.testing.assert_array_equal(i_gpu[unique, 0], i_cpu[unique, 0])
    assert (d_cpu[:20, 0] == 0).all()
    (ab_c, ba_c), (ab_g, ba_g) = (nearest_both_ways(a, b, 2, device=d) for d in ("cpu", GPU))
    np.testing.assert_array_equal(ab_g[0], ab_c[0])
    np.testing.assert_array_equal(ba_g[0], ba_c[0])
    holes = _dosages(200, 300, 4)  # KING skips missing calls
    np.testing.assert_allclose(king_kinship(holes, b, device=GPU), king_kinship(holes, b, device="cpu"), atol=1e-9)
    phi_c, idx_c = max_kinship(a, b, device="cpu")
    phi_g, idx_g = max_kinship(a, b, device=GPU, chunk_rows=100)
    np.testing.assert_allclose(phi_g, phi_c, atol=1e-9)
    assert phi_c[:20] == pytest.approx(0.5) and (idx_g[:20] == np.arange(20)).all()


@needs_gpu
def test_privacy_and_attack_metrics__cuda_equal_cpu():
    from snpgen_core.evaluation.attacks import attack_metrics
    from snpgen_core.evaluation.privacy import privacy_metrics

    t, h, s = _dosages(400, 200, 4, 0), _dosages(200, 200, 5, 0), _dosages(400, 200, 6, 0)
    s[:50] = t[:50]  # a partly copying release, so that the metrics are away from their null
    for fn in (privacy_metrics, attack_metrics):
        cpu, gpu = fn(t, h, s, seed=0, device="cpu"), fn(t, h, s, seed=0, device=GPU)
        assert cpu.keys() == gpu.keys()
        for name in cpu:
            assert gpu[name].value == pytest.approx(cpu[name].value, abs=1e-6, nan_ok=True), name


@pytest.fixture(scope="module")
def cuda_run(sim_prefix, tmp_path_factory):
    from snpgen_core.pipeline import train_run

    root = tmp_path_factory.mktemp("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_run(sim_prefix, root / "cuda", gwas_path=f"{sim_prefix}.gwas.tsv", top=60, config=TINY, seed=0,
                  device=GPU)
        train_run(sim_prefix, root / "cpu", gwas_path=f"{sim_prefix}.gwas.tsv", top=60, config=TINY, seed=0,
                  device="cpu")
    return root


@needs_gpu
def test_train_run__on_cuda_records_it_learns_like_the_cpu_and_checks_memorisation(cuda_run):
    done = {d: json.loads((cuda_run / d / "run.json").read_text()) for d in ("cuda", "cpu")}
    provenance = json.loads((cuda_run / "cuda" / "provenance.json").read_text())
    assert provenance["device"].startswith(GPU)
    assert done["cuda"]["privacy_check"] is not None and "passed" in done["cuda"]["privacy_check"]
    history = {d: json.loads((cuda_run / d / "history.json").read_text()) for d in ("cuda", "cpu")}
    last = {d: history[d]["vae"][-1]["val"] for d in history}  # same seed, same data; bf16 and kernels differ
    assert last["cuda"] == pytest.approx(last["cpu"], rel=0.1)
    assert history["cuda"]["vae"][-1]["train"] < history["cuda"]["vae"][0]["train"]


@needs_gpu
def test_generate__cuda_is_seeded_and_a_cuda_run_generates_on_the_cpu(cuda_run, tmp_path):
    from snpgen_core.generation import generate
    from snpgen_core.io.plink import read_plink

    run = cuda_run / "cuda"
    outs = [generate(run, 300, out_prefix=tmp_path / f"g{i}", seed=3, device=GPU, case_fraction=0.3)
            for i in range(2)]
    on_cpu = generate(run, 300, out_prefix=tmp_path / "c", seed=3, device="cpu", case_fraction=0.3)
    from_cpu_run = generate(cuda_run / "cpu", 300, out_prefix=tmp_path / "x", seed=3, device=GPU,
                            case_fraction=0.3)
    bed = [p.with_suffix(".bed").read_bytes() for p in (*outs, on_cpu, from_cpu_run)]
    assert bed[0] == bed[1]  # the same seed on the same device: the same cohort
    for p in (outs[0], on_cpu, from_cpu_run):
        g = read_plink(p).dosages
        assert g.shape == (300, 60) and set(np.unique(g)) <= {0, 1, 2}
    af_gpu, af_cpu = (read_plink(p).dosages.mean(0) / 2 for p in (outs[0], on_cpu))
    assert np.corrcoef(af_gpu, af_cpu)[0, 1] > 0.9  # one model, two devices: the same frequencies up to noise


@needs_gpu
def test_train__differential_privacy_on_cuda_spends_no_more_than_its_budget(sim_prefix, tmp_path):
    from snpgen_core.cli import main

    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "30",
                     "--config", str(tmp_path / "tiny.json"), "--device", GPU, "--dp-epsilon", "8",
                     "--out", str(tmp_path / "dp")]) == 0
    dp = json.loads((tmp_path / "dp" / "run.json").read_text())["differential_privacy"]
    assert 0 < dp["epsilon"] <= 8.0 and set(dp["stages"]) == {"vae", "diffusion"}


@needs_gpu
@pytest.mark.parametrize("model", ["wgan", "markov"])
def test_other_generators__train_and_generate_on_cuda(sim_prefix, tmp_path, model):
    from snpgen_core.generation import generate
    from snpgen_core.io.plink import read_plink
    from snpgen_core.pipeline import train_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(sim_prefix, tmp_path / "run", gwas_path=f"{sim_prefix}.gwas.tsv", top=30, seed=0,
                        config=OTHER[model], device=GPU)
    outs = [generate(run, 200, out_prefix=tmp_path / f"g{i}", seed=5, device=GPU, case_fraction=0.5)
            for i in range(2)]
    g = read_plink(outs[0]).dosages
    assert g.shape == (200, 30) and set(np.unique(g)) <= {0, 1, 2}
    assert outs[0].with_suffix(".bed").read_bytes() == outs[1].with_suffix(".bed").read_bytes()
    assert json.loads((tmp_path / "g0.provenance.json").read_text())["model"] == model


@needs_gpu
def test_quantitative_trait__trait_model_draws_on_cuda(sim_prefix, tmp_path):
    from snpgen_core.generation import generate
    from snpgen_core.pipeline import train_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(sim_prefix, tmp_path / "run", pheno_path=f"{sim_prefix}.pheno.tsv", pheno_col="QT",
                        gwas_path=f"{sim_prefix}.gwas.tsv", top=30, config=TINY, seed=0, device=GPU)
        out = generate(run, 300, out_prefix=tmp_path / "q", seed=2, device=GPU)
    fam = np.loadtxt(out.with_suffix(".fam"), dtype=str)
    values = fam[:, 5].astype(float)
    assert np.isfinite(values).all() and values.std() > 0  # a drawn trait, not one constant


@needs_gpu
def test_evaluate__the_whole_report_on_cuda_equals_the_cpu(sim_cohort):
    from snpgen_core.evaluation import EvaluationConfig, evaluate

    g, split = sim_cohort.genotypes, sim_cohort.split
    train, holdout = g.subset(samples=split.train[:300]), g.subset(samples=split.holdout)
    synthetic = g.subset(samples=split.train[300:])  # real individuals outside training: a fresh sample's card
    reports = {d: evaluate(train, holdout, synthetic, seed=0, device=d, config=EvaluationConfig(n_boot=20, threads=1))
               for d in ("cpu", GPU)}
    rows = 0
    for section in ("fidelity", "association", "utility", "privacy"):
        cpu, gpu = reports["cpu"][section], reports[GPU][section]
        assert cpu.keys() == gpu.keys()
        for name in cpu:
            assert gpu[name]["value"] == pytest.approx(cpu[name]["value"], abs=1e-6, nan_ok=True), name
            rows += 1
    assert rows > 20 and reports[GPU]["provenance"]["grades"] == reports["cpu"]["provenance"]["grades"]
