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
