"""The one interface every genotype generator offers, and the latent-diffusion generator (our model).

``Generator.sample(cond, generator, options, covariates=None)`` turns conditions (n,) float (class codes 0..k-1
for a binary or categorical trait, the raw value for a quantitative one, NaN = unconditional) into dosages (n, m)
int8 (copies of the panel's a1 allele), drawing all randomness from the ``torch.Generator``. ``covariates``
(n, c) float (``covariates.py``; a NaN row = unknown) condition the latent diffusion of a run trained with them;
the baselines do not model covariates and ignore them. Benchmarks loop over generators
through this interface; ``generation.generate`` batches and streams it to PLINK.

After training, ``calibrate_ld`` and ``calibrate_marginals`` fit the decoder's two corrections (its neighbour
weights' scale, and a per-SNP logit offset) on draws from the released generator; for a class trait whose effect
the trait shares shrink, ``calibrate_classes`` then fits each class's own offsets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from .decoder import standardised
from ..options import option
from .diffusion import SAMPLERS, GaussianDiffusion
from .vae import GenotypeVAE


SAMPLE_MODES = ("probabilities", "argmax")


@dataclass
class SamplingOptions:
    """Knobs of sampling; each generator uses those that apply to it. Declared once (``options.option``): the
    flags of ``snpgen generate``, the Generate page's widgets and ``generation.generate``'s checks read them here."""

    guidance: float | None = option(None, "classifier-free guidance scale of the latent diffusion: 1 = plain "
                                          "conditional, 0 = unconditional, higher pushes individuals towards their "
                                          "condition; by default the run's (1 for a quantitative trait, 1.5 for a "
                                          "class, or 1.5 for a run trained before 2026-12-06)", low=0.0, high=100.0,
                                    kind=float)
    steps: int | None = option(None, "ODE steps of the latent diffusion's sampler; by default the run's (25, or 50 "
                                     "for a run trained before 2026-12-06)", low=1, kind=int)
    sampler: str | None = option(None, "the latent diffusion's ODE solver; by default the run's (DPM-Solver++(2M), "
                                       "or DDIM for a run trained before 2026-12-06)", choices=SAMPLERS, kind=str)
    temperature: float = option(1.0, "softmax temperature of the genotype draws: 1 samples the model as trained, "
                                     "higher flattens every genotype's probabilities", low=0.01, high=100.0)
    mode: str = option("probabilities", "draw each genotype from the decoder's probabilities, or take the most "
                                        "probable (argmax, as SNPgen and Xie et al. decode: rarer genotypes are "
                                        "under-drawn)", choices=SAMPLE_MODES)
    latent_noise: float = option(0.0, "Gaussian noise added to the sampled latents before decoding, in latent sds "
                                      "(a privacy knob; 0 = none)", low=0.0, high=100.0)
    group_mix: bool = option(True, "each class keeps the training class's mix of latent groups (ancestry), which "
                                   "guidance would otherwise exaggerate (latent diffusion); off draws the guided "
                                   "prior as is")


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
    """Diffusion-sampled latents decoded by the VAE: noise -> ODE solver -> latent -> decoder -> genotypes."""

    def __init__(self, vae: GenotypeVAE, diffusion: GaussianDiffusion):
        self.vae = vae
        self.diffusion = diffusion

    @torch.no_grad()
    def sample_latents(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
                       covariates: torch.Tensor | None = None) -> torch.Tensor:
        """The latents ``sample`` decodes."""
        self.diffusion.eval()
        z = self.diffusion.sample(cond, covariates=covariates, guidance=options.guidance, steps=options.steps,
                                  generator=generator, group_mix=options.group_mix, sampler=options.sampler)
        return perturb_latents(z, self.diffusion.latent_std, options, generator)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, generator: torch.Generator, options: SamplingOptions,
               covariates: torch.Tensor | None = None) -> torch.Tensor:
        self.vae.eval()
        z = self.sample_latents(cond, generator, options, covariates)
        return self.vae.sample_genotypes(z, cond, generator, temperature=options.temperature,
                                         mode=options.mode)


def _shares(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) int8 dosages (-1 missing) -> (m, 3) genotype frequencies among called genotypes, and the number of
    called genotypes (m, 1)."""
    counts = np.stack([(dosages == g).sum(0) for g in range(3)], axis=1)
    called = np.maximum(counts.sum(1, keepdims=True), 1)
    return counts / called, called


def _lag_r2(dosages: np.ndarray, lags: int) -> np.ndarray:
    """Mean squared correlation of dosages between SNPs k apart along the panel, k = 1..``lags`` (missing calls at
    the SNP's mean), each less its sampling bias 1 / n."""
    x = standardised(dosages, np.float32)
    r2 = [float(np.mean(np.mean(x[:, :-k] * x[:, k:], 0) ** 2)) for k in range(1, min(lags, x.shape[1] - 1) + 1)]
    return np.asarray(r2) - 1.0 / len(x)


def _seeded_mix(cond: np.ndarray, n: int, seed: int, device, covariates: np.ndarray | None = None):
    """``n`` conditions drawn from ``cond`` (the training mix), the random generator of a draw, both seeded, and
    the covariates (n, c) of the same training rows (``covariates`` (len(cond), c)), or None without them."""
    rows = np.random.default_rng(seed).integers(0, len(cond), n)
    return (torch.as_tensor(cond[rows], dtype=torch.float32, device=device),
            torch.Generator(device=device).manual_seed(seed),
            None if covariates is None else torch.as_tensor(covariates[rows], dtype=torch.float32, device=device))


def _draw(generator: Generator, cond: np.ndarray, n: int, seed: int, device,
          covariates: np.ndarray | None = None) -> np.ndarray:
    """``n`` individuals from ``generator`` with conditions drawn from ``cond`` (the training mix), with the same
    training rows' ``covariates`` where the run conditions on them, seeded."""
    mix, rng, cov = _seeded_mix(cond, n, seed, device, covariates)
    return generator.sample(mix, rng, SamplingOptions(), cov).cpu().numpy()


def _redraw(generator: Generator, vae: GenotypeVAE, cond: np.ndarray, n: int, seed: int, device,
            covariates: np.ndarray | None = None):
    """A function returning ``_draw(generator, cond, n, seed, device, covariates)`` as decoded by ``vae``'s decoder
    at the time of the call: the latents of a generator that decodes through ``vae`` (``sample_latents``) are
    drawn once and kept with the random state after them, since the prior does not change while the decoder is
    calibrated."""
    if not hasattr(generator, "sample_latents"):
        return lambda: _draw(generator, cond, n, seed, device, covariates)
    mix, rng, cov = _seeded_mix(cond, n, seed, device, covariates)
    z = generator.sample_latents(mix, rng, SamplingOptions(), cov)
    state = rng.get_state()

    def decode() -> np.ndarray:
        rng.set_state(state)
        vae.eval()  # as the generators' sample does: no dropout, whatever mode the caller left the VAE in
        return vae.sample_genotypes(z, mix, rng).cpu().numpy()
    return decode


def _ld_draw(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, seed: int,
             covariates: np.ndarray | None = None):
    """The lags whose LD ``calibrate_ld`` matches (neighbour k < lags: k + 1 back) and its seeded draw (``_redraw``,
    4 n individuals, at least 1,000, at most 4,000)."""
    lags = vae.decoder.nearest or vae.decoder.window
    draws = int(np.clip(4 * len(dosages), 1_000, 4_000))
    return lags, _redraw(generator, vae, cond, draws, seed, vae.decoder.ld_scale.device, covariates)


@torch.no_grad()
def calibrate_ld(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, *, seed: int = 0,
                 per_lag: bool = False, rounds: int = 6, high: float = 3.0,
                 covariates: np.ndarray | None = None) -> dict:
    """Set the decoder's ``ld_scale`` (a factor for each lag k on the weights of the neighbour k SNPs back) so that
    the LD that ``generator`` samples between SNPs within its nearest neighbours matches that of the training
    individuals ``dosages`` (n, m) (conditions ``cond`` (n,)): the mean r^2 of pairs k apart, less each cohort's
    sampling bias, averaged over k = 1..``neighbour_nearest`` (one factor shared by every lag), or at every lag k
    (``per_lag``). The neighbours chosen by linkage keep a factor of 1: with one factor over all 32 slots, msprime
    sim1's sampled LD came out 10% weak at 1 kb and 8-13% strong at 30-80 kb (LD-decay error 2.6x the holdout's).
    ``rounds`` times, on the same seeded draw of 4 n individuals (at least 1,000, at most 4,000), the factors are
    multiplied by sqrt(training r^2 / sampled r^2) (r^2 grows about as the square of the weights), within [1,
    ``high``]; LD absent from either (a lag, or the whole window) leaves its factor as it is.

    Why: while training, each individual's posterior latent also explains part of its neighbours' dependence, so
    the neighbour weights learn less than the whole of it; latents sampled from the prior do not carry that part.
    The sampled LD comes out weaker than the training cohort's, most at the shortest lags (msprime, 720 training
    people: 0.67x at lag 1, 0.92x at lag 16); one shared factor leaves lag 1 at 0.90x and lags 8-16 at 1.07-1.13x
    there, and the LD-decay curve 10-20% weak below 12 kb. Per lag fixes that (LD-decay error down by a third on
    msprime), but not on 1000 Genomes AGBL4, and its effect on privacy there is not settled, so one shared factor
    is the default (BENCHMARKS.md, seventh pass). The factors only ever strengthen the neighbour weights: where
    the sampled r^2 already reaches the training cohort's, the excess is population structure carried by the latent
    (the 1000 Genomes 805 SNPs, spread over the genome: weakening the neighbours there to compensate doubled the
    LD-decay error), and the factor stays 1. One number (per lag) is fitted from the training individuals (their
    mean r^2). Returns {} for the independent decoder, else {"ld_scale", "ld_r2_training", "ld_r2_before",
    "ld_r2_after"}, lists over the lags."""
    decoder = vae.decoder
    if decoder.independent:
        return {}
    lags, draw = _ld_draw(generator, vae, dosages, cond, seed, covariates)  # the same draw every round
    target = _lag_r2(dosages, lags)
    scale = np.ones(decoder.window)

    def sampled_r2() -> np.ndarray:
        decoder.ld_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        return _lag_r2(draw(), lags)

    def matched(r2: np.ndarray) -> np.ndarray:  # the r^2 at each lag, or their mean
        return r2 if per_lag else np.full(1, r2.mean() if len(r2) else 0.0)

    before = got = sampled_r2()
    for _ in range(rounds):
        t, g = matched(target), matched(got)
        both = (t > 0) & (g > 0)  # no LD to match (a lag, a short panel's end, or none at all)
        ratio = np.ones(len(t))
        ratio[both] = t[both] / g[both]
        # one shared factor: its ratio at every lag; per lag: lags past a short panel's end keep theirs
        ratio = np.full(lags, ratio[0]) if not per_lag else np.pad(ratio, (0, lags - len(ratio)), constant_values=1.0)
        scale[:lags] = np.clip(scale[:lags] * np.sqrt(ratio), 1.0, high)
        got = sampled_r2()
    return {"ld_scale": scale.round(4).tolist(), "ld_r2_training": target.tolist(), "ld_r2_before": before.tolist(),
            "ld_r2_after": got.tolist()}


@torch.no_grad()
def _aim_offsets(offsets: torch.Tensor, target: np.ndarray, sampled: np.ndarray, floor: float, rounds: int,
                 redraw) -> np.ndarray:
    """``rounds`` times: add log(target / sampled) (both (m, 3) genotype frequencies, ``floor`` added against a log
    of zero) to ``offsets`` (the decoder's logit offsets, or one class's row of them, changed in place), then
    ``redraw(r)`` the frequencies the generator now samples. Returns the last ones."""
    for r in range(rounds):
        offsets.add_(torch.as_tensor(np.log(target + floor) - np.log(sampled + floor), dtype=offsets.dtype,
                                     device=offsets.device))
        sampled = redraw(r)
    return sampled


def calibrate_marginals(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, *,
                        rounds: int = 3, seed: int = 0, max_draws: int = 20_000,
                        target: np.ndarray | None = None, covariates: np.ndarray | None = None) -> dict:
    """Bring the genotype frequencies that ``generator`` (which decodes through ``vae``) samples towards those of
    its training individuals ``dosages`` (n, m), with their conditions ``cond`` (n,), by the decoder's
    ``calibration`` (added to its logits).

    Why: the decoder and the prior are fitted for likelihood, and their sampled genotype frequencies end up 1.2-1.5x
    further from the training ones than a fresh real sample's are. But the training frequencies carry their own
    sampling noise, and matching that noise pulls synthetic people towards training people (the no-copy floor).
    So the target is shrunk towards the model's own frequencies q, genotype by genotype, by how much of the
    difference sampling noise explains (empirical Bayes, as James-Stein): target = q + lambda (p - q) with
    lambda = tau^2 / (tau^2 + p (1 - p) / n_called), tau^2 the model's squared error beyond both cohorts' sampling
    noise, averaged over the panel. Then ``rounds`` times: draw a cohort with the training mix of conditions (4 n
    individuals, at least 1,000, at most ``max_draws``) and add log(target / sampled) to the calibration.

    ``target`` (m, 3), the "target" of an earlier call, is aimed at instead of a new one (``calibrate``'s second
    pass: shrinkage estimated again on a model already calibrated towards p finds its error small and pulls less).

    Returns {"rounds", "draws", "shrinkage" (mean lambda), "mae_before", "mae_after", "target"}: the mean absolute
    difference between sampled and training genotype frequencies in the first draw and in a last draw after the
    last correction, and the target frequencies (m, 3) aimed at."""
    p, called = _shares(dosages)
    draws = int(np.clip(4 * len(dosages), 1_000, max_draws))
    calibration = vae.decoder.calibration
    floor = 0.5 / max(len(dosages), 1)  # half a training individual: no log of zero

    q = _shares(_draw(generator, cond, draws, seed, calibration.device, covariates))[0]
    shrink = np.full(1, np.nan)  # a target given: no shrinkage estimated here
    if target is None:
        noise = p * (1 - p) / called
        tau2 = max(float(np.mean((p - q) ** 2 - noise - q * (1 - q) / draws)), 0.0)
        shrink = tau2 / (tau2 + noise) if tau2 > 0 else np.zeros_like(p)
        target = q + shrink * (p - q)
        target = target / target.sum(1, keepdims=True)
    sampled = _aim_offsets(calibration, target, q, floor, rounds,
                           lambda r: _shares(_draw(generator, cond, draws, seed + r + 1, calibration.device,
                                                   covariates))[0])
    return {"rounds": rounds, "draws": draws, "shrinkage": float(shrink.mean()),
            "mae_before": float(np.abs(q - p).mean()), "mae_after": float(np.abs(sampled - p).mean()),
            "target": target}


MIN_CLASS = 20  # training individuals a class needs for offsets of its own (else it keeps the pooled ones)


def class_targets(dosages: np.ndarray, cond: np.ndarray, q: np.ndarray, share: np.ndarray,
                  groups: np.ndarray | None) -> dict[int, np.ndarray]:
    """Each class's genotype frequencies (m, 3) for ``calibrate_classes`` to aim at: target_c = q + (a_c - p) +
    s (p_c - a_c), normalised, for the classes of ``cond`` (n,) with ``MIN_CLASS`` individuals or more.

    p: the training frequencies of ``dosages`` (n, m); p_c: those of class c; q (m, 3): the released generator's
    own frequencies at the training mix of classes; s (m,): each SNP's ``share`` of the trait's effect (the
    selection-bias shrinkage of ``GenotypeVAE.set_trait_share``); a_c = sum_g (share of ancestry group g in class
    c) p_g, what class c's mix of ``groups`` (n,) labels alone explains (p without groups). So the part of a class's
    difference that its ancestry explains, which a fresh sample shares, is kept whole, and only the rest, where the
    training sample's chance lies, is shrunk as the SNP's association is."""
    known = ~np.isnan(cond)
    x, y = dosages[known], cond[known].astype(np.int64)
    g = None if groups is None else np.asarray(groups)[known]
    p = _shares(x)[0]
    by_group = {} if g is None else {k: _shares(x[g == k])[0] for k in np.unique(g)}
    floor = 0.5 / max(len(x), 1)
    out = {}
    for c in np.unique(y):
        rows = y == c
        if rows.sum() < MIN_CLASS:
            continue
        a_c = p if g is None else sum((g[rows] == k).mean() * f for k, f in by_group.items())
        target = np.clip(q + (a_c - p) + share[:, None] * (_shares(x[rows])[0] - a_c), floor, None)
        out[int(c)] = target / target.sum(1, keepdims=True)
    return out


@torch.no_grad()
def calibrate_classes(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray,
                      groups: np.ndarray | None, *, rounds: int = 3, seed: int = 0, max_draws: int = 8_000,
                      covariates: np.ndarray | None = None) -> dict:
    """Each class's own frequency offsets (the decoder's ``class_calibration``, added to ``calibration``), fitted
    after ``calibrate`` on draws of that class alone, aimed at ``class_targets``.

    Why: ``calibrate``'s offsets are one per SNP, fitted at the training mix of classes, and the trait shares
    (``set_trait_share``) scale only the decoder's own trait path; a class's deviation that reaches the genotypes
    through the guided latent keeps the training class's differences whole, chance included. A model fitted on
    such a release predicts the training individuals' own trait better than a stranger's (the card's
    ``privacy.label_membership_auc``: 0.56 on msprime sim2, where a model fitted on the training people themselves
    reads 0.58). Ancestry groups (``groups``, e.g. ``evaluation.structure.training_groups``) keep the differences
    a class's ancestry mix explains whole: without them, shares estimated from an ancestry-adjusted GWAS shrank
    sim2's raw case-control differences to 0.72x a fresh sample's agreement (BENCHMARKS.md, thirty-eighth pass).

    ``rounds`` times per class: draw max(1,000, 4 x the class's size) individuals of it (at most ``max_draws``)
    and add log(target / sampled). Returns {"classes": the classes calibrated, "groups": how many ancestry groups,
    "mae_before", "mae_after": per class, the mean absolute difference between its sampled genotype frequencies
    and its target before and after}; {} for a trait without classes."""
    table = vae.decoder.class_calibration
    if table.shape[0] == 0:
        return {}
    device = table.device
    draws = int(np.clip(4 * len(dosages), 1_000, max_draws))
    q = _shares(_draw(generator, cond, draws, seed, device, covariates))[0]
    share = vae.decoder.trait_share.cpu().numpy().astype(np.float64)
    targets = class_targets(dosages, cond, q, share, groups)
    floor = 0.5 / max(len(dosages), 1)
    record = {"classes": sorted(targets), "groups": 1 if groups is None else int(len(np.unique(groups))),
              "mae_before": [], "mae_after": []}
    for c, target in targets.items():
        rows = cond == c  # the class's own training rows: their covariates, where the run has them
        n, first = int(np.clip(4 * rows.sum(), 1_000, max_draws)), seed + 17 * (c + 1)
        only, own = cond[rows], None if covariates is None else covariates[rows]
        sampled = _shares(_draw(generator, only, n, first, device, own))[0]
        record["mae_before"].append(float(np.abs(sampled - target).mean()))
        sampled = _aim_offsets(table[c], target, sampled, floor, rounds,
                               lambda r: _shares(_draw(generator, only, n, first + r + 1, device, own))[0])
        record["mae_after"].append(float(np.abs(sampled - target).mean()))
    return record


def class_calibration_summary(record: dict) -> str:
    """One line for ``train``: what ``calibrate_classes`` did."""
    if not record.get("classes"):
        return "class offsets: none (no class with enough training individuals)"
    groups = record["groups"]
    mae = ", ".join(f"class {c} {b:.4f} -> {a:.4f}" for c, b, a in
                    zip(record["classes"], record["mae_before"], record["mae_after"]))
    return (f"class offsets: each class's genotype frequencies moved to the differences its mix of {groups} "
            f"ancestry group{'s' if groups != 1 else ''} explains, the rest shrunk by the trait shares (mean "
            f"absolute difference from the target: {mae})")


@torch.no_grad()
def released_ld(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, *,
                seed: int = 0, covariates: np.ndarray | None = None) -> dict:
    """The neighbour LD that ``calibrate_ld`` matched, measured again on ``generator`` as it is released, after
    ``calibrate_marginals`` has moved the decoder's logits: {"ld_r2_released"}, a list over the lags (the same
    seeded draw as ``calibrate_ld``'s, so the difference from its "ld_r2_after" is the frequency calibration's
    doing), or {} for the independent decoder.

    Why: the per-SNP offsets change the sampled LD as well. On an unseen msprime cohort (seed 63473) the mean r^2
    of the nearest 16 lags was 1.02x the training cohort's before them and 0.93x after (one pass of ``calibrate``;
    its LD-decay error 5.0x the holdout's; 2.0x without the offsets, which then leave genotype frequencies 3x
    further off); on three other unseen cohorts the two differ by 3% or less. ``train`` prints both (BENCHMARKS.md,
    fourteenth pass)."""
    if vae.decoder.independent:
        return {}
    lags, draw = _ld_draw(generator, vae, dosages, cond, seed, covariates)
    return {"ld_r2_released": _lag_r2(draw(), lags).tolist()}


def calibrate(generator: Generator, vae: GenotypeVAE, dosages: np.ndarray, cond: np.ndarray, *, seed: int = 0,
              per_lag: bool = False, rounds: int = 3, passes: int = 2, covariates: np.ndarray | None = None) -> dict:
    """``calibrate_ld`` then ``calibrate_marginals``, ``passes`` times in turn, then ``released_ld``: the record of
    both (the LD and frequencies before it and the frequency shrinkage from the first pass, everything else from
    the last), the released LD and the number of passes. A run that conditions on covariates draws each synthetic
    individual with the covariates of the training row its condition came from (``covariates`` (n, c), rows as
    ``dosages``), as ``generate`` draws them with its condition: calibrated on draws without them, the neighbour
    weights of an msprime run conditioned on its populations were scaled x3 to make up for LD the release then had
    (detection 0.91; BENCHMARKS.md, forty-fifth pass).

    Why twice: the per-SNP offsets move the LD that the factors had matched, up or down, so the second pass fits
    the factors again on the generator with the offsets (and refits the offsets after them). Against one pass, 3
    draws on each of 8 runs (default runs of msprime sim1-3 and AGBL4 CASE, three unseen msprime cohorts;
    BENCHMARKS.md, fourteenth pass): LD-decay error 2.29x -> 1.88x the holdout's on average (an unseen cohort 3.45x
    -> 1.82x; runs above 2x: 4 of 8 -> 2), detection AUC +0.005, AATS loss +0.003, DCR share unchanged.
    The second pass aims at the first pass's frequency target: re-estimated on a model already moved towards the
    training frequencies, the shrinkage came out small and the offsets barely pulled, so the frequencies ended where
    the refitted LD factors had pushed them. On 8 runs x 3 draws (fifteenth pass): allele-frequency MAE 1.13x ->
    1.04x the holdout's (lower on all 8), AATS loss 0.029 -> 0.026, detection AUC and DCR share unchanged, LD-decay
    error 1.77x -> 1.85x (up on 4 of 8)."""
    record: dict = {}
    target = None  # the first pass's frequency target, aimed at again by the second
    first_only = ("ld_r2_before", "mae_before", "shrinkage")  # the state before, and the target, set once
    for _ in range(passes):
        step = calibrate_ld(generator, vae, dosages, cond, seed=seed, per_lag=per_lag, covariates=covariates)
        step.update(calibrate_marginals(generator, vae, dosages, cond, rounds=rounds, seed=seed, target=target,
                                        covariates=covariates))
        target = step.pop("target")
        record.update({k: v for k, v in step.items() if not record or k not in first_only})
    record.update(released_ld(generator, vae, dosages, cond, seed=seed, covariates=covariates), passes=passes)
    return record


def calibration_summary(record: dict) -> str:
    """One line for ``train``: what ``calibrate_ld`` and ``calibrate_marginals`` changed, and the neighbour LD
    ``released_ld`` measured after both."""
    parts = []
    if "ld_scale" in record:
        scale = np.atleast_1d(record["ld_scale"])  # runs written before 2026-12-02: one factor for every lag
        factor = f"x{scale.min():.2f}" + (f"-{scale.max():.2f} by lag" if scale.max() > scale.min() else "")
        mean = {k: float(np.mean(record[k])) for k in ("ld_r2_before", "ld_r2_after", "ld_r2_training")}
        released = ("" if "ld_r2_released" not in record else  # runs written before 2026-12-03 lack it
                    f", {np.mean(record['ld_r2_released']):.4f} once the frequencies are calibrated too")
        parts.append(f"neighbour weights {factor} (mean neighbour r^2 {mean['ld_r2_before']:.4f} -> "
                     f"{mean['ld_r2_after']:.4f}{released}; training {mean['ld_r2_training']:.4f})")
    parts.append(f"genotype frequencies moved {record['shrinkage']:.2f} of the way to the training cohort's (mean "
                 f"absolute difference {record['mae_before']:.4f} -> {record['mae_after']:.4f})")
    return "calibrated: " + "; ".join(parts)
