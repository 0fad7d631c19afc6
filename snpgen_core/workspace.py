"""The app's session workspace: a private temporary folder per browser session, the cohort (uploaded or the demo)
saved there with its recorded split, and background training jobs that a reloaded page finds again by run id.

Nothing here imports streamlit. The app keeps one ``Workspace`` in ``st.session_state`` (never in a cache shared
between sessions); its folder is deleted by ``cleanup()``, when the workspace is garbage-collected (the session
ended and no training job holds it), or at interpreter exit. Every step is one call to the public core API; this
module only decides where files go and remembers what the session has done so far.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
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

log = logging.getLogger(__name__)

DEMO_PHENO_COLUMN = "CASE"
HOLDOUT_FRACTION = 0.2  # uploads: share of individuals kept out of SNP selection and training
PLINK_SUFFIXES = (".bed", ".bim", ".fam")
FINISHED_JOB_TTL_S = 3600.0  # a finished job stays re-attachable (and its workspace alive) this long


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
# Training jobs: a worker thread per run, found again by run id after a page reload


@dataclass
class TrainingJob:
    """One background training run. ``events`` are the training callback's dicts, in order
    (``{stage, epoch, n_epochs, losses, eta_s}``); ``state`` is running / done / cancelled / failed."""

    run_id: str
    run_dir: Path
    workspace: "Workspace"
    stop_event: threading.Event = field(default_factory=threading.Event)
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

    def last_event(self) -> dict | None:
        return self.events[-1] if self.events else None

    def progress(self) -> float:
        """Fraction of the planned epochs done over all stages, in [0, 1] (1 once finished)."""
        if self.state == "done":
            return 1.0
        ev = self.last_event()
        if not ev or not ev.get("n_epochs"):
            return 0.0
        stages = list(dict.fromkeys(e.get("stage") for e in self.events))
        total = self.settings.get("n_stages") or len(stages)
        done_before = max(len(stages) - 1, 0)
        frac = (done_before + min(ev.get("epoch", 0) / ev["n_epochs"], 1.0)) / max(total, len(stages))
        return float(min(max(frac, 0.0), 1.0))

    def loss_table(self) -> pd.DataFrame:
        """Long table of the losses reported so far: columns stage, epoch, loss, value."""
        rows = [
            {"stage": e.get("stage"), "epoch": e.get("epoch"), "loss": name, "value": float(v)}
            for e in list(self.events)
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


def _prune_jobs() -> None:
    now = time.time()
    for run_id, job in list(_JOBS.items()):
        if job.finished is not None and now - job.finished > FINISHED_JOB_TTL_S:
            del _JOBS[run_id]


def _run_training(job: TrainingJob, bfile: Path, kwargs: dict) -> None:
    """Worker thread body: one ``train_run`` call; its outcome is recorded on the job, never raised."""
    import torch

    from .training import Cancelled, train_run

    torch.set_num_threads(1)  # leave the other cores to the web server and the other sessions
    try:
        result = train_run(bfile, job.run_dir, callback=job.events.append, stop_event=job.stop_event, **kwargs)
        if result is not None:
            job.run_dir = Path(result)
        job.state = "cancelled" if job.stop_event.is_set() else "done"
    except Cancelled:
        job.state = "cancelled"
    except InputError as err:
        job.error, job.state = str(err), "failed"
    except Exception as err:  # a bug, not bad input: the traceback goes to the server log, one line to the user
        log.exception("training run %s failed", job.run_id)
        job.error, job.state = f"training failed ({type(err).__name__}: {err}); details are in the server log", "failed"
    finally:
        job.finished = time.time()


# ---------------------------------------------------------------------------------------------------------------
# The workspace


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
        self.panel_info = None  # selection.Panel: table, variant_index, qc, clumps, notes
        self.jobs: dict[str, TrainingJob] = {}
        self.run_id: str | None = None  # the run Generate / Explore / Export use
        self.synthetic: Path | None = None  # PLINK prefix of the current synthetic cohort
        self.generation: dict = {}  # the settings that produced it
        self.report: dict | None = None
        self.report_dir: Path | None = None
        self._lock = threading.Lock()
        self.cache: dict = {}  # per-session results of slow computations (UMAP, LD), keyed by what they depend on

    # -- lifetime --------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete the folder now (also done on garbage collection and at exit). Running jobs are cancelled."""
        for job in self.jobs.values():
            job.cancel()
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive

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
            self.synthetic, self.generation = None, {}
            shutil.rmtree(self.path / "synthetic", ignore_errors=True)
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
        if prefix is not None and all(Path(f"{prefix}{s}").exists() for s in (*PLINK_SUFFIXES, ".gwas.tsv", ".split.tsv")):
            bfile = Path(prefix)
            self._reset_from("data")
        else:
            self._reset_from("data")
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
        from .selection import split_samples, write_split

        self._refuse_while_training("load another cohort")
        staging = Path(tempfile.mkdtemp(prefix="upload-", dir=self.path))
        try:
            parts = _plink_parts(plink_files)
            stem = safe_name(Path(parts[".bed"][0]).stem, "cohort")
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

                samples = read_fam(dataset.bfile.with_suffix(".fam"))
                trait = read_phenotype(samples, dataset.pheno, dataset.pheno_col)
                split = split_samples(len(samples), strata=trait.values, holdout=HOLDOUT_FRACTION, seed=seed)
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
        dataset = _moved(dataset, staging, final)
        summary.aligned = summary.aligned  # the aligned table holds no paths
        self.dataset, self.summary = dataset, summary
        return dataset


    # -- panel -----------------------------------------------------------------------------------------------

    def training_genotypes(self, variants=None):
        """The training individuals of the current cohort (all SNPs, or the given variant indices)."""
        from .io.plink import read_fam, read_plink
        from .selection import read_split

        self._need("a cohort", self.dataset is not None, "load one on the Data page")
        split = read_split(self.dataset.split, read_fam(self.dataset.bfile.with_suffix(".fam")))
        return read_plink(self.dataset.bfile, samples=split.train, variants=variants)

    def choose_panel(self, **options):
        """Select the SNP panel on the training individuals only (``selection.select_panel`` with ``options``:
        top, p1, p2, r2, kb, maf, max_missing) and write it to ``panel/panel.tsv``. Returns the ``Panel``."""
        import warnings

        from .selection import PanelWarning, select_panel, write_panel

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
        if not prefix.with_suffix(".bed").exists():
            write_plink(prefix, self.training_genotypes())
        return prefix

    def start_training(self, *, config=None, seed: int = 0, epochs: int | None = None,
                       device: str = "auto") -> TrainingJob:
        """Start ``training.train_run`` on the training individuals and the panel in a worker thread.

        Returns the new job; while one is running, returns that one instead of starting a second (a double click
        or two tabs cannot start two runs on one workspace). The run folder is ``runs/<run_id>``; the run id is
        random (128 bits) because it is what a reloaded page presents to re-attach.
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
            job.thread = threading.Thread(target=_run_training, args=(job, bfile, kwargs), daemon=True,
                                          name=f"snpgen-train-{run_id[:8]}")
            with _JOBS_LOCK:
                _prune_jobs()
                _JOBS[run_id] = job
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
    from .selection import read_split

    variants = read_bim(dataset.bfile.with_suffix(".bim"))
    samples = read_fam(dataset.bfile.with_suffix(".fam"))
    check_bed(dataset.bfile.with_suffix(".bed"), len(samples), len(variants))
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
