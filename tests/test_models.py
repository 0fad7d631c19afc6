"""Models: VAE encoding and loss, genotype sampling, noise schedule and ODE samplers, denoiser conditioning,
baselines."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snpgen_core.models import (Denoiser, DenoiserConfig, DiffusionConfig, GaussianDiffusion, GenotypeVAE,
                                IndependentSNPs, LatentGaussian, NoiseSchedule, SamplingOptions, VAEConfig,
                                reconstruction_report, sample_genotypes)
from snpgen_core.models.group_mix import largest_remainders
from snpgen_core.models.vae import one_hot_genotypes


def test_one_hot_genotypes__known_answer_and_missing_is_all_zero():
    x = torch.tensor([[0, 1, 2, -1]], dtype=torch.int8)
    expected = torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]], dtype=torch.float32)
    assert torch.equal(one_hot_genotypes(x), expected)


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_vae__shapes(encoder):
    vae = GenotypeVAE(VAEConfig(n_snps=37, latent_dim=5, hidden=32, encoder=encoder, pheno_kind="categorical",
                                n_classes=4))
    x = torch.randint(-1, 3, (6, 37), dtype=torch.int8)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (6, 5)
    trait = torch.tensor([0, 1, 2, 3, float("nan"), 1])
    assert vae.decoder.logits(x, vae.decoder_input(mu, trait)).shape == (6, 37, 3)
    assert vae.sample_genotypes(mu, trait, torch.Generator().manual_seed(0)).shape == (6, 37)
    out = vae.training_loss((x, torch.tensor([0, 1, 2, 3, float("nan"), 1])), epoch=0)
    assert set(out) == {"loss", "recon", "kl", "pheno", "pcs"} and all(torch.isfinite(v) for v in out.values())


def test_vae_set_trait_share__shrinks_towards_the_class_share_mix_and_at_zero_the_trait_stops_mattering():
    """The trait average is the class embeddings mixed by the training classes' shares (a quantitative trait: the
    embedding of its mean); at share 0 cases and controls with the same latent and seed get the same genotypes, at
    share 1 they do not, and a VAE without the decoder's trait path refuses shares."""
    torch.manual_seed(0)
    vae = GenotypeVAE(VAEConfig(n_snps=30, latent_dim=3, hidden=16, pheno_kind="binary", n_classes=2,
                                window=2)).eval()
    with torch.no_grad():
        vae.trait_embed.weight.mul_(20)  # a trait that moves every SNP
    vae.set_trait_share(np.zeros(30), np.array([0, 0, 0, 1, np.nan]))
    torch.testing.assert_close(vae.trait_base, 0.75 * vae.trait_embed.weight[0] + 0.25 * vae.trait_embed.weight[1])
    z = torch.randn(200, 3)
    draw = lambda y: vae.sample_genotypes(z, torch.full((200,), float(y)), torch.Generator().manual_seed(1))
    assert torch.equal(draw(0), draw(1))
    vae.set_trait_share(np.ones(30), np.array([0, 1]))
    assert not torch.equal(draw(0), draw(1))
    qt = GenotypeVAE(VAEConfig(n_snps=30, latent_dim=3, hidden=16, pheno_kind="quantitative", window=2)).eval()
    qt.set_trait_share(np.full(30, 0.5), np.array([1.0, 2.0, 3.0]))
    torch.testing.assert_close(qt.trait_base, qt.trait_embed(torch.tensor([[0.0, 1.0]]))[0])
    with pytest.raises(ValueError, match="does not see the trait"):
        GenotypeVAE(VAEConfig(n_snps=30, latent_dim=3, hidden=16, pheno_kind="binary", n_classes=2,
                              decoder_trait=False)).set_trait_share(np.ones(30), np.array([0, 1]))


def test_vae_decoder_latent__the_linear_path_is_affine_in_the_latent_and_the_mlp_is_not():
    torch.manual_seed(0)
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    for path in ("linear", "mlp"):
        decoder = GenotypeVAE(VAEConfig(n_snps=7, latent_dim=3, hidden=16, decoder_latent=path)).eval().decoder
        mixed = decoder.global_logits(0.3 * z1 + 0.7 * z2)
        affine = 0.3 * decoder.global_logits(z1) + 0.7 * decoder.global_logits(z2)
        assert torch.allclose(mixed, affine, atol=1e-5) == (path == "linear")
    with pytest.raises(ValueError, match="decoder latent path"):
        VAEConfig(n_snps=7, decoder_latent="conv")


def test_vae_loss__missing_genotypes_are_masked_out_of_the_reconstruction():
    torch.manual_seed(0)
    vae = GenotypeVAE(VAEConfig(n_snps=10, latent_dim=3, hidden=16, dropout=0.0, window=0)).eval()
    x = torch.randint(0, 3, (4, 10), dtype=torch.int8)
    x[0, 3] = x[2, 7] = x[3, 0] = -1
    out = vae.training_loss((x, torch.full((4,), float("nan"))), epoch=None)
    logits = vae.decoder.global_logits(vae.encode(x)[0])  # eval: z = posterior mean
    brute = 0.0
    for i in range(4):
        for j in range(10):
            if x[i, j] >= 0:
                brute += -F.log_softmax(logits[i, j], -1)[int(x[i, j])].item()
    assert out["recon"].item() == pytest.approx(brute / 4, rel=1e-5)


def test_vae_neighbour_prior__spread_over_the_training_individuals_and_off_without_them():
    # the Gaussian prior on the neighbour weights is decoder_l2 * sum (gain W)^2 over the whole training cohort: per
    # individual 1/N of it, so a cohort 10x smaller is pulled 10x harder; a DP run (no data seen) has none
    torch.manual_seed(0)
    config = VAEConfig(n_snps=6, latent_dim=2, hidden=8, dropout=0.0, window=2, decoder_l2=0.5, kl_warmup_epochs=0)
    vae = GenotypeVAE(config).eval()
    with torch.no_grad():
        vae.decoder.W.normal_()
    x = torch.randint(0, 3, (5, 6), dtype=torch.int8)
    batch = (x, torch.full((5,), float("nan")))
    squares = (config.decoder_gain * vae.decoder.W.detach()).pow(2).sum().item()
    assert squares > 100  # gain 10: the prior matters
    xs = x.numpy()

    def loss(data: np.ndarray, l2: float) -> float:
        vae.config.decoder_l2 = l2
        vae.init_from_data(data)  # the same genotype frequencies, hence the same output layer, for every size
        return vae.training_loss(batch)["loss"].item()

    for copies in (8, 80):  # 40 and 400 training individuals
        n = 5 * copies
        assert loss(np.repeat(xs, copies, 0), 0.5) - loss(np.repeat(xs, copies, 0), 0.0) == pytest.approx(
            0.5 * squares / n, rel=1e-4)
    assert loss(xs[:0], 0.5) == loss(xs[:0], 0.0)


def test_decoder_nonadditive_prior__zero_for_allelic_tables_and_known_for_one_cell():
    # a table that is row and column effects plus b (g - 1)(c - 1) carries no penalty; one cell of 1 in the corner
    # leaves 4/9 once double-centred, of which the bilinear term takes 1/4: 7/36
    torch.manual_seed(0)
    vae = GenotypeVAE(VAEConfig(n_snps=6, latent_dim=2, hidden=8, window=2, decoder_additive=1.0))
    dec, g = vae.decoder, torch.arange(3.0) - 1
    with torch.no_grad():
        dec.W.copy_((torch.randn(6, 2, 1, 1) * torch.outer(g, g) + torch.randn(6, 2, 3, 1)
                     + torch.randn(6, 2, 1, 3)) / dec.gain)
    assert dec.nonadditive_penalty().item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        dec.W.zero_()
        dec.W[3, 0, 2, 2] = 1.0 / dec.gain
    assert dec.nonadditive_penalty().item() == pytest.approx(7 / 36, rel=1e-5)
    with torch.no_grad():  # a slot masked out (SNP 0 has no neighbours) counts for nothing
        dec.W.zero_()
        dec.W[0, 0, 2, 2] = 1.0 / dec.gain
    assert dec.nonadditive_penalty().item() == 0.0


def test_vae_kl_weight__linear_warmup():
    vae = GenotypeVAE(VAEConfig(n_snps=4, kl_weight=0.5, kl_warmup_epochs=4, hidden=8))
    assert [vae.kl_beta(e) for e in range(6)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert vae.kl_beta(None) == 0.5


def test_vae_pheno_loss__quantitative_uses_standardised_trait():
    vae = GenotypeVAE(VAEConfig(n_snps=4, latent_dim=2, hidden=8, pheno_kind="quantitative")).eval()
    vae.init_from_data(np.zeros((3, 4), dtype=np.int8), np.array([10.0, 12.0, np.nan]))
    assert vae.pheno_mean.item() == 11.0 and vae.pheno_std.item() == 1.0
    z = torch.zeros(3, 2)
    pred = vae.pheno_head(z).squeeze(-1)[:2]
    expected = 0.5 * ((pred - torch.tensor([-1.0, 1.0])) ** 2).mean()
    assert vae.pheno_loss(z, torch.tensor([10.0, 12.0, float("nan")])).item() == pytest.approx(expected.item())


def test_init_from_data__output_bias_is_log_genotype_frequency():
    x = np.array([[0, 2], [0, 1], [1, -1], [0, 2]], dtype=np.int8)
    vae = GenotypeVAE(VAEConfig(n_snps=2, hidden=8))
    vae.init_from_data(x)
    probs = torch.softmax(vae.decoder.global_net[-1].bias.detach().view(3, 2).T, -1).numpy()
    counts = np.array([[3, 1, 0], [0, 1, 2]]) + 0.5
    np.testing.assert_allclose(probs, counts / counts.sum(1, keepdims=True), rtol=1e-5)


def test_sample_genotypes__frequencies_match_probabilities_and_argmax():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.05, 0.15, 0.8]])
    logits = p.log().expand(20000, 2, 3)
    draws = sample_genotypes(logits, generator=torch.Generator().manual_seed(1))
    assert draws.dtype == torch.int8 and draws.shape == (20000, 2)
    freq = torch.stack([(draws == g).float().mean(0) for g in range(3)], -1)
    assert torch.allclose(freq, p, atol=0.015)
    assert sample_genotypes(logits[:3], mode="argmax").tolist() == [[0, 2]] * 3
    cold = sample_genotypes(logits, generator=torch.Generator().manual_seed(1), temperature=0.05)
    assert (cold == torch.tensor([0, 2])).float().mean() > 0.999


def test_reconstruction_report__matches_brute_force():
    torch.manual_seed(0)
    x = np.random.default_rng(0).integers(0, 3, (50, 12)).astype(np.int8)
    x[3, 4] = -1
    vae = GenotypeVAE(VAEConfig(n_snps=12, latent_dim=4, hidden=16))
    torch.nn.init.normal_(vae.decoder.W)  # neighbours matter: each prediction uses the individual's own past
    report = reconstruction_report(vae, x, batch_size=7)
    with torch.no_grad():
        xt = torch.as_tensor(x)
        pred = vae.decoder.logits(xt, vae.encode(xt)[0]).argmax(-1).numpy()
    overall = report.query("maf_bin == 'all' and genotype == 'all'").iloc[0]
    called = x >= 0
    assert overall.n_genotypes == called.sum()
    assert overall.accuracy == pytest.approx((pred == x)[called].mean())
    het = report.query("maf_bin == 'all' and genotype == '1'").iloc[0]
    assert het.accuracy == pytest.approx((pred == 1)[x == 1].mean())
    per_bin = report[(report.maf_bin != "all") & (report.genotype == "all")]
    assert per_bin.n_snps.sum() == 12 and per_bin.n_genotypes.sum() == called.sum()


# ---------------------------------------------------------------------------------------------------------------
# Noise schedule and sampler


def test_noise_schedule__cosine_levels_and_add_noise():
    s = NoiseSchedule(1000, "cosine")
    ab = s.alphas_cumprod
    assert ab.shape == (1000,) and (ab[1:] < ab[:-1]).all() and ab[0] > 0.999 and ab[-1] < 1e-3
    x0, noise, t = torch.randn(5, 3), torch.randn(5, 3), torch.tensor([0, 10, 500, 900, 999])
    expected = ab[t].sqrt()[:, None] * x0 + (1 - ab[t]).sqrt()[:, None] * noise
    assert torch.allclose(s.add_noise(x0, noise, t), expected)


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_ddim_step__exact_prediction_recovers_the_clean_data(prediction):
    s = NoiseSchedule(1000, "linear")
    x0, noise = torch.randn(8, 4), torch.randn(8, 4)
    t = torch.full((8,), 600)
    x_t = s.add_noise(x0, noise, t)
    pred = s.velocity(x0, noise, t) if prediction == "v" else noise
    assert torch.allclose(s.step(pred, 600, -1, x_t, prediction)[0], x0, atol=1e-4)
    # one step to an intermediate time lands exactly on the same noise path
    assert torch.allclose(s.step(pred, 600, 200, x_t, prediction)[0], s.add_noise(x0, noise, torch.full((8,), 200)),
                          atol=1e-4)
    # and so does a second-order step: the x0 prediction of the step before is the same x0
    assert torch.allclose(s.step(pred, 600, 200, x_t, prediction, before=(x0, 0.3))[0],
                          s.add_noise(x0, noise, torch.full((8,), 200)), atol=1e-4)


class _GaussianOracle(torch.nn.Module):
    """The exact v-prediction for data x0 ~ N(m, s^2 I): E[x0 | x_t] is linear in x_t."""

    def __init__(self, schedule: NoiseSchedule, m: float, s: float, d: int):
        super().__init__()
        self.config = DenoiserConfig(latent_dim=d)
        self.schedule, self.m, self.s = schedule, m, s

    def forward(self, x, t, cond, covariates=None):
        ab = self.schedule.alphas_cumprod[t][:, None]
        x0 = self.m + ab.sqrt() * self.s ** 2 / (ab * self.s ** 2 + 1 - ab) * (x - ab.sqrt() * self.m)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def test_ddim_sampler__exact_denoiser_transports_noise_to_the_data_distribution():
    config = DiffusionConfig(schedule="cosine", sampling_steps=50, sampler="ddim")
    schedule = NoiseSchedule(config.timesteps, config.schedule)
    diffusion = GaussianDiffusion(_GaussianOracle(schedule, m=2.0, s=0.5, d=4), config)
    nan = torch.full((20000,), float("nan"))
    z = diffusion.sample(nan, guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, rel=0.04)  # first-order DDIM shrinks the spread by ~3% at 50 steps
    fine = diffusion.sample(nan, guidance=1.0, steps=400, generator=torch.Generator().manual_seed(0))
    assert abs(fine.std().item() - 0.5) < abs(z.std().item() - 0.5) / 4  # and converges with more steps


def test_dpm_solver__second_order_in_the_steps_and_closer_than_ddim_at_half_the_steps():
    """With the exact denoiser of a Gaussian, each draw's distance from the ODE's solution (1,000 steps, the same
    noise) falls about 4x when the steps double (second order; DDIM, first order, about 2x), and DPM-Solver++(2M) at
    25 steps is closer to it, and to its spread, than DDIM at 50."""
    nan = torch.full((4000,), float("nan"))

    def draw(sampler: str, steps: int) -> torch.Tensor:
        config = DiffusionConfig(schedule="cosine", sampler=sampler)
        diffusion = GaussianDiffusion(_GaussianOracle(NoiseSchedule(config.timesteps, config.schedule), m=2.0, s=0.5,
                                                      d=4), config)
        return diffusion.sample(nan, guidance=1.0, steps=steps, generator=torch.Generator().manual_seed(0)).double()

    solution = draw("dpm-solver++", 1000)
    assert solution.mean().item() == pytest.approx(2.0, abs=0.02) and solution.std().item() == pytest.approx(0.5,
                                                                                                              rel=0.01)
    error = {(s, k): (draw(s, k) - solution).abs().mean().item() for s in ("ddim", "dpm-solver++") for k in (25, 50)}
    assert 3.0 < error["dpm-solver++", 25] / error["dpm-solver++", 50] < 5.5
    assert 1.5 < error["ddim", 25] / error["ddim", 50] < 2.5
    assert error["dpm-solver++", 25] < error["ddim", 50] / 2
    spread = solution.std().item()  # the data's 0.5, up to the sampling noise of these 4,000 draws
    assert abs(draw("dpm-solver++", 25).std().item() - spread) < abs(draw("ddim", 50).std().item() - spread) / 2


class _MixtureOracle(torch.nn.Module):
    """The exact v-prediction for latents drawn from two isotropic Gaussian groups at -m and +m on the first axis
    (sd s), whose mix depends on the class: group B's share is ``share_b[c]``, and with the condition dropped (NaN)
    the classes' average. E[x0 | x_t, c] mixes each group's linear posterior mean by the group's posterior weight."""

    def __init__(self, schedule: NoiseSchedule, m: float, s: float, share_b: tuple[float, float], d: int = 2):
        super().__init__()
        self.config = DenoiserConfig(latent_dim=d, cond_kind="binary", n_classes=2)
        self.schedule, self.s = schedule, s
        self.centres = torch.zeros(2, d)
        self.centres[:, 0] = torch.tensor([-m, m])
        self.share_b = torch.tensor([*share_b, sum(share_b) / 2])  # class 0, class 1, unconditional

    def forward(self, x, t, cond, covariates=None):
        ab = self.schedule.alphas_cumprod[t][:, None].float()
        var = ab * self.s ** 2 + 1 - ab
        b = self.share_b[torch.nan_to_num(cond, nan=2.0).long()]
        weights = torch.stack([1 - b, b], 1).log() - ((x[:, None] - ab.sqrt()[:, None] * self.centres) ** 2).sum(
            -1) / (2 * var)
        post = torch.softmax(weights, 1)  # each group's posterior weight given x_t
        means = self.centres + (ab.sqrt() * self.s ** 2 / var)[:, None] * (x[:, None] - ab.sqrt()[:, None]
                                                                             * self.centres)
        x0 = (post[..., None] * means).sum(1)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def test_group_mix__guided_classes_keep_their_training_mix_of_latent_groups():
    """Guidance 2 pushes class 1 (60% group B in training) towards B and class 0 (30% B) away from it, the group
    that separates them; with the group mix kept, each class's draws hold its fitted share of each group exactly."""
    config = DiffusionConfig(schedule="cosine", sampling_steps=30)
    oracle = _MixtureOracle(NoiseSchedule(config.timesteps, config.schedule), m=3.0, s=0.6, share_b=(0.3, 0.6))
    diffusion = GaussianDiffusion(oracle, config)
    rng = np.random.default_rng(0)
    cond = np.repeat([0.0, 1.0], 1500)
    group = rng.random(3000) < np.where(cond == 1, 0.6, 0.3)
    latents = torch.as_tensor(rng.normal(0, 0.6, (3000, 2)) + np.where(group, 3.0, -3.0)[:, None] * [1, 0],
                              dtype=torch.float32)
    assert diffusion.fit_groups(latents, torch.full_like(latents, -30.0), torch.as_tensor(cond)) == 2
    b = int(diffusion.group_mix.predict_groups(torch.tensor([[3.0, 0.0]]))[0])  # the mixture's label of group B
    assert diffusion.group_mix.shares[:, b].tolist() == pytest.approx([0.3, 0.6], abs=0.03)

    ask = torch.tensor([0.0] * 400 + [1.0] * 600 + [float("nan")] * 50)
    shares = {}
    for keep in (False, True):
        z = diffusion.sample(ask, guidance=2.0, generator=torch.Generator().manual_seed(1), group_mix=keep)
        groups = diffusion.group_mix.predict_groups(z)
        shares[keep] = [float((groups[ask == c] == b).float().mean()) for c in (0, 1)]
        if keep:
            for c, n in ((0, 400), (1, 600)):  # exactly the quota of the fitted shares
                quota = largest_remainders(diffusion.group_mix.shares[c, :2], n)
                assert torch.equal(torch.bincount(groups[ask == c], minlength=2), quota)
        again = diffusion.sample(ask, guidance=2.0, generator=torch.Generator().manual_seed(1), group_mix=keep)
        assert torch.equal(z, again) and torch.isfinite(z).all()
    assert shares[False][1] > 0.68 and shares[False][0] < 0.22  # guidance sharpens the classes' difference
    assert shares[True] == pytest.approx(diffusion.group_mix.shares[:, b].tolist(), abs=0.003)
    # a group the guided prior hardly reaches (guidance 6: class 0's B ~1%) is filled from the plain conditional
    far = {}
    for keep in (False, True):
        z = diffusion.sample(ask, guidance=6.0, generator=torch.Generator().manual_seed(1), group_mix=keep)
        far[keep] = float((diffusion.group_mix.predict_groups(z)[ask == 0] == b).float().mean())
    assert z.shape == (1050, 2) and torch.isfinite(z).all()
    assert far[False] < 0.05 and far[True] == pytest.approx(diffusion.group_mix.shares[0, b].item(), abs=0.04)


def test_group_mix__labels_equal_sklearns_and_one_group_or_no_classes_fit_nothing():
    from snpgen_core.models.group_mix import GroupMix, mixture_by_bic

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 4, (3, 5))
    truth = rng.integers(0, 3, 900)
    x = torch.as_tensor(centres[truth] + rng.normal(0, 1, (900, 5)) @ np.diag([1, 0.5, 2, 1, 1]),
                        dtype=torch.float32)
    cond = torch.as_tensor((rng.random(900) < np.array([0.1, 0.5, 0.9])[truth]).astype(float))
    mix = GroupMix(5, 2)
    assert mix.fit(x, cond, seed=0) == 3 and mix.fitted
    labels = mix.predict_groups(x).numpy()
    points = x.double().numpy() - x.double().numpy().mean(0)
    sk = mixture_by_bic(points @ mix.axes.double().numpy(), seed=0)
    assert (labels == sk.predict(points @ mix.axes.double().numpy())).mean() > 0.999  # float32 against float64
    assert len(set(zip(labels, truth))) == 3  # the three planted groups, up to their order
    for c in (0, 1):  # each class's share of each group, as counted
        mine = labels[cond.numpy() == c]
        assert mix.shares[c, :3].numpy() == pytest.approx(np.bincount(mine, minlength=3) / len(mine), abs=1e-6)
    one = GroupMix(5, 2)
    assert one.fit(torch.randn(900, 5), cond) == 1 and not one.fitted
    assert GroupMix(5, 0).fit(x, cond) == 1  # a quantitative trait: no classes, no groups


def test_largest_remainders__known_answers():
    assert largest_remainders(torch.tensor([0.5, 0.3, 0.2]), 7).tolist() == [4, 2, 1]  # 3.5 2.1 1.4
    assert largest_remainders(torch.tensor([1.0, 1.0, 1.0]), 10).tolist() == [4, 3, 3]  # a tie goes to the first
    assert largest_remainders(torch.tensor([0.25, 0.0, 0.75]), 4).tolist() == [1, 0, 3]
    assert largest_remainders(torch.tensor([0.6, 0.4]), 0).tolist() == [0, 0]


def test_diffusion_state__a_run_written_before_the_groups_loads_without_them():
    den = Denoiser(DenoiserConfig(latent_dim=3, hidden=8, depth=1, cond_kind="binary", n_classes=2))
    state = {k: v for k, v in GaussianDiffusion(den, DiffusionConfig()).state_dict().items()
             if not k.startswith("group_mix.")}
    fresh = GaussianDiffusion(Denoiser(DenoiserConfig(latent_dim=3, hidden=8, depth=1, cond_kind="binary",
                                                      n_classes=2)), DiffusionConfig())
    fresh.load_state_dict(state)
    assert not fresh.group_mix.fitted


def test_diffusion_sample__seeded_and_standardisation_round_trip():
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=3, hidden=16, depth=1, cond_kind="binary", n_classes=2))
    for p in den.parameters():  # the zero-initialised output head would leave every sample at 0
        torch.nn.init.normal_(p, std=0.3)
    diffusion = GaussianDiffusion(den, DiffusionConfig(sampling_steps=5)).eval()
    cond = torch.tensor([0.0, 1.0, float("nan"), 1.0] * 50)
    standard = diffusion.sample(cond, generator=torch.Generator().manual_seed(3))  # mean 0, sd 1: no rescaling
    assert standard.std(0).min().item() > 0.1
    mean, std = torch.tensor([10.0, -5.0, 0.0]), torch.tensor([2.0, 1.0, 3.0])
    diffusion.latent_mean.copy_(mean)
    diffusion.latent_std.copy_(std)
    a = diffusion.sample(cond, generator=torch.Generator().manual_seed(3))
    b = diffusion.sample(cond, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # the network works in standardised units; samples come back in the latents' own: x * std + mean, per dimension
    assert torch.allclose(a, standard * std + mean, atol=1e-5)


def test_condition_embedding__nan_takes_the_null_token():
    den = Denoiser(DenoiserConfig(latent_dim=2, hidden=8, cond_kind="categorical", n_classes=3))
    e = den.condition(torch.tensor([0.0, 2.0, float("nan")]))
    assert torch.equal(e[2], den.condition.classes.weight[3])
    assert torch.equal(e[0], den.condition.classes.weight[0]) and not torch.equal(e[0], e[1])
    q = Denoiser(DenoiserConfig(latent_dim=2, hidden=8, cond_kind="quantitative"))
    eq = q.condition(torch.tensor([0.3, float("nan")]))
    assert torch.equal(eq[1], q.condition.null) and not torch.equal(eq[0], eq[1])


@pytest.mark.parametrize("kind,c", [
    ("binary", [0.0, 1.0, float("nan"), 1.0, 0.0, float("nan")]),  # grouped by condition
    ("binary", [1.0, 1.0, 1.0]),  # one condition: its embedding broadcast
    ("quantitative", [*np.linspace(-2, 2, 20), float("nan")]),  # too many values to group: one embedding per row
])
def test_denoiser__shared_timestep_fast_path_equals_per_row_embeddings(kind, c):
    from snpgen_core.models.denoiser import timestep_embedding

    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=3, hidden=16, depth=2, cond_kind=kind, n_classes=2))
    for p in den.parameters():
        torch.nn.init.normal_(p, std=0.3)
    c = torch.tensor(c, dtype=torch.float32)
    x, t = torch.randn(len(c), 3), torch.full((len(c),), 321)
    emb = F.silu(den.time_mlp(timestep_embedding(t, den.config.time_dim)) + den.condition(c))
    h = den.inp(x)
    for block in den.blocks:
        h = block(h, emb)
    with torch.no_grad():
        assert torch.allclose(den(x, t, c), den.out(den.out_norm(h)), atol=1e-5)


def test_guidance__one_is_conditional_zero_is_unconditional_and_linear_between():
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=3, hidden=16, depth=1, cond_kind="binary", n_classes=2))
    for p in den.parameters():  # the zero-initialised output would hide any difference
        torch.nn.init.normal_(p, std=0.3)
    diffusion = GaussianDiffusion(den, DiffusionConfig()).eval()
    x, t, c = torch.randn(4, 3), torch.full((4,), 500), torch.tensor([0.0, 1.0, 1.0, 0.0])
    with torch.no_grad():
        cond, null = den(x, t, c), den(x, t, torch.full_like(c, float("nan")))
        assert torch.allclose(diffusion._guided(x, t, c, None, 1.0), cond, atol=1e-5)
        assert torch.allclose(diffusion._guided(x, t, c, None, 0.0), null, atol=1e-5)
        assert torch.allclose(diffusion._guided(x, t, c, None, 3.0), null + 3 * (cond - null), atol=1e-4)


def test_diffusion_training_loss__finite_and_covariates_condition_the_denoiser():
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=4, hidden=16, depth=1, cond_kind="quantitative", n_covariates=2))
    for p in den.parameters():  # the zero-initialised output head would hide what the covariates change
        torch.nn.init.normal_(p, std=0.3)
    diffusion = GaussianDiffusion(den, DiffusionConfig())
    mu, lv = torch.randn(32, 4), torch.full((32, 4), -2.0)
    cond, cov = torch.randn(32) * 5 + 3, torch.randn(32, 2) * 4 + 1
    diffusion.set_statistics(mu, lv, cond, cov)
    assert diffusion.cond_mean.item() == pytest.approx(cond.mean().item(), rel=1e-5)
    assert torch.allclose(diffusion.cov_mean, cov.mean(0), rtol=1e-5)
    assert torch.allclose(diffusion.cov_std, cov.std(0, unbiased=False), rtol=1e-5)
    expected_std = (mu.var(0, unbiased=False) + math.exp(-2.0)).sqrt()
    assert torch.allclose(diffusion.latent_std, expected_std, rtol=1e-5)

    def loss(covariates):
        torch.manual_seed(1)  # the same timesteps, noise and condition dropout every time
        return diffusion.training_loss((mu, lv, cond, covariates))["loss"]

    with_cov = loss(cov)
    assert torch.isfinite(with_cov) and with_cov.item() > 0
    assert with_cov.item() == loss(cov.clone()).item()
    assert with_cov.item() != loss(cov.flip(0)).item()  # other covariates, other predictions: they are used
    x, t, c = torch.randn(4, 4), torch.full((4,), 500), torch.zeros(4)
    with torch.no_grad():
        assert not torch.allclose(den(x, t, c, cov[:4]), den(x, t, c, cov[4:8]))


def test_denoiser__covariates_not_given_are_unknown_for_every_row():
    """A denoiser trained with covariates and called without them (calibration draws, the shadow models' retraining)
    sees the null covariate embedding it trained with for dropped rows, not an embedding it never met: the same
    prediction as all-NaN covariates, on the sampling path (one timestep) and the training one."""
    torch.manual_seed(0)
    den = Denoiser(DenoiserConfig(latent_dim=4, hidden=16, depth=1, cond_kind="binary", n_classes=2, n_covariates=2))
    for p in den.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x, c = torch.randn(6, 4), torch.tensor([0.0, 1.0, float("nan"), 0.0, 1.0, 1.0])
    unknown, cov = torch.full((6, 2), float("nan")), torch.randn(6, 2)
    with torch.no_grad():
        for t in (torch.full((6,), 300), torch.arange(6) * 100):
            assert torch.allclose(den(x, t, c, None), den(x, t, c, unknown), atol=1e-6)
            assert not torch.allclose(den(x, t, c, None), den(x, t, c, cov))


def test_calibration_draws__covariates_come_from_the_training_rows_of_their_conditions():
    from snpgen_core.models.generators import _seeded_mix

    cond = np.arange(50, dtype=float) % 5
    covariates = np.column_stack([np.arange(50.0), -np.arange(50.0)])
    mix, _, cov = _seeded_mix(cond, 200, 3, "cpu", covariates)
    rows = cov[:, 0].long().numpy()
    assert torch.equal(mix, torch.as_tensor(cond[rows], dtype=torch.float32)) and torch.equal(cov[:, 1], -cov[:, 0])
    assert len(np.unique(rows)) > 40  # drawn over the training rows, with their own conditions
    same, _, none = _seeded_mix(cond, 200, 3, "cpu")
    assert none is None and torch.equal(same, mix)  # without covariates: the draw of the conditions is unchanged


# ---------------------------------------------------------------------------------------------------------------
# Baselines


def test_independent_snps__fit_is_per_group_genotype_frequency():
    x = np.array([[0, 2], [0, 1], [1, -1], [2, 2], [0, 0]], dtype=np.int8)
    cond = np.array([0, 0, 0, 1, np.nan])
    model = IndependentSNPs(2, "binary").fit(x, cond)
    np.testing.assert_allclose(model.probs[0].numpy(), [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(model.probs[1].numpy(), [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(model.probs[2].numpy(), [[0.6, 0.2, 0.2], [0.25, 0.25, 0.5]])  # pooled
    draws = model.sample(torch.full((4000,), 0.0), torch.Generator().manual_seed(0), SamplingOptions())
    assert (draws[:, 0] == 0).float().mean().item() == pytest.approx(2 / 3, abs=0.03)
    assert set(draws[:, 1].tolist()) == {1, 2}


def test_independent_snps__quantitative_bins_by_training_quantiles():
    rng = np.random.default_rng(0)
    y = rng.normal(size=1000)
    x = (y[:, None] > 0).astype(np.int8) * 2  # genotype 2 exactly when y > 0
    model = IndependentSNPs(1, "quantitative", n_bins=4).fit(x, y)
    np.testing.assert_allclose(model.edges.numpy(), np.quantile(y, [0.25, 0.5, 0.75]), rtol=1e-5)
    g = torch.Generator().manual_seed(0)
    assert model.sample(torch.tensor([-3.0] * 50), g, SamplingOptions()).eq(0).all()
    assert model.sample(torch.tensor([3.0] * 50), g, SamplingOptions()).eq(2).all()


def test_latent_gaussian__recovers_class_means_and_quantitative_slope():
    gen = torch.Generator().manual_seed(0)
    cls = torch.randint(0, 2, (4000,), generator=gen).float()
    mu = torch.randn(4000, 2, generator=gen) * 0.5 + cls[:, None] * torch.tensor([3.0, -1.0])
    lv = torch.full((4000, 2), math.log(0.25))
    model = LatentGaussian(2, "binary").fit(mu, lv, cls)
    assert torch.allclose(model.mean[1], torch.tensor([3.0, -1.0]), atol=0.05)
    z = model.sample_latents(torch.zeros(4000), gen)
    assert torch.allclose(z.var(0), torch.tensor([0.5, 0.5]), rtol=0.1)  # 0.25 (means) + 0.25 (posterior)

    y = torch.randn(4000, generator=gen)
    mu_q = y[:, None] * torch.tensor([2.0, 0.0]) + 0.1 * torch.randn(4000, 2, generator=gen)
    q = LatentGaussian(2, "quantitative").fit(mu_q, torch.full((4000, 2), -10.0), y)
    assert torch.allclose(q.slope, torch.tensor([2.0, 0.0]), atol=0.02)
    zq = q.sample_latents(torch.full((2000,), 1.5), gen)
    assert zq[:, 0].mean().item() == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("kind,n_classes,trait", [("binary", 2, [0.0, 1.0]), ("quantitative", 0, [-2.0, 3.0])])
def test_vae_decoder_trait__the_decoder_sees_the_trait_and_unknown_differs(kind, n_classes, trait):
    vae = GenotypeVAE(VAEConfig(n_snps=5, latent_dim=3, hidden=16, pheno_kind=kind, n_classes=n_classes)).eval()
    z = torch.zeros(3, 3)
    h = vae.decoder_input(z, torch.tensor(trait + [float("nan")]))
    assert h.shape == (3, 3 + vae.config.trait_dim)
    assert not torch.allclose(h[0], h[1]) and not torch.allclose(h[0], h[2]) and not torch.allclose(h[1], h[2])
    off = GenotypeVAE(VAEConfig(n_snps=5, latent_dim=3, hidden=16, pheno_kind=kind, n_classes=n_classes,
                                decoder_trait=False))
    assert off.decoder_input(z, torch.tensor(trait + [float("nan")])) is z


def test_vae_pc_head__targets_are_the_training_pcs_with_unit_variance_and_old_runs_have_no_buffers():
    rng = np.random.default_rng(0)
    n, m = 400, 30
    pop = rng.integers(0, 2, n)  # two populations: PC1 separates them
    p = np.where(pop[:, None] == 1, rng.uniform(0.1, 0.4, m), rng.uniform(0.5, 0.9, m))
    x = rng.binomial(2, p).astype(np.int8)
    vae = GenotypeVAE(VAEConfig(n_snps=m, latent_dim=4, hidden=16, pc_components=3))
    vae.init_from_data(x)
    # independent: SVD of the standardised matrix
    mean = x.mean(0)
    z = (x - mean) / np.sqrt(2 * (mean / 2) * (1 - mean / 2))
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    axes = vae.pc_axes.numpy()
    for k in range(3):
        assert abs(float(axes[:, k] @ vt[k])) > 0.999
    assert np.allclose(vae.pc_sd.numpy(), s[:3] / np.sqrt(n), rtol=1e-4)
    t = torch.as_tensor(x)
    scores = ((t.float() - vae.pc_mean) / vae.pc_scale) @ vae.pc_axes / vae.pc_sd
    assert np.allclose(scores.var(0, unbiased=False).numpy(), 1.0, atol=1e-4)
    assert abs(np.corrcoef(scores[:, 0].numpy(), pop)[0, 1]) > 0.9
    # the loss is the head's squared error on those scores (a head outputting 0: their mean square, 1)
    torch.nn.init.zeros_(vae.pc_head.weight)
    torch.nn.init.zeros_(vae.pc_head.bias)
    assert float(vae.pc_loss(torch.zeros(n, 4), t)) == pytest.approx(float((scores ** 2).mean()), rel=1e-5)
    # a VAE without the head has neither the head nor its buffers (runs written before it still load)
    plain = GenotypeVAE(VAEConfig(n_snps=m, latent_dim=4, hidden=16))
    assert plain.pc_head is None and not any(k.startswith("pc_") for k in plain.state_dict())
