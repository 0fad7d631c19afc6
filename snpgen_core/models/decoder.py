"""The genotype decoder p(x | z): each SNP depends on the latent and on the ``window`` SNPs before it.

    p(x | z) = prod_j p(x_j | x_{j-w}, ..., x_{j-1}, z)

along the position-ordered panel, restarting at every chromosome boundary (a SNP never conditions on a SNP of
another chromosome, nor on positions before the panel's first). Why: a decoder that draws every SNP independently
given z has Cov(x_j, x_k | z) = 0, so all linkage disequilibrium must pass through z, and strong LD then needs z to
pin individuals down (memorisation). Here short-range LD comes from population-level haplotype structure learned
per SNP, and z only has to carry ancestry, trait and long-range signal.

Per SNP j (its own weights, like PixelCNN's masked connections but not shared across positions, because which
neighbours are in LD differs from SNP to SNP):

    logits_j = g(z)_j + sum_k W_j[k, x_{j-1-k}] + B_j . GELU(sum_k A_j[k, x_{j-1-k}] + P_j e(z))

``z`` is whatever the decoder is conditioned on (the VAE passes the latent with the embedded trait appended,
``GenotypeVAE.decoder_input``). ``g(z)`` is the independent decoder's MLP (per-SNP, per-class logits; or one
linear map, the VAE's ``decoder_latent="linear"``), ``W`` the additive (logistic) effect of each of the
``window`` preceding genotypes, and the optional ``hidden`` units (``A``, ``B``, ``P``; 0 = off) let
neighbours interact with each other and with the latent (haplotypes whose frequencies differ by ancestry).
Genotypes are 3-class categorical (0/1/2 copies of a1); a missing neighbour (-1) is the all-zero one-hot, so it
contributes nothing, and a missing x_j is left out of the likelihood (``log_prob`` is exact: the model is
autoregressive, so the probability of the called genotypes is the product of their conditionals given the
observed past). Sampling runs SNP by SNP, batched over individuals.

Two corrections are fitted after training (``generators.calibrate_ld`` and ``calibrate_marginals``) and left
neutral while training: ``ld_scale`` (a factor per lag) multiplies the neighbour weights ``W`` (the sampled LD
between neighbours is 8-17% weaker than the training cohort's otherwise, most at the shortest lags: while training,
the posterior latent of each individual also explains part of it), and ``calibration`` (m, 3) is added to every
SNP's logits (the sampled genotype frequencies are otherwise 1.2-1.5x further from the training ones than a fresh
real sample's are).

``window = 0`` is the independent decoder (every SNP drawn on its own given z: the SNPgen / Xie et al. design),
kept for comparison; it samples all SNPs at once.
"""
from __future__ import annotations

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
    encoding of genotypes, for the VAE's encoder and the decoder's neighbours."""
    d = dosages.unsqueeze(-1)
    return (d == torch.arange(3, device=d.device)).to(dtype)


def chromosome_segments(chrom) -> torch.Tensor:
    """(m,) integer segment id per SNP: increases by one at each change of chromosome along the panel."""
    codes = [str(c) for c in chrom]
    seg = [0] * len(codes)
    for j in range(1, len(codes)):
        seg[j] = seg[j - 1] + (codes[j] != codes[j - 1])
    return torch.as_tensor(seg, dtype=torch.long)


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
                 context_dim: int = 16, gain: float = 1.0):
        super().__init__()
        if window < 0 or hidden < 0:
            raise ValueError(f"decoder window {window} and hidden units {hidden} must be >= 0")
        if window == 0 and hidden > 0:
            raise ValueError("hidden units need neighbours: set a decoder window >= 1, or hidden 0")
        self.n_snps, self.window, self.hidden = n_snps, window, hidden
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
        # chromosome segments of the panel (set by set_segments from the panel's .bim; one chromosome by default)
        self.register_buffer("segment", torch.zeros(n_snps, dtype=torch.long))
        self.register_buffer("mask", _window_mask(self.segment, window))
        self.register_buffer("calibration", torch.zeros(n_snps, 3))
        self.register_buffer("ld_scale", torch.ones(window))  # neighbour k = SNP j-1-k: factor ld_scale[k]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # runs written before the corrections existed: none; before the per-lag factors: one for every lag
        state_dict.setdefault(prefix + "calibration", torch.zeros_like(self.calibration))
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

    # -- the parts of the logits ------------------------------------------------------------------------------

    def global_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, m, 3): the latent's share of each SNP's logits, with the calibration."""
        return self.global_net(z).view(z.shape[0], 3, self.n_snps).transpose(1, 2) + self.calibration

    @property
    def independent(self) -> bool:
        return self.window == 0

    def _windows(self, onehot: torch.Tensor) -> torch.Tensor:
        """(B, m, 3) one-hot -> (B, m, 3, w) view: the one-hot genotypes of SNPs j-w, ..., j-1 (oldest first; zeros
        before 0). A view, not a copy: the weights are reordered to match instead (``_oldest_first``)."""
        w = self.window
        padded = F.pad(onehot, (0, 0, w, 0))  # (B, m + w, 3): w zero rows in front
        return padded.unfold(1, w, 1)[:, : self.n_snps]  # padded rows j..j+w-1 = SNPs j-w..j-1

    def _oldest_first(self, weights: torch.Tensor) -> torch.Tensor:
        """Neighbour weights (m, w, 3, K) (neighbour k = SNP j-1-k) masked at chromosome boundaries and reordered
        to the windows' layout (m, 3, w, K), oldest first. Masking the small weights rather than every window is the
        same sum, and much cheaper."""
        return (weights * self.mask[:, :, None, None]).flip(1).transpose(1, 2)

    def logits(self, dosages: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, m, 3) of every SNP given z and the observed preceding genotypes."""
        if self.independent:
            return self.global_logits(z)
        win = self._windows(one_hot_genotypes(dosages, z.dtype))  # (B, m, 3, w)
        out = self.global_logits(z) + torch.einsum("bmci,mcio->bmo", win, self._oldest_first(self._scaled_W()))
        if self.hidden > 0:
            pre = torch.einsum("bmci,mcih->bmh", win, self._oldest_first(self.A)) + self._context(z)
            out = out + torch.einsum("bmh,mho->bmo", F.gelu(pre), self.B)
        return out

    def _context(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, m, hidden): the latent's input to each SNP's hidden units."""
        return torch.einsum("bc,mch->bmh", self.context(z), self.P) + self.bias_h

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
        return total

    def log_prob(self, dosages: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(called genotypes | z) per individual, (B,) nats; missing calls (-1) are left out."""
        logits = self.logits(dosages, z).float()
        ce = F.cross_entropy(logits.reshape(-1, 3), dosages.long().clamp(min=0).reshape(-1), reduction="none")
        return -(ce.view(dosages.shape) * (dosages >= 0)).sum(1)

    # -- sampling ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None, *, temperature: float = 1.0,
               mode: str = "probabilities") -> torch.Tensor:
        """Genotypes (B, m) int8 for latents ``z`` (B, d), SNP by SNP: each drawn from softmax(logits / T) with
        one uniform per genotype from ``generator`` (``mode="argmax"``: the most probable class, no randomness)."""
        if mode not in ("probabilities", "argmax"):
            raise ValueError(f"sampling mode {mode!r} unknown; choose 'probabilities' or 'argmax'")
        n, m, w = z.shape[0], self.n_snps, self.window
        if self.independent:
            return sample_genotypes(self.global_logits(z), generator=generator, temperature=temperature, mode=mode)
        # Everything is laid out individuals-last, so that each step works on contiguous rows of length B:
        # logits (3, B) = base + W_j (3, 3w) @ one-hot history (3w, B), as a single small matrix product.
        base = self.global_net(z).float().T.reshape(3, m, n)  # (3, m, B): class-major output, transposed
        base = base + self.calibration.T.float()[:, :, None]
        ctx = self._context(z).float().permute(2, 1, 0).contiguous() if self.hidden > 0 else None  # (H, m, B)
        # weights masked once, neighbours reordered oldest first: column 3i + g is genotype g of SNP j - w + i
        W = self._scaled_W() * self.mask[:, :, None, None]
        W = W.flip(1).float().reshape(m, 3 * w, 3).transpose(1, 2).contiguous()  # (m, 3, 3w)
        if ctx is not None:
            A = (self.A * self.mask[:, :, None, None]).flip(1).float().reshape(m, 3 * w, -1).transpose(1, 2)
            A, B = A.contiguous(), self.B.float().transpose(1, 2).contiguous()  # (m, H, 3w), (m, 3, H)
        uniforms = torch.rand((n, m), generator=generator, device=z.device).T.contiguous()  # (m, B)
        # one-hot genotypes sampled so far, after w zero rows (before the panel starts): (3 (w + m), B)
        onehot = torch.zeros((w + m) * 3, n, device=z.device)
        out = torch.empty((m, n), dtype=torch.int8, device=z.device)
        for j in range(m):
            hist = onehot[3 * j: 3 * (j + w)]  # (3w, B): SNPs j-w .. j-1
            lj = torch.addmm(base[:, j], W[j], hist)  # (3, B)
            if ctx is not None:
                lj = lj + B[j] @ F.gelu(torch.addmm(ctx[:, j], A[j], hist))
            l0, l1, l2 = lj.unbind(0)
            if mode == "argmax":  # the first most probable class, as argmax takes it
                zero, two = torch.ge(l0, torch.maximum(l1, l2)), torch.gt(l2, torch.maximum(l0, l1))
            else:  # inverse CDF on unnormalised probabilities (see sample_genotypes)
                if temperature != 1.0:
                    l0, l1, l2 = l0 / temperature, l1 / temperature, l2 / temperature
                top = torch.maximum(torch.maximum(l0, l1), l2)
                e0, e1, e2 = (l0 - top).exp_(), (l1 - top).exp_(), (l2 - top).exp_()
                cut = e1.add_(e0)
                u = uniforms[j] * e2.add_(cut)
                zero, two = torch.le(u, e0), torch.gt(u, cut)
            r = 3 * (w + j)
            onehot[r] = zero
            onehot[r + 2] = two
            onehot[r + 1] = ~(zero | two)
            out[j] = (~zero).to(torch.int8).add_(two)
        return out.T.contiguous()
