"""Run directories: what ``snpgen train`` writes and ``snpgen generate`` reads.

Layout of ``RUN_DIR`` (every file written atomically; ``run.json`` last, as the completeness marker):

    config.json         format version, the TrainConfig (model and training settings), the trait and panel size
    panel.tsv           the SNP panel (SNP CHR BP A1 A2 BETA P), position-sorted
    panel.bim           the panel's exact ``.bim`` lines (IDs, cM, positions, alleles) for generated cohorts
    split.tsv           FID IID SPLIT (train / validation) of the training cohort
    provenance.json     software versions, seed, device, SHA-256 of every input file, date, parameters
    model.safetensors   weights: vae.*, diffusion.* (EMA), independent.*, latent_gaussian.*
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

from .errors import InputError
from .io.atomic import atomic_path
from .provenance import json_default
from .models.baselines import IndependentSNPs, LatentGaussian, VAEGaussian
from .models.denoiser import Denoiser, DenoiserConfig
from .models.diffusion import DiffusionConfig, GaussianDiffusion
from .models.generators import Generator, LatentDiffusion
from .models.vae import GenotypeVAE, VAEConfig
from .differential_privacy import DPConfig
from .training import FitConfig, FitState

FORMAT_VERSION = 1
MODELS = ("diffusion", "vae_gaussian", "independent")


# ---------------------------------------------------------------------------------------------------------------
# Configuration


def _vae_fit() -> FitConfig:
    return FitConfig(epochs=100, batch_size=128, lr=1e-3, weight_decay=1e-2, patience=10, min_epochs=10,
                     check_every=5)


def _diffusion_fit() -> FitConfig:
    # on 1000G AGBL4 (2,000 training latents) batches of 128 for up to 800 epochs reached a lower validation loss
    # and detection AUC than batches of 256 for 600-1,000 epochs or a doubled learning rate, for ~60 s of CPU
    return FitConfig(epochs=800, batch_size=128, lr=1e-3, weight_decay=0.0, patience=80, min_epochs=100,
                     ema_decay=0.995, val_repeats=4, check_every=50)


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
    checkpoint_seconds: float = 30.0  # least time between resumable checkpoints (the last epoch is always saved)
    validation: float = 0.1  # share of the training cohort held out for early stopping (stratified by trait)
    independent_bins: int = 5  # quantile bins of a quantitative trait for the independent-SNP baseline
    dp: DPConfig = field(default_factory=DPConfig)  # differential privacy (DP-SGD) of the VAE and the denoiser

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "TrainConfig":
        """Build from a (possibly partial) nested dict; unknown sections or keys raise InputError."""
        return _dataclass_from_dict(cls, data, where)


def _dataclass_from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object for {cls.__name__}, found {type(data).__name__}", path=where)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise InputError(f"unknown setting(s) {unknown} in {cls.__name__}", path=where,
                         hint=f"known: {', '.join(known)}")
    defaults = cls()
    kwargs = {}
    for name, value in data.items():
        current = getattr(defaults, name)
        if is_dataclass(current):
            kwargs[name] = _dataclass_from_dict(type(current), value, where)
        else:
            kwargs[name] = value
    try:
        return cls(**{**{f: getattr(defaults, f) for f in known}, **kwargs})
    except (TypeError, ValueError) as err:
        raise InputError(f"bad setting in {cls.__name__}: {err}", path=where) from None


def read_config(path: str | os.PathLike) -> TrainConfig:
    """A TrainConfig from a JSON file holding any subset of its sections (``{"vae": {"latent_dim": 32}}``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", path=str(p))
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg})", path=str(p), line=err.lineno) from None
    if "train" in data and "format_version" in data:  # a run directory's config.json
        data = data["train"]
    return TrainConfig.from_dict(data, str(p))


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

    @classmethod
    def build(cls, config: TrainConfig, pheno_kind: str, n_classes: int) -> "RunModels":
        return cls(
            GenotypeVAE(config.vae),
            GaussianDiffusion(Denoiser(config.denoiser), config.diffusion),
            IndependentSNPs(config.vae.n_snps, pheno_kind, n_classes, config.independent_bins),
            LatentGaussian(config.vae.latent_dim, pheno_kind, n_classes),
        )

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"vae": self.vae, "diffusion": self.diffusion, "independent": self.independent,
                "latent_gaussian": self.latent_gaussian}

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
        """The generator named ``model`` ("diffusion", "vae_gaussian" or "independent")."""
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

    def generator(self, model: str = "diffusion") -> Generator:
        return self.models.generator(model)

    def history(self) -> dict:
        return json.loads((self.path / "history.json").read_text())

    def privacy_check(self):
        return read_privacy_check(self.path)


def read_privacy_check(run_dir: str | os.PathLike):
    """The validation privacy check recorded in a run's ``run.json`` (``memorisation.MemorisationCheck``), or
    None when the run made none (too few validation individuals)."""
    from .memorisation import MemorisationCheck

    try:
        check = json.loads((Path(run_dir) / "run.json").read_text()).get("privacy_check")
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read run.json ({err})", path=str(run_dir), hint="train the run again") from None
    return MemorisationCheck(**check) if check else None


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
    written by an incompatible version, or damaged."""
    from .io.plink import read_bim

    path = Path(run_dir)
    if not path.is_dir():
        raise InputError("run directory not found", path=str(path), hint="give the --out folder of snpgen train")
    marker = path / "run.json"
    if not marker.is_file():
        hint = ("training did not finish; continue it with snpgen train ... --resume" if (path / "config.json").exists()
                else "this is not a run directory of snpgen train")
        raise InputError("run directory is incomplete (no run.json)", path=str(path), hint=hint)
    try:
        done = json.loads(marker.read_text())
        info = json.loads((path / "config.json").read_text())
    except (json.JSONDecodeError, FileNotFoundError) as err:
        raise InputError(f"run directory is damaged ({err})", path=str(path), hint="train it again") from None
    version = done.get("format_version")
    if version != FORMAT_VERSION or info.get("format_version") != FORMAT_VERSION:
        raise InputError(f"run directory has format version {version}, this snpgen reads version {FORMAT_VERSION}",
                         path=str(path), hint="train the model again with this version of snpgen")
    config = TrainConfig.from_dict(info["train"], str(path / "config.json"))
    pheno = info["phenotype"]
    variants = read_bim(path / "panel.bim")
    models = RunModels.build(config, pheno["kind"], len(pheno.get("labels", [])))
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise InputError("model.safetensors is missing", path=str(path), hint="train it again")
    with safe_open(str(weights), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    models.load_tensors(tensors, str(weights))
    return Run(path, config, pheno, variants, models.to(torch.device(device)), info)
