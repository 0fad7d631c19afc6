"""Conditional WGAN-GP with Gumbel-softmax genotypes: the GAN family of Xie et al. (2026) and Yelmen et al. (2021).

Generator: noise u ~ N(0, I) (B, noise_dim) and the embedded trait -> per-SNP logits (B, m, 3) over the genotype
classes 0/1/2 (copies of a1); the trait embedding is appended to the input of every layer (as Xie et al.'s
WGAN-GS does). While training, the critic sees Gumbel-softmax relaxations of the logits (Jang et al. 2017) at a
temperature annealed from ``tau_start`` to ``tau_end`` over ``tau_epochs`` epochs (Xie et al.: 1 -> 0.1); with
``straight_through`` the forward value is the hard one-hot draw and the gradient that of the relaxation, so the
critic only ever sees valid genotypes. Sampling draws each genotype from softmax(logits / T) (a Gumbel-max draw is a
draw from the softmax) with the caller's ``torch.Generator``.

Critic: one-hot genotypes (B, m, 3) flattened, with the trait embedding appended to the input of every layer ->
a score (B,). Real individuals' missing calls must be imputed before training (``pipeline`` imputes them from the
training allele frequencies, seeded): an all-zero row would tell the critic "real".

Loss (Gulrajani et al. 2017): the critic minimises ``E D(fake) - E D(real) + gp_weight * GP`` with

    GP = E_x^ [(||grad_x^ D(x^, y)||_2 - 1)^2],   x^ = e x_real + (1 - e) x_fake,   e ~ U(0, 1) per individual,

the gradient taken over the one-hot genotypes only (not the trait); the generator minimises ``-E D(fake)``.

Alternation inside the ONE training loop (``training.fit``): ``fit`` makes one optimizer step per batch on
whatever ``training_loss`` returns as "loss". The model counts its own training steps (``steps``, a buffer, so a
resumed run continues the cycle): ``n_critic`` critic steps, each on a fresh batch of real individuals, then one
generator step, whose batch provides the conditions the generator is asked for (so the generator learns the
training condition mix). During a critic step the generator runs without gradients; during a generator step the
critic's parameters are frozen, so only the stepped network has gradients and AdamW (per-parameter moments) acts as
two optimizers. Xie et al. reuse one real batch for their ``n_critic`` critic steps: one of their epochs is about
``n_critic + 1`` of ours. Adam's betas (0.5, 0.9) are ``gan_fit``'s ``adam_beta1`` / ``adam_beta2``.

Every step reports ``w`` (the critic's Wasserstein estimate E D(real) - E D(fake)), ``gp`` and ``generator``
(-E D(fake)); "loss" is what that step optimised. Validation (``epoch=None``, eval mode) returns ``w`` on the
validation individuals as "loss", which is a critic-dependent number (a weak early critic scores near 0): the
pipeline therefore keeps the EMA or last weights, never the "best" validation loss.

Conditions: (B,) float; class codes 0..k-1 of a binary or categorical trait (embedding, with an "unknown" row for
NaN), the raw value of a quantitative trait (standardised with the training mean and sd, plus a known flag), or
nothing (``pheno_kind`` "none").
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..options import option
from .decoder import sample_genotypes
from .generators import SamplingOptions

PHENO_KINDS = ("none", "binary", "categorical", "quantitative")


@dataclass
class GANConfig:
    n_snps: int = option(0, "SNPs in the panel", data=True)
    pheno_kind: str = option("none", "kind of the trait", choices=PHENO_KINDS, data=True)
    n_classes: int = option(0, "trait classes (binary: 2; categorical: k)", data=True)
    noise_dim: int = option(64, "dimensions of the generator's input noise", low=1, high=4096)
    hidden: int = option(512, "width of the generator's last and the critic's first hidden layer (the other one "
                              "has hidden // 2)", low=2, high=16384)
    trait_dim: int = option(8, "size of the trait embedding both networks see", low=1, high=256)
    n_critic: int = option(5, "critic steps per generator step", low=1, high=100)
    gp_weight: float = option(10.0, "weight of the gradient penalty (lambda)", low=0.0)
    tau_start: float = option(1.0, "Gumbel-softmax temperature at the first epoch", low=1e-3, high=100.0)
    tau_end: float = option(0.1, "Gumbel-softmax temperature after tau_epochs", low=1e-3, high=100.0)
    tau_epochs: int = option(300, "epochs over which the temperature falls from tau_start to tau_end", low=0)
    straight_through: bool = option(True, "the critic sees hard one-hot draws (gradients of the relaxation)")
    slope: float = option(0.2, "negative slope of the LeakyReLU activations", low=0.0, high=1.0)

    def __post_init__(self) -> None:
        if self.pheno_kind not in PHENO_KINDS:
            raise ValueError(f"phenotype kind {self.pheno_kind!r} unknown; choose from {PHENO_KINDS}")


class TraitEmbedding(nn.Module):
    """(B,) conditions -> (B, dim): a class embedding with an "unknown" row (NaN), or a linear map of
    (standardised value, known) for a quantitative trait. ``dim`` is 0 (an empty tensor) without a trait."""

    def __init__(self, kind: str, n_classes: int, dim: int):
        super().__init__()
        self.kind = kind
        n = {"binary": 2, "categorical": n_classes}.get(kind, 0)
        self.embed = (nn.Linear(2, dim) if kind == "quantitative" else nn.Embedding(n + 1, dim) if n else None)
        self.dim = dim if self.embed is not None else 0
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def forward(self, trait: torch.Tensor) -> torch.Tensor:
        if self.embed is None:
            return trait.new_zeros(trait.shape[0], 0)
        known = ~torch.isnan(trait)
        if self.kind == "quantitative":
            y = torch.where(known, (trait - self.mean) / self.std, torch.zeros_like(trait))
            return self.embed(torch.stack([y, known.to(y.dtype)], -1))
        unknown = self.embed.num_embeddings - 1
        return self.embed(torch.where(known, torch.nan_to_num(trait), float(unknown)).long())


class _ConditionedMLP(nn.Module):
    """Linear layers with LeakyReLU between them; the trait embedding is appended to every layer's input."""

    def __init__(self, sizes: list[int], trait_dim: int, slope: float):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a + trait_dim, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.slope = slope

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(torch.cat([x, t], -1))
            if i < len(self.layers) - 1:
                x = F.leaky_relu(x, self.slope)
        return x


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, trait: torch.Tensor, mix: torch.Tensor, *,
                     create_graph: bool = True) -> torch.Tensor:
    """Gulrajani et al.'s penalty ``mean_i (||grad_x D(x_i^, y_i)||_2 - 1)^2`` at ``x_i^ = mix_i real_i +
    (1 - mix_i) fake_i``. ``real``, ``fake`` (B, m, 3) one-hot (or relaxed) genotypes, ``trait`` (B,), ``mix``
    (B,) in [0, 1]; ``critic(x, trait) -> (B,)`` scores each individual on its own (no batch statistics), so the
    gradient of the summed scores with respect to x^ holds each individual's own gradient."""
    w = mix.to(real.dtype)[:, None, None]
    x_hat = (w * real + (1 - w) * fake).detach().requires_grad_(True)
    scores = critic(x_hat, trait)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=create_graph)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


@contextmanager
def _frozen(module: nn.Module):
    """``module``'s parameters take no gradient inside the block (the graph built here does not reach them)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


class Critic(nn.Module):
    """D(x, y): one-hot genotypes (B, m, 3) and conditions (B,) -> scores (B,)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.trait = TraitEmbedding(c.pheno_kind, c.n_classes, c.trait_dim)
        self.net = _ConditionedMLP([3 * c.n_snps, c.hidden, c.hidden // 2, 1], self.trait.dim, c.slope)

    def forward(self, x: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1), self.trait(trait)).squeeze(-1)


class Generator(nn.Module):
    """G(u, y): noise (B, noise_dim) and conditions (B,) -> genotype logits (B, m, 3)."""

    def __init__(self, c: GANConfig):
        super().__init__()
        self.n_snps = c.n_snps
        self.trait = TraitEmbedding(c.pheno_kind, c.n_classes, c.trait_dim)
        self.net = _ConditionedMLP([c.noise_dim, c.hidden // 2, c.hidden, 3 * c.n_snps], self.trait.dim, c.slope)

    def forward(self, noise: torch.Tensor, trait: torch.Tensor) -> torch.Tensor:
        out = self.net(noise, self.trait(trait))  # (B, 3m), class-major
        return out.view(noise.shape[0], 3, self.n_snps).transpose(1, 2)


class ConditionalWGAN(nn.Module):
    """Generator and critic trained together by ``training.fit`` (see the module docstring for the alternation);
    ``sample(cond, generator, options)`` is the ``models.Generator`` interface."""

    def __init__(self, config: GANConfig):
        super().__init__()
        if config.n_snps < 1:
            raise ValueError("GANConfig.n_snps must be set to the panel size")
        self.config = config
        self.generator = Generator(config)
        self.critic = Critic(config)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training steps taken (the cycle)

    @torch.no_grad()
    def init_from_data(self, dosages: np.ndarray, pheno: np.ndarray | None = None) -> None:
        """Start the generator's output at the panel's log genotype frequencies (its first samples are the
        independent-SNP baseline rather than noise) and record a quantitative trait's mean and sd."""
        counts = np.stack([(dosages == g).sum(axis=0) for g in range(3)], axis=1).astype(np.float64) + 0.5
        logp = np.log(counts / counts.sum(axis=1, keepdims=True))
        self.generator.net.layers[-1].bias.copy_(torch.as_tensor(logp.T, dtype=torch.float32).reshape(-1))
        if self.config.pheno_kind == "quantitative" and pheno is not None:
            ok = pheno[~np.isnan(pheno)]
            for emb in (self.generator.trait, self.critic.trait):
                emb.mean.fill_(float(ok.mean()))
                emb.std.fill_(float(ok.std()) or 1.0)

    def temperature(self, epoch: float | None) -> float:
        """Gumbel-softmax temperature at ``epoch`` (0-based; None = the final one)."""
        c = self.config
        if epoch is None or c.tau_epochs <= 0:
            return c.tau_end
        f = min(1.0, epoch / c.tau_epochs)
        return c.tau_start + f * (c.tau_end - c.tau_start)

    def relaxed(self, logits: torch.Tensor, tau: float) -> torch.Tensor:
        """Gumbel-softmax sample (B, m, 3) of the logits at temperature ``tau`` (global torch RNG; hard one-hot with
        straight-through gradients when so configured)."""
        return F.gumbel_softmax(logits.float(), tau=tau, hard=self.config.straight_through, dim=-1)

    def training_loss(self, batch: tuple[torch.Tensor, ...], epoch: float | None = None) -> dict[str, torch.Tensor]:
        """``batch`` = (dosages (B, m) int8 0/1/2 (imputed: no -1), trait (B,) float). One step of the cycle (see
        the module docstring); validation (not training): "loss" = the Wasserstein estimate ``w``."""
        dosages, trait = batch[0], batch[1]
        real = F.one_hot(dosages.long().clamp(min=0), 3).float()  # (B, m, 3)
        noise = torch.randn(real.shape[0], self.config.noise_dim, device=real.device)
        tau = self.temperature(epoch)
        training = self.training and torch.is_grad_enabled()
        generator_step = training and int(self.steps) % (self.config.n_critic + 1) == self.config.n_critic
        with torch.autocast(real.device.type, enabled=False):  # the penalty's double backward in fp32
            if generator_step:
                with _frozen(self.critic):
                    fake = self.relaxed(self.generator(noise, trait), tau)
                    d_fake = self.critic(fake, trait)
                with torch.no_grad():
                    d_real = self.critic(real, trait)
                gp = gradient_penalty(self.critic, real, fake.detach(), trait,
                                      torch.rand(real.shape[0], device=real.device), create_graph=False).detach()
                g_loss = -d_fake.mean()
                loss = g_loss
            else:
                with torch.no_grad():
                    fake = self.relaxed(self.generator(noise, trait), tau)
                d_fake, d_real = self.critic(fake, trait), self.critic(real, trait)
                with torch.enable_grad():
                    gp = gradient_penalty(self.critic, real, fake, trait,
                                          torch.rand(real.shape[0], device=real.device), create_graph=training)
                g_loss = -d_fake.mean().detach()
                loss = d_fake.mean() - d_real.mean() + self.config.gp_weight * gp
            w = (d_real.mean() - d_fake.mean()).detach()
        if training:
            self.steps += 1
        else:
            loss, gp = w, gp.detach()
        return {"loss": loss, "w": w, "gp": gp, "generator": g_loss.detach()}

    # -- the Generator interface ----------------------------------------------------------------------------

    @torch.no_grad()
    def logits(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Genotype logits (n, m, 3) for conditions ``cond`` (n,), noise drawn from ``generator``."""
        self.eval()
        noise = torch.randn(cond.shape[0], self.config.noise_dim, generator=generator, device=cond.device)
        return self.generator(noise, cond.to(noise.dtype)).float()

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:  # covariates are not modelled
        """(n,) conditions -> (n, m) int8 genotypes: each drawn from softmax(logits / temperature), or the most
        probable one (``options.mode == "argmax"``)."""
        return sample_genotypes(self.logits(cond, generator), generator=generator, temperature=options.temperature,
                                mode=options.mode)
