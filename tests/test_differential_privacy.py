"""Differential privacy: DP-SGD in the one training loop, (epsilon, delta) accounted over both stages by Opacus's
RDP accountant, recorded in run.json and refused with one clear line for impossible settings."""
import contextlib
import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snpgen_core.cli import main
from snpgen_core.differential_privacy import (DPConfig, DPSGD, check_individuals, counts_multiplier, epsilon_spent,
                                              gaussian_multiplier, noisy_counts, plan, private_gradients, record,
                                              resolve_delta)
from snpgen_core.errors import InputError
from snpgen_core.pipeline import train_run
from snpgen_core.training import FitConfig, fit

TINY = {
    "vae": {"hidden": 32, "latent_dim": 4, "kl_warmup_epochs": 2},
    "denoiser": {"hidden": 32, "depth": 1},
    "vae_fit": {"epochs": 3, "batch_size": 64, "min_epochs": 0},
    "diffusion_fit": {"epochs": 3, "batch_size": 128, "min_epochs": 0, "val_repeats": 1},
}


def test_plan__composed_epsilon_matches_opacus_own_accountant_and_uses_the_budget():
    from opacus.accountants import RDPAccountant

    n, target = 2000, 3.0
    plans = plan(DPConfig(epsilon=target), n, {"vae": (128, 20), "diffusion": (128, 60)})
    accountant = RDPAccountant()  # fed step by step, as Opacus's own optimizer hook does
    for name, epochs in (("vae", 20), ("diffusion", 60)):
        p = plans[name]
        for _ in range(epochs * p.steps_per_epoch):
            accountant.step(noise_multiplier=p.noise_multiplier, sample_rate=p.sample_rate)
    delta = resolve_delta(DPConfig(epsilon=target), n)
    ours = epsilon_spent([(p.noise_multiplier, p.sample_rate, e * p.steps_per_epoch)
                          for p, e in ((plans["vae"], 20), (plans["diffusion"], 60))], delta)
    assert ours == pytest.approx(accountant.get_epsilon(delta), rel=1e-9)
    assert 0.9 * target <= ours <= target  # within the budget, and most of it used
    # the stages' shares: the VAE planned for half of epsilon alone gets at least that much
    alone = epsilon_spent([(plans["vae"].noise_multiplier, plans["vae"].sample_rate, 20 * 16)], delta)
    assert target / 2 * 0.98 <= alone < target
    assert plans["vae"].sample_rate == pytest.approx(1 / 16)  # 2000 / 128 -> 16 steps per epoch


def test_plan__the_trait_counts_mechanism_is_composed_into_the_same_budget():
    n, target = 2000, 3.0
    config = DPConfig(epsilon=target)
    sd = counts_multiplier(config, n)
    delta = resolve_delta(config, n)
    assert sd == pytest.approx(10 * gaussian_multiplier(target, delta))  # 1% of mu^2
    with_counts = plan(config, n, {"vae": (128, 20), "diffusion": (128, 60)}, sd)
    without = plan(config, n, {"vae": (128, 20), "diffusion": (128, 60)})
    steps = {"vae": 20 * 16, "diffusion": 60 * 16}
    rec = record(config, n, with_counts, steps, sd)
    history = [(p.noise_multiplier, p.sample_rate, steps[k]) for k, p in with_counts.items()] + [(sd, 1.0, 1)]
    assert rec["epsilon"] == pytest.approx(epsilon_spent(history, delta)) and 0.9 * target <= rec["epsilon"] <= target
    assert with_counts["vae"].noise_multiplier > without["vae"].noise_multiplier  # the counts' share is paid for
    assert "class counts" in rec["covers"] and "class counts" not in rec["not_covered"]
    assert "mean and sd" in record(config, n, without, steps)["not_covered"]  # a quantitative trait's summary


def test_noisy_counts__gaussian_noise_of_the_stated_sd_and_the_floors():
    gen = torch.Generator().manual_seed(0)
    draws = np.array([noisy_counts([1000, 500], 20.0, gen, low=[1, 0]) for _ in range(2000)])
    assert draws.mean(0) == pytest.approx([1000, 500], abs=2) and draws.std(0) == pytest.approx([20, 20], rel=0.07)
    assert noisy_counts([0, 0], 50.0, gen, low=[1, 0])[0] >= 1 and min(noisy_counts([0], 50.0, gen, low=[0])) >= 0


@pytest.mark.parametrize("kwargs, message", [
    ({"epsilon": -1.0}, "dp.epsilon = -1.0 is impossible"),
    ({"epsilon": float("nan")}, "epsilon must be positive"),
    ({"epsilon": 1.0, "delta": 1.0}, "dp.delta = 1.0 is impossible"),
    ({"epsilon": 1.0, "delta": -0.1}, "delta must be in [0, 1)"),
    ({"epsilon": 1.0, "max_grad_norm": 0.0}, "dp.max_grad_norm"),
    ({"epsilon": 1.0, "vae_share": 1.0}, "dp.vae_share"),
])
def test_dp_config__impossible_values_name_the_field(kwargs, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        DPConfig(**kwargs)


def test_dp__delta_above_one_over_n_and_too_few_individuals_are_refused():
    assert resolve_delta(DPConfig(epsilon=1.0), 500) == pytest.approx(1 / 5000)
    with pytest.raises(InputError, match="above 1 / n"):
        resolve_delta(DPConfig(epsilon=1.0, delta=0.01), 500)
    with pytest.raises(InputError, match=r"too few individuals.*vae_fit.batch_size"):
        check_individuals(100, {"vae_fit": 128})
    with pytest.raises(InputError, match="cannot be reached"):
        plan(DPConfig(epsilon=1e-6), 1000, {"vae": (100, 50), "diffusion": (100, 50)})


def test_private_gradients__each_individual_clipped_then_summed_over_the_expected_batch():
    model = nn.Linear(3, 1, bias=False)
    torch.nn.init.constant_(model.weight, 0.1)
    model.training_loss = lambda batch, epoch: {"loss": (model(batch[0]).squeeze(-1) - batch[1]).pow(2).mean()}
    x = torch.tensor([[10.0, 0, 0], [0, 0.01, 0]])  # one large gradient (clipped), one small (kept)
    y = torch.tensor([5.0, 0.0])
    expected = torch.zeros(1, 3)
    for i in range(2):  # brute force: each individual's gradient, clipped to norm 1
        model.weight.grad = None
        model.training_loss((x[i:i + 1], y[i:i + 1]), 0)["loss"].backward()
        g = model.weight.grad.clone()
        expected += g * min(1.0, 1.0 / float(g.norm()))
    model.weight.grad = None
    out = private_gradients(model, (x, y), 0, [model.weight], DPSGD(0.0, 1.0, 0.5), 4, contextlib.nullcontext)
    assert torch.allclose(model.weight.grad, expected / (0.5 * 4), atol=1e-6)  # divided by q n
    assert float(out["loss"]) == pytest.approx(float(model.training_loss((x, y), 0)["loss"]), rel=1e-5)
    # an empty Poisson batch still gets the noise: sd sigma C / (q n) on every coordinate
    big = nn.Linear(4000, 1, bias=False)
    big.training_loss = lambda batch, epoch: {"loss": big(batch[0]).sum()}
    private_gradients(big, (torch.zeros(0, 4000),), 0, [big.weight], DPSGD(2.0, 1.0, 0.5), 4, contextlib.nullcontext)
    assert float(big.weight.grad.std()) == pytest.approx(2.0 * 1.0 / (0.5 * 4), rel=0.05)


def test_fit__dp_runs_every_epoch_keeps_the_last_weights_and_the_loss_moves():
    torch.manual_seed(0)
    x = torch.randn(200, 5)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    model = nn.Linear(5, 1)
    model.training_loss = lambda batch, epoch: {"loss": (model(batch[0]).squeeze(-1) - batch[1]).pow(2).mean()}
    config = FitConfig(epochs=8, batch_size=20, lr=0.1, patience=1)
    dp = DPSGD(noise_multiplier=0.5, max_grad_norm=5.0, sample_rate=0.1)
    state = fit(model, (x, y), (x[:50], y[:50]), config, privacy=dp, seed=1)
    losses = [h["train"] for h in state.history]
    assert len(losses) == 8 and state.stopped == "epochs"  # no early stopping under DP
    assert losses[-1] < 0.5 * losses[0]
    assert state.best_epoch == 8 and state.best is None  # the last weights, never chosen by validation loss


def test_fit__dp_batches_and_noise_do_not_follow_the_run_seed():
    """Anyone who knew a run's seed could replay seeded noise and subtract it: the same seed, data and settings
    give different DP weights, while without DP they give the same."""
    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(0))
    y = x.sum(1)

    def weights(privacy):
        torch.manual_seed(0)
        model = nn.Linear(5, 1)
        model.training_loss = lambda batch, epoch: {"loss": (model(batch[0]).squeeze(-1) - batch[1]).pow(2).mean()}
        fit(model, (x, y), None, FitConfig(epochs=2, batch_size=20, lr=0.05), privacy=privacy, seed=1)
        return model.weight.detach().clone()

    dp = DPSGD(noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.2)
    assert not torch.equal(weights(dp), weights(dp))
    assert torch.equal(weights(None), weights(None))


@pytest.fixture(scope="module")
def runs(sim_prefix, tmp_path_factory):
    """A tiny run with DP (epsilon 8) and one without, on the simulated cohort's training part."""
    root = tmp_path_factory.mktemp("dp")
    assert main(["split", "--bfile", str(sim_prefix), "--split-file", f"{sim_prefix}.split.tsv",
                 "--out", str(root / "c")]) == 0
    (root / "tiny.json").write_text(json.dumps(TINY))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", "--bfile", str(root / "c.train"), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "30",
                     "--config", str(root / "tiny.json"), "--device", "cpu", "--dp-epsilon", "8",
                     "--out", str(root / "dp")]) == 0
        train_run(root / "c.train", root / "plain", gwas_path=f"{sim_prefix}.gwas.tsv", top=30, config=TINY,
                  device="cpu")
    return root


def test_train__dp_run_records_epsilon_within_budget_and_the_loss_moves(runs):
    done = json.loads((runs / "dp" / "run.json").read_text())
    dp = done["differential_privacy"]
    assert 0 < dp["epsilon"] <= 8.0 and dp["target_epsilon"] == 8.0 and dp["accountant"] == "rdp"
    n = dp["n_individuals"]
    assert dp["delta"] == pytest.approx(1 / (10 * n))
    assert set(dp["stages"]) == {"vae", "diffusion"}
    for stage in dp["stages"].values():
        assert stage["steps"] == 3 * round(1 / stage["sample_rate"]) and stage["noise_multiplier"] > 0
    history = json.loads((runs / "dp" / "history.json").read_text())
    vae = [h["train"] for h in history["vae"]]
    assert len(vae) == 3 and vae[-1] != vae[0] and vae[-1] < vae[0]
    config = json.loads((runs / "dp" / "config.json").read_text())
    assert config["train"]["dp"]["epsilon"] == 8.0
    # the trait's class counts (generation's default mix) carry the recorded noise; the plain run's are exact
    trait, plain = config["phenotype"], json.loads((runs / "plain" / "config.json").read_text())["phenotype"]
    assert trait["counts_noise_sd"] == pytest.approx(dp["trait_counts_noise_sd"]) and "counts_noise_sd" not in plain
    assert all(c >= 1 for c in trait["counts"])
    assert abs(sum(trait["counts"]) - sum(plain["counts"])) < 6 * trait["counts_noise_sd"] * 2 ** 0.5


def test_train__a_run_without_dp_records_no_epsilon(runs):
    from snpgen_core.runs import run_summary

    assert json.loads((runs / "plain" / "run.json").read_text())["differential_privacy"] is None
    # nor a calibration: the training frequencies are outside the accounting
    assert json.loads((runs / "dp" / "run.json").read_text())["calibration"] is None
    assert json.loads((runs / "plain" / "run.json").read_text())["calibration"]["rounds"] == 3
    assert run_summary(runs / "plain")["differential_privacy"] is None
    assert run_summary(runs / "dp")["differential_privacy"]["epsilon"] <= 8.0


def test_generate__dp_run_refuses_the_baselines_fitted_without_dp(runs, tmp_path):
    from snpgen_core.generation import generate

    with pytest.raises(InputError, match="differential privacy, which covers the diffusion generator only"):
        generate(runs / "dp", 10, out_prefix=tmp_path / "s", model="independent")
    assert generate(runs / "dp", 10, out_prefix=tmp_path / "s", seed=1).name == "s"


@pytest.mark.parametrize("flags, message", [
    (["--dp-epsilon", "0"], "--dp-epsilon 0.0 is impossible: epsilon must be positive"),
    (["--dp-epsilon", "-2"], "epsilon must be positive"),
    (["--dp-epsilon", "1", "--dp-delta", "1"], "--dp-delta 1.0 must be at most"),
    (["--dp-epsilon", "1", "--dp-delta", "0.5"], "above 1 / n"),
])
def test_cli_train__impossible_dp_values_exit_2_with_one_line(sim_prefix, tmp_path, capsys, flags, message):
    code = main(["train", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "30",
                 "--device", "cpu", "--out", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "config.json").exists()


def test_cli_train__too_few_individuals_for_dp_is_one_line(sim_prefix, tmp_path, capsys):
    (tmp_path / "big.json").write_text(json.dumps({"vae_fit": {"batch_size": 5000}}))
    code = main(["train", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--top", "30",
                 "--config", str(tmp_path / "big.json"), "--device", "cpu", "--dp-epsilon", "3",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "too few individuals for differential privacy" in err and "vae_fit.batch_size" in err
