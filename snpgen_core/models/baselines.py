"""Baseline generators with the same ``sample(cond, generator, options)`` interface as our model.

``IndependentSNPs``: each SNP drawn on its own from the genotype-class frequencies (0/1/2) of the individuals
sharing the requested condition; keeps allele frequencies and Hardy-Weinberg deviations, destroys all LD. The floor.
``VAEGaussian``: the VAE decoder applied to latents drawn from a Gaussian fitted, per condition, to the training
latents (the VAE alone, without diffusion).

Conditions: (n,) float; binary/categorical class codes 0..k-1, quantitative raw values, NaN = unconditional.
A quantitative trait is handled by ``IndependentSNPs`` through ``n_bins`` quantile bins of the training values,
and by ``LatentGaussian`` as a joint Gaussian of (latent, trait), sampled conditionally on the trait.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .generators import SamplingOptions, perturb_latents
from .decoder import sample_genotypes
from .vae import GenotypeVAE


def _groups(cond: torch.Tensor, kind: str, edges: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Group index per condition: class code, quantile bin, or ``n_groups`` (the pooled row) for NaN/none."""
    missing = torch.isnan(cond)
    if kind in ("binary", "categorical"):
        g = torch.nan_to_num(cond, nan=0.0).long()
    elif kind == "quantitative":
        g = torch.bucketize(torch.nan_to_num(cond, nan=0.0), edges.to(cond.device))
    else:
        g = torch.zeros_like(cond, dtype=torch.long)
    return torch.where(missing | (kind == "none"), torch.full_like(g, n_groups), g)


def _quantile_edges(cond: np.ndarray, n_bins: int) -> torch.Tensor:
    """The ``n_bins - 1`` inner quantile edges of a quantitative trait's known values."""
    ok = cond[~np.isnan(cond)]
    return torch.as_tensor(np.quantile(ok, np.arange(1, n_bins) / n_bins), dtype=torch.float32)


def _n_groups(kind: str, n_classes: int, n_bins: int) -> int:
    return {"binary": 2, "categorical": n_classes, "quantitative": n_bins}.get(kind, 0)


class IndependentSNPs(nn.Module):
    """Per-condition genotype-class frequencies ``probs`` (groups + 1, m, 3); the last row pools everyone."""

    def __init__(self, n_snps: int, kind: str = "none", n_classes: int = 0, n_bins: int = 5):
        super().__init__()
        self.kind = kind
        self.n_groups = _n_groups(kind, n_classes, n_bins)
        self.register_buffer("probs", torch.full((self.n_groups + 1, n_snps, 3), 1 / 3))
        self.register_buffer("edges", torch.zeros(max(n_bins - 1, 0)))  # inner quantile edges (quantitative)

    @torch.no_grad()
    def fit(self, dosages: np.ndarray, cond: np.ndarray) -> "IndependentSNPs":
        """``dosages`` (n, m) int8 (-1 missing, ignored), ``cond`` (n,) as for ``sample``. A group with no member
        (or with no call at a SNP) takes the pooled frequencies."""
        cond_t = torch.as_tensor(cond, dtype=torch.float32)
        if self.kind == "quantitative":
            self.edges.copy_(_quantile_edges(cond, self.edges.numel() + 1))
        groups = _groups(cond_t, self.kind, self.edges, self.n_groups).numpy()

        def freqs(rows: np.ndarray) -> np.ndarray:
            counts = np.stack([(dosages[rows] == g).sum(0) for g in range(3)], axis=1).astype(np.float64)
            total = counts.sum(1, keepdims=True)
            return np.where(total > 0, counts / np.maximum(total, 1), np.nan)

        pooled = freqs(np.arange(dosages.shape[0]))
        pooled = np.where(np.isnan(pooled), 1 / 3, pooled)
        table = [pooled if not (groups == g).any() else freqs(np.flatnonzero(groups == g))
                 for g in range(self.n_groups)] + [pooled]
        table = np.stack([np.where(np.isnan(f), pooled, f) for f in table])
        self.probs.copy_(torch.as_tensor(table, dtype=torch.float32))
        return self

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:  # covariates are not modelled
        g = _groups(cond.to(self.probs.device), self.kind, self.edges, self.n_groups)
        logits = self.probs[g].clamp(min=1e-12).log()  # (n, m, 3)
        return sample_genotypes(logits, generator=generator, temperature=options.temperature, mode=options.mode)


class LatentGaussian(nn.Module):
    """Gaussian latent distribution per condition: ``mean`` (groups + 1, d) and Cholesky factor ``chol``
    (groups + 1, d, d), last row pooled. Quantitative: z | y ~ N(mean + slope * (y - y_mean), residual)."""

    def __init__(self, latent_dim: int, kind: str = "none", n_classes: int = 0):
        super().__init__()
        self.kind = kind
        self.n_groups = _n_groups(kind, n_classes, 1)  # quantitative: one conditional group
        d = latent_dim
        self.register_buffer("mean", torch.zeros(self.n_groups + 1, d))
        self.register_buffer("chol", torch.eye(d).repeat(self.n_groups + 1, 1, 1))
        self.register_buffer("slope", torch.zeros(d))
        self.register_buffer("y_mean", torch.zeros(()))

    @staticmethod
    def _moments(mu: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of the mixture of posteriors N(mu_i, diag var_i): cov(mu) + mean diag(var)."""
        m = mu.mean(0)
        c = mu - m
        cov = c.T @ c / max(mu.shape[0] - 1, 1) + torch.diag(var.mean(0))
        return m, cov

    @torch.no_grad()
    def fit(self, mu: torch.Tensor, logvar: torch.Tensor, cond: torch.Tensor) -> "LatentGaussian":
        """Fit to training posteriors ``mu``, ``logvar`` (n, d) and conditions ``cond`` (n,)."""
        mu, var, cond = mu.double(), logvar.double().exp(), cond.double()
        d = mu.shape[1]
        jitter = 1e-6 * torch.eye(d, dtype=torch.float64, device=mu.device)
        pooled_m, pooled_c = self._moments(mu, var)
        means, covs = [], []
        if self.kind == "quantitative":
            ok = ~torch.isnan(cond)
            y = cond[ok]
            y_c = y - y.mean()
            mu_c = mu[ok] - mu[ok].mean(0)
            slope = (mu_c * y_c[:, None]).sum(0) / (y_c ** 2).sum()
            resid_m, resid_c = self._moments(mu[ok] - slope * y_c[:, None], var[ok])
            self.slope.copy_(slope.float())
            self.y_mean.fill_(float(y.mean()))
            means.append(resid_m)
            covs.append(resid_c)
        else:
            for g in range(self.n_groups):
                rows = cond == g
                if rows.sum() >= 2:
                    m, c = self._moments(mu[rows], var[rows])
                else:
                    m, c = pooled_m, pooled_c
                means.append(m)
                covs.append(c)
        means.append(pooled_m)
        covs.append(pooled_c)
        self.mean.copy_(torch.stack(means).float())
        self.chol.copy_(torch.linalg.cholesky(torch.stack(covs) + jitter).float())
        return self

    @torch.no_grad()
    def sample_latents(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Latents (n, d) for conditions ``cond`` (n,)."""
        cond = cond.to(self.mean.device)
        missing = torch.isnan(cond)
        if self.kind in ("binary", "categorical"):
            g = torch.where(missing, torch.full_like(cond, self.n_groups), torch.nan_to_num(cond, nan=0.0)).long()
        elif self.kind == "quantitative":
            g = missing.long()  # row 0: conditional on y; row 1: pooled
        else:
            g = torch.zeros_like(cond, dtype=torch.long)
        eps = torch.randn(cond.shape[0], self.mean.shape[1], generator=generator, device=self.mean.device)
        z = self.mean[g] + torch.einsum("nij,nj->ni", self.chol[g], eps)
        if self.kind == "quantitative":
            shift = torch.where(missing, torch.zeros_like(cond), cond - self.y_mean)
            z = z + shift[:, None] * self.slope
        return z


class VAEGaussian:
    """The VAE alone: decoder applied to per-condition Gaussian latents."""

    def __init__(self, vae: GenotypeVAE, latents: LatentGaussian):
        self.vae = vae
        self.latents = latents

    @torch.no_grad()
    def sample_latents(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
                       covariates: torch.Tensor | None = None) -> torch.Tensor:  # covariates are not modelled
        """The latents ``sample`` decodes."""
        z = self.latents.sample_latents(cond, generator)
        scale = self.latents.chol[-1].norm(dim=1)  # sd of the pooled latents: sqrt(diag(L L^T))
        return perturb_latents(z, scale, options, generator)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:
        self.vae.eval()
        z = self.sample_latents(cond, generator, options)
        return self.vae.sample_genotypes(z, cond, generator, temperature=options.temperature,
                                         mode=options.mode)
