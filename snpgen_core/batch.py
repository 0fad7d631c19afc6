"""Many train -> generate -> evaluate jobs on Ray (``snpgen batch JOBS.toml``): a grid of (trait, panel size,
model, seed), one comparison table.

The job file (TOML; relative paths are relative to it; every node must read the data and write ``--out`` at the
same paths, i.e. a shared file system on a cluster)::

    [data]
    train = "cohort.train"          # PLINK prefix (.bed or .pgen) of the training individuals
    holdout = "cohort.holdout"      # real individuals never used for training: the reference
    pheno = "cohort.pheno.tsv"      # FID IID TRAIT ... (default: .fam column 6, one trait named "fam")
    gwas = { CASE = "case.gwas.tsv" }  # per trait; a trait without one gets a GWAS on the training individuals

    [grid]                          # every combination is one job
    trait = ["CASE"]
    panel_size = [500, 1000]
    model = ["diffusion", "independent"]   # runs.MODELS; default ["diffusion"]
    seed = [0, 1]                   # default [0]

    [job]                           # every key optional
    epochs = 50                     # VAE epochs (snpgen train --epochs)
    config = "train.json"           # training settings (snpgen train --config)
    n = 2000                        # synthetic individuals (default: the holdout's size)
    cpus = 1                        # Ray resources of one task
    gpus = 0                        # > 0: the task trains and evaluates on CUDA

Jobs that share (trait, panel size, seed) share one trained run (``pipeline.train_run`` trains every generator),
so they are one Ray task, declared with ``cpus`` / ``gpus``. A job that fails is recorded with its one-line
error and submitted once more; the other jobs go on. Each job writes ``OUT/jobs/<id>/result.json`` last, so a
re-run skips the jobs that finished and resumes unfinished training runs. ``OUT/results.tsv`` and
``OUT/results.html`` hold the comparison table: one row per job, its grade and each report-card metric.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import socket
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .errors import InputError

SECTIONS = {
    "data": {"train", "holdout", "pheno", "gwas"},
    "grid": {"trait", "panel_size", "model", "seed"},
    "job": {"epochs", "config", "n", "cpus", "gpus"},
}


@dataclass(frozen=True)
class Job:
    """One cell of the grid."""

    trait: str
    panel_size: int
    model: str
    seed: int

    @property
    def id(self) -> str:
        from .export import safe_name

        return safe_name(f"{self.trait}_k{self.panel_size}_{self.model}_s{self.seed}")

    @property
    def run_key(self) -> str:
        """The trained run this job uses (shared by the models of one trait, panel size and seed)."""
        from .export import safe_name

        return safe_name(f"{self.trait}_k{self.panel_size}_s{self.seed}")


@dataclass
class BatchSpec:
    """A job file, checked and with absolute paths."""

    path: Path
    train: Path
    holdout: Path
    pheno: Path | None
    gwas: dict[str, Path]
    traits: list[str]
    panel_sizes: list[int]
    models: list[str]
    seeds: list[int]
    epochs: int | None = None
    config: Path | None = None
    n: int | None = None
    cpus: float = 1
    gpus: float = 0
    sha256: str = field(default="", repr=False)

    def jobs(self) -> list[Job]:
        return [Job(*cell) for cell in itertools.product(self.traits, self.panel_sizes, self.models, self.seeds)]


# ---------------------------------------------------------------------------------------------------------------
# The job file


def _fail(path: Path, message: str, hint: str | None = None):
    raise InputError(message, path=str(path), hint=hint)


def _list(path: Path, section: dict, key: str, kind: type, default=None, low=None) -> list:
    value = section.get(key, default)
    if value is None:
        _fail(path, f"[grid] {key} is missing", f"e.g. {key} = {['CASE'] if kind is str else [1000]}")
    values = value if isinstance(value, list) else [value]
    if not values or any(not isinstance(v, kind) or isinstance(v, bool) for v in values):
        _fail(path, f"[grid] {key} must be a non-empty list of {'texts' if kind is str else 'whole numbers'}, "
                    f"found {value!r}")
    if low is not None and any(v < low for v in values):
        _fail(path, f"[grid] {key} values must be at least {low}, found {value!r}")
    if len(set(values)) != len(values):
        _fail(path, f"[grid] {key} lists a value twice: {value!r}")
    return values


def _file(path: Path, section: str, key: str, value, *, plink: bool = False) -> Path:
    if not isinstance(value, str) or not value.strip():
        _fail(path, f"[{section}] {key} must be a path (text), found {value!r}")
    p = (path.parent / value).resolve()
    if plink:
        from .io.plink import cohort_files

        missing = [f for f in cohort_files(p).values() if not f.is_file()]
        if missing:
            _fail(path, f"[{section}] {key}: {missing[0]} not found", "give the prefix of a .bed/.bim/.fam or "
                                                                      ".pgen/.pvar/.psam set")
    elif not p.is_file():
        _fail(path, f"[{section}] {key}: {p} not found", "paths are relative to the job file")
    return p


def _number(path: Path, section: dict, key: str, kind, low):
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind) or value < low:
        _fail(path, f"[job] {key} must be a number >= {low}, found {value!r}")
    return value


def read_jobs(path: str | os.PathLike) -> BatchSpec:
    """Read and check a job file (see the module docstring). Every problem is an InputError naming the file, the
    section and key, and the fix: unknown sections or keys, missing required fields, wrong types, missing files,
    traits absent from the phenotype file, models not in ``runs.MODELS``."""
    from .runs import MODELS

    path = Path(path)
    if not path.is_file():
        _fail(path, "job file not found", "give a TOML job file (see snpgen batch --help)")
    raw = path.read_bytes()
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        from .errors import not_utf8

        raise not_utf8(path) from None
    except tomllib.TOMLDecodeError as err:
        _fail(path, f"is not valid TOML ({err})", "see snpgen batch --help for the format")
    for name, value in doc.items():
        if name not in SECTIONS:
            _fail(path, f"unknown section [{name}]", f"sections are {', '.join(f'[{s}]' for s in SECTIONS)}")
        if not isinstance(value, dict):
            _fail(path, f"{name} must be a [{name}] section")
        for key in value:
            if key not in SECTIONS[name]:
                _fail(path, f"unknown key {key!r} in [{name}]", f"[{name}] takes {', '.join(sorted(SECTIONS[name]))}")
    data, grid, job = (doc.get(s, {}) for s in SECTIONS)
    for key in ("train", "holdout"):
        if key not in data:
            _fail(path, f"[data] {key} is missing", f'e.g. {key} = "cohort.{key}" (a PLINK prefix)')
    train = _file(path, "data", "train", data["train"], plink=True)
    holdout = _file(path, "data", "holdout", data["holdout"], plink=True)
    pheno = _file(path, "data", "pheno", data["pheno"]) if "pheno" in data else None
    gwas_table = data.get("gwas", {})
    if not isinstance(gwas_table, dict):
        _fail(path, "[data] gwas must be a table of trait = file", 'e.g. gwas = { CASE = "case.gwas.tsv" }')
    traits = _list(path, grid, "trait", str)
    unknown = [t for t in gwas_table if t not in traits]
    if unknown:
        _fail(path, f"[data] gwas names trait {unknown[0]!r}, which [grid] trait does not list")
    gwas = {t: _file(path, "data", f"gwas.{t}", f) for t, f in gwas_table.items()}
    if pheno is None and traits != ["fam"]:
        _fail(path, f"[grid] trait {traits!r} needs [data] pheno", 'without a phenotype file the only trait is "fam" '
                                                                   "(.fam column 6)")
    from .io.plink import read_bim_fam
    from .phenotypes import read_phenotype

    samples = read_bim_fam(train)[1]
    for t in traits:  # a missing or uninformative column: the phenotype reader's own line, named here
        try:
            read_phenotype(samples, pheno, None if pheno is None else t)
        except InputError as err:
            _fail(path, f"[grid] trait {t!r}: {err}")
    models = _list(path, grid, "model", str, default=["diffusion"])
    bad = [m for m in models if m not in MODELS]
    if bad:
        _fail(path, f"[grid] model {bad[0]!r} unknown", f"choose from {', '.join(MODELS)}")
    return BatchSpec(
        path=path.resolve(), train=train, holdout=holdout, pheno=pheno, gwas=gwas, traits=traits,
        panel_sizes=_list(path, grid, "panel_size", int, low=1), models=models,
        seeds=_list(path, grid, "seed", int, default=[0], low=0),
        epochs=_number(path, job, "epochs", int, 1),
        config=_file(path, "job", "config", job["config"]) if "config" in job else None,
        n=_number(path, job, "n", int, 1), cpus=_number(path, job, "cpus", (int, float), 0.01) or 1,
        gpus=_number(path, job, "gpus", (int, float), 0) or 0, sha256=hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------------------------------------------------------
# One Ray task: the jobs of one trained run


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if isinstance(err, InputError) else f"{type(err).__name__}: {text}"


def _gwas_for(spec: BatchSpec, trait: str, out: Path) -> Path:
    """The trait's GWAS: the job file's, else computed on the training individuals once (OUT/gwas/<trait>.tsv)."""
    if trait in spec.gwas:
        return spec.gwas[trait]
    from .association import gwas_table, write_gwas_table
    from .export import safe_name
    from .io.plink import read_plink
    from .phenotypes import read_phenotype

    path = out / "gwas" / f"{safe_name(trait)}.tsv"
    if not path.exists():  # concurrent tasks of one trait may both compute it; the rename keeps it whole
        genotypes = read_plink(spec.train)
        pheno = read_phenotype(genotypes.samples, spec.pheno, None if spec.pheno is None else trait)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_gwas_table(gwas_table(genotypes, pheno.values, pheno.kind), path)
    return path


def _metrics(report: dict) -> dict:
    """Each report-card metric's synthetic value (and its holdout reference) by "section.metric"."""
    from .evaluation.card import card_rows

    rows = card_rows(report)
    return {f"{r.section}.{r.metric}": {"synthetic": r.synthetic, "holdout": r.holdout, "status": r.status}
            for r in rows.itertuples()}


def _evaluate(spec: BatchSpec, job: Job, syn_prefix: Path, run_dir: Path, out: Path, device: str) -> dict:
    from .evaluation import evaluate, write_report
    from .io.plink import read_plink, read_plink_snps
    from .phenotypes import read_phenotype
    from .runs import run_summary

    synthetic = read_plink(syn_prefix)
    ids = synthetic.variants["snp"]
    train, holdout = read_plink_snps(spec.train, ids), read_plink_snps(spec.holdout, ids)  # the panel only
    col = None if spec.pheno is None else job.trait
    report = evaluate(train, holdout, synthetic, train_pheno=read_phenotype(train.samples, spec.pheno, col),
                      holdout_pheno=read_phenotype(holdout.samples, spec.pheno, col), seed=job.seed, device=device,
                      model=run_summary(run_dir, job.model))
    write_report(report, out)
    return report


def run_jobs(spec: BatchSpec, jobs: list[Job], out: str | os.PathLike, attempt: int = 1) -> list[dict]:
    """Train the run the ``jobs`` share (or reuse / resume it), then generate and evaluate each job; write each
    job's ``result.json`` and return the results (status "ok" or "failed" with a one-line error). Runs in a Ray
    worker; callable directly too."""
    import warnings

    from .generation import generate
    from .io.plink import read_bim_fam
    from .pipeline import train_run
    from .provenance import write_json

    out = Path(out)
    device = "cuda" if spec.gpus > 0 else "cpu"
    run_dir = out / "runs" / jobs[0].run_key
    results, t0 = [], time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not (run_dir / "run.json").exists():
                train_run(spec.train, run_dir, pheno_path=spec.pheno,
                          pheno_col=None if spec.pheno is None else jobs[0].trait,
                          gwas_path=_gwas_for(spec, jobs[0].trait, out), top=jobs[0].panel_size, config=spec.config,
                          seed=jobs[0].seed, device=device, epochs=spec.epochs,
                          resume=(run_dir / "config.json").exists(), threads=max(1, int(spec.cpus)))
        trained = None
    except Exception as err:  # noqa: BLE001 -- recorded for every job of this run, then retried by the driver
        trained = _one_line(err)
    n = spec.n or len(read_bim_fam(spec.holdout)[1])
    train_seconds = round(time.perf_counter() - t0, 2)
    for job in jobs:
        folder = out / "jobs" / job.id
        result = {**asdict(job), "job": job.id, "run": str(run_dir), "attempts": attempt, "status": "failed",
                  "train_seconds": train_seconds}
        t_job = time.perf_counter()
        if trained is not None:
            result["error"] = f"training failed: {trained}"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    syn = generate(run_dir, n, out_prefix=folder / "synthetic", model=job.model, seed=job.seed,
                                   device=device, overwrite=True)
                    report = _evaluate(spec, job, syn, run_dir, folder / "report", device)
                result.update(status="ok", grade=report["overall"], metrics=_metrics(report))
            except Exception as err:  # noqa: BLE001 -- one job's failure must not stop the others
                result["error"] = _one_line(err)
        result["seconds"] = round(time.perf_counter() - t_job, 2)
        write_json(folder / "result.json", result)
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------------------------
# The driver


def _check_address(address: str) -> None:
    """One line, before Ray's own long retries, when a ``host:port`` (or ``ray://host:port``) does not answer."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address!r} is not HOST:PORT",
                         hint="e.g. --address 10.0.0.5:6379 (the head node's GCS port), ray://HOST:10001 or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise InputError(f"cannot reach a Ray cluster at {address} ({err.strerror or err})",
                         hint="start one with ray start --head, or check the head node's address and port") from None


def _init_ray(address: str | None, spec: BatchSpec):
    try:
        import ray
    except ImportError:
        raise InputError("snpgen batch needs Ray, which is not installed",
                         hint="pip install 'snpgen-studio[cluster]' (or pip install ray)") from None
    if address is not None:
        _check_address(address)
    package = Path(__file__).resolve().parent  # ship this code to the workers: the same version everywhere
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 runtime_env={"py_modules": [str(package)]}, **({} if address else {"num_cpus": _local_cpus(spec)}))
    except (ConnectionError, RuntimeError, ValueError) as err:  # e.g. --address auto with no cluster running
        where = f"at {address}" if address else "locally"
        raise InputError(f"cannot start or join Ray {where} ({_one_line(err)[:300]})",
                         hint="start one with ray start --head, or check --address") from None
    return ray


def _local_cpus(spec: BatchSpec) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(cores, int(spec.cpus + 0.999))  # one task always fits


def finished(out: Path, job: Job) -> dict | None:
    """A job's result when it finished (status ok), else None."""
    from .provenance import read_json

    result = read_json(out / "jobs" / job.id / "result.json")
    return result if result and result.get("status") == "ok" else None


def run_batch(job_file: str | os.PathLike, out: str | os.PathLike, *, address: str | None = None,
              callback: Callable[[str], None] | None = None) -> dict:
    """Run every job of ``job_file`` on Ray (a local instance, or the cluster at ``address``); finished jobs are
    skipped, failed ones retried once. Writes ``out/results.tsv`` and ``out/results.html``; returns {"results"
    (one dict per job), "tsv", "html", "skipped", "failed"}."""
    spec = read_jobs(job_file)
    out = Path(out).resolve()
    say = callback or (lambda line: None)
    jobs = spec.jobs()
    done = {j.id: r for j in jobs if (r := finished(out, j)) is not None}
    todo = [j for j in jobs if j.id not in done]
    if done:
        say(f"skipping {len(done)} finished job(s): {', '.join(sorted(done))}")
    results = dict(done)
    if todo:
        ray = _init_ray(address, spec)
        try:
            task = ray.remote(run_jobs).options(num_cpus=spec.cpus, num_gpus=spec.gpus, max_retries=0)
            groups: dict[str, list[Job]] = {}
            for j in todo:
                groups.setdefault(j.run_key, []).append(j)
            say(f"{len(todo)} job(s) in {len(groups)} Ray task(s) of {spec.cpus:g} CPU / {spec.gpus:g} GPU each")
            pending = {task.remote(spec, g, str(out), 1): (g, 1) for g in groups.values()}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                group, attempt = pending.pop(ready[0])
                try:
                    got = ray.get(ready[0])
                except Exception as err:  # noqa: BLE001 -- the worker died: every job of the task failed
                    got = [{**asdict(j), "job": j.id, "status": "failed", "attempts": attempt,
                            "error": f"the Ray task failed: {_one_line(err)}"} for j in group]
                for r in got:
                    results[r["job"]] = r
                    say(f"{r['job']}: {r['status']}" + (f" ({r.get('grade')})" if r["status"] == "ok" else
                                                        f" (attempt {attempt}): {r['error']}"))
                again = [j for j in group if results[j.id]["status"] != "ok"]
                if again and attempt == 1:
                    say(f"retrying {len(again)} failed job(s) once: {', '.join(j.id for j in again)}")
                    pending[task.remote(spec, again, str(out), 2)] = (again, 2)
        finally:
            ray.shutdown()
    ordered = [results[j.id] for j in jobs]
    paths = write_results(ordered, out, spec)
    failed = [r["job"] for r in ordered if r["status"] != "ok"]
    return {"results": ordered, **paths, "skipped": sorted(done), "failed": failed}


# ---------------------------------------------------------------------------------------------------------------
# The comparison table


def results_table(results: list[dict]):
    """One row per job: trait, panel_size, model, seed, status, attempts, seconds, grade, then each report-card
    metric's synthetic value ("section.metric") and its holdout reference ("section.metric (holdout)")."""
    import pandas as pd

    rows = []
    for r in results:
        row = {k: r.get(k) for k in ("job", "trait", "panel_size", "model", "seed", "status", "attempts",
                                     "train_seconds", "seconds", "grade")}
        row["error"] = r.get("error", "")
        for name, m in (r.get("metrics") or {}).items():
            row[name] = m["synthetic"]
            row[f"{name} (holdout)"] = m["holdout"]
        rows.append(row)
    return pd.DataFrame(rows)


def write_results(results: list[dict], out: Path, spec: BatchSpec) -> dict:
    """``out/results.tsv`` and a self-contained ``out/results.html`` (atomic)."""
    import html

    from . import __version__
    from .io.atomic import atomic_paths
    from .provenance import now_utc

    table = results_table(results)
    tsv, page = out / "results.tsv", out / "results.html"
    n_ok = int((table["status"] == "ok").sum())
    body = table.to_html(index=False, na_rep="", border=0, classes="results", escape=True)
    text = f"""<!doctype html><html><head><meta charset="utf-8"><title>snpgen batch: {html.escape(spec.path.name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}} table.results{{border-collapse:collapse;font-size:13px}}
table.results td,table.results th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
table.results th{{background:#f3f3f3}}</style></head><body>
<h1>snpgen batch: {html.escape(spec.path.name)}</h1>
<p>{n_ok} of {len(table)} jobs finished. Each metric is the synthetic cohort's value against training; the
"(holdout)" column is a real holdout's value computed the same way (what a perfect generator would score).
Training individuals: {html.escape(str(spec.train))}; holdout: {html.escape(str(spec.holdout))}.</p>
{body}
<p>SNPgen Studio {__version__}, {now_utc()}; job file SHA-256 {spec.sha256}.</p></body></html>
"""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_paths(tsv, page) as (t, p):
        table.to_csv(t, sep="\t", index=False)
        p.write_text(text)
    return {"tsv": tsv, "html": page}
