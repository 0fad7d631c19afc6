"""Provenance, the one way every record (run, generation, report, simulation) states what made it: software
versions, a UTC date, file hashes, and JSON writing that encodes numpy values."""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .io.atomic import atomic_path


def software_versions(*modules: str) -> dict:
    """Versions of snpgen, Python, the platform, numpy and the named ``modules`` (import names, e.g. "torch",
    "msprime"; each is imported)."""
    from . import __version__

    out = {"snpgen": __version__, "python": platform.python_version(), "platform": platform.platform(),
           "numpy": np.__version__}
    for name in modules:
        out[name] = getattr(importlib.import_module(name), "__version__", "unknown")
    return out


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_default(value):
    """``json.dumps(default=...)`` for numpy scalars and arrays and paths; anything else is an error."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path: str | os.PathLike):
    """A JSON record as written by :func:`write_json`, or None when it is missing or unreadable (a record that
    cannot be read is reported as absent, never a crash)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_json(path: str | os.PathLike, data) -> None:
    """``data`` as indented JSON (numpy values encoded by :func:`json_default`), written atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=json_default) + "\n")
