"""Phenotype-supervised VAE over a SNP panel: genotypes in and out as 3-class categorical data.

Input: dosages (B, m) int8, 0/1/2 copies of the ``.bim`` a1 allele, -1 = missing. Each genotype is one-hot
encoded over the three classes; a missing call is the all-zero vector, so it contributes nothing to the encoder
(a one-hot input times a linear layer is exactly a learned per-SNP, per-class embedding, summed over SNPs).
Output: per-SNP logits (B, m, 3); the reconstruction loss is the per-SNP softmax cross-entropy, summed over the
*called* genotypes only (missing calls are masked out of the loss, never imputed as 0).

Loss per individual, averaged over the batch (nats):

    recon + beta(epoch) * KL(q(z|x) || N(0, I)) + pheno_weight * m * pheno

with ``beta`` rising linearly from 0 to ``kl_weight`` over ``kl_warmup_epochs`` and ``pheno`` the phenotype head's
loss on the sampled latent (cross-entropy for binary/categorical traits, half the squared error of the
standardised value for quantitative ones; individuals with a missing trait are left out of it). ``pheno_weight``
is relative to the panel size ``m`` so that the same value means the same balance on 1,000 or 2,000 SNPs.

Privacy knobs (the decoder can memorise individuals): ``dropout``, ``input_dropout`` (genotypes hidden from the
encoder at random while training), ``kl_weight`` (a tighter bottleneck), and at sampling time ``temperature``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..options import option
from .decoder import GenotypeDecoder, chromosome_segments, linked_neighbours, one_hot_genotypes

PHENO_KINDS = ("none", "binary", "categorical", "quantitative")
CLASS_KINDS = ("binary", "categorical")  # traits whose classes get offsets of their own (``class_index``)
ENCODERS = ("mlp", "conv")
LATENT_PATHS = ("mlp", "linear")
DECODER_LATENT = ("auto",) + LATENT_PATHS


@dataclass
class VAEConfig:
    n_snps: int = option(0, "SNPs in the panel", data=True)
    # with the local decoder the latent only carries ancestry and long-range structure: a small latent and a full
    # KL weight generalise best (msprime, 2,160 training people, 1,000 SNPs, Gaussian prior: validation NLL 309 vs
    # 329 nats at 64-d / KL 0.02, LD r 1.01x vs 0.92x the holdout's, DCR share 0.49 vs 0.57)
    latent_dim: int = option(16, "dimensions of the latent space", low=1, high=1024)
    # On 1000G AGBL4 (629-SNP panel) conv gave better LD r (0.81 vs 0.76) but worse detection AUC (0.68 vs 0.61),
    # AF error and DCR share, for 15% more CPU: the MLP stays the default
    encoder: str = option("mlp", "encoder: mlp, or conv (1D convolution over position-ordered SNPs, as SNPgen)",
                          choices=ENCODERS)
    hidden: int = option(512, "width of the first encoder / last decoder layer; the middle one has hidden // 2",
                         low=2, high=16384)
    # decoder (models/decoder.py); window 0 is the independent decoder of SNPgen / Xie et al., kept for comparison.
    # Each SNP's window holds its neighbour_nearest nearest SNPs and, in the other slots, SNPs before it (within
    # neighbour_reach) chosen one at a time by their partial correlation with it given the neighbours it has, once
    # ancestry is taken out, while that beats chance at neighbour_p for the best candidate (decoder.linked_neighbours).
    # Against the nearest 16 alone (BENCHMARKS.md, eleventh pass): on 1000 Genomes AGBL4 CASE, whose LD reaches past
    # 16 SNPs, LD r 0.90x -> 0.99x, LD-decay error 2.4x -> 1.0x, detection AUC 0.79 -> 0.61. neighbour_p 1e-10 (n r^2
    # above about 49: a dependence 7 standard errors strong, of which the training sample's noise is under 2%): with
    # 0.001 and marginal correlations (the eleventh pass's choice; 4.3 linked neighbours per SNP on msprime, 12.8 on
    # AGBL4) msprime's AATS loss was 0.015 above the nearest 16 alone's over 6 runs x 4 draws; with 0.001 and
    # partial correlations (1.7, 5.2) 0.009 above, with the best validation likelihood; with 1e-10 (0.3, 2.6) 0.003
    # above, AGBL4's LD r kept. The price is on AGBL4 CASE, whose dense LD the marginal choice served better (AATS
    # loss 0.029 -> 0.043, detection 0.625 -> 0.670, 3 seeds x 4 draws): a trade between panel kinds, measured with
    # bench_privacy_draws.py. neighbour_selection "marginal" at 1e-10: AATS 0.026 against partial's 0.022 on
    # msprime (12 runs x 4 draws; 0.016 against 0.013 on 4 unseen cohorts), 0.027 against 0.041 on AGBL4 CASE (4
    # runs) but TSTR 0.91 against 0.96 there (one run lost the trait: 0.80); BENCHMARKS.md, fourteenth pass
    window: int = option(32, "neighbours each SNP is decoded given, all before it on its chromosome (0 = none: the "
                             "independent decoder)", low=0, high=1024)
    neighbour_nearest: int = option(16, "of the window, the nearest SNPs; the other neighbours are chosen by linkage",
                                    low=0, high=1024)
    # reach 256, not 64 (BENCHMARKS.md, fifteenth pass): on 1000 Genomes AGBL4 a third of the linked neighbours then
    # lie 65-256 SNPs back (3.5 per SNP against 2.6) and the structure along PCs 3-20 past 64 SNPs, 37-64% of a
    # fresh sample's with reach 64, is no longer left to the latent: detection AUC 0.663 -> 0.605 (CASE, 3 runs x 4
    # draws; QT 0.640 -> 0.628 with AATS loss 0.026 -> 0.018), AATS loss, DCR share and membership unchanged on
    # average, TSTR 0.953 -> 0.941 (one run of three lost 0.044). On msprime few such neighbours pass the test (5 runs
    # x 4 draws: AATS 0.021 -> 0.017, detection unchanged), on the 805 SNPs none (the same release)
    neighbour_reach: int = option(256, "SNPs before each SNP among which its other neighbours are chosen: the most "
                                      "correlated with it once the training PCs of ancestry are taken out",
                                  low=1, high=4096)
    neighbour_p: float = option(1e-10, "a neighbour chosen by linkage must be correlated with the SNP, given the "
                                       "neighbours it has, beyond chance at this significance (Bonferroni over the "
                                       "candidates)", low=0.0, high=1.0)
    neighbour_selection: str = option("partial", "how linked neighbours are chosen: partial (one at a time, by "
                                                 "correlation given the neighbours already chosen) or marginal (by "
                                                 "correlation alone)", choices=("partial", "marginal"))
    decoder_hidden: int = option(0, "hidden units per SNP letting neighbours interact with each other and z "
                                    "(0 = additive)", low=0, high=1024)
    # far summary (BENCHMARKS.md, seventeenth pass; rank 4, reach 256, paired with the default, 7 runs x 4 draws):
    # validation loss 0.4-1.6 nats lower on 1000G AGBL4, 0.1-1.2 higher on msprime; detection AUC on AGBL4 CASE
    # 0.605 -> 0.584 but TSTR 0.941 -> 0.894 (lower on 3 of 3 runs); on msprime no gain. Not the default.
    # decoder_hidden 8 (15 paired runs): validation loss 2-5 nats lower on all but the 805 SNPs, but on msprime
    # (9 runs) detection no lower on average (one run 0.65 -> 0.80) and the AATS loss 0.018 -> 0.025; on AGBL4 QT
    # detection 0.06-0.08 lower, AATS loss higher on 2 of 3; one AGBL4 CASE run lost much of the trait (TSTR 0.78);
    # training and sampling 1.5-2x as long
    decoder_far_rank: int = option(0, "numbers summarising each individual's genotypes further back than the nearest "
                                      "neighbours, read by every SNP (0 = none)", low=0, high=256)
    decoder_far_reach: int = option(256, "how far back, in SNPs, the far summary reaches", low=1, high=100000)
    # a Gaussian prior on the neighbour weights (MAP), spread over the training cohort: 1/N of it per individual.
    # Not the default: at 720 training people (msprime, 4 cohorts) it moved neither AATS loss (0.069 at 0, 0.074 at
    # 0.5, 0.076 at 2) nor DCR share (0.606, 0.606, 0.614) beyond noise (BENCHMARKS.md, seventh pass)
    decoder_l2: float = option(0.0, "Gaussian prior on the neighbour weights: 1 / (2 sd^2) in logits, summed over "
                                    "the training cohort (so divided by its size per individual; 0 = none)",
                               low=0.0)
    # Not the default (BENCHMARKS.md, twenty-first pass; 4 runs x 4 draws at 4.0): on msprime AATS loss +0.008 and
    # detection no lower; on 1000G AGBL4 CASE detection +0.056/+0.068 and TSTR 0.93/0.92. With 32 nearest neighbours it
    # did not take away their privacy cost (AATS +0.004 to +0.014 against the default, as without it)
    decoder_additive: float = option(0.0, "prior pulling each neighbour's 3 x 3 genotype table toward an allelic "
                                          "(additive) effect: 1 / (2 sd^2) in logits on the rest, summed over the "
                                          "training cohort (0 = none)", low=0.0)
    # auto (pipeline.train_run): one VAE per path, the lower validation loss kept. In 13 of 13 runs trained both
    # ways it named the path that did as well or better on the holdout (BENCHMARKS.md, ninth pass): linear on 1000G
    # AGBL4 CASE and QT (AATS loss 0.029 vs 0.062, QT 0.014 vs 0.051; membership AUC 0.526 vs 0.543; detection AUC
    # 0.77 vs 0.71), mlp on msprime (5 cohorts) and the 805 SNPs, where linear was worse or no different. A VAE
    # built with "auto" outside train_run has the mlp path
    decoder_latent: str = option("auto", "the latent's path to the logits: mlp (two hidden layers), linear (a "
                                         "logistic factor model), or auto (train both, keep the one with the lower "
                                         "validation loss)", choices=DECODER_LATENT)
    decoder_gain: float = option(10.0, "learning-rate multiplier of the neighbour weights (their scale in the "
                                      "logits)", low=0.0)
    # On by default (BENCHMARKS.md, twenty-fourth pass; 4 draws per run). Off, a 1000 Genomes phase 1 cohort of 873
    # people copies less of its training sample's chance associations (association copying 3.5 -> 2.0, 12 of 12
    # draws lower). But two unseen msprime cohorts lost trait signal (TSTR 0.98x -> 0.88x and 0.97x -> 0.95x, 4 of 4
    # draws each; the second's detection AUC 0.65 -> 0.71), and the 805 SNPs by super-population lost ancestry
    # (detection AUC 0.77 -> 0.82). 9 msprime and 3 AGBL4 runs moved within noise. The card's association-copying
    # row names it as a remedy to try
    decoder_trait: bool = option(True, "the decoder also sees the trait (a conditional VAE): trait-associated "
                                       "genotypes need not pass through the latent")
    trait_dim: int = option(8, "size of the trait embedding the decoder sees", low=1, high=256)
    trait_drop: float = option(0.1, "share of training individuals whose trait the decoder does not see (it "
                                    "learns to decode without one)", low=0.0, high=0.95)
    conv_channels: int = option(32, "channels of the conv encoder", low=1, high=1024)
    conv_kernel: int = option(9, "kernel width of the conv encoder, in SNPs", low=1, high=1024)
    conv_stride: int = option(4, "stride of the conv encoder, in SNPs", low=1, high=1024)
    dropout: float = option(0.2, "dropout of the hidden layers (encoder, the decoder's latent MLP, trait head)",
                            low=0.0, high=0.95)
    input_dropout: float = option(0.0, "share of called genotypes hidden from the encoder while training",
                                  low=0.0, high=0.95)
    kl_weight: float = option(1.0, "weight of the KL term (1 = the evidence lower bound)", low=0.0)
    kl_warmup_epochs: int = option(10, "epochs over which the KL weight rises from 0", low=0)
    pheno_kind: str = option("none", "kind of the trait", choices=PHENO_KINDS, data=True)
    n_classes: int = option(0, "trait classes (binary: 2; categorical: k)", data=True)
    pheno_weight: float = option(0.01, "phenotype loss weight, as a multiple of n_snps (higher: the head "
                                       "overfits)", low=0.0)
    pc_components: int = option(0, "training principal components the latent must predict (global structure "
                                   "beyond the decoder's window; 0 = none)", low=0, high=256)
    pc_weight: float = option(0.01, "weight of the principal-component loss, as a multiple of n_snps", low=0.0)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"VAE encoder {self.encoder!r} unknown; choose from {ENCODERS}")
        if self.decoder_latent not in DECODER_LATENT:
            raise ValueError(f"decoder latent path {self.decoder_latent!r} unknown; choose from {DECODER_LATENT}")
        if self.pheno_kind not in PHENO_KINDS:
            raise ValueError(f"phenotype kind {self.pheno_kind!r} unknown; choose from {PHENO_KINDS}")


class _MLPEncoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(3 * c.n_snps, c.hidden), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.hidden // 2), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden // 2, 2 * c.latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, m, 3) -> (B, 2d)
        return self.net(x.flatten(1))


class _ConvEncoder(nn.Module):
    """Two strided 1D convolutions along the position-ordered panel, then a dense layer."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        k, s, ch = c.conv_kernel, c.conv_stride, c.conv_channels
        self.conv = nn.Sequential(
            nn.Conv1d(3, ch, k, stride=s, padding=k // 2), nn.GELU(),
            nn.Conv1d(ch, 2 * ch, k, stride=s, padding=k // 2), nn.GELU(),
        )
        with torch.no_grad():
            n_out = self.conv(torch.zeros(1, 3, c.n_snps)).numel()
        self.head = nn.Sequential(
            nn.Dropout(c.dropout), nn.Linear(n_out, c.hidden // 2), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden // 2, 2 * c.latent_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, m, 3) -> (B, 2d)
        return self.head(self.conv(x.transpose(1, 2)).flatten(1))


class GenotypeVAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) with per-SNP softmax, and a phenotype head on z."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        if config.n_snps < 1:
            raise ValueError("VAEConfig.n_snps must be set to the panel size")
        self.config = c = config
        self.encoder = _MLPEncoder(c) if c.encoder == "mlp" else _ConvEncoder(c)
        n_out = {"none": 0, "binary": 2, "categorical": c.n_classes, "quantitative": 1}[c.pheno_kind]
        # the trait as the decoder sees it: a class embedding with an "unknown" row, or (value, known) for a
        # quantitative trait; None when the decoder sees no trait
        self.trait_embed = None
        if c.decoder_trait and n_out:
            self.trait_embed = (nn.Linear(2, c.trait_dim) if c.pheno_kind == "quantitative"
                                else nn.Embedding(n_out + 1, c.trait_dim))
            # the embedded trait averaged over the training individuals: what ``set_trait_share`` shrinks towards
            self.register_buffer("trait_base", torch.zeros(c.trait_dim))
        d_in = c.latent_dim + (c.trait_dim if self.trait_embed is not None else 0)
        global_net = nn.Sequential(
            nn.Linear(d_in, c.hidden // 2), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden // 2, c.hidden), nn.GELU(), nn.Dropout(c.dropout),
            nn.Linear(c.hidden, 3 * c.n_snps),
        ) if c.decoder_latent != "linear" else nn.Sequential(nn.Linear(d_in, 3 * c.n_snps))
        self.decoder = GenotypeDecoder(c.n_snps, d_in, global_net, window=c.window, hidden=c.decoder_hidden,
                                       gain=c.decoder_gain, nearest=c.neighbour_nearest,
                                       far_rank=c.decoder_far_rank, far_reach=c.decoder_far_reach,
                                       classes=c.n_classes + 1 if c.pheno_kind in CLASS_KINDS else 0)
        self.pheno_head = (
            nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.latent_dim, 64), nn.GELU(), nn.Dropout(c.dropout),
                          nn.Linear(64, n_out)) if n_out else None
        )
        self.n_train = 0  # training individuals (init_from_data): the neighbour weights' prior is shared over them
        # standardisation of a quantitative trait (set by init_from_data, saved with the weights)
        self.register_buffer("pheno_mean", torch.zeros(()))
        self.register_buffer("pheno_std", torch.ones(()))
        # the training PCs the latent predicts (set by init_from_data): mean dosage, scale, unit axes, score sd
        k = c.pc_components
        self.pc_head = nn.Linear(c.latent_dim, k) if k else None
        if k:  # (runs trained without the head hold none of these)
            self.register_buffer("pc_mean", torch.zeros(c.n_snps))
            self.register_buffer("pc_scale", torch.ones(c.n_snps))
            self.register_buffer("pc_axes", torch.zeros(c.n_snps, k))
            self.register_buffer("pc_sd", torch.zeros(k))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.trait_embed is not None:  # runs written before 2026-12-04 have no shares, so no average to shrink to
            state_dict.setdefault(prefix + "trait_base", torch.zeros_like(self.trait_base))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def init_from_data(self, dosages: np.ndarray, pheno: np.ndarray | None = None, chrom=None,
                       neighbours: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Start the output layer at the panel's log genotype frequencies (faster, stabler training), record
        the trait's mean and sd for standardisation, the panel's chromosomes (the decoder's dependence restarts
        at each boundary) and, where the window has slots beyond the nearest SNPs, each SNP's neighbours chosen by
        linkage in ``dosages``. ``dosages`` (n, m) int8 with -1 missing: the training individuals only; ``pheno``
        (n,); ``chrom`` (m,) chromosome codes of the position-ordered panel (None: one chromosome); ``neighbours``
        (index, valid), ``linked_neighbours``' answer for the same training individuals, if already chosen (a second
        VAE on the same data: the choice is deterministic, and took 15-30 s on the benchmark panels at reach 256)."""
        self.n_train = len(dosages)  # the prior on the neighbour weights is spread over this many individuals
        counts = np.stack([(dosages == g).sum(axis=0) for g in range(3)], axis=1).astype(np.float64) + 0.5
        logp = np.log(counts / counts.sum(axis=1, keepdims=True))
        out_layer = self.decoder.global_net[-1]
        out_layer.bias.copy_(torch.as_tensor(logp.T, dtype=torch.float32).reshape(-1))  # class-major
        if chrom is not None:
            self.decoder.set_segments(chromosome_segments(chrom))
        c = self.config
        if c.window > c.neighbour_nearest and len(dosages) > 2:  # no data (a DP run): the nearest window
            self.decoder.choose_neighbours(*(neighbours or linked_neighbours(
                dosages, self.decoder.segment.cpu(), c.window, c.neighbour_reach, c.neighbour_p,
                nearest=c.neighbour_nearest, partial=c.neighbour_selection == "partial")))
        if self.config.pheno_kind == "quantitative" and pheno is not None:
            ok = pheno[~np.isnan(pheno)]
            self.pheno_mean.fill_(float(ok.mean()))
            self.pheno_std.fill_(float(ok.std()) or 1.0)
        if self.pc_head is not None and len(dosages) > self.config.pc_components:
            self._fit_pcs(dosages)

    @torch.no_grad()
    def _fit_pcs(self, dosages: np.ndarray) -> None:
        """Top training PCs of the standardised dosages (missing = the mean), from the m x m covariance (exact,
        deterministic; accumulated in blocks of individuals)."""
        called = dosages >= 0
        mean = np.where(called, dosages, 0).sum(0) / np.maximum(called.sum(0), 1)
        p = mean / 2
        scale = np.sqrt(2 * p * (1 - p))
        scale[scale == 0] = np.inf  # monomorphic SNPs add nothing
        cov = np.zeros((dosages.shape[1],) * 2)
        for start in range(0, len(dosages), 4096):
            block = dosages[start:start + 4096]
            z = np.where(block >= 0, block, mean) - mean
            z /= scale
            cov += z.T @ z
        w, v = np.linalg.eigh(cov / len(dosages))
        top = np.argsort(w)[::-1][: self.config.pc_components]
        self.pc_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.pc_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.pc_axes.copy_(torch.as_tensor(v[:, top], dtype=torch.float32))
        self.pc_sd.copy_(torch.as_tensor(np.sqrt(np.clip(w[top], 1e-12, None)), dtype=torch.float32))

    def pc_loss(self, z: torch.Tensor, dosages: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the latent's prediction of the individuals' standardised training PC scores."""
        if self.pc_head is None or not bool((self.pc_sd > 0).all()):
            return z.new_zeros(())
        d = dosages.float()
        x = torch.where(d >= 0, d, self.pc_mean) - self.pc_mean
        scores = (x / self.pc_scale) @ self.pc_axes / self.pc_sd
        return F.mse_loss(self.pc_head(z).float(), scores)

    def encode(self, dosages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, m) dosages -> posterior mean and log-variance, each (B, d)."""
        h = self.encoder(one_hot_genotypes(dosages))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decoder_input(self, z: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        """What the decoder conditions on: the latent (B, d), and the embedded trait (B,) (NaN = unknown) when the
        decoder sees the trait."""
        if self.trait_embed is None:
            return z
        known = ~torch.isnan(trait)
        if self.config.pheno_kind == "quantitative":
            y = torch.where(known, (trait - self.pheno_mean) / self.pheno_std, torch.zeros_like(trait))
            t = self.trait_embed(torch.stack([y, known.to(y.dtype)], -1).to(z.dtype))
        else:
            unknown = self.trait_embed.num_embeddings - 1
            t = self.trait_embed(torch.where(known, torch.nan_to_num(trait), float(unknown)).long())
        return torch.cat([z, t.to(z.dtype)], -1)

    @torch.no_grad()
    def set_trait_share(self, share, trait: np.ndarray) -> None:
        """Each SNP's share (m,) in [0, 1] of the trait's effect on it (``GenotypeDecoder.trait_share``); the rest
        of its latent logits come from the trait averaged over ``trait``, the training individuals' values (NaN =
        missing, left out): the class embeddings mixed by the classes' shares, or a quantitative trait's mean. An
        average over the trained embeddings, not the "unknown" row, which only a tenth of training saw
        (``trait_drop``): on msprime sim2 that row gave detection AUC 0.680 against the average's 0.670 (one run,
        4 draws; BENCHMARKS.md, twenty-sixth pass)."""
        if self.trait_embed is None:
            raise ValueError("this VAE's decoder does not see the trait")
        known = np.asarray(trait, dtype=np.float64)
        known = known[~np.isnan(known)]
        weight = self.trait_embed.weight
        if self.config.pheno_kind == "quantitative":  # the embedding is linear in the standardised value
            base = self.trait_embed(torch.tensor([[0.0, 1.0]], device=weight.device, dtype=weight.dtype))[0]
        else:
            counts = np.bincount(known.astype(np.int64), minlength=weight.shape[0] - 1)[: weight.shape[0] - 1]
            base = torch.as_tensor(counts / max(counts.sum(), 1), dtype=weight.dtype, device=weight.device) @ weight[:-1]
        self.trait_base.copy_(base)
        self.decoder.set_trait_share(share)

    def _decoder_base(self, z: torch.Tensor) -> torch.Tensor | None:
        """The decoder's input with the averaged trait (``set_trait_share``), when its ``trait_share`` scales the
        trait's effect on some SNP (``GenotypeDecoder.global_logits``); else None."""
        if self.trait_embed is None or bool((self.decoder.trait_share == 1).all()):
            return None
        return torch.cat([z, self.trait_base.to(z.dtype).expand(z.shape[0], -1)], -1)

    def class_index(self, trait: torch.Tensor) -> torch.Tensor | None:
        """Each individual's row of the decoder's ``class_calibration`` (B,) long: the class code, the last row for
        an unknown class (NaN); None for a trait without classes."""
        if self.config.pheno_kind not in CLASS_KINDS:
            return None
        unknown = self.decoder.class_calibration.shape[0] - 1
        return torch.where(torch.isnan(trait), float(unknown), torch.nan_to_num(trait)).long()

    def sample_genotypes(self, z: torch.Tensor, trait: torch.Tensor, generator: torch.Generator | None = None, *,
                         temperature: float = 1.0, mode: str = "probabilities") -> torch.Tensor:
        """(B, d) latents and (B,) conditions (NaN = unknown) -> (B, m) int8 genotypes drawn from the decoder
        (``GenotypeDecoder.sample``)."""
        return self.decoder.sample(self.decoder_input(z, trait), generator, temperature=temperature, mode=mode,
                                   z_base=self._decoder_base(z), cls=self.class_index(trait))

    @torch.no_grad()
    def log_likelihood(self, dosages: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        """log p(x | posterior mean, trait) per individual (B,), nats: the reconstruction likelihood."""
        mu = self.encode(dosages)[0]
        return self.decoder.log_prob(dosages, self.decoder_input(mu, trait), self._decoder_base(mu),
                                     self.class_index(trait))

    def kl_beta(self, epoch: float | None) -> float:
        """KL weight at ``epoch`` (0-based; ``None`` = after warm-up, used for validation)."""
        c = self.config
        if epoch is None or c.kl_warmup_epochs <= 0:
            return c.kl_weight
        return c.kl_weight * min(1.0, (epoch + 1) / c.kl_warmup_epochs)

    def training_loss(self, batch: tuple[torch.Tensor, ...], epoch: float | None = None) -> dict[str, torch.Tensor]:
        """``batch`` = (dosages (B, m) int8, trait (B,) float NaN = missing). Returns {"loss", "recon", "kl",
        "pheno"}, each averaged over the batch (recon and kl in nats per individual)."""
        dosages, trait = batch[0], batch[1]
        x_in = dosages
        if self.training and self.config.input_dropout > 0:
            hide = torch.rand(dosages.shape, device=dosages.device) < self.config.input_dropout
            x_in = torch.where(hide, torch.full_like(dosages, -1), dosages)
        mu, logvar = self.encode(x_in)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        seen = trait
        if self.training and self.config.trait_drop > 0:
            drop = torch.rand(trait.shape, device=trait.device) < self.config.trait_drop
            seen = torch.where(drop, torch.full_like(trait, float("nan")), trait)
        recon = -self.decoder.log_prob(dosages, self.decoder_input(z, seen)).mean()
        kl = (0.5 * (mu.float() ** 2 + logvar.float().exp() - 1.0 - logvar.float())).sum(1).mean()
        pheno = self.pheno_loss(z, trait)
        pcs = self.pc_loss(z, dosages)
        loss = (recon + self.kl_beta(epoch) * kl + self.config.pheno_weight * self.config.n_snps * pheno
                + self.config.pc_weight * self.config.n_snps * pcs)
        if self.n_train > 0:  # no training data seen (DP): no prior
            if self.config.decoder_l2 > 0:
                loss = loss + self.config.decoder_l2 / self.n_train * self.decoder.penalty()
            if self.config.decoder_additive > 0:
                loss = loss + self.config.decoder_additive / self.n_train * self.decoder.nonadditive_penalty()
        return {"loss": loss, "recon": recon, "kl": kl, "pheno": pheno, "pcs": pcs}

    def pheno_loss(self, z: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        """Phenotype head loss on latents ``z`` (B, d) for ``trait`` (B,) (NaN = missing, left out)."""
        if self.pheno_head is None:
            return z.new_zeros(())
        known = ~torch.isnan(trait)
        if not known.any():
            return z.new_zeros(())
        out = self.pheno_head(z[known]).float()
        y = trait[known]
        if self.config.pheno_kind == "quantitative":
            y_std = (y - self.pheno_mean) / self.pheno_std
            return 0.5 * ((out.squeeze(-1) - y_std) ** 2).mean()
        return F.cross_entropy(out, y.long())


# ---------------------------------------------------------------------------------------------------------------
# Reconstruction accuracy

MAF_BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


@torch.no_grad()
def reconstruction_report(vae: GenotypeVAE, dosages: np.ndarray, *, batch_size: int = 1024,
                          device: torch.device | str = "cpu") -> pd.DataFrame:
    """Per-SNP reconstruction accuracy of ``dosages`` (n, m) int8 (-1 missing), by genotype class and MAF bin.

    Each individual is encoded to its posterior mean and each SNP predicted as its most probable genotype given
    that latent and the individual's own preceding genotypes (the decoder's window); missing calls are skipped. Accuracy in a cell = share of the called genotypes of that class (0/1/2 copies of a1), on
    the SNPs whose minor-allele frequency (in ``dosages``) falls in the bin, that come back as the same class.
    Returns one row per (maf_bin, genotype) plus "all" rows: columns maf_bin, genotype, n_snps, n_genotypes,
    accuracy.
    """
    vae.eval()
    hits = np.zeros((dosages.shape[1], 3))
    totals = np.zeros((dosages.shape[1], 3))
    for start in range(0, dosages.shape[0], batch_size):
        x = torch.as_tensor(dosages[start:start + batch_size], device=device)
        mu, _ = vae.encode(x)
        unknown = torch.full((x.shape[0],), float("nan"), device=x.device)
        pred = vae.decoder.logits(x, vae.decoder_input(mu, unknown)).argmax(-1).cpu().numpy()
        block = dosages[start:start + batch_size]
        for g in range(3):
            is_g = block == g
            totals[:, g] += is_g.sum(0)
            hits[:, g] += (is_g & (pred == g)).sum(0)
    called = dosages >= 0
    af = np.where(called, dosages, 0).sum(0) / np.maximum(2 * called.sum(0), 1)
    maf = np.minimum(af, 1 - af)
    edges = np.array(MAF_BINS)
    which = np.clip(np.searchsorted(edges, maf, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in list(range(len(edges) - 1)) + ["all"]:
        snps = np.ones_like(which, dtype=bool) if b == "all" else which == b
        label = "all" if b == "all" else f"[{edges[b]:.2f}, {edges[b + 1]:.2f})"
        for g in (0, 1, 2, "all"):
            h = hits[snps].sum() if g == "all" else hits[snps, g].sum()
            t = totals[snps].sum() if g == "all" else totals[snps, g].sum()
            rows.append({"maf_bin": label, "genotype": str(g), "n_snps": int(snps.sum()), "n_genotypes": int(t),
                         "accuracy": h / t if t else float("nan")})
    return pd.DataFrame(rows)
