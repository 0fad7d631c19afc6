"""Conditional latent diffusion: the noise schedule, and ``GaussianDiffusion`` wrapping any denoiser.

The schedule (``NoiseSchedule``) knows the forward process and the sampler's ODE steps and nothing of networks; the
network (``models/denoiser.py``) knows nothing of the schedule. ``GaussianDiffusion(denoiser)`` joins them, in the
style of lucidrains' ``denoising-diffusion-pytorch``: ``training_loss(batch)`` returns the loss and ``sample(cond)``
returns latents.

Data: VAE latents (B, d), standardised inside with the stored ``latent_mean`` / ``latent_std`` of the training
latents, so that the diffusion works on roughly unit-variance data. With ``posterior_samples`` each training pass
draws a fresh ``z = mu + sigma * eps`` from the encoder's posterior (the distribution the decoder was trained on;
it also keeps the diffusion from learning the exact posterior means of individuals).

Forward process: ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (Ho et al. 2020), cosine ``abar`` (Nichol &
Dhariwal 2021). The network predicts ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0`` (Salimans & Ho 2022; stable
at both ends of the schedule) or ``eps``. Classifier-free guidance (Ho & Salimans 2022): conditions are dropped
with probability ``cond_drop`` in training; at sampling ``pred = pred_null + g * (pred_cond - pred_null)``.
Sampling solves the probability-flow ODE from Gaussian noise in ``sampling_steps`` steps with ``sampler``: the
multistep DPM-Solver++(2M) of Lu et al. (2022, arXiv:2211.01095), second order, on timesteps evenly spaced in
log signal-to-noise ratio; or deterministic DDIM (Song et al. 2021, eta = 0), its first-order case, on timesteps
evenly spaced in time (the default until 2026-12-06, at 50 steps). Against the ODE's solution (1,000 steps), on
nine trained runs, DPM-Solver++(2M) at 25 steps erred by a mean of 0.008-0.009 latent sd per coordinate and
spread the latents 0.7-1.0% too wide; DDIM at 50 steps, twice the work, by 0.018-0.020, 2.1-2.4% too narrow; their
releases read the same on every card row, within its noise (BENCHMARKS.md, fortieth pass).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..options import option
from .denoiser import Denoiser
from .group_mix import GroupMix

SAMPLER_NAMES = {"dpm-solver++": "DPM-Solver++(2M)", "ddim": "DDIM"}  # the ODE solvers of sampling, as written
SAMPLERS = tuple(SAMPLER_NAMES)
LOG_SNR_START = -5.0  # where DPM-Solver++'s grid starts: signal e^-5 (0.7%) of the noise (``sampling_timesteps``)
# classifier-free guidance of sampling (generate's, the app's and the run's own checks) where the run does not set
# it: a class condition's, and every trait's in a run trained before 2026-12-06 (``runs.run_config``)
CLASS_GUIDANCE = 1.5


def default_guidance(cond_kind: str) -> float:
    """The guidance a run samples at unless told: 1 (the plain conditional model) for a quantitative trait, whose
    release (in the training distribution) is not the condition but the trait model's draw given the genotypes, so
    a guided draw only sharpens the genotypes towards a value then not released (BENCHMARKS.md, forty-fourth pass,
    11 runs against 1.5: association copying lower on all 11; the AATS loss, DCR share, TSTR and detection within
    the draws' noise; 1000 Genomes phase 1's LD r ratio 0.03 lower); ``CLASS_GUIDANCE`` for a class, whose
    genotypes are drawn per class with each class's ancestry mix kept (guidance 1 raised the AATS loss on 5 of 8
    binary runs)."""
    return 1.0 if cond_kind == "quantitative" else CLASS_GUIDANCE


@dataclass
class DiffusionConfig:
    timesteps: int = option(1000, "diffusion timesteps T", low=2, high=100_000)
    schedule: str = option("cosine", "noise schedule", choices=("cosine", "linear"))
    prediction: str = option("v", "what the network predicts: v (velocity) or eps (noise)", choices=("v", "eps"))
    cond_drop: float = option(0.15, "classifier-free guidance: share of training examples seen unconditioned",
                              low=0.0, high=1.0)
    sampling_steps: int = option(25, "ODE steps when generating (default of snpgen generate --steps)", low=1,
                                 high=100_000)
    sampler: str = option("dpm-solver++", "ODE solver when generating: DPM-Solver++(2M), or DDIM (its first order; "
                          "the default before 2026-12-06, at 50 steps)", choices=SAMPLERS)
    guidance: float | None = option(None, "classifier-free guidance scale when generating (default of snpgen "
                                          "generate --guidance); none: 1 for a quantitative trait, 1.5 for a class",
                                    low=0.0, high=100.0, kind=float)
    posterior_samples: bool = option(True, "train on z ~ q(z|x) rather than on the posterior means")

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"noise schedule {self.schedule!r} unknown; choose 'cosine' or 'linear'")
        if self.prediction not in ("v", "eps"):
            raise ValueError(f"prediction target {self.prediction!r} unknown; choose 'v' or 'eps'")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r} unknown; choose from {SAMPLERS}")


class NoiseSchedule:
    """Cumulative signal levels ``abar_t`` for t = 0..T-1, with the forward noising and the ODE steps of sampling."""

    def __init__(self, timesteps: int = 1000, schedule: str = "cosine"):
        self.timesteps = timesteps
        if schedule == "cosine":
            s = 0.008
            steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        else:
            betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0).float()  # (T,)

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """abar at integer timesteps ``t`` (B,), with t = -1 meaning abar = 1 (clean data); shape (B, 1)."""
        ab = self.alphas_cumprod.to(like.device)[t.clamp(min=0)]
        return torch.where(t < 0, torch.ones_like(ab), ab).unsqueeze(-1)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; x0, noise (B, d), t (B,) int."""
        ab = self._abar(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def velocity(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v = sqrt(abar_t) noise - sqrt(1 - abar_t) x0."""
        ab = self._abar(t, x0)
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0

    def log_snr(self) -> torch.Tensor:
        """lambda_t = log(alpha_t / sigma_t) = log(abar_t / (1 - abar_t)) / 2 for t = 0..T-1, (T,) float64."""
        ab = self.alphas_cumprod.double()
        return 0.5 * torch.log(ab / (1 - ab))

    def sampling_timesteps(self, steps: int, spacing: str = "time") -> list[int]:
        """``steps`` timesteps from noisy to clean: evenly spaced from T-1 down to 0 (``spacing`` "time", DDIM's), or
        those nearest to log-SNRs evenly spaced from ``LOG_SNR_START`` (or lambda_{T-1} if higher) up to lambda_0
        ("log-snr", DPM-Solver++'s). Start there: the cosine schedule's last steps plunge to lambda = -9.9 as its
        betas are clipped, and a second-order step across that plunge spread the latents 1.5% too wide."""
        steps = max(1, min(steps, self.timesteps))
        if spacing == "log-snr":
            lam = self.log_snr()
            targets = torch.linspace(max(float(lam[-1]), LOG_SNR_START), float(lam[0]), steps, dtype=torch.float64,
                                     device="cpu")  # host numbers, as below
            return sorted({int(torch.argmin((lam - v).abs())) for v in targets}, reverse=True)
        grid = torch.linspace(0, self.timesteps - 1, steps, device="cpu")  # host numbers, whatever the default device
        return sorted({round(x) for x in grid.tolist()}, reverse=True)

    def step(self, pred: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor, prediction: str = "v",
             before: tuple[torch.Tensor, float] | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, float]]:
        """One step of the probability-flow ODE from timestep ``t`` to ``t_prev`` (-1 = the end) given the network
        output: (x at ``t_prev``, (this step's x0 prediction, its log-SNR step h), the ``before`` of the next step).
        With alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma) and h = lambda_prev - lambda:
        x_prev = (sigma_prev / sigma) x_t + alpha_prev (1 - e^-h) D. D = x0 is DDIM (and first-order DPM-Solver++);
        with ``before`` (the previous step's x0 and h), D = x0 + (x0 - x0_before) h / (2 h_before), the multistep
        second order of DPM-Solver++(2M) (Lu et al. 2022, algorithm 2); the last step is always first order."""
        ab = float(self.alphas_cumprod[t])
        ab_prev = 1.0 if t_prev < 0 else float(self.alphas_cumprod[t_prev])
        a, s, a_prev, s_prev = math.sqrt(ab), math.sqrt(1 - ab), math.sqrt(ab_prev), math.sqrt(1 - ab_prev)
        x0 = a * x_t - s * pred if prediction == "v" else (x_t - s * pred) / a
        decay = (s_prev * a) / (s * a_prev)  # e^-h, 0 at the end
        h = -math.log(decay) if decay > 0 else math.inf
        d = x0
        if before is not None and t_prev >= 0:
            d = x0 + (x0 - before[0]) * (h / (2 * before[1]))
        return (s_prev / s) * x_t + (a_prev * (1 - decay)) * d, (x0, h)


class GaussianDiffusion(nn.Module):
    """A denoiser trained and sampled as a conditional DDPM over standardised VAE latents."""

    def __init__(self, denoiser: Denoiser, config: DiffusionConfig):
        super().__init__()
        self.denoiser = denoiser
        self.config = config
        self.schedule = NoiseSchedule(config.timesteps, config.schedule)
        d = denoiser.config.latent_dim
        self.register_buffer("latent_mean", torch.zeros(d))
        self.register_buffer("latent_std", torch.ones(d))
        # standardisation of a quantitative condition and of covariates (identity for class codes)
        self.register_buffer("cond_mean", torch.zeros(()))
        self.register_buffer("cond_std", torch.ones(()))
        n_cov = denoiser.config.n_covariates
        self.register_buffer("cov_mean", torch.zeros(n_cov))
        self.register_buffer("cov_std", torch.ones(n_cov))
        classes = denoiser.config.n_classes if denoiser.config.cond_kind in ("binary", "categorical") else 0
        self.group_mix = GroupMix(d, classes)  # each class's mix of latent groups, kept when guided

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, value in self.group_mix.state_dict().items():  # runs written before 2026-12-05 have no groups
            state_dict.setdefault(f"{prefix}group_mix.{name}", torch.zeros_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def set_statistics(self, mu: torch.Tensor, logvar: torch.Tensor, cond: torch.Tensor,
                       covariates: torch.Tensor | None = None) -> None:
        """Record the moments of the aggregate posterior (mean of mu; variance = var(mu) + mean sigma^2) of the
        training latents, and those of a quantitative condition and of covariates (NaN ignored)."""
        self.latent_mean.copy_(mu.mean(0))
        self.latent_std.copy_((mu.var(0, unbiased=False) + logvar.exp().mean(0)).sqrt().clamp(min=1e-4))
        if self.denoiser.config.cond_kind == "quantitative":
            ok = cond[~torch.isnan(cond)]
            self.cond_mean.fill_(float(ok.mean()))
            self.cond_std.fill_(float(ok.std(unbiased=False)) or 1.0)
        if covariates is not None and covariates.shape[1]:
            self.cov_mean.copy_(torch.nanmean(covariates, 0))
            centred = torch.nan_to_num(covariates - self.cov_mean, nan=0.0)
            n_ok = (~torch.isnan(covariates)).sum(0).clamp(min=1)
            self.cov_std.copy_(((centred ** 2).sum(0) / n_ok).sqrt().clamp(min=1e-8))

    @torch.no_grad()
    def fit_groups(self, mu: torch.Tensor, logvar: torch.Tensor, cond: torch.Tensor, seed: int = 0) -> int:
        """Fit ``group_mix`` on one seeded posterior draw of each training latent (the distribution the prior
        learns), standardised as the prior's latents are (``set_statistics`` first), and the training conditions.
        Returns the number of groups (1: none kept)."""
        generator = torch.Generator().manual_seed(seed)
        z = mu.cpu() + torch.randn(mu.shape, generator=generator) * (0.5 * logvar.cpu()).exp()
        return self.group_mix.fit((z - self.latent_mean.cpu()) / self.latent_std.cpu(), cond.cpu(), seed)

    def keeps_group_mix(self, asked: bool, covariates: bool) -> bool:
        """Whether ``sample`` keeps each class's mix of latent groups: when ``asked``, the groups were fitted and no
        covariates condition the draw (they may carry ancestry themselves)."""
        return bool(asked) and not covariates and self.group_mix.fitted

    def _condition(self, cond: torch.Tensor, covariates: torch.Tensor | None):
        if self.denoiser.config.cond_kind == "quantitative":
            cond = (cond - self.cond_mean) / self.cond_std
        if covariates is not None:
            covariates = (covariates - self.cov_mean) / self.cov_std
        return cond, covariates

    def training_loss(self, batch: tuple[torch.Tensor, ...], epoch: float | None = None) -> dict[str, torch.Tensor]:
        """``batch`` = (mu (B, d), logvar (B, d), cond (B,) NaN = none[, covariates (B, c)]) -> {"loss"}: the mean
        squared error of the network's ``v`` (or ``eps``) prediction at a uniformly drawn timestep."""
        mu, logvar, cond = batch[0], batch[1], batch[2]
        covariates = batch[3] if len(batch) > 3 else None
        z = mu
        if self.config.posterior_samples:  # validation too (seeded by fit): the same objective as training
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        x0 = (z - self.latent_mean) / self.latent_std
        cond, covariates = self._condition(cond, covariates)
        if self.training and self.config.cond_drop > 0:
            drop = torch.rand(cond.shape, device=cond.device) < self.config.cond_drop
            cond = torch.where(drop, torch.full_like(cond, float("nan")), cond)
            if covariates is not None:
                covariates = torch.where(drop[:, None], torch.full_like(covariates, float("nan")), covariates)
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        target = self.schedule.velocity(x0, noise, t) if self.config.prediction == "v" else noise
        pred = self.denoiser(x_t, t, cond, covariates).float()
        return {"loss": F.mse_loss(pred, target)}

    def _guided(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, covariates, guidance: float):
        if guidance == 1.0:
            return self.denoiser(x, t, cond, covariates)
        null = torch.full_like(cond, float("nan"))
        if guidance == 0.0:
            return self.denoiser(x, t, null, None if covariates is None else torch.full_like(covariates, float("nan")))
        both_cov = None
        if covariates is not None:
            both_cov = torch.cat([covariates, torch.full_like(covariates, float("nan"))])
        out = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null]), both_cov)
        pred_cond, pred_null = out.chunk(2)
        return pred_null + guidance * (pred_cond - pred_null)

    @property
    def guidance(self) -> float:
        """The guidance scale ``sample`` uses unless told: the config's, else ``default_guidance`` of the trait."""
        given = self.config.guidance
        return default_guidance(self.denoiser.config.cond_kind) if given is None else given

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, *, covariates: torch.Tensor | None = None, guidance: float | None = None,
               steps: int | None = None, generator: torch.Generator | None = None,
               group_mix: bool = True, sampler: str | None = None) -> torch.Tensor:
        """Latents (n, d) for conditions ``cond`` (n,) (class codes or raw trait values; NaN = unconditional),
        by ``sampler`` (``SAMPLERS``) from Gaussian noise drawn with ``generator`` (``steps``, ``sampler``: None =
        the config's).
        ``guidance`` 1 = plain conditional model, 0 = unconditional, > 1 = stronger conditioning; None =
        ``self.guidance``. ``group_mix``:
        with fitted groups and no covariates, each class's latents keep the training class's mix of latent groups
        (``GroupMix.select``; a group that guidance hardly reaches is made up from the plain conditional,
        guidance 1)."""
        if sampler is not None and sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r} unknown; choose from {SAMPLERS}")
        guidance = self.guidance if guidance is None else guidance
        device = self.latent_mean.device
        cond = cond.to(device)
        covariates = None if covariates is None else covariates.to(device)

        def draw(c: torch.Tensor, plain: bool = False, cov: torch.Tensor | None = None) -> torch.Tensor:
            n, d = c.shape[0], self.denoiser.config.latent_dim
            x = torch.randn(n, d, generator=generator, device=device)
            c, cov = self._condition(c, cov)
            second_order = (sampler or self.config.sampler) == "dpm-solver++"
            ts = self.schedule.sampling_timesteps(steps or self.config.sampling_steps,
                                                  "log-snr" if second_order else "time")
            before = None
            for i, t in enumerate(ts):
                t_prev = ts[i + 1] if i + 1 < len(ts) else -1
                tt = torch.full((n,), t, device=device, dtype=torch.long)
                pred = self._guided(x, tt, c, cov, 1.0 if plain else guidance).float()
                x, this = self.schedule.step(pred, t, t_prev, x, self.config.prediction, before)
                before = this if second_order else None
            return x

        if self.keeps_group_mix(group_mix, covariates is not None):
            x = self.group_mix.select(cond, draw, generator)
        else:
            x = draw(cond, False, covariates)
        return x * self.latent_std + self.latent_mean
