"""The app's session workspace: a private temporary folder per browser session, the cohort (uploaded or the demo)
saved there with its recorded split, and what the session has made since (panel, runs, synthetic cohort, report).

Nothing here imports streamlit. The app keeps one ``Workspace`` in ``st.session_state`` (never in a cache shared
between sessions); its folder is deleted by ``cleanup()``: when a new cohort replaces the old one (``data/``),
when the workspace is garbage-collected (its session is gone and no job holds it), when it has been idle for
``IDLE_LIMIT_S`` (``sweep_idle_workspaces``), and at interpreter exit. Every step is one call to the public core
API; this module only decides where files go and remembers what the session has done so far.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .export import safe_name
from .io.plink import plink_path
from .jobs import TrainingJob, start_job

HOLDOUT_FRACTION = 0.2  # uploads: share of individuals kept out of SNP selection and training
PLINK_SUFFIXES = (".bed", ".bim", ".fam")
# Streamlit drops a closed session's state lazily (its session cache expires entries only when touched), so idle
# workspaces are also swept: one unused this long (and not training) is deleted.
IDLE_LIMIT_S = float(os.environ.get("SNPGEN_SESSION_IDLE_S", 2 * 3600))


@dataclass
class Dataset:
    """The cohort a session works on: file paths inside the workspace (or the read-only demo), and its split.

    ``split`` is the recorded train / validation / holdout TSV (FID IID SPLIT); the holdout never takes part in
    SNP selection or training. ``gwas`` is None when no summary statistics were given. ``populations``: a table with
    IID and ``population_col`` (the demo's ``.pheno.tsv`` has POP), read by ``phenotypes.read_labels``.
    """

    name: str
    bfile: Path
    split: Path
    gwas: Path | None = None
    pheno: Path | None = None
    pheno_col: str | None = None
    demo: bool = False
    gwas_columns: dict | None = None  # field -> file column, overriding detection (``io.gwas.read_gwas``)
    populations: Path | None = None  # the individuals' known populations, for the report's population floor
    population_col: str = "POP"


@dataclass
class GwasSource:
    """One GWAS the panel's SNPs can be ranked by: the uploaded file, or one computed here on the training
    individuals (``Workspace.use_gwas``)."""

    path: Path
    columns: dict | None  # field -> file column (``io.gwas.read_gwas``)
    format: str
    aligned: object  # snpgen_core.io.gwas.AlignedGwas
    n_max: int | None  # individuals it was computed on, as its N/NMISS/OBS_CT column states
    on_training: bool  # computed here on the training individuals
    pcs: int = 0  # computed here adjusted for the training individuals' top principal components


@dataclass
class DatasetSummary:
    """What the Data page shows: counts, missingness, the trait and the aligned GWAS.

    ``gwas_format``, ``aligned``, ``gwas_n_max`` and ``gwas_on_training`` describe the GWAS in use, the one named
    ``gwas_source`` in ``gwas_sources`` ("uploaded", "training"); None / False without one."""

    n_samples: int
    n_variants: int
    missing_rate: float  # share of missing calls over the whole matrix
    variant_missing_max: float
    phenotype: object  # snpgen_core.phenotypes.Phenotype
    split_counts: dict[str, int]
    gwas_sources: dict = field(default_factory=dict)  # "uploaded" / "training" -> GwasSource
    gwas_source: str | None = None  # the one in use
    gwas_kept: bool = False  # the uploaded GWAS was chosen over one recomputed on the training individuals
    validation_share: float = 0.1  # of the training individuals, kept out of each run's fitting (early stopping)

    @property
    def validation_per_run(self) -> int:
        """About how many training individuals each run keeps for validation (``TrainConfig.validation``): the app's
        split has none of its own, the run draws them from the training part."""
        return int(round(self.split_counts["train"] * self.validation_share))

    @property
    def _gwas(self) -> GwasSource | None:
        return self.gwas_sources.get(self.gwas_source) if self.gwas_source else None

    @property
    def gwas_format(self) -> str | None:
        return self._gwas.format if self._gwas else None

    @property
    def aligned(self):
        """The GWAS in use aligned to the cohort (``io.gwas.AlignedGwas``), None without one."""
        return self._gwas.aligned if self._gwas else None

    @property
    def gwas_n_max(self) -> int | None:
        return self._gwas.n_max if self._gwas else None

    @property
    def gwas_on_training(self) -> bool:
        return bool(self._gwas and self._gwas.on_training)


@dataclass
class SyntheticCohort:
    """One generated cohort of the session: its files, the settings that made it, its report once evaluated and
    its last export. Several are kept, so that runs and settings can be compared before one is exported."""

    id: str
    run_id: str
    prefix: Path  # PLINK prefix
    generation: dict  # run_id, n, case_fraction, label, value, guidance, seed, model, sample and sampling settings
    report: dict | None = None
    report_dir: Path | None = None
    exported: dict | None = None

    def short_label(self) -> str:
        """A label short enough for a legend or a table cell: number, generator, seed, guidance, run."""
        g = self.generation
        return f"#{self.id[1:]} {SHORT_MODEL_NAMES.get(g['model'], g['model'])} s{g['seed']} g{g['guidance']:g} " \
               f"({self.run_id[:6]})"

    def label(self) -> str:
        """A short name to tell the session's cohorts apart: number, run, generator, seed, guidance, N."""
        g = self.generation
        return (f"#{self.id[1:]} run {self.run_id[:8]}, {MODEL_NAMES.get(g['model'], g['model'])}, "
                f"seed {g['seed']}, guidance {g['guidance']:g}, N {g['n']:,}")


MODEL_NAMES = {"diffusion": "SNPgen latent diffusion", "vae_gaussian": "VAE + Gaussian baseline",
               "independent": "independent-SNP baseline", "wgan": "conditional WGAN-GP",
               "markov": "Markov chain (pair counts)"}
SHORT_MODEL_NAMES = {"diffusion": "diffusion", "vae_gaussian": "VAE+Gaussian", "independent": "independent",
                     "wgan": "WGAN", "markov": "Markov"}
MAX_COHORTS = 8  # synthetic cohorts a session keeps for comparison (the oldest is dropped first)


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
        self.panel_settings: dict = {}  # what the Panel form chose (shown again when the page is reopened)
        self.train_settings: dict = {}  # model settings changed from the declared defaults (dotted names)
        self.jobs: dict[str, TrainingJob] = {}
        self.run_id: str | None = None  # the run Generate uses (a finished one)
        self.training_id: str | None = None  # the run started last (the Train page follows it)
        self._adopted: str | None = None  # the last started run that became the run in use when it finished
        self.cohorts: dict[str, SyntheticCohort] = {}  # every synthetic cohort kept, oldest first
        self.cohort_id: str | None = None  # the one Explore and Export show
        self._cohort_count = 0
        self._lock = threading.Lock()
        self.last_seen = time.time()
        _WORKSPACES.add(self)
        self.cache: dict = {}  # per-session results of slow computations (UMAP, LD), keyed by what they depend on

    # -- the current synthetic cohort (the one Explore and Export show) ----------------------------------------

    @property
    def cohort(self) -> SyntheticCohort | None:
        return self.cohorts.get(self.cohort_id) if self.cohort_id else None

    @property
    def synthetic(self) -> Path | None:
        """PLINK prefix of the current synthetic cohort."""
        return self.cohort.prefix if self.cohort else None

    @property
    def generation(self) -> dict:
        """The settings that produced the current synthetic cohort."""
        return self.cohort.generation if self.cohort else {}

    @property
    def report(self) -> dict | None:
        return self.cohort.report if self.cohort else None

    @property
    def report_dir(self) -> Path | None:
        return self.cohort.report_dir if self.cohort else None

    @property
    def exported(self) -> dict | None:
        """The last export of the current synthetic cohort (see ``export``)."""
        return self.cohort.exported if self.cohort else None

    def use_cohort(self, cohort_id: str) -> SyntheticCohort:
        """Make one of the session's synthetic cohorts the one Explore and Export show."""
        if cohort_id not in self.cohorts:
            raise InputError(f"synthetic cohort {cohort_id} is not in this session", hint="generate one")
        self.cohort_id = cohort_id
        return self.cohorts[cohort_id]

    # -- lifetime --------------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Delete the folder and forget the data now (also done on garbage collection and at exit). Running jobs
        are cancelled."""
        for job in self.jobs.values():
            job.cancel()
        self._finalizer()
        self.dataset = self.summary = self.panel = self.panel_info = self.cohort_id = None
        self.cohorts, self.cache = {}, {}

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
            self.panel, self.panel_info, self.panel_settings = None, None, {}
            shutil.rmtree(self.path / "panel", ignore_errors=True)
        if "run" in drop:
            self.run_id = self.training_id = self._adopted = None
            for run_id in [r for r, j in self.jobs.items() if not j.running]:
                shutil.rmtree(self.jobs.pop(run_id).run_dir, ignore_errors=True)
        if "synthetic" in drop:
            self.cohorts, self.cohort_id = {}, None
            for folder in ("synthetic", "export"):
                shutil.rmtree(self.path / folder, ignore_errors=True)
        if "report" in drop or "synthetic" in drop:
            for cohort in self.cohorts.values():
                cohort.report = cohort.report_dir = None
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
        if Path(f"{bfile}.pheno.tsv").exists():  # simulate writes each person's population there
            dataset.populations = Path(f"{bfile}.pheno.tsv")
        self.summary = summarize(dataset)
        self.dataset = dataset
        return dataset

    def load_upload(self, plink_files, *, gwas=None, pheno=None, pheno_col: str | None = None,
                    gwas_columns: dict | None = None, seed: int = 0, keep_gwas: bool = False, populations=None,
                    population_col: str = "POP") -> Dataset:
        """Save an uploaded cohort into the workspace, check it, and record a seeded split.

        ``plink_files``: (file name, bytes) pairs, exactly one each of .bed/.bim/.fam. ``gwas`` and ``pheno``:
        optional (file name, bytes); ``gwas_columns`` maps GWAS fields (snp, chrom, pos, a1, a2, beta, or, se, p,
        log10p) to the file's column names where detection needs help. ``populations``: optional (file name,
        bytes) of the individuals' known populations (IID and ``population_col``), which the report's population
        floor reads (``evaluation.report._no_copy_floor``). The files are checked in a staging folder
        first, so bad input leaves the previous cohort untouched; errors are InputError with the user's file names
        (not the server's paths).
        The split holds out ``HOLDOUT_FRACTION`` of the individuals, stratified on the trait.

        A GWAS that states it was computed on more individuals than the cohort has outside its holdout (holdout
        individuals may have ranked the SNPs) is replaced by a GWAS of the trait recomputed on the training
        individuals (:meth:`use_gwas`), unless ``keep_gwas`` or the trait cannot be regressed on; the uploaded one
        stays available (``use_gwas("uploaded")``).
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
                dataset.gwas_columns = dict(gwas_columns) if gwas_columns else None
            if pheno is not None:
                dataset.pheno = staging / safe_name(pheno[0], "pheno.tsv")
                dataset.pheno.write_bytes(pheno[1])
                dataset.pheno_col = pheno_col or None
            if populations is not None:
                dataset.populations = staging / safe_name(populations[0], "populations.tsv")
                dataset.populations.write_bytes(populations[1])
                dataset.population_col = population_col
            try:
                from .io.plink import read_fam

                samples = read_fam(plink_path(dataset.bfile, ".fam"))
                trait = read_phenotype(samples, dataset.pheno, dataset.pheno_col)
                if dataset.populations is not None:
                    _population_labels(samples, dataset)
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
        for source in summary.gwas_sources.values():
            source.path = final / source.path.relative_to(staging)
        if self.uploaded_gwas_warning():
            if keep_gwas:
                summary.gwas_kept = True
            elif self.gwas_recomputable:
                self.use_gwas("training")
        return dataset


    def compute_gwas(self, pcs: int = 0):
        """A GWAS of the trait on the training individuals only, the one the panel's SNPs are then ranked by
        (``use_gwas("training", pcs)``): without uploaded summary statistics, or instead of uploaded ones. Returns
        the ``AlignedGwas``."""
        return self.use_gwas("training", pcs)

    @property
    def gwas_recomputable(self) -> bool:
        """Whether a GWAS can be computed here: the trait is case/control or quantitative."""
        from .association import KINDS

        return self.summary is not None and self.summary.phenotype.kind in KINDS

    def use_gwas(self, source: str, pcs: int | None = None):
        """Rank the panel's SNPs by the ``"uploaded"`` GWAS, or by the ``"training"`` one: the trait regressed on
        the training individuals only (``association.gwas_table``: logistic for case/control, linear for
        quantitative, as PLINK 1.9), adjusted for their top ``pcs`` principal components (``pipeline.gwas_covariates``,
        as ``snpgen gwas --pcs``; None: as the one computed before, else none), computed on first use as
        ``data/gwas_train.tsv`` and kept, so the holdout stays independent of SNP selection. Choosing another source
        or adjustment forgets the panel (and what followed it); choosing the uploaded GWAS while the training one can
        be computed is recorded in the model card. Returns the ``AlignedGwas`` in use."""
        from .association import gwas_table, write_gwas_table
        from .io.gwas import align_gwas, read_gwas
        from .io.plink import read_fam
        from .pipeline import gwas_covariates
        from .splits import read_split

        self._need("a cohort", self.dataset is not None, "load one on the Data page")
        sources = self.summary.gwas_sources
        if source not in ("uploaded", "training"):
            raise InputError(f"GWAS source {source!r} unknown. Choose from 'uploaded', 'training'")
        if source == "uploaded" and source not in sources:
            raise InputError("no GWAS was uploaded", hint="upload summary statistics on the Data page")
        computed = sources.get("training")
        pcs = (computed.pcs if computed is not None else 0) if pcs is None else int(pcs)
        stale = source == "training" and (computed is None or computed.pcs != pcs)
        if source == self.summary.gwas_source and not stale:
            return self.summary.aligned
        self._refuse_while_training("change the GWAS")
        if stale:
            trait = self.summary.phenotype
            if not self.gwas_recomputable:
                raise InputError(f"a GWAS needs a case/control or quantitative trait; {trait.name} is {trait.kind}",
                                 hint="upload summary statistics instead")
            train = self.training_genotypes()
            split = read_split(self.dataset.split, read_fam(plink_path(self.dataset.bfile, ".fam")))
            covariates, adjusted = gwas_covariates(train, n_pcs=pcs)
            path = self.path / "data" / "gwas_train.tsv"
            write_gwas_table(gwas_table(train, trait.values[split.train], trait.kind, covariates), path)
            gwas = read_gwas(path)
            sources[source] = GwasSource(path, None, f"{gwas.format}, computed here"
                                         + (f", adjusted for {adjusted}" if adjusted else ""),
                                         align_gwas(gwas, train.variants), gwas.n_samples_max, on_training=True,
                                         pcs=pcs)
        self._reset_from("panel")
        self.summary.gwas_source = source
        self.summary.gwas_kept = source == "uploaded" and self.gwas_recomputable
        self.dataset.gwas, self.dataset.gwas_columns = sources[source].path, sources[source].columns
        return self.summary.aligned

    def uploaded_gwas_warning(self) -> str:
        """The one-line warning about the uploaded GWAS (``io.gwas.panel_provenance``), in use or not: "" when it
        used no more individuals than the cohort has outside its holdout, does not say, or there is none."""
        from .io.gwas import panel_provenance

        uploaded = self.summary.gwas_sources.get("uploaded") if self.summary is not None else None
        if uploaded is None:
            return ""
        return panel_provenance(uploaded.n_max, self._n_not_holdout())["warning"]

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
        self.panel, self.panel_info, self.panel_settings = path, panel, dict(options)
        return panel


    def panel_ld(self, max_cells: int = 1000) -> np.ndarray:
        """LD r² (``ld.ld_r2``, dosage) of the panel SNPs in the training individuals, block-averaged to at most
        ``max_cells`` square (``figures.downsample_square``) and stored as uint8 (r² in steps of 1/255: a 1,000 x
        1,000 map is 1 MB instead of 4 MB of float32); computed once per panel."""
        from .evaluation.figures import downsample_square
        from .ld import ld_r2

        self._need("a SNP panel", self.panel_info is not None, "select one on the Panel page")
        key = ("panel", "ld_r2_uint8", max_cells)
        if key not in self.cache:
            train = self.training_genotypes(variants=self.panel_info.variant_index)
            r2 = downsample_square(ld_r2(train.dosages, estimator="dosage"), max_cells)
            self.cache[key] = np.round(np.nan_to_num(r2, nan=0.0) * 255).astype(np.uint8)
        return self.cache[key]

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
        """Start ``pipeline.train_run`` on the training individuals and the panel (``jobs.start_job``).

        Returns the new job; while one is running, returns that one instead of starting a second (a double click
        or two tabs cannot start two runs on one workspace). The run folder is ``runs/<run_id>``; a reloaded page
        re-attaches through the job's ``link`` secret, never the run id. When ``jobs.MAX_TRAINING_JOBS`` runs are
        already training on the server, InputError asks the user to wait.
        """
        with self._lock:
            running = self.active_job()
            if running is not None:
                return running
            self._need("a SNP panel", self.panel is not None, "select one on the Panel page")
            bfile = self.training_cohort()
            run_id = secrets.token_hex(16)
            kwargs = {"pheno_path": self.dataset.pheno, "pheno_col": self.dataset.pheno_col,
                      "panel_path": self.panel, "config": config, "seed": seed, "device": device,
                      "epochs": epochs}
            job = start_job(bfile, self.path / "runs" / run_id, run_id, kwargs, owner=self,
                            settings={"seed": seed, "epochs": epochs, "device": device, "config": config})
            # the run in use, the synthetic cohorts and their reports stay: the new run becomes the run in use
            # only once it has finished (``current_run``), and a cancelled or failed one never does
            self.jobs[run_id] = job
            self.training_id = run_id
            return job

    def use_run(self, run_id: str) -> TrainingJob:
        """Make a finished run of this session the one Generate uses (the synthetic cohorts made so far stay)."""
        job = self.jobs.get(run_id)
        if job is None:
            raise InputError(f"run {run_id} is not in this session")
        if job.state != "done":
            raise InputError(f"run {run_id[:8]} is {job.state}", hint="choose a finished run")
        self.run_id = run_id
        return job

    def current_run(self) -> TrainingJob | None:
        """The job of the run in use (None before any run has finished). The run started last becomes the run in
        use once it has finished; one that was cancelled or failed leaves the previous run in use."""
        latest = self.jobs.get(self.training_id) if self.training_id else None
        if latest is not None and latest.state == "done" and self._adopted != latest.run_id:
            self.run_id = self._adopted = latest.run_id
        return self.jobs.get(self.run_id) if self.run_id else None

    def latest_run(self) -> TrainingJob | None:
        """The run started last, whatever its state (what the Train page follows)."""
        return self.jobs.get(self.training_id) if self.training_id else None

    def finished_runs(self) -> dict[str, TrainingJob]:
        """The session's finished runs, oldest first."""
        return {r: j for r, j in self.jobs.items() if j.state == "done"}

    def run_label(self, run_id: str) -> str:
        """A run as a person tells it apart: short id, start time, seed, epochs, DP."""
        import datetime

        job = self.jobs[run_id]
        config = job.settings.get("config")
        dp = getattr(getattr(config, "dp", None), "epsilon", 0.0) or 0.0
        epochs = job.settings.get("epochs")
        return (f"{run_id[:8]} ({datetime.datetime.fromtimestamp(job.started):%H:%M:%S}, seed "
                f"{job.settings.get('seed')}" + (f", {epochs} VAE epochs" if epochs else ", default epochs")
                + (f", DP epsilon {dp:g}" if dp else "") + ")")

    # -- generation and evaluation ---------------------------------------------------------------------------

    def generate(self, n: int, *, case_fraction: float | None = None, label: str | None = None,
                 value: float | None = None, guidance: float | None = None, seed: int = 0,
                 model: str | None = None, sample: str = "probabilities", trait_from: str = "genotypes",
                 **sampling) -> Path:
        """Generate ``n`` individuals from the run in use (``generation.generate``; ``model`` None = the one the run
        trained, ``sample`` "probabilities" or "argmax"; ``sampling``: the other ``SamplingOptions`` settings, e.g.
        ``steps``, ``sampler``, ``temperature``) into ``synthetic/<id>/``: a new cohort beside the earlier ones (at
        most ``MAX_COHORTS`` are kept), which becomes the current one."""
        from .generation import generate
        from .provenance import read_json

        job = self.current_run()
        self._need("a finished training run", job is not None and job.state == "done",
                   "train a model on the Train page (or reopen a finished run there)")
        self._cohort_count += 1
        cohort_id = f"c{self._cohort_count}"
        prefix = self.path / "synthetic" / cohort_id / f"synthetic_n{int(n)}_seed{int(seed)}"
        try:
            generate(job.run_dir, n, out_prefix=prefix, case_fraction=case_fraction, label=label, value=value,
                     guidance=guidance, seed=seed, model=model, sample=sample, trait_from=trait_from, **sampling)
        except BaseException:
            shutil.rmtree(prefix.parent, ignore_errors=True)
            raise
        guidance = read_json(prefix.with_name(prefix.name + ".provenance.json"))["guidance"]  # as used: the run's if None
        model = model or self.run_info()["models"][0]
        generation = {"run_id": job.run_id, "n": int(n), "case_fraction": case_fraction, "label": label,
                      "value": value, "guidance": float(guidance), "seed": int(seed), "model": model,
                      "sample": sample, "trait_from": trait_from, **sampling}
        self.cohorts[cohort_id] = SyntheticCohort(cohort_id, job.run_id, prefix, generation)
        self.cohort_id = cohort_id
        while len(self.cohorts) > MAX_COHORTS:
            self.drop_cohort(next(iter(self.cohorts)))
        return prefix

    def drop_cohort(self, cohort_id: str) -> None:
        """Forget one synthetic cohort and delete its files, report and export."""
        cohort = self.cohorts.pop(cohort_id)
        shutil.rmtree(cohort.prefix.parent, ignore_errors=True)
        shutil.rmtree(self.path / "report" / cohort_id, ignore_errors=True)
        self.cache = {k: v for k, v in self.cache.items() if not (k[0] == "synthetic" and k[1] == cohort_id)}
        if self.cohort_id == cohort_id:
            self.cohort_id = next(reversed(self.cohorts), None)

    def _cohort(self, cohort_id: str | None) -> SyntheticCohort:
        cohort = self.cohorts.get(cohort_id) if cohort_id else self.cohort
        self._need("a synthetic cohort", cohort is not None, "generate one on the Generate page")
        return cohort

    def grading_text(self, cohort_id: str | None = None) -> str:
        """One sentence saying what a report grades: the cohort's size, run, generator, seed, guidance and
        condition mix."""
        cohort = self._cohort(cohort_id)
        g = cohort.generation
        if g.get("case_fraction") is not None:
            mix = f"{g['case_fraction']:.0%} cases"
        elif g.get("label") is not None:
            mix = f"everyone {g['label']}"
        elif g.get("value") is not None:
            mix = f"trait value {g['value']:g} for everyone"
        else:
            mix = "the training individuals' trait mix"
        run = self.run_label(cohort.run_id) if cohort.run_id in self.jobs else cohort.run_id[:8]
        return (f"synthetic cohort #{cohort.id[1:]}: {g['n']:,} individuals from run {run}, "
                f"{MODEL_NAMES.get(g['model'], g['model'])} generator, guidance {g['guidance']:g}, seed {g['seed']}, "
                f"{mix}")

    def real_cohorts(self, run_id: str | None = None):
        """(training, holdout) Genotypes at the panel SNPs of run ``run_id`` (default: the current cohort's run,
        else the run in use) and their Phenotypes: what a synthetic cohort is compared with. The holdout never
        took part in SNP selection or training."""
        from .io.plink import read_bim, read_fam, read_plink
        from .phenotypes import read_phenotype
        from .runs import panel_indices
        from .splits import read_split

        run_id = run_id or (self.cohort.run_id if self.cohort else self.run_id)
        job = self.jobs.get(run_id) if run_id else None
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

    def synthetic_cohort(self, cohort_id: str | None = None):
        """A synthetic cohort's Genotypes and Phenotype (the generation's ``.pheno.tsv``); default the current one."""
        from .io.plink import read_plink
        from .phenotypes import decode_trait_as

        cohort = self._cohort(cohort_id)
        synthetic = read_plink(cohort.prefix)
        info = self.run_info(cohort.run_id)["phenotype"]
        if info["kind"] == "none":
            return synthetic, None
        # the generation's own record, decoded with the run's labels (phenotypes.read_phenotype would refuse a
        # cohort generated for one class only, which is a legitimate request here)
        sidecar = pd.read_csv(cohort.prefix.with_name(cohort.prefix.name + ".pheno.tsv"), sep="\t", dtype=str,
                              keep_default_na=False)
        return synthetic, decode_trait_as(sidecar.iloc[:, 2].tolist(), info["name"], info["kind"],
                                          info.get("labels") or [], where=str(cohort.prefix) + ".pheno.tsv")

    def evaluate(self, seed: int = 0, cohort_id: str | None = None, progress=None) -> dict:
        """The evaluation report of a synthetic cohort (default the current one) against the training individuals
        and the real holdout (``evaluation.evaluate``), written to ``report/<cohort id>/`` (report.json,
        plots.json, report.html); computed once per cohort. ``progress(text, share)`` is told each step."""
        from .evaluation import evaluate, write_report
        from .runs import run_summary

        cohort = self._cohort(cohort_id)
        if cohort.report is not None:
            return cohort.report
        say = progress or (lambda text, share: None)
        say("reading the training, holdout and synthetic genotypes", 0.0)
        (train, train_trait), (holdout, holdout_trait) = self.real_cohorts(cohort.run_id)
        synthetic, synthetic_trait = self.synthetic_cohort(cohort.id)
        real = [str(plink_path(self.dataset.bfile, s)) for s in (".bed", ".bim", ".fam")] + [str(self.dataset.split)]
        sources = {"training": real, "holdout": real,
                   "synthetic": [str(p) for p in sorted(cohort.prefix.parent.glob(cohort.prefix.name + ".*"))]}
        model = run_summary(self.jobs[cohort.run_id].run_dir, cohort.generation.get("model") or "diffusion")
        model["cohort"] = self.dataset.name
        populations = None if self.dataset.populations is None else _population_labels(train.samples, self.dataset)
        report = evaluate(train, holdout, synthetic, train_pheno=train_trait, holdout_pheno=holdout_trait,
                          synthetic_pheno=synthetic_trait, seed=seed, device="auto", sources=sources, model=model,
                          progress=lambda text, share: say(text, 0.05 + 0.9 * share), train_populations=populations)
        chosen = self.panel_provenance()  # the report says who chose the SNPs, as the model card does
        report["provenance"]["snp_panel"] = {"training_only": chosen["training_only"], "text": chosen["panel"]}
        report["provenance"]["notes"].append(f"SNP panel: {chosen['panel']}")
        report["provenance"]["graded"] = self.grading_text(cohort.id)
        say("writing report.json and report.html", 0.96)
        write_report(report, self.path / "report" / cohort.id)
        cohort.report, cohort.report_dir = report, self.path / "report" / cohort.id
        say("done", 1.0)
        return report

    def gwas_comparison(self, cohort_id: str | None = None) -> dict | None:
        """The synthetic cohort's own GWAS beside the real one, both computed the same way on the run's panel SNPs
        (``association.gwas_table``: logistic for case/control, linear for a quantitative trait, no covariates):
        ``{"real": table of the training individuals, "synthetic": table, "kind"}``; None when the trait is
        categorical or absent. Cached per cohort."""
        from .association import gwas_table

        cohort = self._cohort(cohort_id)
        key = ("synthetic", cohort.id, "gwas")
        if key not in self.cache:
            (train, train_trait), _ = self.real_cohorts(cohort.run_id)
            synthetic, synthetic_trait = self.synthetic_cohort(cohort.id)
            if train_trait is None or train_trait.kind not in ("binary", "quantitative") or synthetic_trait is None:
                self.cache[key] = None
            elif np.unique(synthetic_trait.values[np.isfinite(synthetic_trait.values)]).size < 2:
                self.cache[key] = None  # one class or one value for everyone: nothing to regress on
            else:
                self.cache[key] = {"real": gwas_table(train, train_trait.values, train_trait.kind),
                                   "synthetic": gwas_table(synthetic, synthetic_trait.values, train_trait.kind),
                                   "kind": train_trait.kind}
        return self.cache[key]

    def ensure_reports(self, progress=None) -> list[SyntheticCohort]:
        """Evaluate every kept cohort that has no report yet (the Compare page); returns the cohorts, oldest
        first. ``progress(text, share)`` names the cohort and the step."""
        todo = [c for c in self.cohorts.values() if c.report is None]
        for i, cohort in enumerate(todo):
            def say(text, share, i=i, cohort=cohort):
                if progress is not None:
                    progress(f"cohort #{cohort.id[1:]} ({i + 1} of {len(todo)}): {text}", (i + share) / len(todo))
            self.evaluate(cohort_id=cohort.id, progress=say)
        return list(self.cohorts.values())

    def comparison(self) -> pd.DataFrame:
        """One row per evaluated synthetic cohort, oldest first: id, label, overall grade, each section's grade and
        the numbers a choice between them turns on (LD ratio = LD r² correlation over the holdout's; AF r;
        detection AUC; membership AUC; DCR share; TSTR over TRTR), for the Compare page."""
        rows = []
        for c in self.cohorts.values():
            if c.report is None:
                continue
            r, grades = c.report, c.report["provenance"].get("grades", {})
            utility = {k: v.get("value") for k, v in (r.get("utility") or {}).items()}
            tstr = next((utility[k] for k in utility if k.startswith("tstr_") and not k.endswith("_gbm")), None)
            trtr = next((utility[k] for k in utility if k.startswith("trtr_") and not k.endswith("_gbm")), None)
            rows.append({"id": c.id, "label": c.short_label(), "overall": r["overall"],
                         **{f"{s} grade": grades.get(s) for s in ("fidelity", "association", "utility", "privacy")},
                         "ld_ratio": _ratio(r, "fidelity", "ld_r"),
                         "af_r": (r["fidelity"].get("allele_frequency_r") or {}).get("value"),
                         "detection_auc": (r["fidelity"].get("detection_auc") or {}).get("value"),
                         "membership_auc": (r["privacy"].get("membership_auc") or {}).get("value"),
                         "dcr_share": (r["privacy"].get("dcr_share") or {}).get("value"),
                         "tstr_ratio": tstr / trtr if tstr is not None and trtr else None})
        return pd.DataFrame(rows, columns=["id", "label", "overall", "fidelity grade", "association grade",
                                           "utility grade", "privacy grade", "ld_ratio", "af_r", "detection_auc",
                                           "membership_auc", "dcr_share", "tstr_ratio"])

    def run_info(self, run_id: str | None = None) -> dict:
        """A run (default the run in use), as the Generate page needs it: ``phenotype`` (name, kind, labels,
        counts / mean, sd), ``n_snps``, ``sampling_steps``, ``sampler`` and ``guidance`` (the diffusion's), ``models`` (the
        generators it holds, its trained one first) (from ``runs.load_run``; read once per run)."""
        from .runs import load_run

        job = self.jobs.get(run_id) if run_id else self.current_run()
        self._need("a finished training run", job is not None and job.state == "done", "train one first")
        key = ("run", "info", job.run_id)
        if key not in self.cache:
            run = load_run(job.run_dir)
            self.cache[key] = {"phenotype": run.phenotype, "n_snps": len(run.variants),
                               "sampling_steps": run.config.diffusion.sampling_steps,
                               "sampler": run.config.diffusion.sampler, "guidance": run.models.diffusion.guidance,
                               "history": run.history(),
                               "models": list(run.models.available)}
        return self.cache[key]

    # -- UMAP views (computed once per cohort and kept in the session) ----------------------------------------

    def umap_individuals(self, seed: int = 0, max_per_cohort: int = 1000, progress=None) -> pd.DataFrame:
        """2-D UMAP of training, holdout and synthetic individuals (at most ``max_per_cohort`` each, seeded
        subsample) of the current cohort: genotypes on the report's training PCA (``evaluation.structure.fit_pca``,
        20 PCs, missing calls at the training mean), then UMAP. Columns x, y, cohort. ``progress(text, share)``."""
        from .evaluation.structure import fit_pca

        cohort = self._cohort(None)
        key = ("synthetic", cohort.id, "umap", seed, max_per_cohort)
        if key not in self.cache:
            say = progress or (lambda text, share: None)
            say("reading the genotypes", 0.0)
            (train, _), (holdout, _) = self.real_cohorts(cohort.run_id)
            synthetic, _ = self.synthetic_cohort(cohort.id)
            rng = np.random.default_rng(seed)
            parts = {name: _subsample(g.dosages, max_per_cohort, rng)
                     for name, g in (("training", train), ("holdout", holdout), ("synthetic", synthetic))}
            say("principal components of the training individuals", 0.1)
            pca = fit_pca(parts["training"], 20, seed=seed)
            if pca is None:
                raise InputError("too few training individuals or polymorphic SNPs for a PCA",
                                 hint="a UMAP needs at least 3 training individuals and 2 polymorphic SNPs")
            say(f"UMAP of {sum(len(v) for v in parts.values()):,} individuals (the first in a server's life "
                "compiles for about 30 s)", 0.2)
            xy = _umap(np.vstack([pca.transform(v) for v in parts.values()]), seed)
            self.cache[key] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                                            "cohort": np.repeat(list(parts), [len(v) for v in parts.values()])})
            say("done", 1.0)
        return self.cache[key]

    def umap_latents(self, seed: int = 0, max_individuals: int = 2000, progress=None) -> pd.DataFrame:
        """2-D UMAP of the VAE latent space of the current cohort's run: posterior means (``pipeline.encode_all``)
        of real training and holdout individuals (seeded subsample of at most ``max_individuals``), with their
        phenotype. Columns x, y, cohort, phenotype (the label, or the value of a quantitative trait); no rows for a
        run without a VAE (model wgan or markov)."""
        from .runs import load_run
        from .pipeline import encode_all

        run_id = self.cohort.run_id if self.cohort else self.run_id
        job = self.jobs.get(run_id) if run_id else None
        self._need("a finished training run", job is not None and job.state == "done", "train one first")
        key = ("run", "latent_umap", job.run_id, seed)
        if key not in self.cache:
            say = progress or (lambda text, share: None)
            say("encoding the real individuals with the VAE", 0.0)
            run = load_run(job.run_dir)
            if "vae" not in run.models.modules():
                self.cache[key] = pd.DataFrame(columns=["x", "y", "cohort", "phenotype"])
                return self.cache[key]
            (train, train_trait), (holdout, holdout_trait) = self.real_cohorts(run_id)
            rng = np.random.default_rng(seed)
            n_each = max_individuals // 2
            rows, labels, cohorts = [], [], []
            for name, g, trait in (("training", train, train_trait), ("holdout", holdout, holdout_trait)):
                idx = np.sort(rng.choice(g.n_samples, min(n_each, g.n_samples), replace=False))
                mu, _ = encode_all(run.models.vae, g.dosages[idx], "cpu")
                rows.append(mu.numpy())
                labels += _trait_labels(trait.subset(idx))
                cohorts += [name] * len(idx)
            say(f"UMAP of the latent space of {len(cohorts):,} real individuals", 0.3)
            xy = _umap(np.vstack(rows), seed)
            self.cache[key] = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "cohort": cohorts, "phenotype": labels})
            say("done", 1.0)
        return self.cache[key]

    # -- export ----------------------------------------------------------------------------------------------

    def export(self, name: str, out_root: str | os.PathLike, confirm_release: str | None = None,
               cohort_id: str | None = None, fmt: str = "bed") -> dict:
        """Export a synthetic cohort (default the current one) with its report and a model card
        (``export.export_cohort``) to ``out_root/<name>/`` and as ``<name>.zip`` in the workspace, the genotypes in
        ``fmt`` (bed, vcf, pgen). Returns (and keeps as the cohort's ``exported``) {"name", "folder", "zip",
        "files", "model_card", "release"}. A cohort
        not graded "pass" needs ``confirm_release`` (the reason, recorded in the model card:
        ``export.release_gate``)."""
        from .export import export_cohort, export_name

        cohort = self._cohort(cohort_id)
        report = self.evaluate(cohort_id=cohort.id)
        info = {"name": self.dataset.name, "demo": self.dataset.demo, "n_samples": self.summary.n_samples,
                "n_variants": self.summary.n_variants}
        zip_path = self.path / "export" / f"{export_name(name)}.zip"
        cohort.exported = export_cohort(cohort.prefix, cohort.report_dir, self.jobs[cohort.run_id].run_dir, out_root,
                                        name, report=report, cohort=info,  # settings: the cohort's provenance
                                        panel=self.panel_provenance(), confirm_release=confirm_release, fmt=fmt,
                                        zip_path=zip_path)
        return cohort.exported

    def panel_provenance(self) -> dict:
        """Which individuals chose the panel's SNPs, as far as it is known (``io.gwas.panel_provenance``): the
        model card's wording, and a ``warning`` line for the Panel page when the GWAS used more individuals than
        the cohort has outside its holdout."""
        from .io.gwas import panel_provenance

        s = self.summary
        return panel_provenance(s.gwas_n_max, self._n_not_holdout(), computed_on_training=s.gwas_on_training,
                                kept=s.gwas_kept)

    def _n_not_holdout(self) -> int:
        s = self.summary
        return s.n_samples - s.split_counts.get("holdout", 0)  # validation individuals are no evaluation holdout

    def _need(self, what: str, ok: bool, hint: str) -> None:
        if not ok:
            raise InputError(f"this step needs {what} first", hint=hint)


def newest_plink_files(files) -> tuple[list, list[str]]:
    """An uploader's files with only the newest of each PLINK suffix kept: re-uploading a corrected trio replaces
    the old one instead of adding to it. ``files`` in upload order (any objects with a ``name``); returns (kept,
    in upload order; names of the older files left out)."""
    newest: dict[str, int] = {}
    for i, f in enumerate(files):
        suffix = Path(f.name).suffix.lower()
        newest[suffix if suffix in PLINK_SUFFIXES else f"#{i}"] = i
    keep = sorted(newest.values())
    return [files[i] for i in keep], [f.name for i, f in enumerate(files) if i not in set(keep)]


SAMPLE_ID_COLUMNS = ("FID", "IID", "#FID", "#IID", "PAT", "MAT", "SEX")


def table_columns(data: bytes, *, traits_only: bool = False) -> list[str]:
    """The column names in the header of an uploaded text table (plain or gzip; ``##`` lines skipped; tabs, commas
    or spaces), for the Data page's pickers; ``traits_only`` leaves out the sample-ID columns of a phenotype file.
    Empty when there is no readable header (the loader then says what is wrong)."""
    import re
    import zlib

    text = data[:1 << 16]
    if data[:2] == b"\x1f\x8b":  # gzip: the first 64 kB unpacked are enough for a header
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:1 << 20], 1 << 16)
        except zlib.error:
            return []
    lines = text.decode("utf-8", errors="replace").splitlines()
    header = next((line for line in lines if line.strip() and not line.startswith("##")), "")
    sep = "\t" if "\t" in header else "," if "," in header else None
    names = [c.strip() for c in (header.split(sep) if sep else re.split(r"\s+", header.strip())) if c.strip()]
    return [c for c in names if not (traits_only and c.upper() in SAMPLE_ID_COLUMNS)]


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
                   dataset.pheno_col, dataset.demo, dataset.gwas_columns, move(dataset.populations),
                   dataset.population_col)


def _population_labels(samples, dataset: Dataset) -> np.ndarray:
    """The known population of each of ``samples`` (None where unknown; ``phenotypes.read_labels``)."""
    from .phenotypes import read_labels

    return read_labels(samples, dataset.populations, dataset.population_col)


def summarize(dataset: Dataset) -> DatasetSummary:
    """Read and check the cohort's files; count individuals, SNPs, missing calls, trait classes; align the GWAS.

    The genotypes are read in blocks of variants, so memory stays bounded on large cohorts.
    """
    from .io.plink import check_bed, read_bim, read_fam, read_plink
    from .phenotypes import read_phenotype
    from .runs import TrainConfig
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
        validation_share=TrainConfig().validation,
    )
    if dataset.gwas is not None:
        from .io.gwas import align_gwas, read_gwas

        table = read_gwas(dataset.gwas, dataset.gwas_columns)
        source = GwasSource(dataset.gwas, dataset.gwas_columns, table.format, align_gwas(table, variants),
                            table.n_samples_max, on_training=False)
        summary.gwas_sources["uploaded"] = source
        summary.gwas_source = "uploaded"
    return summary


def _ratio(report: dict, section: str, metric: str) -> float | None:
    m = (report.get(section) or {}).get(metric) or {}
    value, reference = m.get("value"), m.get("reference")
    return value / reference if value is not None and reference else None


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
