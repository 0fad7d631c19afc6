"""The app's session workspace: a private temporary folder per browser session, the cohort (uploaded or the demo)
saved there with its recorded split, and background training jobs (child processes) that a reloaded page finds
again by run id.

Nothing here imports streamlit. The app keeps one ``Workspace`` in ``st.session_state`` (never in a cache shared
between sessions); its folder is deleted by ``cleanup()``: when a new cohort replaces the old one (``data/``),
when the workspace is garbage-collected (its session is gone and no job holds it), when it has been idle for
``IDLE_LIMIT_S`` (``sweep_idle_workspaces``), and at interpreter exit. Every step is one call to the public core
API; this module only decides where files go and remembers what the session has done so far.
"""
from __future__ import annotations

import atexit
import io
import json
import logging
import multiprocessing
import os
import re
import hmac
import secrets
import shutil
import tempfile
import threading
import time
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io.plink import plink_path

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2  # uploads: share of individuals kept out of SNP selection and training
PLINK_SUFFIXES = (".bed", ".bim", ".fam")
FINISHED_JOB_TTL_S = 3600.0  # a finished job stays re-attachable (and its workspace alive) this long
# Streamlit drops a closed session's state lazily (its session cache expires entries only when touched), so idle
# workspaces are also swept: one unused this long (and not training) is deleted.
IDLE_LIMIT_S = float(os.environ.get("SNPGEN_SESSION_IDLE_S", 2 * 3600))
# training processes the whole server runs at once (each takes a core); a session asking for more is told to wait
MAX_TRAINING_JOBS = int(os.environ.get("SNPGEN_MAX_TRAINING_JOBS", max(4, os.cpu_count() or 1)))


def safe_name(name: str, default: str = "file", max_len: int = 80) -> str:
    """A file name safe to write anywhere: the last path component only, characters outside ``[A-Za-z0-9._-]``
    replaced by ``_``, no leading dots or dashes, at most ``max_len`` characters, ``default`` if nothing is left."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".-_")
    base = base[:max_len].rstrip("._-")
    return base or default


@dataclass
class Dataset:
    """The cohort a session works on: file paths inside the workspace (or the read-only demo), and its split.

    ``split`` is the recorded train / validation / holdout TSV (FID IID SPLIT); the holdout never takes part in
    SNP selection or training. ``gwas`` is None when no summary statistics were given.
    """

    name: str
    bfile: Path
    split: Path
    gwas: Path | None = None
    pheno: Path | None = None
    pheno_col: str | None = None
    demo: bool = False


@dataclass
class DatasetSummary:
    """What the Data page shows: counts, missingness, the trait and the aligned GWAS."""

    n_samples: int
    n_variants: int
    missing_rate: float  # share of missing calls over the whole matrix
    variant_missing_max: float
    phenotype: object  # snpgen_core.phenotypes.Phenotype
    split_counts: dict[str, int]
    gwas_format: str | None = None
    aligned: object | None = None  # snpgen_core.io.gwas.AlignedGwas, None without GWAS


# ---------------------------------------------------------------------------------------------------------------
# Training jobs: a child process per run, found again by run id after a page reload


@dataclass
class TrainingJob:
    """One background training run (a child process, followed by ``thread``). ``events`` are the training
    callback's dicts in order (see ``training``: start / epoch / end / message); ``state`` is running, done,
    cancelled or failed (then ``error`` is the one line to show)."""

    run_id: str
    run_dir: Path
    workspace: "Workspace"
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

    def progress(self, stages: tuple = ("vae", "diffusion")) -> float:
        """Share of the work done, in [0, 1]: each of ``stages`` counts equally, a stage by its epochs out of its
        maximum (early stopping jumps ahead). 1 once finished."""
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


# Training runs in a child process (spawned: safe with CUDA, and no GIL shared with the web server, which must
# answer clicks while a run trains). Callback events come back through a queue that a thread of the server
# copies into ``job.events``; cancelling sets an inter-process event that ``train_run`` checks between batches.
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


# ---------------------------------------------------------------------------------------------------------------
# The workspace

_WORKSPACES: "weakref.WeakSet[Workspace]" = weakref.WeakSet()


def sweep_idle_workspaces(idle_limit_s: float = IDLE_LIMIT_S) -> int:
    """Delete every workspace not used for ``idle_limit_s`` seconds that has no running job; returns how many.
    The app calls it on each script run, so a closed browser tab's files do not wait for Streamlit's lazy
    session expiry."""
    now = time.time()
    stale = [ws for ws in list(_WORKSPACES)
             if ws.alive and now - ws.last_seen > idle_limit_s and ws.active_job() is None]
    for ws in stale:
        ws.cleanup()
    return len(stale)


class Workspace:
    """A session's private folder and the state of its workflow (dataset, panel, runs, synthetic cohort, report).

    Layout under ``path``: ``data/`` (uploads or the demo), ``panel/``, ``runs/<run_id>/``, ``synthetic/``,
    ``report/``, ``export/``. Loading a new cohort deletes ``data/`` and everything derived from it.
    """

    def __init__(self, parent: str | os.PathLike | None = None):
        self.path = Path(tempfile.mkdtemp(prefix="snpgen-session-", dir=parent))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)
        self.dataset: Dataset | None = None
        self.summary: DatasetSummary | None = None
        self.panel: Path | None = None
        self.panel_info = None  # panel.Panel: table, variant_index, qc, clumps, notes
        self.jobs: dict[str, TrainingJob] = {}
        self.run_id: str | None = None  # the run Generate / Explore / Export use
        self.synthetic: Path | None = None  # PLINK prefix of the current synthetic cohort
        self.generation: dict = {}  # the settings that produced it
        self.report: dict | None = None
        self.report_dir: Path | None = None
        self.exported: dict | None = None  # the last export of the current synthetic cohort (see export())
        self._lock = threading.Lock()
        self.last_seen = time.time()
        _WORKSPACES.add(self)
        self.cache: dict = {}  # per-session results of slow computations (UMAP, LD), keyed by what they depend on

    # -- lifetime --------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete the folder and forget the data now (also done on garbage collection and at exit). Running jobs
        are cancelled."""
        for job in self.jobs.values():
            job.cancel()
        self._finalizer()
        self.dataset = self.summary = self.panel = self.panel_info = self.synthetic = self.report = None
        self.cache = {}

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

    def touch(self) -> None:
        """Record a use (the idle sweep spares workspaces in use)."""
        self.last_seen = time.time()

    def _reset_from(self, stage: str) -> None:
        """Forget ``stage`` and everything computed after it (data > panel > run > synthetic > report)."""
        order = ["data", "panel", "run", "synthetic", "report"]
        drop = order[order.index(stage):]
        if "data" in drop:
            self.dataset, self.summary = None, None
            shutil.rmtree(self.path / "data", ignore_errors=True)
        if "panel" in drop:
            self.panel, self.panel_info = None, None
            shutil.rmtree(self.path / "panel", ignore_errors=True)
        if "run" in drop:
            self.run_id = None
            for run_id in [r for r, j in self.jobs.items() if not j.running]:
                shutil.rmtree(self.jobs.pop(run_id).run_dir, ignore_errors=True)
        if "synthetic" in drop:
            self.synthetic, self.generation, self.exported = None, {}, None
            for folder in ("synthetic", "export"):
                shutil.rmtree(self.path / folder, ignore_errors=True)
        if "report" in drop or "synthetic" in drop:
            self.report, self.report_dir = None, None
            shutil.rmtree(self.path / "report", ignore_errors=True)
        self.cache = {k: v for k, v in self.cache.items() if k[0] not in drop}

    def active_job(self) -> TrainingJob | None:
        return next((j for j in self.jobs.values() if j.running), None)

    def _refuse_while_training(self, action: str) -> None:
        if self.active_job() is not None:
            raise InputError(f"cannot {action} while a training run is going", hint="wait for it or cancel it first")

    # -- data ------------------------------------------------------------------------------------------------

    def load_demo(self, *, prefix: str | os.PathLike | None = None, n: int = 2000, n_snps: int = 1000,
                  seed: int = 0) -> Dataset:
        """Use the built-in demo cohort: the files at ``prefix`` (written by ``snpgen simulate``) when they are all
        there, otherwise a fresh msprime simulation written into this workspace (a few seconds).

        The demo's trait is the binary ``.fam`` column 6 (CASE); its recorded split keeps a real holdout.
        """
        from .simulate import simulate_cohort, write_cohort

        self._refuse_while_training("load another cohort")
        demo_files = (*PLINK_SUFFIXES, ".gwas.tsv", ".split.tsv")
        self._reset_from("data")
        if prefix is not None and all(Path(f"{prefix}{s}").exists() for s in demo_files):
            bfile = Path(prefix)  # read only: nothing is ever written beside it
        else:
            bfile = self.path / "data" / "demo"
            write_cohort(simulate_cohort(n=n, n_snps=n_snps, seed=seed), bfile)
        dataset = Dataset("demo", bfile, Path(f"{bfile}.split.tsv"), gwas=Path(f"{bfile}.gwas.tsv"), demo=True)
        self.summary = summarize(dataset)
        self.dataset = dataset
        return dataset

    def load_upload(self, plink_files, *, gwas=None, pheno=None, pheno_col: str | None = None,
                    seed: int = 0) -> Dataset:
        """Save an uploaded cohort into the workspace, check it, and record a seeded split.

        ``plink_files``: (file name, bytes) pairs, exactly one each of .bed/.bim/.fam. ``gwas`` and ``pheno``:
        optional (file name, bytes). The files are checked in a staging folder first, so bad input leaves the
        previous cohort untouched; errors are InputError with the user's file names (not the server's paths).
        The split holds out ``HOLDOUT_FRACTION`` of the individuals, stratified on the trait.
        """
        from .phenotypes import read_phenotype
        from .splits import split_samples, trait_strata, write_split

        self._refuse_while_training("load another cohort")
        staging = Path(tempfile.mkdtemp(prefix="upload-", dir=self.path))
        try:
            parts = _plink_parts(plink_files)
            # a dot-free prefix: no tool can mistake part of it for a file suffix
            stem = safe_name(Path(parts[".bed"][0]).stem, "cohort").replace(".", "_")
            for suffix, (_, data) in parts.items():
                (staging / f"{stem}{suffix}").write_bytes(data)
            dataset = Dataset(stem, staging / stem, staging / f"{stem}.split.tsv")
            if gwas is not None:
                dataset.gwas = staging / safe_name(gwas[0], "gwas.tsv")
                dataset.gwas.write_bytes(gwas[1])
            if pheno is not None:
                dataset.pheno = staging / safe_name(pheno[0], "pheno.tsv")
                dataset.pheno.write_bytes(pheno[1])
                dataset.pheno_col = pheno_col or None
            try:
                from .io.plink import read_fam

                samples = read_fam(plink_path(dataset.bfile, ".fam"))
                trait = read_phenotype(samples, dataset.pheno, dataset.pheno_col)
                split = split_samples(len(samples), strata=trait_strata(trait.values, trait.kind),
                                      holdout=HOLDOUT_FRACTION, seed=seed)
                write_split(split, samples, dataset.split)
                summary = summarize(dataset)
            except InputError as err:  # show the user's file names, not the server's temporary folder
                raise InputError(str(err).replace(f"{staging}{os.sep}", "")) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._reset_from("data")
        final = self.path / "data"
        staging.rename(final)
        self.dataset, self.summary = _moved(dataset, staging, final), summary
        return dataset


    def compute_gwas(self):
        """Without uploaded summary statistics: a GWAS of the trait on the training individuals only
        (``association.per_snp_association``: logistic for case/control, linear for quantitative, no covariates),
        written as ``data/gwas_train.tsv`` and aligned like an uploaded one (returned: ``AlignedGwas``). The holdout
        stays independent."""
        from .association import per_snp_association
        from .io.atomic import atomic_path
        from .io.gwas import align_gwas, read_gwas
        from .io.plink import read_fam
        from .splits import read_split

        self._need("a cohort", self.dataset is not None, "load one on the Data page")
        self._refuse_while_training("change the GWAS")
        trait = self.summary.phenotype
        if trait.kind not in ("binary", "quantitative"):
            raise InputError(f"a GWAS needs a case/control or quantitative trait; {trait.name} is {trait.kind}",
                             hint="upload summary statistics instead")
        train = self.training_genotypes()
        split = read_split(self.dataset.split, read_fam(plink_path(self.dataset.bfile, ".fam")))
        result = per_snp_association(train.dosages, trait.values[split.train], trait.kind)
        v = train.variants
        table = pd.DataFrame({"SNP": v["snp"], "CHR": v["chrom"], "BP": v["pos"], "A1": v["a1"], "A2": v["a2"],
                              "BETA": result["beta"], "SE": result["se"], "P": result["p"], "N": result["n"]})
        path = self.path / "data" / "gwas_train.tsv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.6g")
        self._reset_from("panel")
        gwas = read_gwas(path)
        self.summary.aligned, self.summary.gwas_format = align_gwas(gwas, v), f"{gwas.format}, computed here"
        self.dataset.gwas = path
        return self.summary.aligned

    # -- panel -----------------------------------------------------------------------------------------------

    def training_genotypes(self, variants=None):
        """The training individuals of the current cohort (all SNPs, or the given variant indices)."""
        from .io.plink import read_fam, read_plink
        from .splits import read_split

        self._need("a cohort", self.dataset is not None, "load one on the Data page")
        split = read_split(self.dataset.split, read_fam(plink_path(self.dataset.bfile, ".fam")))
        return read_plink(self.dataset.bfile, samples=split.train, variants=variants)

    def choose_panel(self, **options):
        """Select the SNP panel on the training individuals only (``panel.select_panel`` with ``options``:
        top, p1, p2, r2, kb, maf, max_missing) and write it to ``panel/panel.tsv``. Returns the ``Panel``."""
        import warnings

        from .panel import PanelWarning, select_panel, write_panel

        self._refuse_while_training("change the panel")
        self._need("GWAS summary statistics", self.summary is not None and self.summary.aligned is not None,
                   "upload them on the Data page")
        train = self.training_genotypes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PanelWarning)  # the same text is in panel.notes, shown by the page
            panel = select_panel(train, self.summary.aligned, **options)
        self._reset_from("panel")
        path = self.path / "panel" / "panel.tsv"
        write_panel(panel, path)
        self.panel, self.panel_info = path, panel
        return panel


    # -- training --------------------------------------------------------------------------------------------

    def training_cohort(self) -> Path:
        """PLINK prefix of the training individuals only (written once per cohort): what the model learns from,
        so the holdout cannot reach training whatever the training code does with its input."""
        from .io.plink import write_plink

        prefix = self.path / "data" / "train"
        if not plink_path(prefix, ".bed").exists():
            write_plink(prefix, self.training_genotypes())
        return prefix

    def start_training(self, *, config=None, seed: int = 0, epochs: int | None = None,
                       device: str = "auto") -> TrainingJob:
        """Start ``pipeline.train_run`` on the training individuals and the panel in a worker thread.

        Returns the new job; while one is running, returns that one instead of starting a second (a double click
        or two tabs cannot start two runs on one workspace). The run folder is ``runs/<run_id>``; a reloaded page
        re-attaches through the job's ``link`` secret, never the run id. When ``MAX_TRAINING_JOBS`` runs are
        already training on the server, InputError asks the user to wait.
        """
        with self._lock:
            running = self.active_job()
            if running is not None:
                return running
            self._need("a SNP panel", self.panel is not None, "select one on the Panel page")
            bfile = self.training_cohort()
            run_id = secrets.token_hex(16)
            job = TrainingJob(run_id, self.path / "runs" / run_id, self,
                              settings={"seed": seed, "epochs": epochs, "device": device, "config": config})
            kwargs = {"pheno_path": self.dataset.pheno, "pheno_col": self.dataset.pheno_col,
                      "panel_path": self.panel, "config": config, "seed": seed, "device": device,
                      "epochs": epochs}
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
                process = _MP.Process(target=_train_process,
                                      args=(bfile, job.run_dir, kwargs, events, job.stop_event),
                                      daemon=True, name=f"snpgen-train-{run_id[:8]}")
                process.start()
            except BaseException:
                with _JOBS_LOCK:
                    _JOBS.pop(run_id, None)
                raise
            job.pid = process.pid
            job.thread = threading.Thread(target=_follow, args=(job, process, events), daemon=True,
                                          name=f"snpgen-follow-{run_id[:8]}")
            self.jobs[run_id] = job
            self._reset_from("synthetic")
            self.run_id = run_id
            job.thread.start()
            return job

    def use_run(self, run_id: str) -> TrainingJob:
        """Make a finished run of this session the one Generate, Explore and Export use."""
        job = self.jobs.get(run_id)
        if job is None:
            raise InputError(f"run {run_id} is not in this session")
        if job.state != "done":
            raise InputError(f"run {run_id[:8]} is {job.state}", hint="choose a finished run")
        if run_id != self.run_id:
            self._reset_from("synthetic")
            self.run_id = run_id
        return job

    def current_run(self) -> TrainingJob | None:
        """The job of the run in use (None before any training)."""
        return self.jobs.get(self.run_id) if self.run_id else None


    # -- generation and evaluation ---------------------------------------------------------------------------

    def generate(self, n: int, *, case_fraction: float | None = None, label: str | None = None,
                 value: float | None = None, guidance: float | None = None, seed: int = 0,
                 model: str = "diffusion") -> Path:
        """Generate ``n`` individuals from the run in use (``generation.generate``) into ``synthetic/``; the new
        cohort replaces the previous one (and its report)."""
        from .generation import DEFAULT_GUIDANCE, generate

        job = self.current_run()
        self._need("a finished training run", job is not None and job.state == "done",
                   "train a model on the Train page (or reopen a finished run there)")
        self._reset_from("synthetic")
        prefix = self.path / "synthetic" / f"synthetic_n{int(n)}_seed{int(seed)}"
        generate(job.run_dir, n, out_prefix=prefix, case_fraction=case_fraction, label=label, value=value,
                 guidance=DEFAULT_GUIDANCE if guidance is None else guidance, seed=seed, model=model,
                 overwrite=True)  # the new cohort replaces the previous one
        self.synthetic = prefix
        self.generation = {"run_id": job.run_id, "n": int(n), "case_fraction": case_fraction, "label": label,
                           "value": value, "guidance": guidance, "seed": int(seed), "model": model}
        return prefix

    def real_cohorts(self):
        """(training, holdout) Genotypes at the run's panel SNPs and their Phenotypes: what the synthetic cohort
        is compared with. The holdout never took part in SNP selection or training."""
        from .io.plink import read_bim, read_fam, read_plink
        from .phenotypes import read_phenotype
        from .runs import panel_indices
        from .splits import read_split

        job = self.current_run()
        self._need("a finished training run", job is not None and job.state == "done", "train one first")
        key = ("run", "real", job.run_id)
        if key not in self.cache:
            fam = read_fam(plink_path(self.dataset.bfile, ".fam"))
            split = read_split(self.dataset.split, fam)
            cols = panel_indices(job.run_dir / "panel.bim", read_bim(plink_path(self.dataset.bfile, ".bim")))
            trait = read_phenotype(fam, self.dataset.pheno, self.dataset.pheno_col)
            self.cache[key] = tuple(
                (read_plink(self.dataset.bfile, samples=idx, variants=cols), trait.subset(idx))
                for idx in (split.train, split.holdout))
        return self.cache[key]

    def synthetic_cohort(self):
        """The current synthetic Genotypes and their Phenotype (the generation's ``.pheno.tsv``)."""
        from .io.plink import read_plink
        from .phenotypes import Phenotype

        self._need("a synthetic cohort", self.synthetic is not None, "generate one on the Generate page")
        synthetic = read_plink(self.synthetic)
        info = self.run_info()["phenotype"]
        if info["kind"] == "none":
            return synthetic, None
        # the generation's own record, decoded with the run's labels (phenotypes.read_phenotype would refuse a
        # cohort generated for one class only, which is a legitimate request here)
        sidecar = pd.read_csv(self.synthetic.with_name(self.synthetic.name + ".pheno.tsv"), sep="\t", dtype=str,
                              keep_default_na=False)
        text = sidecar.iloc[:, 2].to_numpy()
        missing = np.isin(text, ["NA", ""])
        if info["kind"] == "quantitative":
            values = np.where(missing, np.nan, pd.to_numeric(pd.Series(text).where(~missing), errors="coerce"))
        elif info["kind"] == "binary":
            values = np.where(missing, np.nan, np.where(text == "2", 1.0, 0.0))
        else:
            code = {label: float(k) for k, label in enumerate(info["labels"])}
            values = np.array([np.nan if m else code[t] for t, m in zip(text, missing)])
        return synthetic, Phenotype(info["name"], info["kind"], values, list(info.get("labels") or []))

    def evaluate(self, seed: int = 0) -> dict:
        """The evaluation report of the current synthetic cohort against the training individuals and the real
        holdout (``evaluation.evaluate``), written to ``report/`` (report.json, plots.json, report.html)."""
        from .evaluation import evaluate, write_report

        if self.report is not None:
            return self.report
        (train, train_trait), (holdout, holdout_trait) = self.real_cohorts()
        synthetic, synthetic_trait = self.synthetic_cohort()
        report = evaluate(train, holdout, synthetic, train_pheno=train_trait, holdout_pheno=holdout_trait,
                          synthetic_pheno=synthetic_trait, seed=seed, device="auto")
        write_report(report, self.path / "report")
        self.report, self.report_dir = report, self.path / "report"
        return report


    def run_info(self) -> dict:
        """The run in use, as the Generate page needs it: ``phenotype`` (name, kind, labels, counts / mean, sd),
        ``n_snps``, ``sampling_steps`` (from ``runs.load_run``; read once per run)."""
        from .runs import load_run

        job = self.current_run()
        self._need("a finished training run", job is not None and job.state == "done", "train one first")
        key = ("run", "info", job.run_id)
        if key not in self.cache:
            run = load_run(job.run_dir)
            self.cache[key] = {"phenotype": run.phenotype, "n_snps": len(run.variants),
                               "sampling_steps": run.config.diffusion.sampling_steps, "history": run.history()}
        return self.cache[key]

    # -- UMAP views (computed once per cohort and kept in the session) ----------------------------------------

    def umap_individuals(self, seed: int = 0, max_per_cohort: int = 1000) -> pd.DataFrame:
        """2-D UMAP of training, holdout and synthetic individuals (at most ``max_per_cohort`` each, seeded
        subsample): genotypes on the report's training PCA (``evaluation.structure.fit_pca``, 20 PCs, missing
        calls at the training mean), then UMAP. Columns x, y, cohort."""
        from .evaluation.structure import fit_pca

        key = ("synthetic", "umap", seed, max_per_cohort)
        if key not in self.cache:
            (train, _), (holdout, _) = self.real_cohorts()
            synthetic, _ = self.synthetic_cohort()
            rng = np.random.default_rng(seed)
            parts = {name: _subsample(g.dosages, max_per_cohort, rng)
                     for name, g in (("training", train), ("holdout", holdout), ("synthetic", synthetic))}
            pca = fit_pca(parts["training"], 20, seed=seed)
            if pca is None:
                raise InputError("too few training individuals or polymorphic SNPs for a PCA",
                                 hint="a UMAP needs at least 3 training individuals and 2 polymorphic SNPs")
            xy = _umap(np.vstack([pca.transform(v) for v in parts.values()]), seed)
            self.cache[key] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                                            "cohort": np.repeat(list(parts), [len(v) for v in parts.values()])})
        return self.cache[key]

    def umap_latents(self, seed: int = 0, max_individuals: int = 2000) -> pd.DataFrame:
        """2-D UMAP of the VAE latent space: posterior means (``pipeline.encode_all``) of real training and
        holdout individuals (seeded subsample of at most ``max_individuals``), with their phenotype.
        Columns x, y, cohort, phenotype (the label, or the value of a quantitative trait)."""
        from .runs import load_run
        from .pipeline import encode_all

        job = self.current_run()
        key = ("run", "latent_umap", job.run_id if job else None, seed)
        if key not in self.cache:
            (train, train_trait), (holdout, holdout_trait) = self.real_cohorts()
            run = load_run(job.run_dir)
            rng = np.random.default_rng(seed)
            n_each = max_individuals // 2
            rows, labels, cohorts = [], [], []
            for name, g, trait in (("training", train, train_trait), ("holdout", holdout, holdout_trait)):
                idx = np.sort(rng.choice(g.n_samples, min(n_each, g.n_samples), replace=False))
                mu, _ = encode_all(run.models.vae, g.dosages[idx], "cpu")
                rows.append(mu.numpy())
                labels += _trait_labels(trait.subset(idx))
                cohorts += [name] * len(idx)
            xy = _umap(np.vstack(rows), seed)
            self.cache[key] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "cohort": cohorts, "phenotype": labels})
        return self.cache[key]

    # -- export ----------------------------------------------------------------------------------------------

    def export(self, name: str, out_root: str | os.PathLike) -> dict:
        """Write the synthetic PLINK files (with their .pheno.tsv and .provenance.json), report.html, report.json
        and MODEL_CARD.md to ``out_root/<name>/`` (``name`` sanitised; an existing folder is never overwritten)
        and the same files as ``<name>.zip`` in the workspace. Returns (and keeps as ``exported``) {"name",
        "folder", "zip", "files", "model_card"}."""
        self._need("a synthetic cohort", self.synthetic is not None, "generate one on the Generate page")
        report = self.evaluate()
        name = safe_name(name, "snpgen_synthetic").replace(".", "_")
        folder = Path(out_root) / name
        if folder.exists():
            raise InputError(f"export folder {name} already exists", path=str(Path(out_root)),
                             hint="choose another name")
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=_made(Path(out_root))))
        try:
            files = {}
            for src in sorted(self.synthetic.parent.glob(self.synthetic.name + ".*")):
                files[f"{name}{src.name[len(self.synthetic.name):]}"] = src.read_bytes()
            for what in ("report.html", "report.json"):
                files[what] = (self.report_dir / what).read_bytes()
            files["MODEL_CARD.md"] = self.model_card(name, report).encode()
            for file_name, data in files.items():
                (staging / file_name).write_bytes(data)
            staging.rename(folder)  # the folder appears complete or not at all
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for file_name, data in files.items():
                zf.writestr(f"{name}/{file_name}", data)
        zip_path = _made(self.path / "export") / f"{name}.zip"
        zip_path.write_bytes(buffer.getvalue())
        self.exported = {"name": name, "folder": folder, "zip": zip_path, "files": sorted(files),
                         "model_card": files["MODEL_CARD.md"].decode()}
        return self.exported

    def model_card(self, name: str, report: dict) -> str:
        """A Markdown model card: what the files are, the data and model behind them, how they were generated,
        the report card against the real holdout, and what they may and may not be used for."""
        from . import __version__
        from .evaluation.report import card_markdown

        job = self.current_run()
        info = self.run_info()
        prov = _read_json(job.run_dir / "provenance.json")
        config = _read_json(job.run_dir / "config.json").get("train", {})
        history = info["history"]
        trait = info["phenotype"]
        g = self.generation
        sizes = report["provenance"]["sizes"]
        condition = next((f"{k.replace('_', ' ')} {v}" for k in ("case_fraction", "label", "value")
                          if (v := g.get(k)) is not None), "the training distribution of the trait")
        notes = "".join(f"- {n}\n" for n in report["provenance"].get("notes", []))
        vae, diffusion = config.get("vae", {}), config.get("diffusion", {})
        return f"""# Model card: {name}

Synthetic genotypes made by SNPgen Studio {__version__}. **No row is a real person**; every individual was
sampled from a generative model trained on a real cohort. Overall report-card grade: **{report['overall']}**.

## Files

- `{name}.bed/.bim/.fam`: PLINK 1 binary, {g['n']} synthetic individuals x {info['n_snps']} SNPs; dosages count
  the `.bim` column-5 allele; `.fam` column 6 holds each individual's generated condition (PLINK coding).
- `{name}.pheno.tsv`: the condition of each individual; `{name}.provenance.json`: every generation setting.
- `report.html`, `report.json`: the evaluation report (fidelity, association, utility, privacy).

## Training data

- Cohort `{self.dataset.name}`{' (simulated demo)' if self.dataset.demo else ''}: {self.summary.n_samples} individuals,
  {self.summary.n_variants} SNPs; trait {trait.get('name') or '(none)'} ({trait.get('kind')}).
- The model learnt from {prov.get('n_train')} training individuals (plus {prov.get('n_validation')} for early
  stopping) at a panel of {info['n_snps']} GWAS-selected, LD-clumped SNPs chosen on training individuals only.
- {sizes['holdout']} real **holdout** individuals never trained the model or chose a SNP: the report compares
  with them.

## Model

- SNPgen: a VAE ({vae.get('encoder')} encoder, {vae.get('latent_dim')}-d latent) and a latent diffusion model
  ({diffusion.get('timesteps')} steps, {diffusion.get('prediction')}-prediction, classifier-free guidance),
  conditioned on the trait.
- Epochs: VAE {len(history.get('vae', []))} (best {history.get('vae_best_epoch')}), diffusion
  {len(history.get('diffusion', []))} (best {history.get('diffusion_best_epoch')}); seed {prov.get('seed')};
  device {prov.get('device')}; software {', '.join(f'{k} {v}' for k, v in (prov.get('software') or {}).items())}.

## Generation

- {g['n']} individuals from the `{g.get('model')}` generator, condition: {condition}; guidance
  {g.get('guidance')}; seed {g['seed']}.

## Evaluation against the real holdout

Each row: the synthetic cohort vs training, beside the real holdout vs training computed the same way (what a
perfect generator would score). Critical rows are marked *.

{card_markdown(report)}

{notes}
## Intended use and limits

- For method development, teaching, pipeline testing and sharing where the report card's privacy rows pass.
- Not for clinical decisions or for inferring anything about individuals of the training cohort.
- Only the {info['n_snps']} panel SNPs are modelled; other variants, relatedness and rare variation are not.
- Privacy is measured (distances to closest records, membership inference, kinship), not guaranteed: a model
  that memorises can leak. Do not filter synthetic individuals by their distance to real ones: the filter itself
  leaks (Ganev & De Cristofaro, "ReconSyn").
"""

    def _need(self, what: str, ok: bool, hint: str) -> None:
        if not ok:
            raise InputError(f"this step needs {what} first", hint=hint)


def _plink_parts(files) -> dict[str, tuple[str, bytes]]:
    """The uploaded .bed/.bim/.fam by suffix, or an InputError that says what is wrong with the set."""
    parts: dict[str, tuple[str, bytes]] = {}
    for name, data in files:
        suffix = Path(name).suffix.lower()
        if suffix not in PLINK_SUFFIXES:
            raise InputError(
                "not a PLINK 1 binary file", path=name,
                hint="upload the three files PREFIX.bed, PREFIX.bim and PREFIX.fam; convert VCF or PLINK 2 files "
                     "with plink --make-bed",
            )
        if suffix in parts:
            raise InputError(f"two {suffix} files ({parts[suffix][0]} and {name})", hint="upload one PLINK trio")
        parts[suffix] = (name, data)
    missing = [s for s in PLINK_SUFFIXES if s not in parts]
    if missing:
        raise InputError(f"the PLINK trio is incomplete: {', '.join(missing)} missing",
                         hint="upload the three files PREFIX.bed, PREFIX.bim and PREFIX.fam together")
    return parts


def _moved(dataset: Dataset, old: Path, new: Path) -> Dataset:
    def move(p: Path | None) -> Path | None:
        return None if p is None else new / p.relative_to(old)

    return Dataset(dataset.name, move(dataset.bfile), move(dataset.split), move(dataset.gwas), move(dataset.pheno),
                   dataset.pheno_col, dataset.demo)


def summarize(dataset: Dataset) -> DatasetSummary:
    """Read and check the cohort's files; count individuals, SNPs, missing calls, trait classes; align the GWAS.

    The genotypes are read in blocks of variants, so memory stays bounded on large cohorts.
    """
    from .io.plink import check_bed, read_bim, read_fam, read_plink
    from .phenotypes import read_phenotype
    from .splits import read_split

    variants = read_bim(plink_path(dataset.bfile, ".bim"))
    samples = read_fam(plink_path(dataset.bfile, ".fam"))
    check_bed(plink_path(dataset.bfile, ".bed"), len(samples), len(variants))
    n, m = len(samples), len(variants)
    step = max(1, 50_000_000 // max(n, 1))
    missing = np.empty(m)
    for start in range(0, m, step):
        block = read_plink(dataset.bfile, variants=np.arange(start, min(start + step, m))).dosages
        missing[start:start + block.shape[1]] = (block < 0).mean(axis=0)
    trait = read_phenotype(samples, dataset.pheno, dataset.pheno_col)
    split = read_split(dataset.split, samples)
    summary = DatasetSummary(
        n_samples=n, n_variants=m, missing_rate=float(missing.mean()) if m else 0.0,
        variant_missing_max=float(missing.max()) if m else 0.0, phenotype=trait,
        split_counts={k: int(len(getattr(split, k))) for k in ("train", "validation", "holdout")},
    )
    if dataset.gwas is not None:
        from .io.gwas import align_gwas, read_gwas

        table = read_gwas(dataset.gwas)
        summary.aligned = align_gwas(table, variants)
        summary.gwas_format = table.format
    return summary


def _subsample(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= n else rows[np.sort(rng.choice(len(rows), n, replace=False))]


def _umap(points: np.ndarray, seed: int) -> np.ndarray:
    """2-D UMAP (umap-learn, seeded). numba compiles it on first use (~30 s) into ``NUMBA_CACHE_DIR``."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(private_cache_dir("numba")))
    import umap

    n_neighbors = int(max(2, min(15, len(points) - 1)))
    # 200 optimisation epochs (umap picks 500 below 10,000 points): the same picture here, in half the time
    return umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=0.3, n_epochs=200, n_jobs=1,
                     random_state=seed).fit_transform(points)


def _trait_labels(trait) -> list:
    if trait.kind == "quantitative":
        return [None if np.isnan(v) else float(v) for v in trait.values]
    return ["missing" if np.isnan(v) else trait.labels[int(v)] for v in trait.values]


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def private_cache_dir(name: str) -> Path:
    """``$XDG_CACHE_HOME/snpgen/NAME`` (default ``~/.cache``), created readable by this user only.

    Never a fixed path in the shared temporary folder: numba unpickles its cache index, so a cache another user
    could plant files in would run their code."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "snpgen" / name
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    if base.stat().st_uid != os.getuid():
        raise InputError(f"cache folder {base} belongs to another user", hint="set XDG_CACHE_HOME to your own folder")
    base.chmod(0o700)
    return base
