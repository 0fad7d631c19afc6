"""Shared bits of the benchmark scripts: machine description, medians, peak memory, result rows."""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, {datetime.date.today()}"


def median_time(fn, repeats: int = 5) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs, and all the runs."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (VmHWM: unlike ru_maxrss it is not inherited from the
    parent across fork/exec, so a fresh subprocess measures only itself)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def record_row(path: Path, row: dict, key) -> None:
    """Add ``row`` to the ``{"rows": [...]}`` file ``path``, replacing the rows with the same ``key(row)``. The file is
    re-read and written under a lock (``<path>.lock``), and written under a temporary name then renamed, so that
    benchmarks running side by side keep each other's rows."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = json.loads(path.read_text())["rows"] if path.exists() else []
        rows = [r for r in old if key(r) != key(row)] + [row]
        tmp = path.with_name(f"{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
        os.replace(tmp, path)
