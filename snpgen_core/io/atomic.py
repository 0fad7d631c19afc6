"""Write files under a temporary name and rename them into place, so no reader ever sees half a file."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_paths(*paths):
    """Yield temporary paths beside ``paths``; rename all of them into place if the block succeeds.

    On an exception every temporary file is removed and the final paths are left untouched.
    """
    finals = [Path(p) for p in paths]
    temps = [p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps if len(temps) > 1 else temps[0]
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    for t, p in zip(temps, finals):
        os.replace(t, p)


def atomic_path(path):
    """Single-file form of :func:`atomic_paths`."""
    return atomic_paths(path)
