"""Training: ONE loop for every model (``fit``), knowing nothing of VAEs or diffusion (minGPT's trainer in spirit).

``fit`` takes any ``nn.Module`` with a ``training_loss(batch, epoch) -> {"loss": ..., other components}`` method
and tensors of training and validation data, and runs seeded AdamW epochs with validation-based early stopping,
optional EMA weights, bf16 autocast on CUDA, cancellation between batches, and progress through a callback.
Randomness (shuffling, dropout, noise) is seeded from ``(seed, stage, epoch)`` inside ``torch.random.fork_rng``, so
a resumed run repeats exactly what an uninterrupted one would have done and the caller's global RNG state is left
untouched. The pipeline that calls it (PLINK files -> run directory) is ``pipeline.train_run``.

Callback events (dicts): ``{"event": "start", "stage", "n_epochs"}``, then after each epoch
``{"event": "epoch", "stage", "epoch" (completed, 1-based), "n_epochs", "losses": {"train", "val",
"train_<component>", "val_<component>"}, "best_epoch", "elapsed_s", "eta_s"}``, and ``{"event": "end", "stage",
"epoch", "best_epoch", "stopped": "early_stopping" | "epochs"}``; ``pipeline.train_run`` adds ``{"event":
"message", "stage", "message"}``.

Several processes (``torchrun --nproc-per-node N -m snpgen_core train ...``; ``distributed()`` joins them) train
ONE model through the same loop: every rank holds the training tensors and draws the same permutation, takes its
share ``idx[rank::world]`` of each batch, and the gradients are summed across ranks (each rank's mean loss
weighted by its share of the batch), so a step is the single-process step on the same batch; the epoch's losses
are summed across ranks, and every rank validates the same way, so early stopping agrees. Only rank 0 reports
through the callback and ``on_epoch_end``. Models' ``training_loss`` must be a mean over the batch's individuals.
"""
from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .differential_privacy import DPSGD, private_gradients, secret_generator
from .errors import InputError
from .options import option

Callback = Callable[[dict], None]


class Cancelled(Exception):
    """Raised by ``fit`` (and ``pipeline.train_run``) when the ``stop_event`` is set; the last epoch checkpoint stays."""


# ---------------------------------------------------------------------------------------------------------------
# Threads


def default_threads() -> int:
    """Intra-op CPU threads: the cores this process may use, at most 8 (more rarely helps these small models)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


# ---------------------------------------------------------------------------------------------------------------
# Several processes (torch.distributed)


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def distributed():
    """Join the process group that ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``PORT`` in the environment; NCCL with one GPU per local rank when CUDA is present, else
    gloo on the CPU) for the block, and leave it after. Yields (rank, world size); without those variables it
    does nothing and yields (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        yield world()
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))  # "cuda" now means this rank's GPU
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        yield world()
        dist.barrier()  # leave together: gloo aborts a process whose peer tears the group down under it
    finally:
        dist.destroy_process_group()
        # gloo's worker threads free finished collectives (and the tensors of Python objects they hold) after
        # the caller has moved on; one still doing so when the interpreter finalises cannot take the GIL and
        # aborts the process (SIGABRT after a successful run, about 1 run in 40 here). Let them finish first.
        time.sleep(0.2)


def _all_reduce_gradients(params: list[nn.Parameter]) -> None:
    """Sum the gradients of ``params`` across ranks, in one flat buffer (a missing gradient counts as zero)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(g)
        offset += g.numel()


def _sync_start(model: nn.Module, resume: "FitState | None") -> "FitState | None":
    """Rank 0's weights and resume state on every rank (only rank 0 writes checkpoints)."""
    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, src=0)
    box = [resume]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------------------------------------------------
# The loop


@dataclass
class FitConfig:
    epochs: int = option(100, "maximum epochs", low=1, high=1_000_000)
    batch_size: int = option(128, "individuals per step", low=1, high=1_000_000)
    lr: float = option(1e-3, "learning rate (AdamW)", low=0.0, high=10.0)
    weight_decay: float = option(1e-4, "AdamW weight decay", low=0.0)
    adam_beta1: float = option(0.9, "AdamW first-moment decay (WGAN-GP: 0.5)", low=0.0, high=0.999999)
    adam_beta2: float = option(0.999, "AdamW second-moment decay (WGAN-GP: 0.9)", low=0.0, high=0.999999)
    patience: int = option(10, "epochs without a better validation loss before stopping", low=1)
    min_epochs: int = option(0, "no early stopping before this many epochs", low=0)
    keep_from: int = option(0, "the first epoch whose weights can be kept (at most the last): a validation loss "
                               "that prefers barely trained weights is not trusted before it", low=0)
    ema_decay: float = option(0.0, "> 0: keep an exponential moving average of the weights, validate and keep "
                                   "that", low=0.0, high=1.0)
    grad_clip: float = option(1.0, "max gradient norm (0 = off)", low=0.0)
    val_repeats: int = option(1, "validation passes averaged (noisy losses, e.g. diffusion)", low=1, high=1000)
    check_every: int = option(0, "epochs between memorisation checks (the monitor of fit); 0 = never", low=0)
    check_patience: int = option(2, "consecutive failed checks that stop the training (one can be sampling "
                                    "noise); 0 = checks are recorded and never stop it", low=0)


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
    safe: dict | None = None  # the best weights as of the last memorisation check that passed
    safe_epoch: int = 0
    failed_checks: int = 0  # consecutive


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
        resume: FitState | None = None, monitor: Callable[[nn.Module], dict] | None = None,
        privacy: DPSGD | None = None) -> FitState:
    """Train ``model`` in place on ``train`` (tensors sharing their first dimension) and return the final state.

    Each epoch: shuffle, AdamW steps on batches of ``config.batch_size`` (``model.training_loss(batch, epoch)``,
    bf16 autocast on CUDA), optional EMA update, then the validation loss (``epoch=None``: the model's final
    weighting, e.g. the full KL weight) averaged over ``val_repeats`` fixed-seed passes. The best validation
    weights (EMA ones when ``ema_decay`` > 0) from epoch ``keep_from`` on are loaded into ``model`` at the end;
    early stopping after ``patience`` epochs without improvement (not before ``min_epochs``). Without ``val`` the
    last weights are kept.
    ``on_epoch_end(state)`` is the place to write a checkpoint; pass that state back as ``resume`` to continue.
    Raises ``Cancelled`` when ``stop_event`` is set (checked between batches).

    ``monitor(model) -> {"passed": bool, ...}`` (e.g. ``memorisation.check_memorisation`` on a small sample from
    the model) runs every ``config.check_every`` epochs on the judged weights and is recorded in the history
    under "check". While checks pass, the best weights so far are marked safe; ``check_patience`` failed checks
    in a row stop the training (``stopped = "memorisation"``) and the safe weights are kept (the best ones when
    no check passed yet).

    ``privacy`` (``differential_privacy.DPSGD``): DP-SGD instead of plain steps: Poisson-sampled batches,
    per-individual clipping and Gaussian noise (``differential_privacy.private_gradients``); then every epoch runs
    and the last weights are kept (choosing weights by a validation loss, or by the monitor, would use data
    outside the accounting), and ``grad_clip`` is replaced by the per-individual clipping.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # the rank's GPU under torchrun
    rank, n_ranks = world()
    if n_ranks > 1 and privacy is not None:
        raise InputError("differential privacy (DP-SGD) trains in one process only",
                         hint="run without torchrun, or without --dp-epsilon")
    model.to(device)
    train = [t.to(device) for t in train]
    val = None if val is None or val[0].shape[0] == 0 else [t.to(device) for t in val]
    n = train[0].shape[0]
    if n == 0:
        raise InputError(f"no training samples for stage {stage}")
    if n_ranks > 1 and min(n, config.batch_size) < n_ranks:
        raise InputError(f"{stage}: a batch of {min(n, config.batch_size)} individuals cannot be shared by {n_ranks} "
                         "processes", hint="use fewer processes (torchrun --nproc-per-node) or a larger batch_size")
    if n_ranks > 1:
        resume = _sync_start(model, resume)
        callback = callback if rank == 0 else None
        on_epoch_end = on_epoch_end if rank == 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    # multi-tensor (foreach) updates: per-parameter Python loops dominate small models on the CPU
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(config.adam_beta1, config.adam_beta2), foreach=True)
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
    steps_per_epoch = privacy.steps_per_epoch if privacy is not None else (n + config.batch_size - 1) // config.batch_size
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    # DP-SGD's batches and noise: from a secret seed, never the run's (a known seed would let anyone replay them)
    secret = (None, None) if privacy is None else (secret_generator("cpu"), secret_generator(device))
    with torch.random.fork_rng(devices=fork_devices):
        while not state.done and state.epoch < config.epochs:
            epoch = state.epoch
            t_epoch = time.perf_counter()
            torch.manual_seed(_seed_for(seed, stage, epoch))
            perm = torch.randperm(n, device="cpu").to(device)
            if n_ranks > 1:  # the same permutation everywhere; each rank's own dropout and noise draws
                torch.manual_seed(_seed_for(seed, f"{stage}/rank{rank}", epoch))
            model.train()
            sums: dict[str, float] = {}
            for b in range(steps_per_epoch):
                if stop_event is not None and stop_event.is_set():
                    raise Cancelled(f"{stage} cancelled in epoch {epoch + 1}")
                optimizer.zero_grad(set_to_none=True)
                if privacy is None:
                    idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                    share = idx.shape[0]
                    if n_ranks > 1:  # this rank's part of the batch; its mean loss weighted by its share
                        idx = idx[rank::n_ranks]
                    batch = tuple(t[idx] for t in train)
                    if idx.shape[0]:
                        with autocast():
                            out = model.training_loss(batch, epoch)
                        (out["loss"] * (idx.shape[0] / share)).backward()
                    else:  # a last batch smaller than the world: nothing here, zeros in the sum
                        out = {k: torch.zeros((), device=device) for k in sums}
                    if n_ranks > 1:
                        _all_reduce_gradients(params)
                    if config.grad_clip > 0:
                        nn.utils.clip_grad_norm_(params, config.grad_clip, foreach=True)
                else:  # Poisson sampling: each individual joins this step with probability q
                    idx = torch.nonzero(torch.rand(n, generator=secret[0]) < privacy.sample_rate).squeeze(1)
                    batch = tuple(t[idx.to(device)] for t in train)
                    out = private_gradients(model, batch, epoch, params, privacy, n, autocast, secret[1])
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
            if n_ranks > 1:  # every rank's individuals: the same epoch losses everywhere
                keys = sorted(sums)
                total = torch.stack([torch.as_tensor(sums[k], device=device, dtype=torch.float32) for k in keys])
                dist.all_reduce(total)
                sums = dict(zip(keys, total))
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
            if privacy is not None:  # DP: the last weights, never chosen by a loss
                state.best_val, state.best_epoch, state.best = criterion, state.epoch, None
            elif state.epoch < min(config.keep_from, config.epochs):
                pass  # neither kept nor counted against the patience
            elif criterion < state.best_val:
                state.best_val, state.best_epoch, state.bad_epochs = criterion, state.epoch, 0
                state.best = _state_copy(judged)
            else:
                state.bad_epochs += 1
            entry = {"epoch": state.epoch, **losses}
            failed = False
            if monitor is not None and config.check_every > 0 and state.epoch % config.check_every == 0:
                judged.eval()
                entry["check"] = monitor(judged)
                if entry["check"]["passed"]:
                    state.safe, state.safe_epoch, state.failed_checks = state.best, state.best_epoch, 0
                else:
                    state.failed_checks += 1
                failed = 0 < config.check_patience <= state.failed_checks
            entry["seconds"] = time.perf_counter() - t_epoch
            state.history.append(entry)
            if failed:
                state.done, state.stopped = True, "memorisation"
            elif (val is not None and privacy is None and state.epoch >= config.min_epochs
                  and state.bad_epochs >= config.patience):
                state.done, state.stopped = True, "early_stopping"
            elif state.epoch >= config.epochs:
                state.done, state.stopped = True, "epochs"
            if n_ranks > 1:  # rank 0 decides when to stop (devices may differ in a loss's last bit)
                box = [(state.done, state.stopped)]
                dist.broadcast_object_list(box, src=0)
                state.done, state.stopped = box[0]
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
    if state.stopped == "memorisation" and state.safe is not None:
        state.best, state.best_epoch = state.safe, state.safe_epoch
    if val is not None and state.best is not None:
        model.load_state_dict(state.best)
    elif ema is not None:
        model.load_state_dict(_state_copy(ema))
    emit({"event": "end", "stage": stage, "epoch": state.epoch, "best_epoch": state.best_epoch,
          "stopped": state.stopped})
    return state
