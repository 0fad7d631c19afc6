"""The genotype decoder p(x | z): each SNP depends on the latent and on ``window`` SNPs before it.

    p(x | z) = prod_j p(x_j | x_{n_j(1)}, ..., x_{n_j(w)}, z),   every n_j(k) < j

along the position-ordered panel, restarting at every chromosome boundary (a SNP never conditions on a SNP of
another chromosome, nor on positions before the panel's first). The neighbours n_j are the nearest ``window`` SNPs
before j, or (``choose_neighbours``, from ``linked_neighbours``; the VAE's default) the nearest few and, in the
other slots, SNPs further back that tell about j's training genotypes well beyond what its nearer neighbours do:
on a dense panel LD reaches past the nearest 16 SNPs. Why: a decoder that draws every SNP independently
given z has Cov(x_j, x_k | z) = 0, so all linkage disequilibrium must pass through z, and strong LD then needs z to
pin individuals down (memorisation). Here short-range LD comes from population-level haplotype structure learned
per SNP, and z only has to carry ancestry, trait and long-range signal.

Per SNP j (its own weights, like PixelCNN's masked connections but not shared across positions, because which
neighbours are in LD differs from SNP to SNP):

    logits_j = g(z)_j + sum_k W_j[k, x_{n_j(k)}] + B_j . GELU(sum_k A_j[k, x_{n_j(k)}] + P_j e(z))
               + U_j . sum_{i = j - far_reach}^{j - nearest - 1} V_i[x_i]

``z`` is whatever the decoder is conditioned on (the VAE passes the latent with the embedded trait appended,
``GenotypeVAE.decoder_input``). ``g(z)`` is the independent decoder's MLP (per-SNP, per-class logits; or one
linear map, the VAE's ``decoder_latent="linear"``), ``W`` the additive (logistic) effect of each of the
``window`` neighbours' genotypes, and the optional ``hidden`` units (``A``, ``B``, ``P``; 0 = off) let
neighbours interact with each other and with the latent (haplotypes whose frequencies differ by ancestry).
The optional far summary (``far_rank`` r > 0; 0 = off) gives each individual r running sums of the genotypes
between ``far_reach`` and ``nearest`` + 1 SNPs back (V: r numbers per SNP and genotype), which each SNP reads
through its own U (r x 3): the chain's own draws carry what lies beyond the window (a haplotype background, local
ancestry), pooled over many SNPs whose dependence on j is each too weak to earn a linked slot. The sums are
prefix-sum differences in ``logits`` and kept running (one SNP in, one out) in ``sample``.
Genotypes are 3-class categorical (0/1/2 copies of a1); a missing neighbour (-1) is the all-zero one-hot, so it
contributes nothing, and a missing x_j is left out of the likelihood (``log_prob`` is exact: the model is
autoregressive, so the probability of the called genotypes is the product of their conditionals given the
observed past). Sampling runs SNP by SNP, batched over individuals.

The corrections are set after training and left neutral while training. ``trait_share`` (m,) scales each SNP's
trait effect in ``g`` for the panel's selection bias (``GenotypeVAE.set_trait_share``). Two are fitted
(``generators.calibrate_ld`` and ``calibrate_marginals``): ``ld_scale`` (a factor per neighbour k) multiplies the
neighbour weights ``W`` (the sampled LD between neighbours is 8-17% weaker than the training cohort's otherwise,
most at the shortest lags: while training, the posterior latent of each individual also explains part of it), and
``calibration`` (m, 3) is added to every SNP's logits (the sampled genotype frequencies are otherwise 1.2-1.5x
further from the training ones than a fresh real sample's are). A class trait's decoder has a fourth,
``class_calibration`` (classes + 1, m, 3): each individual's class's row added too (``generators.calibrate_classes``;
the last row, for an unknown class, stays zero).

``window = 0`` is the independent decoder (every SNP drawn on its own given z: the SNPgen / Xie et al. design),
kept for comparison; it samples all SNPs at once.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------------------------------------------
# From logits to genotypes (every SNP on its own)


def sample_genotypes(logits: torch.Tensor, *, generator: torch.Generator | None = None, temperature: float = 1.0,
                     mode: str = "probabilities") -> torch.Tensor:
    """Per-SNP genotypes from decoder logits (B, m, 3) -> (B, m) int8 dosages.

    ``mode="probabilities"`` draws each genotype from softmax(logits / temperature) (inverse-CDF with one uniform
    per genotype from ``generator``); ``"argmax"`` takes the most probable class (no randomness).
    """
    if mode == "argmax":
        return logits.argmax(-1).to(torch.int8)
    if mode != "probabilities":
        raise ValueError(f"sampling mode {mode!r} unknown; choose 'probabilities' or 'argmax'")
    # unnormalised probabilities per class plane (a softmax over a last dimension of 3 is slow on CPU); a draw
    # u ~ U(0, e0 + e1 + e2) falls below e0 with probability p0, between e0 and e0 + e1 with probability p1
    planes = logits.unbind(-1)
    if temperature != 1.0 or logits.dtype != torch.float32:
        planes = [x.float() / temperature for x in planes]
    l0, l1, l2 = planes
    top = torch.maximum(torch.maximum(l0, l1), l2)
    e0, e1, e2 = (l0 - top).exp_(), (l1 - top).exp_(), (l2 - top).exp_()
    cut = e1.add_(e0)  # e0 + e1 (e1 itself is not needed again)
    u = torch.rand(l0.shape, generator=generator, device=logits.device).mul_(e2.add_(cut))
    return torch.gt(u, e0).to(torch.int8).add_(torch.gt(u, cut))


def one_hot_genotypes(dosages: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, m) integer dosages with -1 = missing -> (B, m, 3) one-hot; a missing call is all zeros. The one
    encoding of genotypes, for the VAE's encoder and the decoder's neighbours (``GenotypeDecoder._history``)."""
    d = dosages.unsqueeze(-1)
    return (d == torch.arange(3, device=d.device)).to(dtype)


def chromosome_segments(chrom) -> torch.Tensor:
    """(m,) integer segment id per SNP: increases by one at each change of chromosome along the panel."""
    codes = [str(c) for c in chrom]
    seg = [0] * len(codes)
    for j in range(1, len(codes)):
        seg[j] = seg[j - 1] + (codes[j] != codes[j - 1])
    return torch.as_tensor(seg, dtype=torch.long)


def standardised(dosages: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(n, m) dosages (-1 missing) -> each SNP centred and scaled to unit sd, a missing call at its mean (0)."""
    x = np.where(dosages < 0, np.nan, dosages).astype(dtype)
    return np.nan_to_num((x - np.nanmean(x, 0)) / np.maximum(np.nanstd(x, 0), 1e-6))


def _nearest(m: int, window: int) -> torch.Tensor:
    """(m, window) long: neighbour k of SNP j is SNP j-1-k (clamped at 0 where there is none: masked)."""
    return (torch.arange(m)[:, None] - 1 - torch.arange(window)[None, :]).clamp(min=0)


def linked_neighbours(dosages, segment: torch.Tensor, window: int, reach: int, p: float, *, nearest: int = 0,
                      partial: bool = True, components: int = 10,
                      max_individuals: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """Each SNP's ``window`` neighbours: its ``nearest`` nearest SNPs, and in the other slots, among the ``reach``
    SNPs before it on its chromosome, those that tell most about it beyond the neighbours it already has, once the
    top ``components`` principal components are taken out of ``dosages`` (n, m) (ancestry, which the latent
    carries, must not pass for linkage). Chosen one at a time (forward selection): the SNP whose partial
    correlation with it, given the nearest and those chosen before, is largest, while that beats chance at
    significance ``p`` for the best of the c candidates (n r^2 above the chi-square 1-df quantile of p / c,
    Bonferroni). With ``partial`` False, the eleventh pass's rule: the candidates with the largest *marginal*
    correlations, each beating chance at ``p`` on its own. Returns (index (m, window) long, valid (m, window) bool),
    nearest first; the first ``max_individuals`` rows are used.
    Why: a dense panel (1000 Genomes AGBL4) keeps LD well past 16 SNPs (r^2 0.019 at lag 64 with 10 PCs out; the
    best 16 of the 64 before a SNP hold 2.5x the r^2 of the nearest 16), while on a sparse genome-wide panel of
    under a thousand people nearly every neighbour is unlinked and its weights can only fit chance correlations.
    Partial, not marginal, correlation: a SNP 20-60 back is often correlated with SNP j only through the SNPs
    between them (1000 Genomes AGBL4: 12.8 linked neighbours per SNP by marginal correlation at p 0.001, 5.2 by
    partial; the VAE's validation loss 140.4 -> 133.7 nats), and a slot spent on it adds 9 weights that can only
    fit the training sample. The VAE's default ``p`` is strict (``VAEConfig.neighbour_p``): on msprime even real
    but weak linked neighbours raised the AATS loss (BENCHMARKS.md, thirteenth pass). Without the PCs, msprime sim1's
    neighbours were chosen for shared ancestry over linkage (LD-decay error 4.6x the holdout's, against 2.4x with
    them). Only axes above noise whose loadings spread over a tenth of the panel or more are taken out: taking out
    noise axes correlates SNPs, and an axis made of one LD block would take that block's own LD away."""
    from scipy.stats import chi2

    x = standardised(dosages[:max_individuals])
    n, m = x.shape
    if components > 0 and n > 2 and m > 1:
        u, sv, vt = np.linalg.svd(x, full_matrices=False)
        top = np.arange(min(components, len(sv)))
        # axes above noise (the Marchenko-Pastur edge of unrelated SNPs) that load on many SNPs (ancestry), not on
        # one LD block's few (participation ratio)
        top = top[(sv[top] ** 2 / n > (1 + np.sqrt(m / n)) ** 2) & (1.0 / (vt[top] ** 4).sum(1) >= m / 10)]
        x = x - (u[:, top] * sv[top]) @ vt[top]
        x = x / np.maximum(x.std(0), 1e-9)
    reach = max(reach, window)
    seg = segment.numpy()
    # r^2 the best of c candidates must beat, c = 1..reach; p = 1: every neighbour on the chromosome, best first
    cuts = chi2.isf(p / np.arange(1, reach + 1), 1) / n if p < 1 else np.full(reach, -0.5)
    lags = np.tile(reach + 1 + np.arange(window), (m, 1))  # absent slots sort last
    first = 0  # the chromosome's first SNP
    for j in range(m):
        if j and seg[j] != seg[j - 1]:
            first = j
        back = min(reach, j - first)  # SNPs before j on its chromosome, within reach
        near = min(nearest, back, window)
        lags[j, :near] = np.arange(1, near + 1)
        if near == window or back == near:
            continue
        cand = np.arange(near + 1, back + 1)
        e = x[:, np.r_[j, j - cand]]  # SNP j, then its candidates
        if not partial:
            r2 = (e[:, 1:].T @ e[:, 0] / n) ** 2
            top = np.argsort(-r2, kind="stable")[:window - near]
            top = top[r2[top] > cuts[0]]
            lags[j, near:near + len(top)] = cand[top]
            continue
        if near:  # less what the nearest explain
            q = np.linalg.qr(x[:, j - np.arange(1, near + 1)])[0]
            e = e - q @ (q.T @ e)
        y, c = e[:, 0], e[:, 1:]
        for slot in range(near, window):
            norm2 = np.einsum("ij,ij->j", c, c)
            fit = norm2 > 1e-9 * n  # a candidate the chosen neighbours already explain has nothing left
            r2 = np.where(fit, (y @ c) ** 2 / np.maximum(norm2 * (y @ y), 1e-300), -1.0)
            best = int(np.argmax(r2))
            if r2[best] <= cuts[len(cand) - 1]:
                break
            lags[j, slot] = cand[best]
            qb = c[:, best] / np.sqrt(norm2[best])
            y = y - qb * (qb @ y)
            c = c - np.outer(qb, qb @ c)
    lags = np.sort(lags, axis=1)  # nearest first, absent last
    valid = lags <= reach
    index = np.where(valid, np.arange(m)[:, None] - lags, 0)
    return torch.as_tensor(index, dtype=torch.long), torch.as_tensor(valid)


def _window_mask(segment: torch.Tensor, window: int) -> torch.Tensor:
    """(m, window) float: 1 where neighbour k (= SNP j-1-k) exists and lies on SNP j's chromosome."""
    m = segment.shape[0]
    j = torch.arange(m)[:, None]
    k = torch.arange(window)[None, :]
    src = j - 1 - k
    ok = src >= 0
    same = segment[j.expand(m, window)] == segment[src.clamp(min=0)]
    return (ok & same).float()


class GenotypeDecoder(nn.Module):
    """p(x | z) with per-SNP dependence on the ``window`` preceding SNPs (see the module docstring).

    ``global_net``: a module mapping z (B, d) -> (B, 3 * m) class-major logits (the independent decoder's MLP).
    """

    def __init__(self, n_snps: int, latent_dim: int, global_net: nn.Module, *, window: int = 16, hidden: int = 0,
                 context_dim: int = 16, gain: float = 1.0, nearest: int | None = None, far_rank: int = 0,
                 far_reach: int = 256, classes: int = 0):
        super().__init__()
        if window < 0 or hidden < 0:
            raise ValueError(f"decoder window {window} and hidden units {hidden} must be >= 0")
        if window == 0 and hidden > 0:
            raise ValueError("hidden units need neighbours: set a decoder window >= 1, or hidden 0")
        if far_rank < 0 or far_reach < 1 or (far_rank and window == 0):
            raise ValueError(f"the far summary (rank {far_rank}, reach {far_reach}) needs rank >= 0, reach >= 1 and a "
                             "decoder window >= 1")
        self.n_snps, self.window, self.hidden = n_snps, window, hidden
        # the first ``nearest`` slots hold the nearest SNPs; the others are chosen (``choose_neighbours``)
        self.nearest = window if nearest is None else min(nearest, window)
        self.global_net = global_net
        # (m, w, class of neighbour, class of SNP j); the weights used are gain * W: with Adam, whose steps have a
        # fixed size per parameter, the gain is the neighbour weights' learning rate relative to the latent MLP's
        self.W = nn.Parameter(torch.zeros(n_snps, window, 3, 3))
        self.gain = gain
        if hidden > 0:
            self.A = nn.Parameter(torch.randn(n_snps, window, 3, hidden) * (1.0 / (3 * window) ** 0.5))
            self.context = nn.Linear(latent_dim, context_dim)
            self.P = nn.Parameter(torch.randn(n_snps, context_dim, hidden) * (1.0 / context_dim ** 0.5))
            self.bias_h = nn.Parameter(torch.zeros(n_snps, hidden))
            self.B = nn.Parameter(torch.zeros(n_snps, hidden, 3))
        # the far summary: r numbers per individual summing the genotypes ``far_reach`` to ``nearest`` + 1 SNPs back
        # (V, per SNP and genotype), read by each SNP through its own U
        self.far_rank, self.far_reach = far_rank, far_reach
        if far_rank > 0:
            self.V = nn.Parameter(torch.randn(n_snps, 3, far_rank) * far_reach ** -0.5)
            self.U = nn.Parameter(torch.zeros(n_snps, far_rank, 3))
        # chromosome segments of the panel (set by set_segments from the panel's .bim; one chromosome by default)
        self.register_buffer("segment", torch.zeros(n_snps, dtype=torch.long))
        self.register_buffer("mask", _window_mask(self.segment, window))
        # neighbour k of SNP j: SNP neighbours[j, k] (the nearest, j-1-k, unless ``choose_neighbours``), if mask[j, k]
        self.register_buffer("neighbours", _nearest(n_snps, window))
        self.register_buffer("calibration", torch.zeros(n_snps, 3))
        # a class trait's offsets per class (``classes`` rows, the last for an unknown class: zero), set after training
        self.register_buffer("class_calibration", torch.zeros(classes, n_snps, 3))
        self.register_buffer("ld_scale", torch.ones(window))  # the weights of neighbour k: factor ld_scale[k]
        self.register_buffer("trait_share", torch.ones(n_snps))  # set after training (``set_trait_share``)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # runs written before the corrections existed: none; before the per-lag factors: one for every lag
        state_dict.setdefault(prefix + "calibration", torch.zeros_like(self.calibration))
        state_dict.setdefault(prefix + "class_calibration", torch.zeros_like(self.class_calibration))  # 2026-12-05
        state_dict.setdefault(prefix + "trait_share", torch.ones_like(self.trait_share))  # before 2026-12-04
        state_dict.setdefault(prefix + "neighbours", _nearest(self.n_snps, self.window))  # before they were chosen
        scale = state_dict.setdefault(prefix + "ld_scale", torch.ones_like(self.ld_scale))
        if scale.dim() == 0:
            state_dict[prefix + "ld_scale"] = scale.expand_as(self.ld_scale).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def set_segments(self, segment: torch.Tensor) -> None:
        """Restart the dependence at chromosome boundaries: ``segment`` (m,) from ``chromosome_segments``."""
        if segment.shape != (self.n_snps,):
            raise ValueError(f"segments for {tuple(segment.shape)} SNPs, decoder has {self.n_snps}")
        self.segment.copy_(segment)
        self.mask.copy_(_window_mask(segment.cpu(), self.window).to(self.mask.device))
        self.neighbours.copy_(_nearest(self.n_snps, self.window))

    def choose_neighbours(self, index: torch.Tensor, valid: torch.Tensor) -> None:
        """Condition SNP j on SNPs ``index[j]`` (m, window), all before j on its chromosome, where ``valid``
        (``linked_neighbours``); the others' weights never enter the logits."""
        j = torch.arange(self.n_snps)[:, None]
        near = _nearest(self.n_snps, self.window)[:, : self.nearest]
        if (index.shape != self.neighbours.shape or bool((valid & (index >= j)).any())
                or bool((valid[:, : self.nearest] & (index[:, : self.nearest] != near)).any())):
            raise ValueError(f"neighbours must be (SNPs, window) indices of earlier SNPs, the first {self.nearest} "
                             "the nearest")
        self.neighbours.copy_(index)
        self.mask.copy_(valid.to(self.mask))

    # -- the parts of the logits ------------------------------------------------------------------------------

    def set_trait_share(self, share) -> None:
        """Each SNP's share (m,) in [0, 1] of the trait's effect on its latent logits (``global_logits``)."""
        share = torch.as_tensor(share, dtype=self.trait_share.dtype, device=self.trait_share.device).flatten()
        if share.shape != (self.n_snps,) or not bool(((share >= 0) & (share <= 1)).all()):
            raise ValueError(f"trait shares must be {self.n_snps} values in [0, 1]")
        self.trait_share.copy_(share)

    def _uses_class_offsets(self, cls: torch.Tensor | None) -> bool:
        """Whether class indices were given and ``class_calibration`` was ever set."""
        return cls is not None and bool(self.class_calibration.any())

    def class_offsets(self, cls: torch.Tensor | None) -> torch.Tensor | None:
        """Each individual's row (B, m, 3) of ``class_calibration``, for class indices ``cls`` (B,) long; None when
        none are given or the offsets were never set."""
        return self.class_calibration[cls] if self._uses_class_offsets(cls) else None

    def global_logits(self, z: torch.Tensor, z_base: torch.Tensor | None = None,
                      cls: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) -> (B, m, 3): the latent's share of each SNP's logits, with the calibration (and each individual's
        class offsets, for class indices ``cls`` (B,)). ``z_base``: the same latent with the trait's average in place
        of each individual's trait (``GenotypeVAE.set_trait_share``); each SNP's logits then move from z_base's
        towards z's by its ``trait_share``."""
        out = self.global_net(z).view(z.shape[0], 3, self.n_snps).transpose(1, 2)
        if z_base is not None:
            base = self.global_net(z_base).view(z.shape[0], 3, self.n_snps).transpose(1, 2)
            out = base + self.trait_share[:, None] * (out - base)
        offsets = self.class_offsets(cls)
        return out + self.calibration + (0.0 if offsets is None else offsets)

    def _snp_major_logits(self, z: torch.Tensor, z_base: torch.Tensor | None = None,
                          cls: torch.Tensor | None = None) -> torch.Tensor:
        """``global_logits`` as sampling reads them: those of genotypes 1 and 2 less that of genotype 0, laid out
        (m, 2, B). A global net ending in a linear layer (the VAE's) gets that layer's rows differenced and reordered
        instead, so the product comes out in this layout with two thirds of the work: transposing its output
        afterwards took about as long as the product itself (4,096 x 2,000, one thread: 0.25 s and 0.27 s)."""
        n, m, net = z.shape[0], self.n_snps, self.global_net
        if isinstance(net, nn.Sequential) and isinstance(net[-1], nn.Linear):
            last = net[-1]
            weight = _against_first(last.weight.float().view(3, m, -1), 0).transpose(0, 1).reshape(2 * m, -1)
            bias = _against_first(self.calibration.float() + (0.0 if last.bias is None else
                                                              last.bias.float().view(3, m).T), 1).reshape(-1, 1)
            out = torch.addmm(bias, weight, net[:-1](z).float().T)
            if z_base is not None:
                base = torch.addmm(bias, weight, net[:-1](z_base).float().T)
                out = base.add_(self.trait_share.float().repeat_interleave(2)[:, None] * (out - base))
            out = out.view(m, 2, n)
            if self._uses_class_offsets(cls):  # (K, m, 2) against genotype 0, each individual's class's
                out += _against_first(self.class_calibration.float(), 2).permute(1, 2, 0)[:, :, cls]
            return out
        return _against_first(self.global_logits(z, z_base, cls).float(), 2).permute(1, 2, 0).contiguous()

    @property
    def independent(self) -> bool:
        return self.window == 0

    def logits(self, dosages: torch.Tensor, z: torch.Tensor, z_base: torch.Tensor | None = None,
               cls: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits (B, m, 3) of every SNP given z and the observed preceding genotypes (``z_base``,
        ``cls``: ``global_logits``')."""
        if self.independent:
            return self.global_logits(z, z_base, cls)
        history = self._history(dosages, z.dtype)
        if self.hidden > 0:  # the hidden units' neighbour sums in the same products, as outputs 3..
            sums = self._neighbour_sum(history, torch.cat([self._scaled_W(), self.A], -1))
            pre = sums[..., 3:] + self._context(z).permute(2, 0, 1)
            out = self.global_logits(z, z_base, cls) + sums[..., :3] + torch.einsum("bmh,mho->bmo", F.gelu(pre),
                                                                                      self.B)
        else:
            out = self.global_logits(z, z_base, cls) + self._neighbour_sum(history, self._scaled_W())
        if self.far_rank > 0:
            y = torch.bmm(self.V.transpose(1, 2), history[self.nearest:])  # (m, r, B): each SNP's share
            total = F.pad(y.cumsum(0), (0, 0, 0, 0, 1, 0))  # (m + 1, r, B): total[i] = sum of the first i
            start, end = self._far_bounds()
            out = out + torch.bmm(self.U.transpose(1, 2), total[end] - total[start]).permute(2, 0, 1)
        return out

    def _far_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(m,) first and one-past-last SNP of each SNP's far summary: SNPs ``far_reach`` to ``nearest`` + 1 before
        it on its chromosome (empty, start = end, where there are none)."""
        m = self.n_snps
        j = torch.arange(m, device=self.segment.device)
        first = torch.zeros(m, dtype=torch.long, device=j.device)  # the chromosome's first SNP
        change = torch.nonzero(self.segment[1:] != self.segment[:-1]).flatten() + 1
        first[change] = change
        first = torch.cummax(first, 0).values
        start = torch.maximum(j - self.far_reach, first)
        return start, torch.maximum(j - self.nearest, start)

    def _history(self, dosages: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, m) dosages -> (nearest + m, 3, B) one-hot genotypes, individuals last, SNP j in row nearest + j (zero
        rows before the panel; a missing call is all zeros): the layout ``sample`` builds SNP by SNP."""
        onehot = one_hot_genotypes(dosages.T, dtype).transpose(1, 2)  # (m, 3, B)
        return F.pad(onehot, (0, 0, 0, 0, self.nearest, 0)).contiguous()  # _neighbour_sum's strides assume this

    def _neighbour_sum(self, history: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_k weights[j, k, x_{n_j(k)}] for every SNP j: ``history`` from ``_history``, weights (m, w, 3, K) ->
        (B, m, K).

        Slots below ``nearest`` hold the nearest SNPs (j-1-k) or nothing (zero weight): SNP j's are the 3k rows of
        ``history`` from row j, read in place through overlapping strides, one small matrix product per SNP. The
        other slots, chosen by linkage and mostly empty, are gathered as a flat list of present (SNP, neighbour)
        pairs. (Individuals last: both gather and product read whole rows; 3-6x faster on the CPU than
        individuals first.)"""
        m, k, n = self.n_snps, self.nearest, history.shape[-1]
        windows = history.as_strided((m, 3 * k, n), (3 * n, n, 1), history.storage_offset())
        out = torch.bmm(self._nearest_weights(weights), windows)  # (m, K, B)
        snp, slot = torch.nonzero(self.mask[:, k:], as_tuple=True)
        if len(snp):
            slot = slot + k
            linked = history.index_select(0, self.neighbours[snp, slot] + k)  # (pairs, 3, B)
            out = out.index_add(0, snp, torch.bmm(weights[snp, slot].transpose(1, 2), linked))
        return out.permute(2, 0, 1)

    def _nearest_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """(m, w, G, K) weights -> those of the nearest slots (slot i = SNP j-1-i; zero where masked) as (m, K, Gk),
        column Gi + g for genotype row g of SNP j-k+i: the layout of the k rows of ``_history`` (G = 3) or of
        ``sample``'s indicators (G = 2) before SNP j."""
        k = self.nearest
        near = weights[:, :k] * self.mask[:, :k, None, None]
        return near.flip(1).reshape(self.n_snps, -1, weights.shape[-1]).transpose(1, 2).contiguous()

    def _context(self, z: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) -> (m, hidden, B): the latent's input to each SNP's hidden units (plus ``shift`` (m, hidden)), in
        the layout sampling reads, by one product."""
        bias = self.bias_h if shift is None else self.bias_h + shift
        weight = self.P.transpose(1, 2).reshape(-1, self.P.shape[1])  # (m * hidden, context)
        return torch.addmm(bias.reshape(-1, 1), weight, self.context(z).T).view(self.n_snps, self.hidden, -1)

    def _indicator_weights(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(m, w, 3, K) neighbour weights on one-hot genotypes -> (m, w, 2, K) on the indicators of genotypes 1 and 2,
        and (m, K) the constant they leave: a drawn genotype is exactly one of three, so e0 = 1 - e1 - e2 and
        sum_g W_g e_g = W_0 + (W_1 - W_0) e1 + (W_2 - W_0) e2. Masked slots count for nothing in either."""
        w = weights * self.mask[:, :, None, None]
        return _against_first(w, 2), w[:, :, 0].sum(1)

    def _scaled_W(self) -> torch.Tensor:
        """The neighbour weights as they enter the logits: gain x the calibration's factor of their lag x W."""
        return self.gain * self.ld_scale[:, None, None] * self.W

    def penalty(self) -> torch.Tensor:
        """Sum of squares of the neighbour weights (a Gaussian prior on them; the latent MLP has its own)."""
        if self.independent:
            return self.W.new_zeros(())
        total = (self.gain * self.W).pow(2).sum()
        if self.hidden > 0:
            total = total + self.A.pow(2).sum() + self.B.pow(2).sum()
        if self.far_rank > 0:
            total = total + self.U.pow(2).sum() + self.V.pow(2).sum()
        return total

    def nonadditive_penalty(self) -> torch.Tensor:
        """Sum of squares of the neighbour weights' departure from an allelic (additive) effect: the part of each
        3 x 3 table ``gain W[j, k]`` (neighbour's genotype g, SNP j's genotype c) left once its row and column
        effects (which the softmax and the latent's bias absorb) and the bilinear term b (g - 1)(c - 1) are taken
        out. Why: if the neighbour's allele shifts the log-odds of SNP j's allele, the genotype table is that
        bilinear term (one number), while the other three interaction numbers are fitted mostly by the few people
        homozygous for a rare allele at both SNPs, which is where a decoder can learn individuals."""
        if self.independent:
            return self.W.new_zeros(())
        w = self.gain * self.W
        w = w - w.mean(2, keepdim=True) - w.mean(3, keepdim=True) + w.mean((2, 3), keepdim=True)
        g = torch.arange(3, dtype=w.dtype, device=w.device) - 1.0
        bilinear = torch.outer(g, g)  # double-centred; <bilinear, bilinear> = 4
        b = (w * bilinear).sum((2, 3), keepdim=True) / 4.0
        return ((w - b * bilinear).pow(2) * self.mask[:, :, None, None]).sum()

    def log_prob(self, dosages: torch.Tensor, z: torch.Tensor, z_base: torch.Tensor | None = None,
                 cls: torch.Tensor | None = None) -> torch.Tensor:
        """log p(called genotypes | z) per individual, (B,) nats; missing calls (-1) are left out (``z_base``,
        ``cls``: ``global_logits``')."""
        logits = self.logits(dosages, z, z_base, cls).float()
        ce = F.cross_entropy(logits.reshape(-1, 3), dosages.long().clamp(min=0).reshape(-1), reduction="none")
        return -(ce.view(dosages.shape) * (dosages >= 0)).sum(1)

    # -- sampling ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               mode: str = "probabilities", z_base: torch.Tensor | None = None,
               cls: torch.Tensor | None = None) -> torch.Tensor:
        """Genotypes (B, m) int8 for latents ``z`` (B, d), SNP by SNP: each drawn from softmax(logits / T) with
        one uniform per genotype from ``generator`` (``mode="argmax"``: the most probable class, no randomness).
        ``z_base``, ``cls``: ``global_logits``'."""
        if mode not in ("probabilities", "argmax"):
            raise ValueError(f"sampling mode {mode!r} unknown; choose 'probabilities' or 'argmax'")
        n, m = z.shape[0], self.n_snps
        if self.independent:
            return sample_genotypes(self.global_logits(z, z_base, cls), generator=generator,
                                    temperature=temperature, mode=mode)
        # Everything is laid out individuals-last, so that each step works on contiguous rows of length B, and in
        # differences against genotype 0, which are all a draw needs: d (2, B) = logits of genotypes 1, 2 less that
        # of 0 = base + W_j (2, 2k) @ the nearest k SNPs' indicator rows (2k, B) + W'_j (2, 2v) @ the linked ones'.
        # Indicators of genotypes 1 and 2, not three one-hot rows, since a drawn genotype is exactly one of three
        # (``_indicator_weights``): 4/9 of the products' work and 2/3 of the memory.
        base = self._snp_major_logits(z, z_base, cls)  # (m, 2, B)
        k = self.nearest
        W, shift = self._indicator_weights(self._scaled_W().float())
        W, shift = _against_first(W, 3), _against_first(shift, 1)  # (m, w, 2, 2), (m, 2): outputs against genotype 0
        base += shift[:, :, None]
        near_w = self._nearest_weights(W)  # (m, 2, 2k)
        # The nearest slots are read through a view of the k indicator rows before SNP j (SNP j in row k + j, zeros
        # before the panel; a slot across a chromosome boundary has zero weight); the linked slots (mostly empty)
        # are gathered per SNP, its present ones only, with weights (2, 2v), column 2i + g for indicator g of the
        # i-th neighbour row read.
        linked = [(torch.nonzero(row).flatten() + k).to(z.device) for row in self.mask[:, k:].cpu() > 0]
        index = [self.neighbours[j, cols] + k for j, cols in enumerate(linked)]
        far_w = [W[j, cols].reshape(-1, 2).T.contiguous() for j, cols in enumerate(linked)]
        if self.far_rank > 0:  # the summary's genotype-0 part is a constant per SNP; the rest is kept running
            start, end = (b.tolist() for b in self._far_bounds())
            total = F.pad(self.V[:, 0].float().cumsum(0), (0, 0, 1, 0))
            far_u = _against_first(self.U.float(), 2).transpose(1, 2).contiguous()  # (m, 2, r)
            base += torch.bmm(far_u, (total[end] - total[start])[:, :, None])
            far_v = _against_first(self.V.float(), 1).transpose(1, 2).contiguous()  # (m, r, 2)
            summary, lo, hi = torch.zeros(self.far_rank, n, device=z.device), 0, 0  # SNPs lo..hi-1 summed
        if self.hidden > 0:  # the hidden units' inputs ride along in rows 2.. of each step's products
            A, shift_a = self._indicator_weights(self.A.float())
            base = torch.cat([base, self._context(z, shift_a).float()], 1)  # (m, 2 + H, B)
            near_w = torch.cat([near_w, self._nearest_weights(A)], 1)  # (m, 2 + H, 2k)
            far_w = [torch.cat([w, A[j, cols].reshape(-1, self.hidden).T]).contiguous()
                     for j, (w, cols) in enumerate(zip(far_w, linked))]
            B = _against_first(self.B.float(), 2).transpose(1, 2).contiguous()  # (m, 2, H)
        uniforms = torch.rand((n, m), generator=generator, device=z.device).T.contiguous()  # (m, B)
        drawn = torch.zeros(k + m, 2, n, device=z.device)  # indicators of genotypes 1 and 2 drawn so far
        for j in range(m):
            near = drawn[j:j + k].view(2 * k, n)  # (2k, B): SNPs j-k..j-1, no copy
            far = drawn.index_select(0, index[j]).view(-1, n) if len(index[j]) else None  # (2v, B)
            out = base[j].addmm_(near_w[j], near)  # (2 [+ H], B), in place: SNP j's base is not read again
            if far is not None:
                out.addmm_(far_w[j], far)
            d = out[:2]
            if self.far_rank > 0:
                if start[j] >= hi:  # a new chromosome, or nothing summed yet
                    summary.zero_()
                    lo = hi = start[j]
                for i in range(hi, end[j]):
                    summary.addmm_(far_v[i], drawn[k + i])
                for i in range(lo, start[j]):
                    summary.addmm_(far_v[i], drawn[k + i], alpha=-1)
                lo, hi = start[j], max(hi, end[j])
                d.addmm_(far_u[j], summary)
            if self.hidden > 0:
                d.addmm_(B[j], F.gelu(out[2:]))
            row = drawn[k + j]  # written in place by the comparisons: no boolean temporaries to convert
            d1, d2 = d.unbind(0)
            top = torch.maximum(d1, d2)
            if mode == "argmax":  # the first most probable class, as argmax takes it (genotype 0's logit is 0)
                torch.gt(d2, d1.clamp(min=0), out=row[1])
                torch.gt(top, 0, out=row[0])
            else:  # inverse CDF on unnormalised probabilities (see sample_genotypes): e0, e1, e2 over their max
                if temperature != 1.0:
                    d.div_(temperature)
                    top.div_(temperature)
                top.clamp_(min=0)
                e0 = torch.neg(top).exp_()
                d.sub_(top).exp_()
                cut = d1.add_(e0)  # e0 + e1
                u = uniforms[j].mul_(d2.add_(cut))
                torch.gt(u, cut, out=row[1])
                torch.gt(u, e0, out=row[0])
            row[0].sub_(row[1])
        return torch.add(drawn[k:, 0], drawn[k:, 1], alpha=2).to(torch.int8).T.contiguous()


def _against_first(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Entries 1 and 2 of ``dim`` (size 3, genotypes 0/1/2) less entry 0."""
    return x.narrow(dim, 1, 2) - x.narrow(dim, 0, 1)
