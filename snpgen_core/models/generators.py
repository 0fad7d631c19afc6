"""The one interface every genotype generator offers, and the latent-diffusion generator (our model).

``Generator.sample(cond, generator, options, covariates=None)`` turns conditions (n,) float (class codes 0..k-1
for a binary or categorical trait, the raw value for a quantitative one, NaN = unconditional) into dosages (n, m)
int8 (copies of the panel's a1 allele), drawing all randomness from the ``torch.Generator``. ``covariates``
(n, c) float (``covariates.py``; a NaN row = unknown) condition the latent diffusion of a run trained with them;
the baselines do not model covariates and ignore them. Benchmarks loop over generators
through this interface; ``generation.generate`` batches and streams it to PLINK.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from .diffusion import GaussianDiffusion
from .vae import GenotypeVAE


@dataclass
class SamplingOptions:
    """Knobs of sampling; each generator uses those that apply to it."""

    guidance: float = 2.0  # classifier-free guidance scale (diffusion only); 1 = plain conditional
    steps: int | None = None  # DDIM steps (diffusion only); None = the trained default
    temperature: float = 1.0  # softmax temperature of the genotype probabilities
    mode: str = "probabilities"  # "probabilities" (draw genotypes) or "argmax"
    latent_noise: float = 0.0  # Gaussian noise added to sampled latents, in units of the latents' sd (privacy)


def perturb_latents(z: torch.Tensor, scale: torch.Tensor, options: SamplingOptions,
                    generator: torch.Generator) -> torch.Tensor:
    """z + latent_noise * scale * N(0, I): blurs sampled latents away from those of training individuals."""
    if options.latent_noise <= 0:
        return z
    noise = torch.randn(z.shape, generator=generator, device=z.device)
    return z + options.latent_noise * scale * noise


class Generator(Protocol):
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:  # (n,) [, (n, c)] -> (n, m) int8
        ...


class LatentDiffusion:
    """Diffusion-sampled latents decoded by the VAE: noise -> DDIM -> latent -> decoder -> genotypes."""

    def __init__(self, vae: GenotypeVAE, diffusion: GaussianDiffusion):
        self.vae = vae
        self.diffusion = diffusion

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:
        self.vae.eval()
        self.diffusion.eval()
        z = self.diffusion.sample(cond, covariates=covariates, guidance=options.guidance, steps=options.steps,
                                  generator=generator)
        z = perturb_latents(z, self.diffusion.latent_std, options, generator)
        return self.vae.sample_genotypes(z, cond, generator, temperature=options.temperature,
                                         mode=options.mode)


def _shares(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) int8 dosages (-1 missing) -> (m, 3) genotype frequencies among called genotypes, and the number of
    called genotypes (m, 1)."""
    counts = np.stack([(dosages == g).sum(0) for g in range(3)], axis=1)
    called = np.maximum(counts.sum(1, keepdims=True), 1)
    return counts / called, called


@torch.no_grad()
def calibrate_marginals(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, *,
                        rounds: int = 3, seed: int = 0, max_draws: int = 20_000) -> dict:
    """Bring the genotype frequencies that ``generator`` (which decodes through ``vae``) samples towards those of
    its training individuals ``dosages`` (n, m), with their conditions ``cond`` (n,), by the decoder's
    ``calibration`` (added to its logits).

    Why: the decoder and the prior are fitted for likelihood, and their sampled genotype frequencies end up 1.3-1.5x
    further from the training ones than a fresh real sample's are. But the training frequencies carry their own
    sampling noise, and matching that noise pulls synthetic people towards training people (the no-copy floor).
    So the target is shrunk towards the model's own frequencies q, genotype by genotype, by how much of the
    difference sampling noise explains (empirical Bayes, as James-Stein): target = q + lambda (p - q) with
    lambda = tau^2 / (tau^2 + p (1 - p) / n_called), tau^2 the model's squared error beyond both cohorts' sampling
    noise, averaged over the panel. Then ``rounds`` times: draw a cohort with the training mix of conditions (4 n
    individuals, at least 4,000, at most ``max_draws``) and add log(target / sampled) to the calibration.

    Returns {"rounds", "draws", "shrinkage" (mean lambda), "mae_before", "mae_after"}: the mean absolute
    difference between sampled and training genotype frequencies in the first draw and in a last draw after the
    last correction."""
    p, called = _shares(dosages)
    draws = int(min(max(4 * len(dosages), 4_000), max_draws))
    rng = np.random.default_rng(seed)
    calibration = vae.decoder.calibration
    floor = 0.5 / max(len(dosages), 1)  # half a training individual: no log of zero

    def draw(r: int) -> np.ndarray:
        mix = torch.as_tensor(cond[rng.integers(0, len(cond), draws)], dtype=torch.float32, device=calibration.device)
        rng_r = torch.Generator(device=mix.device).manual_seed(seed + r)
        return _shares(generator.sample(mix, rng_r, SamplingOptions()).cpu().numpy())[0]

    q = draw(0)
    noise = p * (1 - p) / called
    tau2 = max(float(np.mean((p - q) ** 2 - noise - q * (1 - q) / draws)), 0.0)
    shrink = tau2 / (tau2 + noise) if tau2 > 0 else np.zeros_like(p)
    target = q + shrink * (p - q)
    target = np.log(target / target.sum(1, keepdims=True) + floor)
    before = sampled = q
    for r in range(rounds):
        calibration.add_(torch.as_tensor(target - np.log(sampled + floor), dtype=torch.float32,
                                         device=calibration.device))
        sampled = draw(r + 1)
    return {"rounds": rounds, "draws": draws, "shrinkage": float(shrink.mean()),
            "mae_before": float(np.abs(before - p).mean()), "mae_after": float(np.abs(sampled - p).mean())}
