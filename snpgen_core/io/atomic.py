"""Write files under a temporary name and rename them into place, so no reader ever sees half a file.

Temporary names are ``.NAME.tmp-PID`` (and ``.NAME.scratch-PID`` for ``PlinkWriter``'s scratch matrix, and
``.NAME.tmp-PID.bed`` / ``.bed_temp`` for the ``.bed`` that ``bed_reader`` writes under it): removed
on every exit path that runs Python code (errors, KeyboardInterrupt, SIGTERM through the CLI); one left by a
process killed with SIGKILL is removed by the next writer of the same name once that process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path

from ..errors import InputError

_TEMP = re.compile(r"\.(?:tmp|scratch)-(\d+)(?:\.bed(?:_temp)?)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(path: Path) -> None:
    """Remove temporary files of ``path`` (``.NAME*.tmp-PID[.bed[_temp]]``, ``.NAME*.scratch-PID``) left by dead
    processes."""
    path = Path(path)
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}*"))
    except OSError:
        return
    for p in candidates:
        m = _TEMP.search(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def atomic_paths(*paths):
    """Yield temporary paths beside ``paths``; rename all of them into place if the block succeeds.

    On an exception (or a failed rename) every temporary file is removed; final paths not yet renamed are left
    untouched.
    """
    finals = [Path(p) for p in paths]
    temps = [p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(p)
    try:
        yield temps if len(temps) > 1 else temps[0]
        for t, p in zip(temps, finals):
            os.replace(t, p)
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise


def atomic_path(path):
    """Single-file form of :func:`atomic_paths`."""
    return atomic_paths(path)


@contextlib.contextmanager
def removing_new_folders(path):
    """On an exception in the block, remove the folders on the way to ``path`` that the block created, as long
    as they hold no file (so a failed command leaves no empty output folder behind)."""
    top = Path(path)
    while not top.parent.exists() and top.parent != top.parent.parent:
        top = top.parent
    created = not top.exists()
    try:
        yield
    except BaseException:
        if created and top.is_dir():
            for folder, subfolders, files in os.walk(top, topdown=False):
                if not files and not os.listdir(folder):
                    os.rmdir(folder)
        raise


def check_output_path(path, option: str = "--out", *, need_bytes: int = 0) -> Path:
    """Refuse an output path that cannot be written, before any work: empty, under a file, in a read-only or
    unwritable folder, or (``need_bytes``) on a disk with less free space than that. Returns it as a Path."""
    if path is None or str(path).strip() == "":
        raise InputError(f"{option} is empty", hint=f"give {option} a file or folder name")
    p = Path(path)
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{ancestor} is a file, not a folder", path=str(p),
                         hint=f"choose a {option} inside a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"the folder {ancestor} is not writable", path=str(p),
                         hint=f"choose a {option} in a folder you can write to")
    if need_bytes:
        free = shutil.disk_usage(ancestor).free
        if free < need_bytes:
            raise InputError(f"needs about {_size(need_bytes)} of disk space but {ancestor} has {_size(free)} free",
                             path=str(p), hint="free some space, choose another folder, or write fewer individuals")
    return p


def disk_full_message(err: OSError) -> str | None:
    """One line for an OSError that the user can fix (disk full, read-only or unwritable place), else None."""
    where = f"{err.filename}: " if err.filename else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}the disk is full (free some space or choose another output folder)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{err.strerror} (choose an output folder you can write to)"
    if err.errno in (errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EEXIST):
        return f"{where}{err.strerror} (check the output path)"
    return None


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
