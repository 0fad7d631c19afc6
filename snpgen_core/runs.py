"""Run directories: what ``snpgen train`` writes and ``snpgen generate`` reads.

Layout of ``RUN_DIR`` (every file written atomically; ``run.json`` last, as the completeness marker):

    config.json         format version, the TrainConfig (model and training settings), the trait and panel size
    panel.tsv           the SNP panel (SNP CHR BP A1 A2 BETA P), position-sorted
    panel.bim           the panel's exact ``.bim`` lines (IDs, cM, positions, alleles) for generated cohorts
    split.tsv           FID IID SPLIT (train / validation) of the training cohort
    provenance.json     software versions, seed, device, SHA-256 of every input file, date, parameters, who chose
                        the SNPs (snp_panel)
    gwas_train.tsv      only when the given GWAS stated more individuals than the cohort: the one recomputed on
                        the training part, which ranked the SNPs
    model.safetensors   weights: vae.*, diffusion.* (EMA), independent.*, latent_gaussian.* (model wgan: gan.*,
                        independent.*; model markov: markov.*, independent.*), and trait.* (a quantitative or
                        binary trait's model given the genotypes, models/trait_model.py; zeros and unused otherwise)
    history.json        per-epoch losses of each stage (the app's loss curves)
    reconstruction.tsv  VAE reconstruction accuracy on the validation individuals, by MAF bin and genotype
    run.json            format version, completion date, SHA-256 of the files above
    checkpoints/        resumable per-stage training state while a run is unfinished (removed when complete)

Weights are read with ``safetensors`` only (never pickle), so opening a run directory cannot execute code.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import InputError, not_utf8
from .io.atomic import atomic_path
from .options import check_options, option
from .provenance import json_default, sha256_file
from .models.baselines import IndependentSNPs, LatentGaussian, VAEGaussian
from .models.denoiser import Denoiser, DenoiserConfig
from .models.gan import ConditionalWGAN, GANConfig
from .models.markov import MarkovChainSNPs
from .models.trait_model import PENALTIES, TraitModel
from .models.diffusion import CLASS_GUIDANCE, DiffusionConfig, GaussianDiffusion
from .models.generators import Generator, LatentDiffusion
from .models.vae import GenotypeVAE, VAEConfig
from .differential_privacy import DPConfig
from .training import FitConfig, FitState

FORMAT_VERSION = 1
MODELS = ("diffusion", "vae_gaussian", "independent", "wgan", "markov")  # the generators a run can hold (RunModels.generator)
TRAINED_MODELS = ("diffusion", "wgan", "markov")  # what snpgen train --model trains (TrainConfig.model)


# ---------------------------------------------------------------------------------------------------------------
# Configuration


def _vae_fit() -> FitConfig:
    # the VAE's memorisation checks are recorded (history, likelihood gap) but do not stop it: early stopping on
    # the validation loss does; the diffusion, which can learn training latents over hundreds of epochs, stops
    return FitConfig(epochs=100, batch_size=128, lr=1e-3, weight_decay=1e-2, patience=10, min_epochs=10,
                     check_every=5, check_patience=0)


def _diffusion_fit() -> FitConfig:
    # on 1000G AGBL4 (2,000 training latents) batches of 128 for up to 800 epochs reached a lower validation loss
    # and detection AUC than batches of 256 for 600-1,000 epochs or a doubled learning rate, for ~60 s of CPU
    # Its validation loss hardly moves on a real cohort (1000G AGBL4: 0.987 after one epoch, 0.978 at best) and can
    # be lowest after one epoch, before the prior has learnt the trait (AGBL4 seed 3: TSTR 0.941 kept from epoch 1,
    # 0.971 from epoch 50 on; BENCHMARKS.md, eighteenth pass): no weights before epoch 50, the first memorisation
    # check, are kept
    return FitConfig(epochs=800, batch_size=128, lr=1e-3, weight_decay=0.0, patience=80, min_epochs=100,
                     keep_from=50, ema_decay=0.995, val_repeats=4, check_every=50)


def _gan_fit() -> FitConfig:
    # Xie et al.'s WGAN-GS settings (Adam 1e-4, betas (0.5, 0.9), batches of 128, no clipping); EMA generator
    # weights are kept (a critic-dependent validation score cannot choose them) and the checks are recorded only
    return FitConfig(epochs=300, batch_size=128, lr=1e-4, weight_decay=0.0, adam_beta1=0.5, adam_beta2=0.9,
                     patience=1_000_000, grad_clip=0.0, ema_decay=0.999, check_every=50, check_patience=0)


@dataclass
class TrainConfig:
    """Everything ``train_run`` needs besides the data: the models, their training loops and the split.

    ``vae.n_snps``, the phenotype kind and class counts are filled in from the data. ``--epochs N`` sets
    ``vae_fit.epochs = N`` and scales ``diffusion_fit.epochs`` in proportion.
    """

    vae: VAEConfig = field(default_factory=VAEConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    vae_fit: FitConfig = field(default_factory=_vae_fit)
    diffusion_fit: FitConfig = field(default_factory=_diffusion_fit)
    checkpoint_seconds: float = option(30.0, "least seconds between resumable checkpoints (the last epoch is "
                                             "always saved)", low=0.0)
    validation: float = option(0.1, "share of the training cohort held out for early stopping (stratified by "
                                    "trait)", low=0.0, high=0.9)
    independent_bins: int = option(5, "quantile bins of a quantitative trait for the independent-SNP baseline",
                                   low=1, high=1000)
    calibration_rounds: int = option(3, "after training, calibrate the generator's LD and genotype frequencies to "
                                        "the training cohort's, with this many frequency rounds (0 = no "
                                        "calibration; DP and GAN runs: none)", low=0, high=20)
    # on the cohort shaped like the hidden one (phase1: 873 people, a panel of chance associations) association
    # copying 3.53 -> 2.27 over 3 runs x 4 draws, HapMap 3 3.93 -> 2.79, TSTR unchanged; msprime with an
    # ancestry-adjusted GWAS: TSTR +0.015 (7 of 7 runs); AGBL4: no change; msprime with `snpgen gwas`'s unadjusted
    # one: TSTR -0.006 to -0.008 (2 cohorts). BENCHMARKS.md, twenty-sixth pass
    trait_shrinkage: bool = option(True, "after training, scale the trait's effect on each panel SNP in the decoder "
                                         "by the share of the SNP's GWAS association that a correction for "
                                         "selection bias expects to be real (empirical Bayes over every tested "
                                         "SNP, Tweedie's formula); off: the training cohort's own differences, "
                                         "chance included (DP runs: off)")
    # 3 releases per run: 14 fresh msprime cohorts TSTR 0.944 -> 0.954x; msprime sim1-3 0.966 -> 0.998x, and a model
    # fitted on the release told training people from strangers at AUC 0.573 -> 0.537; 1000 Genomes phase 1 AATS
    # loss 0.061 -> 0.045; AGBL4 CASE TSTR 0.966 -> 0.950x (guidance's inflation gone); without the ancestry groups
    # sim2's case-control r fell to 0.72x a fresh sample's (BENCHMARKS.md, thirty-eighth pass)
    class_calibration: bool = option(True, "after the calibration, fit each class of a class trait its own genotype "
                                           "frequency offsets, aimed at the class differences its ancestry mix "
                                           "explains plus the rest shrunk by the trait shares (runs with trait "
                                           "shrinkage only); off: one set of offsets for every class")
    # the lasso was kept on 7 of 7 runs: 1000 Genomes AGBL4 QT (3 seeds) validation r 0.676 -> 0.714, TSTR 0.938 ->
    # 0.952x; four unseen msprime cohorts 0.618 -> 0.689, 0.895 -> 0.963x (BENCHMARKS.md, thirty-second pass)
    # a binary trait's auto is the lasso: on msprime sim2 the ridge (validation r 0.558 against 0.511; 311 effective
    # degrees of freedom against 56) gave the label attack 0.564 and TSTR 0.974x, the lasso 0.517 and 1.027x
    # (BENCHMARKS.md, thirty-ninth pass)
    trait_model: str = option("auto", "a quantitative or binary trait's model given the genotypes, from which the "
                                      "released trait is drawn: ridge (L2: many small effects), lasso (L1: few SNPs "
                                      "carry the trait) or auto (a quantitative trait: both fitted on the training "
                                      "individuals, the one that predicts the validation individuals better kept, "
                                      "ridge without them; a binary trait: the lasso)",
                              choices=("auto",) + PENALTIES)
    # one factor per lag lowers the LD-decay error on msprime (medians over 3 seeds: sim1 / sim2 1.76 / 1.74 ->
    # 1.58 / 1.51x; 720 training people 4.7 -> 2.8x; seventh pass). With the linked neighbours (VAEConfig.window),
    # whose weights it leaves alone, it is the default: one shared factor over the nearest 16 left msprime sim1's
    # shortest-range LD 10% weak (LD-decay error 2.40x -> 1.91x per lag, AATS loss 0.008 -> 0.010; sim2 1.36 ->
    # 1.44x, 0.037 -> 0.024; AGBL4 0.59 -> 0.82x, 0.036 -> 0.012; training seed 1, BENCHMARKS.md, eleventh pass)
    ld_calibration: str = option("lag", "LD calibration of the decoder's neighbour weights: one factor for all "
                                        "lags (matching the mean neighbour r^2) or one per lag", choices=("one", "lag"))
    dp: DPConfig = field(default_factory=DPConfig)  # differential privacy (DP-SGD) of the VAE and the denoiser
    model: str = option("diffusion", "generator to train: diffusion (our VAE + latent diffusion), wgan (a "
                                     "conditional WGAN-GP with Gumbel-softmax genotypes, as Xie et al. and Yelmen "
                                     "et al.; no VAE, no diffusion) or markov (a first-order Markov chain along the "
                                     "panel per trait class, from genotype-pair counts: with --dp-epsilon, one "
                                     "Gaussian mechanism on those counts, which keeps the condition far better "
                                     "than DP-SGD)", choices=TRAINED_MODELS)
    markov_window: int = option(1, "model markov: how many preceding SNPs each SNP may choose its parent from "
                                   "(the one in strongest LD; 1 = the plain first-order chain; with DP the noise "
                                   "grows as the square root)", low=1, high=64)
    markov_prior: float = option(3.0, "model markov with DP: pseudo-individuals per unit of the counts' noise sd "
                                      "that pull each pair table towards independence", low=0.0, high=1000.0)
    gan: GANConfig = field(default_factory=GANConfig)  # model "wgan" only
    gan_fit: FitConfig = field(default_factory=_gan_fit)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "TrainConfig":
        """Build from a (possibly partial) nested dict; unknown sections or keys, and values outside a setting's
        declaration (``options.option``), raise InputError."""
        config = _dataclass_from_dict(cls, data, where)
        check_options(config, where)
        return config


def _dataclass_from_dict(cls, data: dict, where: str, path: str = "", base=None):
    """``cls`` from a (partial) dict: settings not given keep ``base``'s values (default ``cls()``), so a section
    given in part keeps its parent's declared defaults (``diffusion_fit`` its 800 epochs, not FitConfig's 100)."""
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object for {cls.__name__}, found {type(data).__name__}", path=where)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"unknown setting(s) {unknown} in {cls.__name__}", path=where,
                         hint=f"known: {', '.join(known)}")
    defaults = cls() if base is None else base
    kwargs = {}
    for name, value in data.items():
        current = getattr(defaults, name)
        if is_dataclass(current):
            kwargs[name] = _dataclass_from_dict(type(current), value, where, f"{path}{name}.", base=current)
        else:
            kwargs[name] = _checked_setting(f"{path}{name}", value, current, where)
    try:
        return cls(**{**{f: getattr(defaults, f) for f in known}, **kwargs})
    except (TypeError, ValueError) as err:
        raise InputError(f"bad setting in {cls.__name__}: {err}", path=where) from None


def _checked_setting(name: str, value, default, where: str):
    """``value`` for setting ``name`` (dotted: ``vae.latent_dim``), refused unless it has the default's type (an
    int is a valid float), is finite and at most ``_LARGEST``. The declared ranges (``options.option``) are checked
    by ``check_options`` once the config is built."""
    if default is None:
        return value
    expected = type(default)
    if expected in (list, tuple) and isinstance(value, (list, tuple)):
        return expected(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise InputError(f"{name} = {value!r} must be {_TYPE_NAMES.get(expected, expected.__name__)}", path=where,
                         hint=f"e.g. {json.dumps(default)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not np.isfinite(value):
            raise InputError(f"{name} = {value} must be a finite number", path=where,
                             hint=f"e.g. {json.dumps(default)}")
        if isinstance(value, int) and value > _LARGEST:  # refused before a network of that size is allocated
            raise InputError(f"{name} = {value} is larger than {_LARGEST:,}", path=where,
                             hint=f"e.g. {json.dumps(default)}")
    return value


_TYPE_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a text"}
_LARGEST = 1_000_000  # no size, count or step setting is meaningful beyond this (a 10^10 latent_dim is 20 TB)


def read_config(path: str | os.PathLike) -> TrainConfig:
    """A TrainConfig from a JSON file holding any subset of its sections (``{"vae": {"latent_dim": 32}}``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", path=str(p))
    data = _read_json_file(p)
    if isinstance(data, dict) and "train" in data and "format_version" in data:  # a run directory's config.json
        return run_config(data["train"], str(p))
    return TrainConfig.from_dict(data, str(p))


def run_config(train, where: str) -> TrainConfig:
    """The TrainConfig a run directory's config.json records (its "train" section). A run written before the
    diffusion's sampler was a setting (2026-12-06) used DDIM, and one written before its guidance was a setting
    (the same day, later) guidance ``CLASS_GUIDANCE`` whatever its trait; each keeps it, so its releases stay what
    they were, seed for seed. Any other missing setting takes its default, as in a partial config."""
    if isinstance(train, dict) and isinstance(diffusion := train.get("diffusion"), dict):
        train = {**train, "diffusion": {"sampler": "ddim", "guidance": CLASS_GUIDANCE, **diffusion}}
    return TrainConfig.from_dict(train, where)


# ---------------------------------------------------------------------------------------------------------------
# Small file helpers


def _read_json_file(path: Path, hint: str | None = None):
    """Parsed JSON of ``path``; InputError (line named) when it is unreadable, not UTF-8 or not JSON."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg})", path=str(path), line=err.lineno, hint=hint) from None


# ---------------------------------------------------------------------------------------------------------------
# The panel of a run


def panel_indices(panel_bim: Path, variants: pd.DataFrame) -> np.ndarray:
    """Rows of ``variants`` holding the SNPs of a run's ``panel.bim``, in panel order."""
    from .io.plink import read_bim

    ids = read_bim(panel_bim)["snp"].astype(str)
    hit = pd.Index(variants["snp"].astype(str)).get_indexer(ids)
    if (hit < 0).any():
        raise InputError(f"{int((hit < 0).sum())} panel SNPs are not in the genotypes (e.g. {ids[hit < 0].iloc[0]})",
                         path=str(panel_bim), hint="use the cohort the run was trained on")
    return hit.astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Training checkpoints (resumable state of one stage)


def save_fit_state(path: Path, state: FitState) -> None:
    """One safetensors file with the weights, optimizer tensors and, in its metadata, the counters and history."""
    tensors: dict[str, torch.Tensor] = {}
    safe_is_best = state.safe is state.best  # usually the same weights: stored once
    for prefix, sd in (("model", state.model), ("ema", state.ema), ("best", state.best),
                       ("safe", None if safe_is_best else state.safe)):
        for k, v in (sd or {}).items():
            tensors[f"{prefix}.{k}"] = v.detach().cpu().contiguous()
    opt = state.optimizer or {}
    for idx, slots in opt.get("state", {}).items():
        for k, v in slots.items():
            tensors[f"opt.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    meta = {"epoch": state.epoch, "best_val": state.best_val, "best_epoch": state.best_epoch,
            "bad_epochs": state.bad_epochs, "history": state.history, "done": state.done, "stopped": state.stopped,
            "has_ema": state.ema is not None, "has_best": state.best is not None, "has_safe": state.safe is not None,
            "safe_is_best": safe_is_best,
            "safe_epoch": state.safe_epoch, "failed_checks": state.failed_checks,
            "param_groups": opt.get("param_groups", [])}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"state": json.dumps(meta, default=json_default)})


def load_fit_state(path: Path) -> FitState:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["state"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    groups: dict[str, dict] = {"model": {}, "ema": {}, "best": {}, "safe": {}}
    opt_state: dict[int, dict] = {}
    for k, v in tensors.items():
        prefix, rest = k.split(".", 1)
        if prefix == "opt":
            idx, slot = rest.split(".", 1)
            opt_state.setdefault(int(idx), {})[slot] = v
        else:
            groups[prefix][rest] = v
    optimizer = {"state": opt_state, "param_groups": meta["param_groups"]} if meta["param_groups"] else {}
    return FitState(epoch=meta["epoch"], model=groups["model"], optimizer=optimizer,
                    ema=groups["ema"] if meta["has_ema"] else None,
                    best=groups["best"] if meta["has_best"] else None, best_val=meta["best_val"],
                    best_epoch=meta["best_epoch"], bad_epochs=meta["bad_epochs"], history=meta["history"],
                    done=meta["done"], stopped=meta["stopped"],
                    safe=(None if not meta.get("has_safe") else groups["best"] if meta["safe_is_best"]
                          else groups["safe"]), safe_epoch=meta.get("safe_epoch", 0),
                    failed_checks=meta.get("failed_checks", 0))


# ---------------------------------------------------------------------------------------------------------------
# Models of a run


@dataclass
class RunModels:
    """The trained networks and baselines of a run, built from its config."""

    vae: GenotypeVAE
    diffusion: GaussianDiffusion
    independent: IndependentSNPs
    latent_gaussian: LatentGaussian
    gan: ConditionalWGAN | None = None  # model "wgan": then the VAE, diffusion and latent Gaussian are not trained
    markov: MarkovChainSNPs | None = None  # model "markov": likewise
    trait: TraitModel | None = None  # a quantitative or binary trait's model given the genotypes (trait.is_fitted)

    @classmethod
    def build(cls, config: TrainConfig, pheno_kind: str, n_classes: int) -> "RunModels":
        return cls(
            GenotypeVAE(config.vae),
            GaussianDiffusion(Denoiser(config.denoiser), config.diffusion),
            IndependentSNPs(config.vae.n_snps, pheno_kind, n_classes, config.independent_bins),
            LatentGaussian(config.vae.latent_dim, pheno_kind, n_classes),
            ConditionalWGAN(config.gan) if config.model == "wgan" else None,
            MarkovChainSNPs(config.vae.n_snps, pheno_kind, n_classes, config.independent_bins, config.markov_window)
            if config.model == "markov" else None,
            TraitModel(config.vae.n_snps, config.denoiser.n_covariates),
        )

    @property
    def available(self) -> tuple[str, ...]:
        """The generators this run trained (``generator`` names)."""
        if self.gan is not None:
            return "wgan", "independent"
        return ("markov", "independent") if self.markov is not None else ("diffusion", "vae_gaussian", "independent")

    def modules(self) -> dict[str, torch.nn.Module]:
        """The trained modules, as saved in ``model.safetensors``."""
        if self.gan is not None:
            return {"gan": self.gan, "independent": self.independent, "trait": self.trait}
        if self.markov is not None:
            return {"markov": self.markov, "independent": self.independent, "trait": self.trait}
        return {"vae": self.vae, "diffusion": self.diffusion, "independent": self.independent,
                "latent_gaussian": self.latent_gaussian, "trait": self.trait}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, module in self.modules().items():
            for k, v in module.state_dict().items():
                out[f"{name}.{k}"] = v.detach().cpu().contiguous()
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        for name, module in self.modules().items():
            sd = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.split(".", 1)[0] == name}
            try:
                module.load_state_dict(sd)
            except RuntimeError as err:
                raise InputError(f"weights do not match the run's config ({str(err).splitlines()[0]})", path=where,
                                 hint="the run directory is damaged; train it again") from None

    def to(self, device: torch.device) -> "RunModels":
        for m in self.modules().values():
            m.to(device).eval()
        return self

    def generator(self, model: str) -> Generator:
        """The generator named ``model`` (one of ``available``: "diffusion", "vae_gaussian", "wgan", "markov",
        "independent")."""
        if model in MODELS and model not in self.available:
            raise InputError(f"this run did not train the {model!r} generator",
                             hint=f"choose from {', '.join(self.available)}")
        if model == "wgan":
            return self.gan
        if model == "markov":
            return self.markov
        if model == "diffusion":
            return LatentDiffusion(self.vae, self.diffusion)
        if model == "vae_gaussian":
            return VAEGaussian(self.vae, self.latent_gaussian)
        if model == "independent":
            return self.independent
        raise InputError(f"model {model!r} unknown", hint=f"choose from {', '.join(MODELS)}")


# ---------------------------------------------------------------------------------------------------------------
# Reading a finished run


@dataclass
class Run:
    """A complete run directory, loaded: its config, trait, panel variants and models."""

    path: Path
    config: TrainConfig
    phenotype: dict  # name, kind ("binary"/"categorical"/"quantitative"/"none"), labels, counts, mean, sd
    variants: pd.DataFrame  # the panel's .bim table
    models: RunModels
    info: dict  # config.json as written

    def generator(self, model: str | None = None) -> Generator:
        """The generator named ``model``; None: the one the run was trained for (``config.model``)."""
        return self.models.generator(model or self.config.model)

    def history(self) -> dict:
        return json.loads((self.path / "history.json").read_text())

    def record(self) -> dict:
        return read_record(self.path)

    def covariates(self) -> dict | None:
        """The covariate and sex summary generation draws from (``covariates.summarise``); None for a run
        written before it was recorded."""
        return self.info.get("covariates")


def read_record(run_dir: str | os.PathLike) -> dict:
    """A finished run's ``run.json``: what training measured and decided (privacy check, trait model, ...)."""
    try:
        return json.loads((Path(run_dir) / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read run.json ({err})", path=str(run_dir), hint="train the run again") from None


def read_privacy_check(run_dir: str | os.PathLike):
    """The validation privacy check recorded in a run's ``run.json`` (``memorisation.MemorisationCheck``), or
    None when the run made none (too few validation individuals)."""
    return recorded_privacy_check(read_record(run_dir))


def recorded_privacy_check(record: dict):
    """``read_privacy_check`` of a run.json already read (``read_record``)."""
    from .memorisation import MemorisationCheck

    check = record.get("privacy_check")
    return MemorisationCheck(**check) if check else None


RUN_FILES = ("config.json", "panel.tsv", "panel.bim", "split.tsv", "provenance.json", "model.safetensors",
             "history.json", "reconstruction.tsv")
CHECKPOINTS = "checkpoints"  # a run directory's resumable training states while it trains (removed when done)


def run_summary(run_dir: str | os.PathLike, generator: str = "diffusion") -> dict:
    """What a report says about the model behind a synthetic cohort: run name, completion date, generator, the
    training cohort's name, SHA-256 of the run's files (``run.json``'s record) and its differential-privacy
    accounting (None when trained without DP)."""
    path = Path(run_dir)
    try:
        done = json.loads((path / "run.json").read_text())
        prov = json.loads((path / "provenance.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read the run's run.json / provenance.json ({err})", path=str(path),
                         hint="give the --out folder of a finished snpgen train") from None
    files = done.get("files", {})
    return {"run": path.name, "finished": done.get("finished"), "generator": generator,
            "cohort": Path((prov.get("parameters") or {}).get("bfile") or "?").name,
            "files": {f"{path.name}/{k}": v for k, v in files.items() if k in ("model.safetensors", "config.json")},
            "differential_privacy": done.get("differential_privacy")}


def load_run(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> Run:
    """Open a run directory written by ``train_run``; InputError (with the fix) if it is missing, unfinished,
    written by an incompatible version, or damaged.

    Before any model is built: every file's SHA-256 must match ``run.json`` (an edited or swapped file is
    refused), ``config.json`` must follow the TrainConfig schema (types and ranges) and agree with
    ``panel.bim``. Weights are read with safetensors only; every tensor must be finite and of the shape the
    config gives (one of each, none extra).
    """
    from .io.plink import read_bim

    path = Path(run_dir)
    if not path.is_dir():
        raise InputError("run directory not found", path=str(path), hint="give the --out folder of snpgen train")
    marker = path / "run.json"
    if not marker.is_file():
        hint = ("training did not finish; continue it with snpgen train ... --resume" if (path / "config.json").exists()
                else "this is not a run directory of snpgen train")
        raise InputError("run directory is incomplete (no run.json)", path=str(path), hint=hint)
    damaged = "the run directory is damaged or was edited; train it again (or restore it from a copy)"
    done = _read_json_file(marker, hint=damaged)
    if not isinstance(done, dict):
        raise InputError(f"expected a JSON object, found {type(done).__name__}", path=str(marker), hint=damaged)
    version = done.get("format_version")
    if version != FORMAT_VERSION:
        raise InputError(f"run directory has format version {version}, this snpgen reads version {FORMAT_VERSION}",
                         path=str(path), hint="train the model again with this version of snpgen")
    _verify_hashes(path, done.get("files"), damaged)
    info = _read_json_file(path / "config.json", hint=damaged)
    where = str(path / "config.json")
    if not isinstance(info, dict):
        raise InputError(f"expected a JSON object, found {type(info).__name__}", path=where, hint=damaged)
    missing = [k for k in ("format_version", "train", "phenotype") if k not in info]
    if missing:
        raise InputError(f"lacks {', '.join(missing)}", path=where, hint=damaged)
    if info["format_version"] != FORMAT_VERSION:
        raise InputError(f"format version {info['format_version']}, this snpgen reads version {FORMAT_VERSION}",
                         path=where, hint="train the model again with this version of snpgen")
    config = run_config(info["train"], where)
    pheno = _checked_phenotype(info["phenotype"], where, damaged)
    n_cov = len((info.get("covariates") or {}).get("names", []))
    if n_cov != config.denoiser.n_covariates:
        raise InputError(f"{n_cov} covariates recorded but the denoiser takes {config.denoiser.n_covariates}",
                         path=where, hint=damaged)
    variants = read_bim(path / "panel.bim")
    if config.vae.n_snps != len(variants) or info.get("n_snps", len(variants)) != len(variants):
        raise InputError(f"vae.n_snps = {config.vae.n_snps} but panel.bim has {len(variants)} SNPs", path=where,
                         hint=damaged)
    try:
        models = RunModels.build(config, pheno["kind"], len(pheno.get("labels", [])))
    except (ValueError, TypeError, RuntimeError) as err:
        raise InputError(f"the config does not describe a model ({err})", path=where, hint=damaged) from None
    tensors = _read_weights(path / "model.safetensors", damaged)
    _check_weights(tensors, models, str(path / "model.safetensors"), damaged)
    models.load_tensors(tensors, str(path / "model.safetensors"))
    return Run(path, config, pheno, variants, models.to(torch.device(device)), info)


def _verify_hashes(path: Path, files, damaged: str) -> None:
    """Every file of a run must be listed in run.json and have the SHA-256 recorded there."""
    where = str(path / "run.json")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise InputError("has no table of file hashes", path=where, hint=damaged)
    unlisted = [f for f in RUN_FILES if f not in files]
    if unlisted:
        raise InputError(f"records no hash for {', '.join(unlisted)}", path=where, hint=damaged)
    for name, digest in files.items():
        f = path / name
        if Path(name).name != name or not f.is_file():
            raise InputError(f"{name} is missing", path=str(path), hint=damaged)
        if sha256_file(f) != digest:
            raise InputError("its SHA-256 differs from the one recorded in run.json when training finished",
                             path=str(f), hint=damaged)


def _checked_phenotype(pheno, where: str, damaged: str) -> dict:
    kinds = ("binary", "categorical", "quantitative", "none")
    if not isinstance(pheno, dict) or pheno.get("kind") not in kinds:
        raise InputError(f"phenotype must be an object with a kind in {kinds}", path=where, hint=damaged)
    labels = pheno.get("labels", [])
    if not isinstance(labels, list) or (pheno["kind"] in ("binary", "categorical") and len(labels) < 2):
        raise InputError("phenotype labels must be a list of at least 2 classes", path=where, hint=damaged)
    return pheno


def _read_weights(weights: Path, damaged: str) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file (never pickle: reading cannot run code)."""
    if not weights.is_file():
        raise InputError("model.safetensors is missing", path=str(weights.parent), hint=damaged)
    try:
        with safe_open(str(weights), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for empty, truncated or pickled files
        raise InputError(f"not a safetensors weights file ({str(err).splitlines()[0] if str(err) else type(err).__name__})",
                         path=str(weights), hint=damaged) from None


# tensors that runs written before they existed lack; their modules load them as "no effect"
ADDED_LATER = ("vae.decoder.calibration", "vae.decoder.ld_scale", "vae.decoder.neighbours", "vae.decoder.trait_share",
               "vae.decoder.class_calibration",
               "vae.trait_base", "trait.weight", "trait.intercept", "trait.noise_sd", "trait.fitted", "trait.link",
               *(f"diffusion.group_mix.{name}" for name in ("n_groups", "axes", "weights", "means", "precision_chol",
                                                            "shares")))
# tensors that were one number in earlier runs; their modules expand it (one LD factor for every lag)
WERE_SCALARS = ("vae.decoder.ld_scale",)


def _check_weights(tensors: dict[str, torch.Tensor], models: "RunModels", where: str, damaged: str) -> None:
    """Same names and shapes as the models the config builds, and only finite floating-point values."""
    expected = {k: tuple(v.shape) for k, v in models.state_tensors().items()}
    missing = sorted(set(expected) - set(tensors) - set(ADDED_LATER))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"holds an unexpected tensor {extra[0]}"
        raise InputError(f"{what} ({len(missing)} missing, {len(extra)} unexpected)", path=where, hint=damaged)
    for k, t in tensors.items():
        if tuple(t.shape) != expected[k] and not (k in WERE_SCALARS and t.dim() == 0):
            raise InputError(f"tensor {k} has shape {tuple(t.shape)}, the config needs {expected[k]}", path=where,
                             hint=damaged)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"tensor {k} holds NaN or infinite values", path=where, hint=damaged)
