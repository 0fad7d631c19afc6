"""A Markov chain along the position-ordered panel, one per trait group: each SNP's genotype depends on one earlier
SNP's, its parent. Genotype-pair counts are all it learns, so differential privacy needs one Gaussian mechanism on
those counts (no DP-SGD).

For each SNP j and each of its ``window`` nearest predecessors j-1-k on its chromosome, one 3x3 table
``C[g, j, k, a, b]`` counts the training individuals of group g with genotype a at SNP j-1-k and b at SNP j (both
called). A chromosome's first SNP has one table of its genotypes alone (row a = 0): the chain restarts there, and
no dependence crosses chromosomes. One individual adds at most 1 to one cell of each counted table, so the counts'
L2 sensitivity (adding or removing an individual) is sqrt(number of tables) <= sqrt(window m); Gaussian noise of
sd ``noise_multiplier`` x that on every counted cell makes them (epsilon, delta)-DP
(``differential_privacy.gaussian_multiplier``). Everything after that is post-processing of the noisy counts:

1. each SNP's genotype frequencies pi_j: every table's column sums at j and row sums at j-1-k, averaged by
   inverse variance, clipped at 0 and normalised;
2. SNP j's parent: the predecessor whose table (everyone pooled) shows the strongest r^2 (``window`` 1: SNP j-1,
   the plain first-order chain); its table per group is clipped at 0 plus a prior of ``1 + prior * sd``
   pseudo-individuals spread as pi_parent x pi_j (independence; sd is the cells' noise sd, 0 without DP), so a
   rare genotype's noisy row falls back to the SNP's frequencies instead of to noise;
3. iterative proportional fitting of that table to the margins (pi_parent, pi_j): its odds ratios (the LD) are
   kept, and since every parent precedes its child, the chain's own genotype frequencies equal pi at every SNP;
4. transitions P(x_j = b | x_parent = a) = T[a, b] / sum_b T[a, b]; at a chromosome's first SNP, pi_j.

Groups are those of ``IndependentSNPs``: class codes, quantile bins of a quantitative trait (without noise only:
with it the bins' edges would be chosen on the training individuals outside the accounting), and a last row
pooling everyone (the sum of the groups' noisy counts: post-processing). Sampling draws SNP by SNP, batched over
individuals. Without noise the same chain is a classical baseline: LD with one earlier SNP each, nothing more.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .baselines import _groups, _n_groups, _quantile_edges
from .decoder import chromosome_segments, sample_genotypes
from .generators import SamplingOptions

IPF_ROUNDS = 30


def candidate_tables(starts: np.ndarray, window: int) -> np.ndarray:
    """(m, window) bool: table (j, k) is counted, i.e. SNP j-1-k lies on SNP j's chromosome (k = 0: the nearest
    predecessor); at a chromosome's first SNP only (j, 0), its genotype counts alone. An individual adds at most 1
    to one cell of each counted table, so the counts' L2 sensitivity is sqrt(tables.sum())."""
    m = len(starts)
    first = np.maximum.accumulate(np.where(starts, np.arange(m), 0))  # each SNP's chromosome start
    k = np.arange(window)[None, :]
    used = (np.arange(m)[:, None] - 1 - k) >= first[:, None]
    used[starts, 0] = True
    return used


def pair_counts(dosages: np.ndarray, groups: np.ndarray, used: np.ndarray, starts: np.ndarray, n_groups: int,
                chunk: int = 4096) -> np.ndarray:
    """(n_groups, m, window, 3, 3) counts: individuals of group g with genotype a at SNP j-1-k and b at SNP j, both
    called, for the tables ``used`` (``candidate_tables``; a = 0 in the table of a chromosome's first SNP
    ``starts[j]``, which counts its genotypes alone). ``dosages`` (n, m) int8 (-1 missing), ``groups`` (n,)."""
    n, m = dosages.shape
    window = used.shape[1]
    out = np.zeros((n_groups, m, window, 9), np.int64)
    for k in range(window):
        cols = np.flatnonzero(used[:, k])
        src = np.maximum(cols - 1 - k, 0)
        has_pred = ~starts[cols] if k == 0 else np.ones(len(cols), bool)  # k > 0 is counted only within reach
        block = np.zeros(n_groups * len(cols) * 9, np.int64)
        for lo in range(0, n, chunk):
            x = dosages[lo:lo + chunk, cols].astype(np.int64)
            prev = np.where(has_pred[None, :], dosages[lo:lo + chunk, src], 0).astype(np.int64)
            ok = (x >= 0) & (prev >= 0)
            idx = ((groups[lo:lo + chunk, None] * len(cols) + np.arange(len(cols))[None, :]) * 9 + prev * 3 + x)[ok]
            block += np.bincount(idx, minlength=block.size)
        out[:, cols, k] = block.reshape(n_groups, len(cols), 9)
    return out.reshape(n_groups, m, window, 3, 3).astype(np.float64)


def _r2(table: np.ndarray) -> np.ndarray:
    """Squared correlation of the two dosages of 3x3 count tables (..., 3, 3) (negative counts read as 0)."""
    t = np.clip(table, 0.0, None) + 1e-9
    p = t / t.sum((-2, -1), keepdims=True)
    d = np.arange(3.0)
    pa, pb = p.sum(-1), p.sum(-2)
    ma, mb = pa @ d, pb @ d
    va, vb = pa @ d ** 2 - ma ** 2, pb @ d ** 2 - mb ** 2
    cov = np.einsum("...ab,a,b->...", p, d, d) - ma * mb
    return cov ** 2 / np.maximum(va * vb, 1e-12)


def chain_from_counts(counts: np.ndarray, used: np.ndarray, starts: np.ndarray, noise_sd: float = 0.0,
                      prior: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Transition probabilities (G, m, 3, 3) and each SNP's parent (m,; -1 at a chromosome start ``starts``) from
    (noisy) counts (G, m, window, 3, 3) of the tables ``used``, by steps 1-4 of the module's docstring; rows a of a
    chromosome's first SNP all hold its genotype frequencies."""
    c = np.where(used[None, :, :, None, None], counts, 0.0)
    m, window = used.shape
    c[:, starts, :, 1:, :] = 0.0  # a start's table has no predecessor: row 0 only
    # 1. genotype frequencies: every counted table's column sums (at j) and row sums (at j-1-k), by inverse variance
    total = np.zeros(c.shape[:2] + (3,))
    weight = np.zeros(m)
    for k in range(window):
        cols = np.flatnonzero(used[:, k])
        var = np.where(starts[cols], 1.0, 3.0)  # cells per sum, in units of sd^2
        total[:, cols] += c[:, cols, k].sum(-2) / var[:, None]
        weight[cols] += 1.0 / var
        pairs = cols[~starts[cols]]
        np.add.at(total, (slice(None), pairs - 1 - k), c[:, pairs, k].sum(-1) / 3.0)
        np.add.at(weight, pairs - 1 - k, 1.0 / 3.0)
    freq = np.clip(total / weight[:, None], 0.0, None) + 1e-6
    pi = freq / freq.sum(-1, keepdims=True)  # (G, m, 3)
    # the parent: the counted predecessor in strongest LD with SNP j, everyone pooled
    strength = np.where(used & ~starts[:, None], _r2(c.sum(0)), -1.0)
    k_best = strength.argmax(1)
    parent = np.where(starts, -1, np.arange(m) - 1 - k_best)
    table = c[:, np.arange(m), k_best]  # (G, m, 3, 3)
    prev_pi = np.where(starts[None, :, None], 1 / 3, pi[:, np.maximum(parent, 0)])
    table = np.clip(table, 0.0, None) + (1.0 + prior * noise_sd) * prev_pi[..., :, None] * pi[..., None, :]
    for _ in range(IPF_ROUNDS):  # margins (prev_pi, pi); odds ratios unchanged
        table *= (prev_pi / table.sum(-1))[..., :, None]
        table *= (pi / table.sum(-2))[..., None, :]
    trans = table / table.sum(-1, keepdims=True)
    trans[:, starts] = pi[:, starts, None, :]
    return trans, parent


class MarkovChainSNPs(nn.Module):
    """Per-group transition probabilities ``trans`` (groups + 1, m, 3, 3) along the panel, the last row pooling
    everyone; SNP j's genotype depends on SNP ``parent[j]``'s (-1: a chromosome's first SNP, drawn from its
    frequencies). ``edges``: the quantile bins of a quantitative trait. ``window``: how many predecessors each SNP
    may choose its parent from (1 = the plain first-order chain)."""

    def __init__(self, n_snps: int, kind: str = "none", n_classes: int = 0, n_bins: int = 5, window: int = 1):
        super().__init__()
        self.kind = kind
        self.window = int(window)
        self.n_groups = _n_groups(kind, n_classes, n_bins)
        self.register_buffer("trans", torch.full((self.n_groups + 1, n_snps, 3, 3), 1 / 3))
        self.register_buffer("parent", torch.full((n_snps,), -1, dtype=torch.long))
        self.register_buffer("edges", torch.zeros(max(n_bins - 1, 0)))  # inner quantile edges (quantitative)
        self.sensitivity = 0.0  # set by fit: the counts' L2 sensitivity

    @torch.no_grad()
    def fit(self, dosages: np.ndarray, cond: np.ndarray, chrom=None, *, noise_multiplier: float = 0.0,
            generator: torch.Generator | None = None, prior: float = 1.0) -> "MarkovChainSNPs":
        """Fit to ``dosages`` (n, m) int8 (-1 missing) with conditions ``cond`` (n,) and the panel's chromosomes
        ``chrom`` (m,; None: one). ``noise_multiplier`` > 0: Gaussian noise of sd ``noise_multiplier`` x the
        counts' L2 sensitivity (``self.sensitivity``, from ``generator``) on every counted cell first: the
        differential-privacy mechanism (a quantitative trait is then refused by the caller). ``prior``:
        pseudo-individuals per unit of the noise's sd (step 2)."""
        m = dosages.shape[1]
        seg = chromosome_segments(chrom if chrom is not None else [0] * m).numpy()
        starts = np.append(True, seg[1:] != seg[:-1])
        used = candidate_tables(starts, self.window)
        self.sensitivity = float(np.sqrt(used.sum()))
        cond_t = torch.as_tensor(cond, dtype=torch.float32)
        if self.kind == "quantitative":
            self.edges.copy_(_quantile_edges(cond, self.edges.numel() + 1))
        groups = _groups(cond_t, self.kind, self.edges, self.n_groups).numpy()
        counts = pair_counts(dosages, groups, used, starts, self.n_groups + 1)  # last row: no known trait
        noise_sd = noise_multiplier * self.sensitivity
        if noise_sd > 0:
            noise = torch.randn(counts.shape, generator=generator, dtype=torch.float64).numpy() * noise_sd
            counts = counts + noise * used[None, :, :, None, None]
        # everyone pooled: the sum of the rows' (noisy) counts, post-processing (one row per individual)
        table = np.concatenate([counts[:self.n_groups], counts.sum(0, keepdims=True)])
        trans, parent = chain_from_counts(table, used, starts, noise_sd, prior)
        self.trans.copy_(torch.as_tensor(trans, dtype=torch.float32))
        self.parent.copy_(torch.as_tensor(parent))
        return self

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:  # covariates are not modelled
        g = _groups(cond.to(self.trans.device), self.kind, self.edges, self.n_groups)
        log_t = self.trans.clamp(min=1e-12).log()
        n, m = g.shape[0], log_t.shape[1]
        out = torch.empty((n, m), dtype=torch.int8, device=log_t.device)
        zeros = torch.zeros(n, dtype=torch.long, device=log_t.device)
        for j, p in enumerate(self.parent.tolist()):
            prev = zeros if p < 0 else out[:, p].long()
            out[:, j] = sample_genotypes(log_t[g, j, prev][:, None, :], generator=generator,
                                         temperature=options.temperature, mode=options.mode)[:, 0]
        return out
