"""Generative models over a SNP panel, one file each, every one with its config dataclass beside it.

    decoder.py     GenotypeDecoder: p(x | z) with each SNP depending on its preceding neighbours (window 0 = independent)
    vae.py         GenotypeVAE, VAEConfig: phenotype-supervised VAE, genotypes as 3-class categorical data
    denoiser.py    Denoiser, DenoiserConfig: residual MLP with timestep and condition embeddings
    diffusion.py   NoiseSchedule, GaussianDiffusion, DiffusionConfig: conditional DDPM on VAE latents (DPM-Solver++)
    generators.py  Generator (the shared sample interface), SamplingOptions, LatentDiffusion (our model)
    baselines.py   IndependentSNPs (the floor), LatentGaussian + VAEGaussian (the VAE alone)
    gan.py         ConditionalWGAN, GANConfig: conditional WGAN-GP (train --model wgan)
    markov.py      MarkovChainSNPs: first-order chain per trait class from pair counts (train --model markov; DP)
"""
from .baselines import IndependentSNPs, LatentGaussian, VAEGaussian
from .denoiser import Denoiser, DenoiserConfig
from .diffusion import DiffusionConfig, GaussianDiffusion, NoiseSchedule
from .generators import Generator, LatentDiffusion, SamplingOptions
from .markov import MarkovChainSNPs
from .decoder import GenotypeDecoder, sample_genotypes
from .vae import GenotypeVAE, VAEConfig, reconstruction_report

__all__ = [
    "IndependentSNPs", "LatentGaussian", "VAEGaussian", "Denoiser", "DenoiserConfig", "DiffusionConfig",
    "GaussianDiffusion", "NoiseSchedule", "Generator", "LatentDiffusion", "SamplingOptions", "GenotypeVAE",
    "VAEConfig", "reconstruction_report", "sample_genotypes", "GenotypeDecoder", "MarkovChainSNPs",
]
