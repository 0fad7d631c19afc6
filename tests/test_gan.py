"""The conditional WGAN-GP (models/gan.py): its gradient penalty against brute force, the critic / generator cycle
inside ``training.fit``, valid seeded samples, and a run trained by ``snpgen train --model wgan``."""
import json
import warnings

import numpy as np
import pytest
import torch

from snpgen_core.cli import main
from snpgen_core.errors import InputError
from snpgen_core.generation import generate
from snpgen_core.io.plink import read_plink
from snpgen_core.models.gan import ConditionalWGAN, GANConfig, gradient_penalty
from snpgen_core.models.generators import SamplingOptions
from snpgen_core.pipeline import train_run
from snpgen_core.runs import load_run
from snpgen_core.training import FitConfig, fit
from test_training import structured_dosages


def _gan(m=24, kind="binary", **kw):
    cfg = dict(n_snps=m, pheno_kind=kind, n_classes=2 if kind == "binary" else 3 if kind == "categorical" else 0,
               noise_dim=8, hidden=32, trait_dim=4)
    return ConditionalWGAN(GANConfig(**{**cfg, **kw}))


def _data(n=256, m=24, seed=0):
    """``test_training.structured_dosages`` (LD blocks of 4 SNPs, a binary trait tied to the first) as tensors."""
    x, y = structured_dosages(n, m, seed)
    return torch.as_tensor(x), torch.as_tensor(y)


def _one_hot(idx, m):
    return torch.nn.functional.one_hot(torch.as_tensor(idx), 3).reshape(-1, m, 3).double()


# ---------------------------------------------------------------------------------------------------------------
# The gradient penalty


@pytest.mark.parametrize("kind", ["binary", "quantitative", "none"])
def test_gradient_penalty__equals_a_per_individual_autograd_loop_and_finite_differences(kind):
    torch.manual_seed(0)
    m, b = 4, 3
    critic = _gan(m, kind).critic.double()
    rng = np.random.default_rng(1)
    real = _one_hot(rng.integers(0, 3, b * m), m)
    fake = torch.softmax(torch.as_tensor(rng.normal(size=(b, m, 3))), -1)  # relaxed, as the generator's
    trait = torch.as_tensor([0.0, 1.0, float("nan")] if kind != "quantitative" else [0.3, -1.2, float("nan")],
                            dtype=torch.float64)
    mix = torch.as_tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, trait, mix, create_graph=False)

    loop, fd = [], []
    for i in range(b):  # one individual at a time: no batch mixing possible
        x = (mix[i] * real[i] + (1 - mix[i]) * fake[i])[None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x, trait[i:i + 1]).sum(), x)
        loop.append((g.norm() - 1) ** 2)
        # central finite differences of the score over each of the 3m input coordinates
        h, grad = 1e-6, torch.zeros(3 * m, dtype=torch.float64)
        base = x.detach().flatten()
        with torch.no_grad():
            for k in range(3 * m):
                up, down = base.clone(), base.clone()
                up[k] += h
                down[k] -= h
                grad[k] = (critic(up.view(1, m, 3), trait[i:i + 1]) - critic(down.view(1, m, 3), trait[i:i + 1])) / (2 * h)
        fd.append((grad.norm() - 1) ** 2)
    assert float(gp) == pytest.approx(float(torch.stack(loop).mean()), rel=1e-10)
    assert float(gp) == pytest.approx(float(torch.stack(fd).mean()), rel=1e-6)
    assert float(gp) > 0


def test_gradient_penalty__is_zero_for_a_critic_of_unit_slope():
    """D(x) = <v, x> with |v| = 1 has gradient norm 1 everywhere: no penalty; |v| = 2 gives (2 - 1)^2 = 1."""
    m = 5
    for scale, expected in ((1.0, 0.0), (2.0, 1.0)):
        v = torch.randn(3 * m, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        v = scale * v / v.norm()
        critic = lambda x, t: x.flatten(1) @ v  # noqa: E731
        x = _one_hot(np.arange(2 * m) % 3, m)
        gp = gradient_penalty(critic, x, x.flip(0), torch.zeros(2), torch.rand(2, dtype=torch.float64))
        assert float(gp) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# The critic / generator cycle inside fit


def test_training_loss__n_critic_critic_steps_then_one_generator_step_each_with_only_its_own_gradients():
    torch.manual_seed(0)
    gan = _gan(n_critic=2).train()
    x, y = _data(32)
    seen = []
    for _ in range(6):
        gan.zero_grad(set_to_none=True)
        gan.training_loss((x, y), 0)["loss"].backward()
        g = any(p.grad is not None for p in gan.generator.parameters())
        c = any(p.grad is not None for p in gan.critic.parameters())
        assert g != c
        seen.append("G" if g else "D")
    assert "".join(seen) == "DDGDDG"
    assert int(gan.steps) == 6
    assert all(p.requires_grad for p in gan.critic.parameters())  # unfrozen after the generator step


def test_fit__trains_the_wgan_the_losses_move_and_it_is_seeded():
    x, y = _data()
    config = FitConfig(epochs=4, batch_size=32, lr=1e-3, weight_decay=0.0, adam_beta1=0.5, adam_beta2=0.9,
                       grad_clip=0.0)

    def trained(seed):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            gan = _gan()
        gan.init_from_data(x.numpy(), y.numpy())
        start = {k: v.clone() for k, v in gan.state_dict().items()}
        state = fit(gan, (x, y), None, config, stage="gan", seed=seed)
        return gan, start, state

    gan, start, state = trained(0)
    h = state.history
    assert len(h) == 4 and all(np.isfinite(e["train"]) for e in h)
    for key in ("train_w", "train_gp", "train_generator"):
        assert len({round(e[key], 6) for e in h}) == 4  # every epoch's value differs: the losses move
    assert h[-1]["train_w"] != h[0]["train_w"]
    moved = {k for k, v in gan.state_dict().items() if v.is_floating_point() and not torch.equal(v, start[k])}
    assert any(k.startswith("generator.net") for k in moved) and any(k.startswith("critic.net") for k in moved)
    assert int(gan.steps) == 4 * 8  # 256 individuals / 32 per step, every step counted

    again, _, state2 = trained(0)
    assert all(torch.equal(a, b) for a, b in zip(gan.state_dict().values(), again.state_dict().values()))
    other, _, _ = trained(1)
    assert not torch.equal(gan.generator.net.layers[0].weight, other.generator.net.layers[0].weight)


def test_validation_loss__is_the_wasserstein_estimate_and_takes_no_step():
    gan = _gan().eval()
    x, y = _data(64)
    with torch.no_grad():
        out = gan.training_loss((x, y), None)
    assert float(out["loss"]) == float(out["w"]) and int(gan.steps) == 0


# ---------------------------------------------------------------------------------------------------------------
# Sampling


@pytest.mark.parametrize("kind, cond", [("binary", [0.0, 1.0, float("nan")]), ("categorical", [0.0, 2.0, 1.0]),
                                        ("quantitative", [1.5, -0.3, float("nan")]), ("none", [float("nan")] * 3)])
def test_sample__valid_genotypes_for_every_trait_kind_and_seeded(kind, cond):
    gan = _gan(kind=kind)
    x, y = _data(64)
    gan.init_from_data(x.numpy(), y.numpy() * 3 if kind == "quantitative" else y.numpy())
    c = torch.as_tensor(cond * 20)
    draw = lambda s, mode="probabilities": gan.sample(c, torch.Generator().manual_seed(s),  # noqa: E731
                                                    SamplingOptions(mode=mode))
    out = draw(0)
    assert out.dtype == torch.int8 and out.shape == (60, 24)
    assert set(out.unique().tolist()) <= {0, 1, 2}
    assert torch.equal(out, draw(0)) and not torch.equal(out, draw(1))
    # argmax: the most probable genotype of each SNP given the same noise
    logits = gan.logits(c, torch.Generator().manual_seed(5))
    assert torch.equal(draw(5, "argmax"), logits.argmax(-1).to(torch.int8))


def test_init_from_data__first_samples_have_the_training_genotype_frequencies():
    x, y = _data(2000)
    gan = _gan()
    gan.init_from_data(x.numpy(), y.numpy())
    with torch.no_grad():
        for layer in gan.generator.net.layers[-1:]:
            layer.weight.zero_()  # only the bias: the independent-SNP frequencies
    out = gan.sample(torch.zeros(4000), torch.Generator().manual_seed(0), SamplingOptions()).numpy()
    freq = lambda d: np.stack([(d == g).mean(0) for g in range(3)])  # noqa: E731
    assert np.abs(freq(out) - freq(x.numpy())).max() < 0.04


# ---------------------------------------------------------------------------------------------------------------
# A run trained with --model wgan

TINY_GAN = {"model": "wgan", "gan": {"hidden": 32, "noise_dim": 8, "tau_epochs": 2},
            "gan_fit": {"epochs": 3, "batch_size": 64, "check_every": 0}, "checkpoint_seconds": 0}


def _train(prefix, out, config=TINY_GAN, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_run(prefix, out, gwas_path=str(prefix) + ".gwas.tsv", top=30, config=config, device="cpu",
                         **kw)


def test_train_run__model_wgan_writes_a_run_whose_default_generator_is_the_gan(sim_prefix, tmp_path):
    out = _train(sim_prefix, tmp_path / "run")
    run = load_run(out)
    assert run.config.model == "wgan" and run.models.available == ("wgan", "independent")
    history = run.history()
    assert set(history) == {"gan", "gan_best_epoch", "gan_stopped"} and len(history["gan"]) == 3
    assert json.loads((out / "run.json").read_text())["privacy_check"] is not None
    prefix = generate(out, 50, out_prefix=tmp_path / "syn", seed=3)
    syn = read_plink(prefix)
    assert syn.dosages.shape == (50, 30) and set(np.unique(syn.dosages)) <= {0, 1, 2}
    assert json.loads((tmp_path / "syn.provenance.json").read_text())["model"] == "wgan"
    with pytest.raises(InputError, match="did not train the 'diffusion'"):
        generate(out, 5, out_prefix=tmp_path / "bad", model="diffusion")


def test_cli_train__model_wgan_and_its_settings_are_flags(sim_prefix, tmp_path, capsys):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({k: v for k, v in TINY_GAN.items() if k != "model"}))
    assert main(["train", "--bfile", str(sim_prefix), "--gwas", str(sim_prefix) + ".gwas.tsv", "--top", "20",
                 "--out", str(tmp_path / "run"), "--config", str(config), "--device", "cpu", "--model", "wgan",
                 "--gan-n-critic", "3", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "gan: done after 2 epochs" in err and "vae:" not in err and "diffusion:" not in err
    run = load_run(tmp_path / "run")
    assert run.config.gan.n_critic == 3 and len(run.history()["gan"]) == 2
    assert main(["generate", "--run", str(tmp_path / "run"), "--n", "10", "--out", str(tmp_path / "syn")]) == 0
    assert "(wgan)" in capsys.readouterr().out


def test_train_run__wgan_with_differential_privacy_is_refused_before_writing(sim_prefix, tmp_path):
    with pytest.raises(InputError, match="diffusion and markov models, not wgan"):
        _train(sim_prefix, tmp_path / "run", config={**TINY_GAN, "dp": {"epsilon": 3.0}})
    assert not (tmp_path / "run").exists()
