"""Training: ONE loop for every model (``fit``), and the whole pipeline from PLINK files to a run directory
(``train_run``).

``fit`` knows nothing of VAEs or diffusion (minGPT's trainer in spirit): it takes any ``nn.Module`` with a
``training_loss(batch, epoch) -> {"loss": ..., other components}`` method and tensors of training and validation
data, and runs seeded AdamW epochs with validation-based early stopping, optional EMA weights, bf16 autocast on
CUDA, cancellation between batches, and progress through a callback. Randomness (shuffling, dropout, noise) is
seeded from ``(seed, stage, epoch)`` inside ``torch.random.fork_rng``, so a resumed run repeats exactly what an
uninterrupted one would have done and the caller's global RNG state is left untouched.

Callback events (dicts): ``{"event": "start", "stage", "n_epochs"}``, then after each epoch
``{"event": "epoch", "stage", "epoch" (completed, 1-based), "n_epochs", "losses": {"train", "val",
"train_<component>", "val_<component>"}, "best_epoch", "elapsed_s", "eta_s"}``, and ``{"event": "end", "stage",
"epoch", "best_epoch", "stopped": "early_stopping" | "epochs"}``; ``train_run`` adds ``{"event": "message",
"stage", "message"}``.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .devices import resolve_device  # noqa: F401  (re-exported: part of this module's API)
from .errors import InputError

Callback = Callable[[dict], None]


class Cancelled(Exception):
    """Raised by ``fit`` (and ``train_run``) when the ``stop_event`` is set; the last epoch checkpoint stays."""


# ---------------------------------------------------------------------------------------------------------------
# Devices and threads


def default_threads() -> int:
    """Intra-op CPU threads: the cores this process may use, at most 8 (more rarely helps these small models)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


# ---------------------------------------------------------------------------------------------------------------
# The loop


@dataclass
class FitConfig:
    epochs: int = 100  # maximum
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4  # AdamW
    patience: int = 10  # epochs without a better validation loss before stopping
    min_epochs: int = 0  # no early stopping before this many epochs
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights, validate and keep that
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    val_repeats: int = 1  # validation passes averaged (noisy losses, e.g. diffusion)


@dataclass
class FitState:
    """All a resumed ``fit`` needs: weights (model, EMA, best), optimizer state, counters and history."""

    epoch: int = 0  # epochs completed
    model: dict = field(default_factory=dict)
    optimizer: dict = field(default_factory=dict)
    ema: dict | None = None
    best: dict | None = None
    best_val: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0
    history: list = field(default_factory=list)  # one dict per epoch: epoch, seconds, train, val, components
    done: bool = False
    stopped: str = ""


def _seed_for(seed: int, stage: str, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(stage.encode()), epoch]).generate_state(1)[0])


def _state_copy(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _mean_losses(model: nn.Module, data: Sequence[torch.Tensor], batch_size: int, epoch, autocast) -> dict:
    """Per-component losses averaged over ``data`` (weighted by batch size), without gradients."""
    n = data[0].shape[0]
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, n, batch_size):
            batch = tuple(t[start:start + batch_size] for t in data)
            with autocast():
                out = model.training_loss(batch, epoch)
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * batch[0].shape[0]
    return {k: v / n for k, v in sums.items()}


def fit(model: nn.Module, train: Sequence[torch.Tensor], val: Sequence[torch.Tensor] | None, config: FitConfig, *,
        stage: str = "train", seed: int = 0, device: torch.device | str = "cpu", callback: Callback | None = None,
        stop_event: threading.Event | None = None, on_epoch_end: Callable[[FitState], None] | None = None,
        resume: FitState | None = None) -> FitState:
    """Train ``model`` in place on ``train`` (tensors sharing their first dimension) and return the final state.

    Each epoch: shuffle, AdamW steps on batches of ``config.batch_size`` (``model.training_loss(batch, epoch)``,
    bf16 autocast on CUDA), optional EMA update, then the validation loss (``epoch=None``: the model's final
    weighting, e.g. the full KL weight) averaged over ``val_repeats`` fixed-seed passes. The best validation
    weights (EMA ones when ``ema_decay`` > 0) are loaded into ``model`` at the end; early stopping after
    ``patience`` epochs without improvement (not before ``min_epochs``). Without ``val`` the last weights are kept.
    ``on_epoch_end(state)`` is the place to write a checkpoint; pass that state back as ``resume`` to continue.
    Raises ``Cancelled`` when ``stop_event`` is set (checked between batches).
    """
    device = torch.device(device)
    model.to(device)
    train = [t.to(device) for t in train]
    val = None if val is None or val[0].shape[0] == 0 else [t.to(device) for t in val]
    n = train[0].shape[0]
    if n == 0:
        raise InputError(f"no training samples for stage {stage}")
    params = [p for p in model.parameters() if p.requires_grad]
    # multi-tensor (foreach) updates: per-parameter Python loops dominate small models on the CPU
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if config.ema_decay > 0 else None
    ema_params = [p for p in ema.parameters()] if ema is not None else []
    ema_buffers = list(zip(ema.buffers(), model.buffers())) if ema is not None else []
    state = resume or FitState()
    if resume is not None:
        model.load_state_dict(resume.model)
        if resume.optimizer:
            optimizer.load_state_dict(resume.optimizer)
        if ema is not None and resume.ema is not None:
            ema.load_state_dict(resume.ema)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    emit = callback or (lambda event: None)
    emit({"event": "start", "stage": stage, "n_epochs": config.epochs, "epoch": state.epoch})
    t_start = time.perf_counter()
    epochs_run = 0
    steps_per_epoch = (n + config.batch_size - 1) // config.batch_size
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        while not state.done and state.epoch < config.epochs:
            epoch = state.epoch
            t_epoch = time.perf_counter()
            torch.manual_seed(_seed_for(seed, stage, epoch))
            perm = torch.randperm(n, device="cpu").to(device)
            model.train()
            sums: dict[str, float] = {}
            for b in range(steps_per_epoch):
                if stop_event is not None and stop_event.is_set():
                    raise Cancelled(f"{stage} cancelled in epoch {epoch + 1}")
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                batch = tuple(t[idx] for t in train)
                with autocast():
                    out = model.training_loss(batch, epoch)
                loss = out["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(params, config.grad_clip, foreach=True)
                optimizer.step()
                if ema is not None:
                    step = epoch * steps_per_epoch + b
                    decay = min(config.ema_decay, (1 + step) / (10 + step))  # short runs: no stale start
                    with torch.no_grad():
                        torch._foreach_lerp_(ema_params, params, 1 - decay)
                        for e, p in ema_buffers:
                            e.copy_(p)
                for k, v in out.items():  # summed as tensors: no GPU sync per batch
                    sums[k] = sums.get(k, 0.0) + v.detach().float() * idx.shape[0]
            losses = {("train" if k == "loss" else f"train_{k}"): float(v) / n for k, v in sums.items()}
            if not np.isfinite(losses["train"]):
                raise RuntimeError(f"{stage}: the training loss became {losses['train']} in epoch {epoch + 1}; "
                                   "lower the learning rate (config lr)")
            judged = ema if ema is not None else model
            if val is not None:
                judged.eval()
                val_sums: dict[str, float] = {}
                for r in range(config.val_repeats):
                    torch.manual_seed(_seed_for(seed, stage + "/val", r))
                    for k, v in _mean_losses(judged, val, config.batch_size * 4, None, autocast).items():
                        val_sums[k] = val_sums.get(k, 0.0) + v / config.val_repeats
                losses.update({("val" if k == "loss" else f"val_{k}"): v for k, v in val_sums.items()})
            state.epoch = epoch + 1
            criterion = losses.get("val", losses["train"])
            if criterion < state.best_val:
                state.best_val, state.best_epoch, state.bad_epochs = criterion, state.epoch, 0
                state.best = _state_copy(judged)
            else:
                state.bad_epochs += 1
            seconds = time.perf_counter() - t_epoch
            state.history.append({"epoch": state.epoch, "seconds": seconds, **losses})
            if val is not None and state.epoch >= config.min_epochs and state.bad_epochs >= config.patience:
                state.done, state.stopped = True, "early_stopping"
            elif state.epoch >= config.epochs:
                state.done, state.stopped = True, "epochs"
            epochs_run += 1
            elapsed = time.perf_counter() - t_start
            state.model = _state_copy(model)
            state.optimizer = optimizer.state_dict()
            state.ema = _state_copy(ema) if ema is not None else None
            if on_epoch_end is not None:
                on_epoch_end(state)
            emit({"event": "epoch", "stage": stage, "epoch": state.epoch, "n_epochs": config.epochs,
                  "losses": losses, "best_epoch": state.best_epoch, "elapsed_s": elapsed,
                  "eta_s": elapsed / epochs_run * (config.epochs - state.epoch) if not state.done else 0.0})
    if not state.done:  # resumed from a finished state, or zero epochs asked
        state.done, state.stopped = True, state.stopped or "epochs"
    if val is not None and state.best is not None:
        model.load_state_dict(state.best)
    elif ema is not None:
        model.load_state_dict(_state_copy(ema))
    emit({"event": "end", "stage": stage, "epoch": state.epoch, "best_epoch": state.best_epoch,
          "stopped": state.stopped})
    return state


# ---------------------------------------------------------------------------------------------------------------
# The pipeline: PLINK cohort -> panel -> VAE -> latent diffusion -> baselines -> run directory


def _emit(callback: Callback | None, stage: str, message: str) -> None:
    if callback is not None:
        callback({"event": "message", "stage": stage, "message": message})


def _fam_trait_is_empty(samples) -> bool:
    """True when ``.fam`` column 6 is missing for everyone (no trait: the run is trained unconditioned)."""
    from .phenotypes import MISSING_TOKENS, PLINK_MISSING

    def missing(text: str) -> bool:
        t = text.strip().upper()
        if t in MISSING_TOKENS:
            return True
        try:
            return float(t) in (PLINK_MISSING, 0.0)
        except ValueError:
            return False

    return all(missing(str(t)) for t in samples["pheno"])


def _read_trait(samples, pheno_path, pheno_col):
    """(kind, values (n,) float NaN = missing, name, labels)."""
    from .phenotypes import read_phenotype

    if pheno_path is None and pheno_col is None and _fam_trait_is_empty(samples):
        return "none", np.full(len(samples), np.nan), "", []
    p = read_phenotype(samples, pheno_path, pheno_col)
    return p.kind, p.values, p.name, list(p.labels)


def _trait_summary(kind: str, values: np.ndarray, name: str, labels: list[str]) -> dict:
    ok = values[~np.isnan(values)]
    info = {"name": name, "kind": kind, "labels": labels, "n_missing": int(np.isnan(values).sum())}
    if kind in ("binary", "categorical"):
        info["counts"] = np.bincount(ok.astype(np.int64), minlength=len(labels)).tolist()
    elif kind == "quantitative":
        info["mean"], info["sd"] = float(ok.mean()), float(ok.std())
    return info


def _choose_panel(prefix: Path, bim, train_rows: np.ndarray, gwas_path, top, panel_path, callback):
    """The panel as (table with PANEL_COLUMNS, variant indices into the .bim), chosen on training rows only."""
    import warnings as _warnings

    from .io.gwas import align_gwas, read_gwas
    from .io.plink import read_plink
    from .selection import PANEL_COLUMNS, PanelWarning, read_panel, read_snp_list, select_panel

    aligned = None
    if gwas_path is not None:
        aligned = align_gwas(read_gwas(gwas_path), bim)
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always", PanelWarning)
        if panel_path is not None:
            ids = read_snp_list(panel_path)
            table = aligned if aligned is not None else pd.DataFrame(
                {"variant_index": np.zeros(0, np.int64), "beta": np.zeros(0), "p": np.zeros(0)})
            train = read_plink(prefix, samples=train_rows, variants=np.flatnonzero(bim["snp"].isin(ids)))
            panel = select_panel(train, table, snps=ids)
            index = np.flatnonzero(bim["snp"].isin(ids))[panel.variant_index]
            result = panel.table
            if aligned is None:  # keep the effects written in a panel file, when it is one
                try:
                    given = read_panel(panel_path).set_index("SNP")
                    result = result.assign(BETA=given["BETA"].reindex(result["SNP"]).to_numpy(),
                                           P=given["P"].reindex(result["SNP"]).to_numpy())
                except InputError:
                    pass
        else:
            train = read_plink(prefix, samples=train_rows)
            panel = select_panel(train, aligned, top=int(top or 1000))
            index, result = panel.variant_index, panel.table
    for w in caught:
        if not (aligned is None and "no GWAS row" in str(w.message)):
            _emit(callback, "panel", str(w.message))
    return result[PANEL_COLUMNS], np.asarray(index, dtype=np.int64)


def _apply_data_to_config(config, n_snps: int, kind: str, n_classes: int, epochs: int | None):
    import dataclasses

    cfg = copy.deepcopy(config)
    cfg.vae = dataclasses.replace(cfg.vae, n_snps=n_snps, pheno_kind=kind, n_classes=n_classes)
    cfg.denoiser = dataclasses.replace(cfg.denoiser, latent_dim=cfg.vae.latent_dim, cond_kind=kind,
                                       n_classes=n_classes)
    if epochs is not None:
        if int(epochs) != epochs or epochs < 1:
            raise InputError(f"epochs = {epochs} must be a positive whole number", hint="e.g. --epochs 50")
        ratio = cfg.diffusion_fit.epochs / max(cfg.vae_fit.epochs, 1)
        d_epochs = max(1, round(epochs * ratio))
        cfg.vae_fit = dataclasses.replace(cfg.vae_fit, epochs=int(epochs), min_epochs=min(cfg.vae_fit.min_epochs, epochs))
        cfg.diffusion_fit = dataclasses.replace(cfg.diffusion_fit, epochs=d_epochs,
                                                min_epochs=min(cfg.diffusion_fit.min_epochs, d_epochs))
    return cfg


@torch.no_grad()
def encode_all(vae, dosages: np.ndarray, device: torch.device, batch_size: int = 1024):
    """Posterior means and log-variances (n, d) of ``dosages`` (n, m) int8, on the CPU."""
    vae.eval()
    mus, logvars = [], []
    for start in range(0, dosages.shape[0], batch_size):
        mu, logvar = vae.encode(torch.as_tensor(dosages[start:start + batch_size], device=device))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    d = vae.config.latent_dim
    return (torch.cat(mus) if mus else torch.zeros(0, d)), (torch.cat(logvars) if logvars else torch.zeros(0, d))


def train_run(bfile, out_dir, **kwargs) -> Path:
    """Train a SNPgen model on the PLINK cohort ``bfile`` and write the run directory ``out_dir`` (see
    :func:`_train_run` for the arguments). A run that fails (bad input, a numerical error, a full disk) leaves
    ``out_dir`` as it found it, so the same command can be retried; a cancelled or interrupted one keeps its
    checkpoints for ``resume=True``."""
    out = Path(out_dir)
    existed = out.exists()
    fresh = not (out / "config.json").exists()
    try:
        return _train_run(bfile, out_dir, **kwargs)
    except (Cancelled, KeyboardInterrupt):
        raise
    except BaseException:
        if fresh and out.is_dir() and not (out / "run.json").exists():
            if existed:  # it was empty (train_run refuses a folder holding anything else)
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


def _train_run(bfile, out_dir, *, pheno_path=None, pheno_col: str | None = None, gwas_path=None,
              top: int | None = None, panel_path=None, config=None, seed: int = 0, device: str = "auto",
              epochs: int | None = None, callback: Callback | None = None,
              stop_event: threading.Event | None = None, resume: bool = False,
              threads: int | None = None) -> Path:
    """Train a SNPgen model on the PLINK cohort ``bfile`` and write the run directory ``out_dir``.

    Trait: ``pheno_path``/``pheno_col`` (``phenotypes.read_phenotype``), else ``.fam`` column 6 (an all-missing
    column trains an unconditioned model). Panel: ``gwas_path`` + ``top`` (``select_panel`` on the training part),
    or ``panel_path`` (a panel TSV or SNP list). Part ``config.validation`` of the cohort (stratified by trait,
    seeded) is held out for early stopping and recorded in ``split.tsv``; every other individual trains the VAE,
    the diffusion and the baselines. Evaluation holdouts are the caller's own separate cohort: none is carved here.

    ``config``: a ``runs.TrainConfig``, a dict of its sections, a JSON path, or None (defaults). ``epochs`` caps
    the VAE epochs (the diffusion's scale in proportion). ``device``: "auto", "cpu" or "cuda". ``threads``: CPU
    threads (default: the current torch setting, capped at ``default_threads()``). ``resume``: continue an
    unfinished run in ``out_dir`` from its last epoch checkpoint (same inputs required). ``stop_event`` cancels
    between batches: ``Cancelled`` is raised, the last checkpoint stays, ``run.json`` is not written.
    Returns ``out_dir``. See ``runs.py`` for the directory layout.
    """
    from safetensors.torch import save_file

    from . import runs
    from .io.atomic import atomic_path
    from .io.plink import plink_path, plink_prefix, read_bim_fam, read_plink
    from .models.vae import reconstruction_report
    from .selection import read_split, split_samples, trait_strata, write_panel, write_split

    t0 = time.perf_counter()
    out = Path(out_dir)
    prefix = plink_prefix(bfile)
    if (out / "run.json").exists():
        raise InputError("already holds a finished run", path=str(out),
                         hint="choose another --out, or delete the folder to train again")
    resuming = resume and (out / "config.json").exists()
    if out.exists() and any(out.iterdir()) and not resuming:
        hint = ("it holds an unfinished run: add --resume to continue it" if (out / "config.json").exists()
                else "choose a new or empty folder")
        raise InputError("output folder is not empty", path=str(out), hint=hint)
    if not resuming and gwas_path is None and panel_path is None:
        raise InputError("no SNP panel: give GWAS summary statistics and a panel size, or a panel file",
                         hint="--gwas FILE --top 1000, or --snps PANEL.tsv")
    if isinstance(config, (str, os.PathLike)):
        config = runs.read_config(config)
    elif isinstance(config, dict):
        config = runs.TrainConfig.from_dict(config)
    config = config or runs.TrainConfig()
    dev = resolve_device(device)
    cap = threads or min(torch.get_num_threads(), default_threads())
    if torch.get_num_threads() != cap:
        torch.set_num_threads(cap)

    bim, fam = read_bim_fam(prefix)
    inputs = {"bed": plink_path(prefix, ".bed"), "bim": plink_path(prefix, ".bim"),
              "fam": plink_path(prefix, ".fam"), "pheno": pheno_path, "gwas": gwas_path, "panel": panel_path}
    what = {"bed": ".bed", "pheno": "phenotype", "gwas": "GWAS", "panel": "panel"}
    for k, v in inputs.items():
        if v is not None and not Path(v).is_file():
            raise InputError(f"{what.get(k, k)} file not found", path=str(v), hint="check the path")
    hashes = {k: {"path": str(Path(v).resolve()), "sha256": runs.sha256_file(v)}
              for k, v in inputs.items() if v is not None}

    if resuming:
        info = json.loads((out / "config.json").read_text())
        prov = json.loads((out / "provenance.json").read_text())
        for k in ("bed", "bim", "fam", "pheno"):
            old, new = prov["inputs"].get(k), hashes.get(k)
            if (old or {}).get("sha256") != (new or {}).get("sha256"):
                raise InputError(f"the {k} input differs from the one this run started with", path=str(out),
                                 hint="resume with the same --bfile and --pheno, or start a new run")
        cfg = runs.TrainConfig.from_dict(info["train"], str(out / "config.json"))
        trait = info["phenotype"]
        kind, values, _, _ = _read_trait(fam, pheno_path, prov["parameters"].get("pheno_col"))
        split = read_split(out / "split.tsv", fam)
        panel_index = runs.panel_indices(out / "panel.bim", bim)
        _emit(callback, "setup", f"resuming {out}")
    else:
        kind, values, name, labels = _read_trait(fam, pheno_path, pheno_col)
        strata = trait_strata(values, kind) if kind != "none" else None
        split = split_samples(len(fam), strata=strata, holdout=0.0, validation=config.validation, seed=seed)
        table, panel_index = _choose_panel(prefix, bim, split.train, gwas_path, top, panel_path, callback)
        trait = _trait_summary(kind, values[split.train], name, labels)
        cfg = _apply_data_to_config(config, len(panel_index), kind, len(labels), epochs)
        out.mkdir(parents=True, exist_ok=True)
        write_panel(table, out / "panel.tsv")
        runs.write_bim_lines(out / "panel.bim", bim.iloc[panel_index])
        write_split(split, fam, out / "split.tsv")
        params = {"bfile": str(prefix), "pheno_path": None if pheno_path is None else str(pheno_path),
                  "pheno_col": pheno_col, "gwas_path": None if gwas_path is None else str(gwas_path), "top": top,
                  "panel_path": None if panel_path is None else str(panel_path), "epochs": epochs,
                  "device": str(device), "resume": resume}
        runs.write_json(out / "provenance.json", {
            "software": runs.software_versions(), "seed": seed, "device": str(dev), "threads": cap,
            "started": runs.now_utc(), "inputs": hashes, "parameters": params,
            "n_samples": len(fam), "n_train": int(split.train.size), "n_validation": int(split.validation.size),
        })
        runs.write_json(out / "config.json", {"format_version": runs.FORMAT_VERSION, "train": cfg.to_dict(),
                                              "phenotype": trait, "n_snps": len(panel_index)})
    if str(device) == "auto" and dev.type == "cpu":
        _emit(callback, "setup", "no CUDA GPU found: training on the CPU")
    _emit(callback, "setup", f"{len(panel_index)} SNPs, {split.train.size} training and {split.validation.size} "
                             f"validation individuals, trait {trait['name'] or '(none)'} ({kind}), device {dev}")

    dosages = read_plink(prefix, variants=panel_index).dosages
    cond = values.astype(np.float32)
    tr, va = split.train, split.validation
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
        torch.manual_seed(seed)
        models = runs.RunModels.build(cfg, kind, len(trait.get("labels", [])))
    ckpt = out / "checkpoints"

    last_saved = [time.perf_counter()]

    def checkpoint(name):
        def save(state: FitState) -> None:
            # the VAE state (weights, best weights, Adam moments) is ~100 MB at 2,000 SNPs: not every epoch
            if state.done or time.perf_counter() - last_saved[0] >= cfg.checkpoint_seconds:
                runs.save_fit_state(ckpt / f"{name}.safetensors", state)
                last_saved[0] = time.perf_counter()
        return save

    def previous(name):
        p = ckpt / f"{name}.safetensors"
        return runs.load_fit_state(p) if p.exists() else None

    # 1. VAE
    vae = models.vae
    vae.init_from_data(dosages[tr], values[tr])
    as_t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    vae_state = fit(vae, (as_t(dosages[tr], torch.int8), as_t(cond[tr], torch.float32)),
                    (as_t(dosages[va], torch.int8), as_t(cond[va], torch.float32)), cfg.vae_fit, stage="vae",
                    seed=seed, device=dev, callback=callback, stop_event=stop_event,
                    on_epoch_end=checkpoint("vae"), resume=previous("vae"))

    # 2. latent diffusion on the training latents (validation latents for early stopping)
    mu_tr, lv_tr = encode_all(vae, dosages[tr], dev)
    mu_va, lv_va = encode_all(vae, dosages[va], dev)
    diffusion = models.diffusion.to(dev)
    diffusion.set_statistics(mu_tr.to(dev), lv_tr.to(dev), torch.as_tensor(cond[tr], device=dev))
    diff_state = fit(diffusion, (mu_tr, lv_tr, as_t(cond[tr], torch.float32)),
                     (mu_va, lv_va, as_t(cond[va], torch.float32)), cfg.diffusion_fit, stage="diffusion",
                     seed=seed, device=dev, callback=callback, stop_event=stop_event,
                     on_epoch_end=checkpoint("diffusion"), resume=previous("diffusion"))

    # 3. baselines (seconds)
    models.independent.fit(dosages[tr], cond[tr])
    models.latent_gaussian.to(dev).fit(mu_tr.to(dev), lv_tr.to(dev), torch.as_tensor(cond[tr], device=dev))

    # 4. the run directory: weights, history, reconstruction, then run.json (the completeness marker)
    if stop_event is not None and stop_event.is_set():
        raise Cancelled("training cancelled before the run was written")
    recon = reconstruction_report(vae, dosages[va] if va.size else dosages[tr], device=dev)
    with atomic_path(out / "reconstruction.tsv") as tmp:
        recon.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(models.state_tensors(), str(tmp), metadata={"format_version": str(runs.FORMAT_VERSION)})
    runs.write_json(out / "history.json", {
        "vae": vae_state.history, "diffusion": diff_state.history,
        "vae_best_epoch": vae_state.best_epoch, "diffusion_best_epoch": diff_state.best_epoch,
        "vae_stopped": vae_state.stopped, "diffusion_stopped": diff_state.stopped,
    })
    files = runs.RUN_FILES
    runs.write_json(out / "run.json", {
        "format_version": runs.FORMAT_VERSION, "finished": runs.now_utc(),
        "train_seconds": time.perf_counter() - t0,
        "files": {f: runs.sha256_file(out / f) for f in files},
    })
    shutil.rmtree(ckpt, ignore_errors=True)
    _emit(callback, "done", f"run written to {out}")
    return out


train_run.__signature__ = __import__("inspect").signature(_train_run)


def __getattr__(name: str):
    # TrainConfig lives beside the run directory code (runs.py imports this module); offered here too because
    # it is what train_run takes
    if name == "TrainConfig":
        from .runs import TrainConfig

        return TrainConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
