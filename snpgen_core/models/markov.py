"""A first-order Markov chain along the position-ordered panel, one per trait group: neighbouring SNPs' genotype-pair
counts are all it learns, so differential privacy needs one Gaussian mechanism on those counts (no DP-SGD).

Each SNP j has one 3x3 table ``C[g, j, a, b]``: the training individuals of group g with genotype a at SNP j-1 and
b at SNP j (both called). At the first SNP of a chromosome the predecessor is taken as genotype 0 (row 0 only):
the chain restarts there, and no dependence crosses chromosomes. One individual adds at most 1 to one cell of
each of the m tables, so the counts' L2 sensitivity (adding or removing an individual) is sqrt(m); Gaussian noise
of sd ``noise_multiplier * sqrt(m)`` on every used cell makes them (epsilon, delta)-DP
(``differential_privacy.gaussian_noise``). Everything after that is post-processing of the noisy counts:

1. each SNP's genotype frequencies pi_j: the column sums of table j and the row sums of table j+1, averaged by
   inverse variance, clipped at 0 and normalised;
2. each table clipped at 0 plus a prior of ``1 + prior * sd`` pseudo-individuals spread as pi_{j-1} x pi_j
   (independence; sd is the cells' noise sd, 0 without DP), so a rare genotype's noisy row falls back to the SNP's
   frequencies instead of to noise;
3. iterative proportional fitting of each table to the margins (pi_{j-1}, pi_j): its odds ratios (the LD) are
   kept and the chain's own genotype frequencies equal pi at every SNP;
4. transitions P(x_j = b | x_{j-1} = a) = T[a, b] / sum_b T[a, b]; at a chromosome's first SNP, pi_j.

Groups are those of ``IndependentSNPs``: class codes, quantile bins of a quantitative trait (without noise only:
with it the bins' edges would be chosen on the training individuals outside the accounting), and a last row
pooling everyone (the sum of the groups' noisy counts: post-processing). Sampling draws SNP by SNP, batched over
individuals. The same chain without noise is a classical baseline: exact first-order LD, nothing longer-range.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .baselines import _groups, _n_groups
from .decoder import chromosome_segments, sample_genotypes
from .generators import SamplingOptions

IPF_ROUNDS = 30


def pair_counts(dosages: np.ndarray, groups: np.ndarray, starts: np.ndarray, n_groups: int,
                chunk: int = 4096) -> np.ndarray:
    """(n_groups, m, 3, 3) counts: individuals of group g with genotype a at SNP j-1 and b at SNP j, both called
    (a = 0 at a chromosome's first SNP ``starts[j]``). ``dosages`` (n, m) int8 (-1 missing), ``groups`` (n,)."""
    n, m = dosages.shape
    out = np.zeros(n_groups * m * 9, np.int64)
    j = np.arange(m)
    for lo in range(0, n, chunk):
        x = dosages[lo:lo + chunk].astype(np.int64)
        prev = np.concatenate([np.zeros((x.shape[0], 1), np.int64), x[:, :-1]], axis=1)
        prev[:, starts] = 0
        ok = (x >= 0) & (prev >= 0)
        idx = ((groups[lo:lo + chunk, None] * m + j[None, :]) * 9 + prev * 3 + x)[ok]
        out += np.bincount(idx, minlength=out.size)
    return out.reshape(n_groups, m, 3, 3).astype(np.float64)


def chain_from_counts(counts: np.ndarray, starts: np.ndarray, noise_sd: float = 0.0,
                      prior: float = 1.0) -> np.ndarray:
    """Transition probabilities (G, m, 3, 3) from (noisy) pair counts (G, m, 3, 3), by steps 1-4 of the module's
    docstring; rows a of a chromosome's first SNP all hold its genotype frequencies."""
    c = counts.copy()
    c[:, starts, 1:, :] = 0.0  # unused cells (no predecessor): never noised, never read
    rows_used = np.where(starts, 1.0, 3.0)  # cells per column sum of table j
    inner = np.append(~starts[1:], False)  # table j+1 exists on SNP j's chromosome
    col = c.sum(2)  # (G, m, 3): genotype counts at j from table j
    row = np.zeros_like(col)
    row[:, :-1] = c[:, 1:].sum(3)  # from table j+1 (its rows: genotype at j)
    w_col, w_row = 1.0 / rows_used, np.where(inner, 1.0 / 3.0, 0.0)  # inverse variance, in units of sd^2
    freq = (w_col[:, None] * col + w_row[:, None] * row) / (w_col + w_row)[:, None]
    freq = np.clip(freq, 0.0, None) + 1e-6
    pi = freq / freq.sum(-1, keepdims=True)  # (G, m, 3)

    prev_pi = np.concatenate([np.full_like(pi[:, :1], 1 / 3), pi[:, :-1]], axis=1)
    table = np.clip(c, 0.0, None) + (1.0 + prior * noise_sd) * prev_pi[..., :, None] * pi[..., None, :]
    for _ in range(IPF_ROUNDS):  # margins (prev_pi, pi); odds ratios unchanged
        table *= (prev_pi / table.sum(-1))[..., :, None]
        table *= (pi / table.sum(-2))[..., None, :]
    trans = table / table.sum(-1, keepdims=True)
    trans[:, starts] = pi[:, starts, None, :]
    return trans


class MarkovChainSNPs(nn.Module):
    """Per-group transition probabilities ``trans`` (groups + 1, m, 3, 3) along the panel; the last row pools
    everyone. ``starts`` (m,) marks each chromosome's first SNP; ``edges`` the quantile bins of a quantitative
    trait."""

    def __init__(self, n_snps: int, kind: str = "none", n_classes: int = 0, n_bins: int = 5):
        super().__init__()
        self.kind = kind
        self.n_groups = _n_groups(kind, n_classes, n_bins)
        self.register_buffer("trans", torch.full((self.n_groups + 1, n_snps, 3, 3), 1 / 3))
        self.register_buffer("starts", torch.zeros(n_snps, dtype=torch.bool))
        self.register_buffer("edges", torch.zeros(max(n_bins - 1, 0)))  # inner quantile edges (quantitative)

    @torch.no_grad()
    def fit(self, dosages: np.ndarray, cond: np.ndarray, chrom=None, *, noise_sd: float = 0.0,
            generator: torch.Generator | None = None, prior: float = 1.0) -> "MarkovChainSNPs":
        """Fit to ``dosages`` (n, m) int8 (-1 missing) with conditions ``cond`` (n,) and the panel's chromosomes
        ``chrom`` (m,; None: one). ``noise_sd`` > 0: Gaussian noise of that sd (from ``generator``) on every
        used count first (the differential-privacy mechanism; a quantitative trait is then refused by the
        caller). ``prior``: pseudo-individuals per unit of ``noise_sd`` (step 2)."""
        m = dosages.shape[1]
        seg = chromosome_segments(chrom if chrom is not None else [0] * m).numpy()
        starts = np.append(True, seg[1:] != seg[:-1])
        cond_t = torch.as_tensor(cond, dtype=torch.float32)
        if self.kind == "quantitative":
            ok = cond[~np.isnan(cond)]
            n_bins = self.edges.numel() + 1
            self.edges.copy_(torch.as_tensor(np.quantile(ok, np.arange(1, n_bins) / n_bins), dtype=torch.float32))
        groups = _groups(cond_t, self.kind, self.edges, self.n_groups).numpy()
        counts = pair_counts(dosages, groups, starts, self.n_groups + 1)  # last row: no known trait
        if noise_sd > 0:
            noise = torch.randn(counts.shape, generator=generator, dtype=torch.float64).numpy() * noise_sd
            noise[:, starts, 1:, :] = 0.0
            counts = counts + noise
        # everyone pooled: the sum of the rows' (noisy) counts, post-processing (one row per individual)
        table = np.concatenate([counts[:self.n_groups], counts.sum(0, keepdims=True)])
        trans = chain_from_counts(table, starts, noise_sd, prior)
        self.trans.copy_(torch.as_tensor(trans, dtype=torch.float32))
        self.starts.copy_(torch.as_tensor(starts))
        return self

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:  # covariates are not modelled
        g = _groups(cond.to(self.trans.device), self.kind, self.edges, self.n_groups)
        log_t = self.trans.clamp(min=1e-12).log()
        n, m = g.shape[0], log_t.shape[1]
        out = torch.empty((n, m), dtype=torch.int8, device=log_t.device)
        prev = torch.zeros(n, dtype=torch.long, device=log_t.device)
        for j in range(m):
            x = sample_genotypes(log_t[g, j, prev][:, None, :], generator=generator,
                                 temperature=options.temperature, mode=options.mode)[:, 0]
            out[:, j] = x
            prev = x.long()
        return out
