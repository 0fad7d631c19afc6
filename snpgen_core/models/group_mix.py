"""Each trait class's mix of latent groups, kept at the training cohort's when the latent prior is guided.

Classifier-free guidance at a scale g > 1 samples p(z | c)^g p(z)^(1 - g): it sharpens whatever separates the
classes in the latent, and ancestry first. Where a trait's prevalence differs between populations, the guided
cases come out more of one population than the real cases are (BENCHMARKS.md, twenty-eighth pass: on an unseen
msprime cohort 11% of the training cases were AFR and 2-3% of the released ones), which a GWAS of the release
reads as confounding the real cohort does not have.

``GroupMix`` finds the training cohort's groups in the latent: a Gaussian mixture (full covariances) on posterior
draws of the training individuals' latents, standardised and turned onto their principal axes (at most
``GROUP_DIMS``), with the number of groups chosen by BIC among mixtures whose every group holds at least
``MIN_GROUP`` people (``mixture_by_bic``, which the report's ``structure.training_groups`` shares). It records
each class's share of every group. ``select`` then keeps at most each group's training share of a class's guided
latents (largest remainders) and fills the groups guidance left short from the plain conditional (guidance 1), so
guidance acts within the groups and the mix between them stays the data's. What it keeps is population-level: the
mixture's moments and a few shares per class (the class counts that ``run.json`` records, split by group). Nothing
is compared with any individual.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import nn

MAX_GROUPS = 8
MIN_GROUP = 50  # training people per group at least: a smaller group's shares are mostly its own members'
GROUP_DIMS = 16  # principal axes of the latent the mixture is fitted on
MAX_ROUNDS = 4  # rounds of plain draws per class, at most
PLAIN_DRAWS = 1.0  # plain (guidance 1) draws per row of a class, at most, to fill the groups guidance left short


def mixture_by_bic(points: np.ndarray, k: int | None = None, *, seed: int = 0, min_group: int = MIN_GROUP):
    """A fitted ``sklearn`` Gaussian mixture (full covariances, 2 seeded starts) of ``points`` (n, r): with ``k``
    that many groups whatever their sizes; else the number chosen by BIC among 1..``MAX_GROUPS`` and only among
    mixtures whose every group holds at least ``min_group`` points. None when one group fits best or there are
    too few points for two."""
    from sklearn.mixture import GaussianMixture

    if k is not None:
        return GaussianMixture(k, random_state=seed, n_init=2).fit(points)
    best, best_bic = None, np.inf
    for n_groups in range(1, min(MAX_GROUPS, len(points) // min_group) + 1):
        mixture = GaussianMixture(n_groups, random_state=seed, n_init=2).fit(points)
        labels, bic = mixture.predict(points), mixture.bic(points)
        if np.bincount(labels, minlength=n_groups).min() >= min_group and bic < best_bic:
            best, best_bic = mixture, bic
    return None if best is None or best.n_components == 1 else best


def largest_remainders(shares: torch.Tensor, n: int) -> torch.Tensor:
    """Whole counts summing to ``n`` in proportion to ``shares`` (k,) (Hamilton's method: floors, then one more to
    the largest remainders; ties to the lower index)."""
    exact = shares.double() / shares.double().sum() * n
    counts = exact.floor().long()
    left = n - int(counts.sum())
    if left > 0:
        order = torch.argsort(-(exact - counts), stable=True)
        counts[order[:left]] += 1
    return counts


class GroupMix(nn.Module):
    """Latent groups of the training cohort and each class's share of them (module docstring). Unfitted (no
    groups) it changes nothing; so for a quantitative or absent trait, where it is never fitted."""

    def __init__(self, latent_dim: int, n_classes: int):
        super().__init__()
        r = min(latent_dim, GROUP_DIMS)
        self.register_buffer("n_groups", torch.zeros((), dtype=torch.long))  # 0 = not fitted
        self.register_buffer("axes", torch.zeros(latent_dim, r))  # standardised latent -> the mixture's space
        self.register_buffer("weights", torch.zeros(MAX_GROUPS))
        self.register_buffer("means", torch.zeros(MAX_GROUPS, r))
        self.register_buffer("precision_chol", torch.zeros(MAX_GROUPS, r, r))  # sklearn's precisions_cholesky_
        self.register_buffer("shares", torch.zeros(n_classes, MAX_GROUPS))  # each class's share of each group

    @property
    def fitted(self) -> bool:
        return int(self.n_groups) > 1

    @torch.no_grad()
    def fit(self, x: torch.Tensor, cond: torch.Tensor, seed: int = 0) -> int:
        """Fit on standardised latents ``x`` (n, d) of training individuals with class codes ``cond`` (n,) (NaN =
        unknown, left out of the shares). Returns the number of groups (1: none kept)."""
        self.n_groups.zero_()
        if self.shares.shape[0] == 0:
            return 1
        points = x.double().cpu().numpy()
        centre = points.mean(0)
        axes = np.linalg.svd(points - centre, full_matrices=False)[2][: self.axes.shape[1]].T  # (d, r)
        mixture = mixture_by_bic((points - centre) @ axes, seed=seed)
        if mixture is None:
            return 1
        k = mixture.n_components
        self.axes.copy_(torch.as_tensor(axes))
        self.means.zero_()[:k].copy_(torch.as_tensor(mixture.means_ + centre @ axes))
        self.precision_chol.zero_()[:k].copy_(torch.as_tensor(mixture.precisions_cholesky_))
        self.weights.zero_()[:k].copy_(torch.as_tensor(mixture.weights_))
        labels = self.predict_groups(x.to(self.axes.device), k)
        c = cond.to(labels.device)
        known = ~torch.isnan(c)
        self.shares.zero_()
        for cls in range(self.shares.shape[0]):
            mine = labels[known & (c == cls)]
            if mine.numel():
                self.shares[cls] = torch.bincount(mine, minlength=MAX_GROUPS).double().div(mine.numel()).float()
        self.n_groups.fill_(k)
        return k

    @torch.no_grad()
    def predict_groups(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """The most probable group (n,) of standardised latents ``x`` (n, d) under the fitted mixture."""
        k = int(self.n_groups) if k is None else k
        y = x.to(self.axes.dtype) @ self.axes  # (n, r)
        chol = self.precision_chol[:k]
        centred = torch.einsum("nkr,krs->nks", y[:, None, :] - self.means[:k][None], chol)  # (y - mu_k) P_k
        log_det = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return torch.argmax(torch.log(self.weights[:k]) + log_det - 0.5 * (centred ** 2).sum(-1), dim=1)

    @torch.no_grad()
    def select(self, cond: torch.Tensor, draw: Callable[[torch.Tensor, bool], torch.Tensor],
               generator: torch.Generator | None) -> torch.Tensor:
        """Standardised latents (n, d) for conditions ``cond`` (n,), from ``draw(cond_batch, plain)``, which returns
        standardised latents for a batch of conditions, guided, or with ``plain`` at guidance 1. For each class of
        the training cohort: as many guided latents as the class has rows, each group keeping at most its quota
        (``largest_remainders`` of the class's training shares); the groups guidance left short are then filled
        from the plain conditional, which reaches each group at about its training share (at most ``PLAIN_DRAWS``
        x the rows, in rounds sized by those shares); what is then still short (a group of a tiny share) is made up
        with spare draws, in the order drawn. The kept latents of a class go to its rows in a seeded random order.
        Other conditions (NaN, a class training never saw) are drawn as is. Cost: the guided draw of every row
        (two denoiser passes each) and at most ``PLAIN_DRAWS`` plain draws per row (one pass each)."""
        out = None
        codes = cond.cpu()
        rest = torch.ones(cond.shape[0], dtype=torch.bool)
        k = int(self.n_groups)
        for cls in range(self.shares.shape[0]):
            rows = torch.nonzero(codes == cls).flatten()
            share = self.shares[cls, :k].cpu()
            n = rows.numel()
            if n == 0 or share.sum() == 0:
                continue

            def drawn(size: int, plain: bool):
                z = draw(torch.full((size,), float(cls), device=cond.device), plain)
                return z, self.predict_groups(z, k).cpu()

            quota = largest_remainders(share, n)
            pools = [drawn(n, False)]
            counts, budget = torch.bincount(pools[0][1], minlength=k), int(PLAIN_DRAWS * n)
            for _ in range(MAX_ROUNDS):
                need = (quota - counts).clamp(min=0)
                if int(need.sum()) == 0 or budget <= 0:
                    break
                size = min(budget, max(8, math.ceil(float((need / share.clamp(min=1.0 / n)).max()) * 1.2)))
                pools.append(drawn(size, True))
                counts += torch.bincount(pools[-1][1], minlength=k)
                budget -= size
            z_all, g_all = torch.cat([p[0] for p in pools]), torch.cat([p[1] for p in pools])
            keep = torch.zeros(len(g_all), dtype=torch.bool)
            for g in range(k):
                keep[torch.nonzero(g_all == g).flatten()[: int(quota[g])]] = True
            keep[torch.nonzero(~keep).flatten()[: n - int(keep.sum())]] = True  # spare draws for what is short
            chosen = z_all[torch.nonzero(keep).flatten()]
            order = torch.randperm(n, generator=generator, device=generator.device if generator is not None else "cpu")
            if out is None:
                out = torch.empty(cond.shape[0], chosen.shape[1], device=chosen.device, dtype=chosen.dtype)
            out[rows.to(chosen.device)] = chosen[order.to(chosen.device)]
            rest[rows] = False
        if rest.any():
            others = draw(cond[rest.to(cond.device)], False)
            if out is None:
                return others
            out[rest.to(out.device)] = others
        return out
