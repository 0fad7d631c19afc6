"""Background training jobs: ``train_run`` in a child process per run, found again after a page reload by its link
secret (``find_job_by_link``; the run id is for this server only).

Training runs in a child process (spawned: safe with CUDA, and no GIL shared with the web server, which must
answer clicks while a run trains). Callback events come back through a queue that a thread of the server copies
into ``job.events``; cancelling sets an inter-process event that ``train_run`` checks between batches. Nothing
here imports streamlit.
"""
from __future__ import annotations

import atexit
import hmac
import logging
import multiprocessing
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

log = logging.getLogger(__name__)

FINISHED_JOB_TTL_S = 3600.0  # a finished job stays re-attachable (and its owner alive) this long
# training processes the whole server runs at once (each takes a core); a session asking for more is told to wait
MAX_TRAINING_JOBS = int(os.environ.get("SNPGEN_MAX_TRAINING_JOBS", max(4, os.cpu_count() or 1)))


@dataclass
class TrainingJob:
    """One background training run (a child process, followed by ``thread``). ``events`` are the training
    callback's dicts in order (see ``training``: start / epoch / end / message); ``state`` is running, done,
    cancelled or failed (then ``error`` is the one line to show)."""

    run_id: str
    run_dir: Path
    owner: object = None  # the app session that started it (a reloaded page re-attaches while it is alive)
    # the secret a ?run= link carries to re-attach this job after a reload: not the run id (which names folders
    # and may reach logs), never logged, compared in constant time
    link: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    pid: int | None = None  # the training process
    stop_event: object = field(default_factory=threading.Event)  # threading or multiprocessing Event
    events: list[dict] = field(default_factory=list)
    state: str = "running"
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    settings: dict = field(default_factory=dict)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def cancel(self) -> None:
        """Ask the training loop to stop at its next check; the job ends as "cancelled"."""
        self.stop_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker ends (tests, scripts); True if it has."""
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.running

    def elapsed(self) -> float:
        """Seconds since the start (until the end, once finished)."""
        return (self.finished or time.time()) - self.started

    def progress(self, stages: tuple = ("vae", "vae_linear", "diffusion")) -> float:
        """Share of the work done, in [0, 1]: each of ``stages`` counts equally, a stage by its epochs out of its
        maximum (early stopping jumps ahead; a stage the run skips, e.g. the second VAE of a fixed decoder latent
        path, is passed over). 1 once finished."""
        if self.state == "done":
            return 1.0
        done = 0.0
        for e in list(self.events):
            if e.get("event") == "epoch" and e.get("stage") in stages and e.get("n_epochs"):
                done = stages.index(e["stage"]) + min(e["epoch"] / e["n_epochs"], 1.0)
            elif e.get("event") == "end" and e.get("stage") in stages:
                done = stages.index(e["stage"]) + 1.0
        return float(min(max(done / len(stages), 0.0), 1.0))

    def loss_table(self) -> pd.DataFrame:
        """Long table of the losses reported so far: columns stage, epoch, loss, value."""
        rows = [
            {"stage": e["stage"], "epoch": e["epoch"], "loss": name, "value": float(v)}
            for e in list(self.events) if e.get("event") == "epoch"
            for name, v in (e.get("losses") or {}).items()
            if v is not None and np.isfinite(v)
        ]
        return pd.DataFrame(rows, columns=["stage", "epoch", "loss", "value"])


_JOBS: dict[str, TrainingJob] = {}
_JOBS_LOCK = threading.Lock()


def find_job(run_id: str | None) -> TrainingJob | None:
    """The job with this run id (any state) if it is still registered; None otherwise."""
    if not run_id:
        return None
    with _JOBS_LOCK:
        _prune_jobs()
        return _JOBS.get(str(run_id))


def find_job_by_link(link: str | None) -> TrainingJob | None:
    """The job whose link secret is ``link`` (the ``?run=`` of a reloaded page); None for anything else, a run id
    included: only the session that started a run, or whoever it gave the secret to, can re-attach it."""
    if not link:
        return None
    with _JOBS_LOCK:
        _prune_jobs()
        jobs = list(_JOBS.values())
    found = None
    for job in jobs:  # every job compared, in constant time: no timing hint of a near miss
        if hmac.compare_digest(job.link.encode(), str(link).encode()):
            found = job
    return found


def stop_all_jobs(timeout: float = 10.0) -> None:
    """Cancel every running job and wait up to ``timeout`` s for each to stop (server shutdown, tests), so no
    training process outlives the server and no half-written run is left behind unnoticed."""
    with _JOBS_LOCK:
        jobs = [j for j in _JOBS.values() if j.running]
    for job in jobs:
        job.cancel()
    for job in jobs:
        job.wait(timeout)


atexit.register(stop_all_jobs)


def _prune_jobs() -> None:
    now = time.time()
    for run_id, job in list(_JOBS.items()):
        if job.finished is not None and now - job.finished > FINISHED_JOB_TTL_S:
            del _JOBS[run_id]


_MP = multiprocessing.get_context("spawn")


def _train_process(bfile: Path, run_dir: Path, kwargs: dict, events, stop) -> None:
    """Child process body: one ``train_run`` call; its outcome is sent as a last ``{"event": "job"}`` message."""
    import torch

    from .pipeline import train_run
    from .training import Cancelled

    torch.set_num_threads(1)  # leave the other cores to the web server and the other sessions
    if hasattr(os, "nice"):
        os.nice(10)  # and yield the CPU to them when they need it: clicks answer first, training waits
    try:
        train_run(bfile, run_dir, callback=events.put, stop_event=stop, **kwargs)
        outcome = {"state": "cancelled" if stop.is_set() else "done"}
    except Cancelled:
        outcome = {"state": "cancelled"}
    except InputError as err:
        outcome = {"state": "failed", "error": str(err)}
    except Exception as err:  # a bug, not bad input: the traceback goes to the server log, one line to the user
        log.exception("training run in %s failed", run_dir)
        outcome = {"state": "failed",
                   "error": f"training failed ({type(err).__name__}: {err}); details are in the server log"}
    events.put({"event": "job", **outcome})


def _follow(job: TrainingJob, process, events) -> None:
    """Server thread: copy the child's events into ``job.events`` until it reports its outcome or dies."""
    import queue

    outcome = None
    while outcome is None:
        try:
            event = events.get(timeout=0.5)
        except queue.Empty:
            if process.is_alive():
                continue
            outcome = {"state": "failed", "error": f"the training process ended unexpectedly (exit code "
                                                   f"{process.exitcode}); details are in the server log"}
            break
        if event.get("event") == "job":
            outcome = event
        else:
            job.events.append(event)
    process.join(timeout=30)
    job.error = outcome.get("error")
    job.finished = time.time()
    job.state = outcome["state"]  # last: readers see a finished job only once everything above is set


_START_LOCK = threading.Lock()


def _start_without_main(process) -> None:
    """Start a spawned process without re-running ``__main__`` in it.

    A spawned child re-executes the parent's ``__main__`` file before it runs its target; in the app that is the
    page script Streamlit last ran (Streamlit puts each script in ``sys.modules["__main__"]``), so every training
    process would run a whole page in bare mode: its imports, and ~16 "missing ScriptRunContext" lines in the server
    log. The child needs nothing from ``__main__`` (its target lives in this module), so while the process starts
    ``__main__`` is a blank module.
    """
    import sys
    import types

    with _START_LOCK:
        main = sys.modules.get("__main__")
        blank = types.ModuleType("__main__")
        sys.modules["__main__"] = blank
        try:
            process.start()
        finally:
            if sys.modules.get("__main__") is blank:  # unless a script run has put its own module there meanwhile
                sys.modules["__main__"] = main


def start_job(bfile: Path, run_dir: Path, run_id: str, kwargs: dict, *, owner: object = None,
              settings: dict | None = None) -> TrainingJob:
    """Start ``pipeline.train_run(bfile, run_dir, **kwargs)`` in a child process and return its job, registered
    under ``run_id`` (so ``find_job`` finds it again) and followed by a server thread. InputError (wait and try
    again) when ``MAX_TRAINING_JOBS`` runs are already training."""
    job = TrainingJob(run_id, Path(run_dir), owner, settings=dict(settings or {}))
    job.stop_event = _MP.Event()
    events = _MP.Queue()
    with _JOBS_LOCK:  # the slot is taken under the lock: two sessions cannot both take the last one
        _prune_jobs()
        busy = sum(j.running for j in _JOBS.values())
        if busy >= MAX_TRAINING_JOBS:
            raise InputError(f"the server is busy: {busy} training runs are using its {MAX_TRAINING_JOBS} "
                             "training slots", hint="wait a minute and start again; your data stay here")
        _JOBS[run_id] = job
    try:
        process = _MP.Process(target=_train_process, args=(bfile, job.run_dir, kwargs, events, job.stop_event),
                              daemon=True, name=f"snpgen-train-{run_id[:8]}")
        _start_without_main(process)
    except BaseException:
        with _JOBS_LOCK:
            _JOBS.pop(run_id, None)
        raise
    job.pid = process.pid
    job.thread = threading.Thread(target=_follow, args=(job, process, events), daemon=True,
                                  name=f"snpgen-follow-{run_id[:8]}")
    job.thread.start()
    return job
