"""Provenance helpers shared by every writer of records: file hashes and JSON encoding of numpy values."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


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
