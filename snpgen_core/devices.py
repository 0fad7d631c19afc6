"""Which torch device to compute on: CUDA when present, the CPU always."""
from __future__ import annotations

import warnings

import torch

from .errors import InputError


def resolve_device(device: str | torch.device = "auto", *, warn: bool = True) -> torch.device:
    """"auto" -> CUDA when available, else the CPU (with a RuntimeWarning when ``warn``); "cuda[:i]" without
    CUDA, or an unknown name -> InputError."""
    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if warn:
            warnings.warn("no CUDA GPU available: running on the CPU", RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {name!r} requested but CUDA is not available on this machine",
                             hint="use --device cpu or --device auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"device {name!r} unknown", hint="choose auto, cpu or cuda")
