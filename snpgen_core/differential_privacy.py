"""Differential privacy: DP-SGD for ``training.fit`` and (epsilon, delta) accounting across the training stages.

DP-SGD (Abadi et al. 2016) as Opacus runs it: each step draws a batch by Poisson sampling (each training
individual joins with probability q = 1 / steps per epoch), clips every individual's gradient to norm ``C``,
adds Gaussian noise of standard deviation ``sigma * C`` to their sum and divides by the expected batch size q n.
Per-individual gradients are computed one individual at a time through the model's own ``training_loss`` (a batch
of one), so any model works as written: Opacus's layer-wise grad samplers see only ``forward`` calls, and the
decoder uses its per-SNP weights in ``log_prob`` and the VAE's trait head sees only the individuals with a known
trait. Opacus's RDP accountant composes every step of both stages (the VAE, then the denoiser on the VAE's
latents of the same individuals) into one (epsilon, delta).

Budget split: each stage's noise multiplier is first set so that the stage alone spends its share of epsilon
(``DPConfig.vae_share`` for the VAE, the rest for the denoiser); both are then lowered by one common factor until
the composition of all planned steps meets the target (RDP composition is tighter than adding the two stages'
epsilons, so each stage ends up spending more than its plain share alone, in the same proportion of noise).

What the guarantee covers: the weights of the VAE and the denoiser, hence every cohort sampled from the
``diffusion`` generator, with respect to the training individuals. Not covered (``_not_covered``): the choice of
the SNP panel (GWAS, QC and clumping on the training individuals), the run's validation individuals (early-stopping
losses and the privacy check are recorded, never used to choose weights in a DP run), a quantitative trait's
mean and sd, and the covariate summaries that ``config.json`` keeps for generation. A class trait's counts there
(generation's default mix) carry Gaussian noise within the budget (``counts_multiplier``, 1% of it).
Data-dependent starting values (genotype frequencies in the decoder's bias, latent and trait moments) are replaced
by fixed ones, and the baselines (``independent``, ``vae_gaussian``) are fitted without DP:
``generation.generate`` refuses them for DP runs. The Poisson batches and the noise are drawn from generators
seeded from ``secrets`` (``secret_generator``), never from the run's seed: anyone who knew the seed could replay
the noise and remove it. So two DP runs with the same seed differ (torch's generators are not cryptographic: their
63-bit seed is the secret).

A run with ``model = "markov"`` (``models/markov.py``) spends the budget on one Gaussian mechanism instead (less
the class counts' 1%): noise on its genotype-pair counts, calibrated by the analytic Gaussian mechanism
(``gaussian_multiplier``).
"""
from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import InputError
from .options import option

ACCOUNTANT = "rdp"
COUNTS_SHARE = 0.01  # of the Gaussian privacy budget (mu^2, Dong, Roth and Su's GDP) spent on the trait's class counts


def secret_generator(device="cpu") -> torch.Generator:
    """A torch generator seeded from ``secrets`` (the operating system's randomness), for every DP draw: never
    the run's seed, which anyone could use to replay the noise and remove it."""
    return torch.Generator(device=device).manual_seed(secrets.randbits(63))


def _counts_step(counts_multiplier: float | None) -> list[tuple[float, float, int]]:
    """The trait counts' Gaussian mechanism as an RDP history entry (one release of everyone), or none."""
    return [] if counts_multiplier is None else [(counts_multiplier, 1.0, 1)]


def _not_covered(counts_noised: bool) -> str:
    """What a DP run releases outside its accounting (run.json's "not_covered")."""
    trait = "" if counts_noised else "a quantitative trait's mean and sd, "
    return ("the SNP panel's choice (GWAS, QC, clumping on the training individuals); the validation individuals; "
            f"{trait}the covariate summaries in config.json (generation's draws of covariates)")


def _counts_text(sd: float | None) -> str:
    return "" if sd is None else f", and the trait's class counts in config.json (Gaussian noise sd {sd:.3g})"


@dataclass
class DPConfig:
    epsilon: float = option(0.0, "differential privacy: DP-SGD for the VAE and the denoiser within this total "
                                 "epsilon, accounted over both stages (e.g. 3; smaller = more private; 0 = off)",
                            low=0.0)
    delta: float = option(0.0, "delta of the DP guarantee (0: 1 / (10 n) for n training individuals; at most "
                               "1 / n)", low=0.0, high=0.999999)
    max_grad_norm: float = option(1.0, "DP-SGD's per-individual gradient clipping norm", low=1e-6)
    vae_share: float = option(0.5, "share of epsilon planned for the VAE stage (the rest: the denoiser)",
                              low=0.01, high=0.99)

    def __post_init__(self) -> None:
        if self.epsilon is None or not math.isfinite(self.epsilon) or self.epsilon < 0:
            raise InputError(f"dp.epsilon = {self.epsilon} is impossible: epsilon must be positive",
                             hint="e.g. --dp-epsilon 3 (smaller = more private), or 0 for no differential privacy")
        if not (0 <= self.delta < 1):
            raise InputError(f"dp.delta = {self.delta} is impossible: delta must be in [0, 1)",
                             hint="leave it 0 for 1 / (10 n), or give at most 1 / n")
        if not self.max_grad_norm > 0:
            raise InputError(f"dp.max_grad_norm = {self.max_grad_norm} must be positive", hint="e.g. 1.0")
        if not (0 < self.vae_share < 1):
            raise InputError(f"dp.vae_share = {self.vae_share} must be strictly between 0 and 1", hint="e.g. 0.5")

    @property
    def enabled(self) -> bool:
        return self.epsilon > 0


@dataclass
class DPSGD:
    """DP-SGD settings of one ``fit``: noise multiplier sigma, clipping norm C, Poisson sample rate q."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float

    @property
    def steps_per_epoch(self) -> int:
        return max(1, round(1 / self.sample_rate))


def sample_rate(n: int, batch_size: int) -> float:
    """Poisson sample rate of a stage: 1 / (steps per epoch), as Opacus's DPDataLoader sets it."""
    return 1.0 / math.ceil(n / batch_size)


def check_individuals(n: int, batch_sizes: dict[str, int]) -> None:
    """InputError when DP-SGD cannot amplify by sampling: a batch must be a strict part of the individuals."""
    for field_name, b in batch_sizes.items():
        if n <= b:
            raise InputError(f"too few individuals for differential privacy: {n} training individuals, batch size "
                             f"{b} ({field_name}.batch_size)",
                             hint=f"give more individuals, or set {field_name}.batch_size below {n} (e.g. {max(1, n // 4)})")


def resolve_delta(config: DPConfig, n: int) -> float:
    """The delta of a run on ``n`` training individuals: ``config.delta``, or 1 / (10 n) when 0; at most 1 / n."""
    delta = config.delta or 1.0 / (10 * n)
    if delta > 1.0 / n:
        raise InputError(f"dp.delta = {delta:g} is above 1 / n = {1 / n:g} for {n} training individuals: it would "
                         "allow one individual's data to leak outright", hint=f"give at most {1 / n:g}, or 0 for 1/(10 n)")
    return delta


def epsilon_spent(history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of all steps in ``history`` ((noise multiplier, sample rate, steps) per stage), by
    Opacus's RDP accountant: one composition over every step of every stage."""
    from opacus.accountants import RDPAccountant

    steps = [(s, q, n) for s, q, n in history if n > 0]
    if not steps:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = list(steps)
    return float(accountant.get_epsilon(delta))


def plan(config: DPConfig, n: int, stages: dict[str, tuple[int, int]],
         counts_multiplier: float | None = None) -> dict[str, DPSGD]:
    """Noise multipliers for ``stages`` (name -> (batch size, epochs), the first getting ``vae_share`` of epsilon)
    such that all their steps, and the trait counts' Gaussian mechanism when ``counts_multiplier`` is given,
    together spend at most ``config.epsilon`` at the run's delta."""
    from opacus.accountants.utils import get_noise_multiplier

    delta = resolve_delta(config, n)
    names = list(stages)
    shares = [config.vae_share, 1 - config.vae_share] if len(names) == 2 else [1.0]
    rates = {k: sample_rate(n, b) for k, (b, _) in stages.items()}
    steps = {k: e * round(1 / rates[k]) for k, (_, e) in stages.items()}

    try:  # each stage's noise for its share of epsilon alone
        alone = {k: get_noise_multiplier(target_epsilon=share * config.epsilon, target_delta=delta,
                                         sample_rate=rates[k], steps=max(steps[k], 1), accountant=ACCOUNTANT,
                                         epsilon_tolerance=0.01)
                 for k, share in zip(names, shares)}
    except ValueError as err:  # Opacus: the target needs more noise than it searches
        raise InputError(f"epsilon {config.epsilon} cannot be reached with these epochs ({err})",
                         hint="give a larger --dp-epsilon or fewer --epochs") from None

    def spent(scale: float) -> float:
        return epsilon_spent([(alone[k] * scale, rates[k], steps[k]) for k in names] + _counts_step(counts_multiplier),
                             delta)

    hi = 1.0  # RDP composition usually costs less than the plain sum; the trait counts' share may tip it over
    while spent(hi) > config.epsilon:
        hi *= 1.25
        if hi > 100:
            raise InputError(f"epsilon {config.epsilon}: the stages' noise does not compose within the budget",
                             hint="give a larger --dp-epsilon or fewer --epochs")
    lo = 0.0  # both noises scaled by one factor, the least that keeps the composition within the budget
    for _ in range(20):  # to 1e-6 of the noise
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if spent(mid) <= config.epsilon else (mid, hi)
    best = {k: alone[k] * hi for k in names}
    return {k: DPSGD(best[k], config.max_grad_norm, rates[k]) for k in names}


def record(config: DPConfig, n: int, plans: dict[str, DPSGD], steps_run: dict[str, int],
           counts_multiplier: float | None = None) -> dict:
    """What ``run.json`` records of a DP run: the (epsilon, delta) spent over the steps actually run (and the trait
    counts' mechanism), the target, and each stage's noise, sample rate, steps and epsilon alone."""
    delta = resolve_delta(config, n)
    history = [(p.noise_multiplier, p.sample_rate, steps_run[k]) for k, p in plans.items()]
    history += _counts_step(counts_multiplier)
    return {
        "epsilon": epsilon_spent(history, delta), "delta": delta, "target_epsilon": config.epsilon,
        "accountant": ACCOUNTANT, "n_individuals": n, "max_grad_norm": config.max_grad_norm,
        "vae_share": config.vae_share,
        "stages": {k: {**asdict(p), "steps": steps_run[k],
                       "epsilon_alone": epsilon_spent([(p.noise_multiplier, p.sample_rate, steps_run[k])], delta)}
                   for k, p in plans.items()},
        "trait_counts_noise_sd": counts_multiplier,
        "covers": "the VAE and denoiser weights (the diffusion generator), for the training individuals"
                  + _counts_text(counts_multiplier),
        "not_covered": f"{_not_covered(counts_multiplier is not None)}; the baselines (independent, vae_gaussian)",
    }


# ---------------------------------------------------------------------------------------------------------------
# One Gaussian mechanism (the Markov chain's pair counts, models/markov.py)


def _gaussian_delta(multiplier: float, epsilon: float) -> float:
    """Delta of the Gaussian mechanism with noise sd ``multiplier`` x its L2 sensitivity, at ``epsilon``: the exact
    privacy profile (Balle and Wang 2018, Theorem 8)."""
    phi = lambda t: 0.5 * math.erfc(-t / math.sqrt(2.0))  # noqa: E731  standard normal CDF
    a, b = 1.0 / (2.0 * multiplier), epsilon * multiplier
    return max(phi(a - b) - math.exp(epsilon) * phi(-a - b), 0.0)


def gaussian_multiplier(epsilon: float, delta: float) -> float:
    """The least noise multiplier (sd / L2 sensitivity) that makes one Gaussian mechanism (epsilon, delta)-DP:
    the analytic Gaussian mechanism (Balle and Wang 2018), tighter than the classical sqrt(2 ln(1.25 / delta)) /
    epsilon and than an RDP bound for a single release."""
    lo, hi = 1e-3, 1e4  # delta falls as the noise grows
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if _gaussian_delta(mid, epsilon) <= delta else (mid, hi)
    return hi


def gaussian_epsilon(multiplier: float, delta: float) -> float:
    """Epsilon at ``delta`` of one Gaussian mechanism with noise multiplier ``multiplier`` (exact profile)."""
    lo, hi = 0.0, 1e3  # delta falls as epsilon grows
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _gaussian_delta(multiplier, mid) <= delta else (mid, hi)
    return hi


def counts_multiplier(config: DPConfig, n: int) -> float:
    """The noise multiplier of the trait's class counts (L2 sensitivity 1: an individual is in one class): a
    Gaussian mechanism with ``COUNTS_SHARE`` of the budget's mu^2 (noise sd 10x the budget's analytic Gaussian
    multiplier: 5 individuals at epsilon 8, 32 at epsilon 1, for n = 2,000)."""
    return gaussian_multiplier(config.epsilon, resolve_delta(config, n)) / math.sqrt(COUNTS_SHARE)


def noisy_counts(counts: list[int], multiplier: float, generator: torch.Generator, low: list[int]) -> list[int]:
    """``counts`` + N(0, multiplier^2) each, rounded and at least ``low`` (post-processing)."""
    noise = torch.randn(len(counts), generator=generator, dtype=torch.float64) * multiplier
    return [max(lo, int(round(c + float(e)))) for c, e, lo in zip(counts, noise, low)]


def markov_multiplier(config: DPConfig, n: int, with_counts: bool) -> float:
    """The pair counts' noise multiplier of a Markov-chain run: the whole budget, less the trait counts' share
    (Gaussian mechanisms compose exactly in mu-GDP: mu^2 adds)."""
    mu = 1.0 / gaussian_multiplier(config.epsilon, resolve_delta(config, n))
    return 1.0 / (mu * math.sqrt((1.0 - COUNTS_SHARE) if with_counts else 1.0))


def markov_record(config: DPConfig, n: int, multiplier: float, sensitivity: float,
                  counts_multiplier: float | None = None) -> dict:
    """What ``run.json`` records of a Markov-chain run with DP: one Gaussian mechanism on its pair counts (and one
    on the trait's class counts), composed exactly."""
    delta = resolve_delta(config, n)
    mu2 = 1.0 / multiplier ** 2 + (0.0 if counts_multiplier is None else 1.0 / counts_multiplier ** 2)
    return {
        "epsilon": gaussian_epsilon(1.0 / math.sqrt(mu2), delta), "delta": delta, "target_epsilon": config.epsilon,
        "accountant": "analytic Gaussian mechanism", "mechanism": "Gaussian noise on the genotype-pair counts",
        "n_individuals": n, "noise_multiplier": multiplier, "sensitivity": sensitivity,
        "count_noise_sd": multiplier * sensitivity, "trait_counts_noise_sd": counts_multiplier,
        "covers": "the Markov chain's genotype-pair counts (the markov generator), for the training individuals"
                  + _counts_text(counts_multiplier),
        "not_covered": f"{_not_covered(counts_multiplier is not None)}; the independent baseline",
    }


def private_gradients(model: nn.Module, batch: tuple[torch.Tensor, ...], epoch, params: list[nn.Parameter],
                      dp: DPSGD, n: int, autocast, noise: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Set ``p.grad`` of ``params`` to the DP-SGD gradient of ``batch`` (a Poisson sample: possibly empty): the sum
    of per-individual gradients, each clipped to ``dp.max_grad_norm``, plus N(0, (sigma C)^2) noise, divided by
    the expected batch size q n, drawn from ``noise`` (``training.fit``: a secretly seeded generator). Returns the
    batch's mean loss components (zeros for an empty batch)."""
    total = [torch.zeros_like(p) for p in params]
    sums: dict[str, torch.Tensor] = {}
    size = batch[0].shape[0]
    for i in range(size):  # one individual at a time: exact per-individual gradients for any loss
        with autocast():
            out = model.training_loss(tuple(t[i:i + 1] for t in batch), epoch)
        grads = torch.autograd.grad(out["loss"], params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))
        scale = float(torch.clamp(dp.max_grad_norm / (norm + 1e-6), max=1.0))
        torch._foreach_add_(total, grads, alpha=scale)
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
    std = dp.noise_multiplier * dp.max_grad_norm
    expected = dp.sample_rate * n
    for p, g in zip(params, total):
        p.grad = (g + torch.randn(g.shape, generator=noise, device=g.device, dtype=g.dtype) * std) / expected
    if size == 0:
        return {"loss": torch.zeros(())}
    return {k: v / size for k, v in sums.items()}
