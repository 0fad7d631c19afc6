"""The training pipeline: PLINK cohort -> split -> SNP panel -> VAE -> latent diffusion -> baselines -> run directory.

``train_run`` reads as its steps: check the output folder, hash the inputs, start (or resume) the run directory
with its split, panel and config, train each stage with ``training.fit``, then write the weights and ``run.json``.
Progress goes through the same callback as ``fit``, plus ``{"event": "message", "stage", "message"}``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from . import runs
from .devices import resolve_device
from .errors import InputError
from .provenance import now_utc, sha256_file, software_versions, write_json
from .splits import Split, read_split, split_samples, trait_strata, write_split
from .memorisation import MemorisationCheck, release_warning
from .models.generators import (LatentDiffusion, calibrate, calibrate_classes, calibration_summary,
                                class_calibration_summary)
from .models.vae import CLASS_KINDS, LATENT_PATHS, GenotypeVAE
from .training import Callback, Cancelled, FitState, default_threads, fit


def _emit(callback: Callback | None, stage: str, message: str) -> None:
    if callback is not None:
        callback({"event": "message", "stage": stage, "message": message})


# ---------------------------------------------------------------------------------------------------------------
# The trait


def _read_trait(samples, pheno_path, pheno_col):
    """(kind, values (n,) float NaN = missing, name, labels)."""
    from .phenotypes import fam_trait_is_empty, read_phenotype

    if pheno_path is None and pheno_col is None and fam_trait_is_empty(samples):
        return "none", np.full(len(samples), np.nan), "", []
    p = read_phenotype(samples, pheno_path, pheno_col)
    return p.kind, p.values, p.name, list(p.labels)


def _read_covariates(samples, covar_path, covar_names):
    """(covariates (n, c) float NaN = missing, names), or (None, []) without a covariate file."""
    from .phenotypes import read_covariates

    if covar_path is None:
        if covar_names:
            raise InputError("--covar-name needs --covar FILE", hint="give the covariate file, or drop --covar-name")
        return None, []
    return read_covariates(samples, covar_path, list(covar_names) if covar_names else None)


PCA_SNPS = 20_000  # SNPs at most (a seeded subset) behind the principal components a GWAS is adjusted for
PCS_HELP = ("the top principal components of the same individuals' genotypes to adjust for as covariates, for "
            "ancestry (default 0, as PLINK; 10 is usual for genome-wide SNPs of several ancestries, while the PCs of "
            "one gene region mostly follow its haplotypes, not ancestry)")


def gwas_covariates(genotypes, covar_path=None, covar_names=None, n_pcs: int = 0, seed: int = 0):
    """The covariates of a GWAS of ``genotypes``' individuals: the columns of ``covar_path`` (``covar_names``, default
    all) and their top ``n_pcs`` principal components (standardised dosages of at most ``PCA_SNPS`` SNPs, a seeded
    subset), the ancestry adjustment of PLINK's ``--pca`` then ``--covar``. Returns (an (n, c) array or None, what
    it holds in words, e.g. "10 PCs and 2 covariates", or "")."""
    if n_pcs < 0:
        raise InputError(f"principal components to adjust for: {n_pcs}; give 0 or more")
    covariates, names = _read_covariates(genotypes.samples, covar_path, covar_names)
    columns = [] if covariates is None else [covariates]
    if n_pcs > 0:
        from .evaluation.structure import fit_pca

        m = genotypes.n_variants
        x = genotypes.dosages[:, np.sort(np.random.default_rng(seed).choice(m, min(m, PCA_SNPS), replace=False))]
        pca = fit_pca(x, n_pcs, seed=seed)
        if pca is None:
            raise InputError(f"--pcs {n_pcs}: no principal components from {genotypes.n_samples} individuals and "
                             f"{m} SNPs", hint="give more individuals or polymorphic SNPs, or drop --pcs")
        columns.append(pca.transform(x))
    what = [f"{columns[-1].shape[1]} PCs"] if n_pcs > 0 else []
    what += [f"{len(names)} covariate{'s' * (len(names) != 1)}"] if names else []
    return (np.column_stack(columns) if columns else None), " and ".join(what)


def _trait_summary(kind: str, values: np.ndarray, name: str, labels: list[str]) -> dict:
    ok = values[~np.isnan(values)]
    info = {"name": name, "kind": kind, "labels": labels, "n_missing": int(np.isnan(values).sum())}
    if kind in ("binary", "categorical"):
        info["counts"] = np.bincount(ok.astype(np.int64), minlength=len(labels)).tolist()
    elif kind == "quantitative":
        info["mean"], info["sd"] = float(ok.mean()), float(ok.std())
    return info


# ---------------------------------------------------------------------------------------------------------------
# The panel and the config


def recompute_gwas(genotypes, kind: str, values: np.ndarray, *, gwas_path, n_gwas: int, n_outside: int, path,
                   shown_as: str | None = None, trait_name: str | None = None):
    """The default for a GWAS computed on ``n_gwas`` individuals, more than the ``n_outside`` outside the holdout
    (holdout individuals may have ranked the SNPs): the trait's GWAS on the training ``genotypes`` (trait ``kind``
    and ``values`` of those rows; ``association.gwas_table``, as ``snpgen gwas``), written to ``path``. Returns
    (the table, the GWAS read back from ``path``, the one-line warning that says so). A trait that cannot be
    regressed (categorical, none) is an InputError naming the way out (``--keep-gwas``)."""
    from .association import KINDS, gwas_table, write_gwas_table
    from .io.gwas import read_gwas

    given = Path(gwas_path).name
    if kind not in KINDS:
        what = "for a trait that is absent" if kind == "none" else (
            f"with a {kind} trait" + (f" ({trait_name})" if trait_name else ""))
        raise InputError(f"the GWAS was computed on up to {n_gwas} individuals, more than the {n_outside} outside "
                         f"the holdout, and cannot be recomputed on the training individuals {what}",
                         path=str(gwas_path), hint="give a case/control or quantitative trait (--pheno, --pheno-col), "
                                                   "a GWAS of the training individuals (snpgen gwas), or --keep-gwas "
                                                   "to rank the SNPs by it as given")
    table = gwas_table(genotypes, values, kind)
    write_gwas_table(table, path)
    test = "logistic" if kind == "binary" else "linear"
    message = (f"warning: {given}: the GWAS was computed on up to {n_gwas} individuals, more than the {n_outside} "
               f"outside the holdout, so holdout individuals may have ranked the SNPs: they are ranked by a {test} "
               f"GWAS{f' of {trait_name}' if trait_name else ''} on the {genotypes.n_samples} training individuals "
               f"instead ({shown_as or path}; --keep-gwas uses {given} as given)")
    return table, read_gwas(path), message


def _choose_panel(prefix: Path, bim, train_rows: np.ndarray, gwas_path, top, panel_path, callback, *,
                  trait: tuple[str, np.ndarray] | None = None, keep_gwas: bool = False):
    """The panel, chosen on training rows only: (table with PANEL_COLUMNS, variant indices into the .bim, the GWAS
    recomputed on the training rows or None, who chose the SNPs as ``io.gwas.panel_provenance`` says, None
    without a GWAS; ``association.selection_prior`` of the GWAS's SNPs found in the cohort, or None, as for a
    categorical or absent ``trait``).

    A GWAS that states it was computed on more individuals than the cohort has (holdout individuals may have
    ranked the SNPs) is recomputed on ``train_rows`` with ``trait`` ((kind, values of the training rows)); with
    ``trait`` None, ``keep_gwas`` (recorded as the user's choice), or with a fixed ``panel_path`` (the GWAS then
    only gives effects), it is kept as given, with a warning."""
    from .association import KINDS, selection_prior
    from .io.gwas import align_gwas, panel_provenance, read_gwas
    from .io.plink import read_bim_fam, read_plink
    from .panel import PANEL_COLUMNS, PanelWarning, read_panel, read_snp_list, select_panel

    aligned = recomputed = chosen = train = None
    if gwas_path is not None:
        gwas = read_gwas(gwas_path)
        n_gwas, n_cohort = gwas.n_samples_max, len(read_bim_fam(prefix)[1])  # validation: no evaluation holdout
        chosen = panel_provenance(n_gwas, n_cohort, kept=keep_gwas)
        if chosen["warning"] and trait is not None and not keep_gwas and panel_path is None:
            kind, values = trait
            train = read_plink(prefix, samples=train_rows)
            with tempfile.TemporaryDirectory() as scratch:
                recomputed, gwas, message = recompute_gwas(train, kind, values, gwas_path=gwas_path, n_gwas=n_gwas,
                                                           n_outside=n_cohort, path=Path(scratch) / "gwas_train.tsv",
                                                           shown_as="gwas_train.tsv")
            _emit(callback, "panel", message)
            chosen = panel_provenance(gwas.n_samples_max, len(train_rows), computed_on_training=True)
        elif chosen["warning"]:
            _emit(callback, "panel", f"warning: {Path(gwas_path).name}: {chosen['warning']}")
        aligned = align_gwas(gwas, bim)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PanelWarning)
        if panel_path is not None:
            ids = read_snp_list(panel_path)
            table = aligned if aligned is not None else pd.DataFrame(
                {"variant_index": np.zeros(0, np.int64), "beta": np.zeros(0), "p": np.zeros(0)})
            train = read_plink(prefix, samples=train_rows, variants=np.flatnonzero(bim["snp"].isin(ids)))
            panel = select_panel(train, table, snps=ids)
            index = np.flatnonzero(bim["snp"].isin(ids))[panel.variant_index]
            result = panel.table
            if aligned is None:  # keep the effects written in a panel file, when it is one
                try:
                    given = read_panel(panel_path).set_index("SNP")
                    result = result.assign(BETA=given["BETA"].reindex(result["SNP"]).to_numpy(),
                                           P=given["P"].reindex(result["SNP"]).to_numpy())
                except InputError:
                    pass
        else:
            train = train if train is not None else read_plink(prefix, samples=train_rows)
            panel = select_panel(train, aligned, top=int(top or 1000))
            index, result = panel.variant_index, panel.table
    for w in caught:
        if not (aligned is None and "no GWAS row" in str(w.message)):
            _emit(callback, "panel", str(w.message))
    regressed = trait is None or trait[0] in KINDS  # the trait shares' prior: no use to a class trait
    prior = None if aligned is None or not regressed else selection_prior(aligned.table["p"].to_numpy())
    return (result[PANEL_COLUMNS], np.asarray(index, dtype=np.int64), recomputed,
            None if panel_path is not None else chosen, prior)


def _as_config(config) -> runs.TrainConfig:
    """``config`` as a TrainConfig: one already, a dict of its sections, a JSON path, or None (defaults)."""
    if isinstance(config, (str, os.PathLike)):
        config = runs.read_config(config)
    elif isinstance(config, dict):
        config = runs.TrainConfig.from_dict(config)
    return config or runs.TrainConfig()


def _apply_data_to_config(config, n_snps: int, kind: str, n_classes: int, epochs: int | None,
                          n_covariates: int = 0):
    cfg = copy.deepcopy(config)
    cfg.vae = dataclasses.replace(cfg.vae, n_snps=n_snps, pheno_kind=kind, n_classes=n_classes)
    cfg.denoiser = dataclasses.replace(cfg.denoiser, latent_dim=cfg.vae.latent_dim, cond_kind=kind,
                                       n_classes=n_classes, n_covariates=n_covariates)
    cfg.gan = dataclasses.replace(cfg.gan, n_snps=n_snps, pheno_kind=kind, n_classes=n_classes)
    if epochs is not None:
        if int(epochs) != epochs or epochs < 1:
            raise InputError(f"epochs = {epochs} must be a positive whole number", hint="e.g. --epochs 50")
        ratio = cfg.diffusion_fit.epochs / max(cfg.vae_fit.epochs, 1)
        d_epochs = max(1, round(epochs * ratio))
        cfg.vae_fit = dataclasses.replace(cfg.vae_fit, epochs=int(epochs), min_epochs=min(cfg.vae_fit.min_epochs, epochs))
        cfg.diffusion_fit = dataclasses.replace(cfg.diffusion_fit, epochs=d_epochs,
                                                min_epochs=min(cfg.diffusion_fit.min_epochs, d_epochs))
        if cfg.model == "wgan":  # --epochs N: the GAN's epochs (with the Gumbel temperature's schedule)
            cfg.gan_fit = dataclasses.replace(cfg.gan_fit, epochs=int(epochs))
            cfg.gan = dataclasses.replace(cfg.gan, tau_epochs=min(cfg.gan.tau_epochs, int(epochs)))
    return cfg


# ---------------------------------------------------------------------------------------------------------------
# Steps of train_run


class _Setup(NamedTuple):
    """What the stages need from the run directory's first files: config, trait, covariates, split and panel."""

    cfg: runs.TrainConfig
    trait: dict
    kind: str
    values: np.ndarray
    split: Split
    panel_index: np.ndarray
    covariates: np.ndarray | None  # (n, c) of every individual of the cohort, NaN = missing; None = none given


def _check_output(out: Path, resume: bool, gwas_path, panel_path) -> bool:
    """Refuse a finished or foreign output folder; True when an unfinished run there is to be resumed."""
    if (out / "run.json").exists():
        raise InputError("already holds a finished run", path=str(out),
                         hint="choose another --out, or delete the folder to train again")
    resuming = resume and (out / "config.json").exists()
    if out.exists() and any(out.iterdir()) and not resuming:
        hint = ("it holds an unfinished run: add --resume to continue it" if (out / "config.json").exists()
                else "choose a new or empty folder")
        raise InputError("output folder is not empty", path=str(out), hint=hint)
    if not resuming and gwas_path is None and panel_path is None:
        raise InputError("no SNP panel: give GWAS summary statistics and a panel size, or a panel file",
                         hint="--gwas FILE --top 1000, or --snps PANEL.tsv")
    return resuming


def _hash_inputs(prefix: Path, pheno_path, gwas_path, panel_path, covar_path=None) -> dict:
    """{input: {path, sha256}} of every given input file; InputError for one that is missing."""
    from .io.plink import cohort_files

    inputs = {**cohort_files(prefix), "pheno": pheno_path, "gwas": gwas_path, "panel": panel_path,
              "covar": covar_path}
    what = {"bed": ".bed", "pheno": "phenotype", "gwas": "GWAS", "panel": "panel", "covar": "covariate"}
    for k, v in inputs.items():
        if v is not None and not Path(v).is_file():
            raise InputError(f"{what.get(k, k)} file not found", path=str(v), hint="check the path")
    return {k: {"path": str(Path(v).resolve()), "sha256": sha256_file(v)}
            for k, v in inputs.items() if v is not None}


def _resume_setup(out: Path, fam, bim, hashes: dict, pheno_path, covar_path, callback) -> _Setup:
    """The setup of the unfinished run in ``out``, after checking it started from the same inputs."""
    info = json.loads((out / "config.json").read_text())
    prov = json.loads((out / "provenance.json").read_text())
    for k in ("bed", "bim", "fam", "pheno", "covar"):
        old, new = prov["inputs"].get(k), hashes.get(k)
        if (old or {}).get("sha256") != (new or {}).get("sha256"):
            raise InputError(f"the {k} input differs from the one this run started with", path=str(out),
                             hint="resume with the same --bfile, --pheno and --covar, or start a new run")
    cfg = runs.run_config(info["train"], str(out / "config.json"))
    trait = info["phenotype"]
    kind, values, _, _ = _read_trait(fam, pheno_path, prov["parameters"].get("pheno_col"))
    covariates, _ = _read_covariates(fam, covar_path, prov["parameters"].get("covar_names"))
    split = read_split(out / "split.tsv", fam)
    panel_index = runs.panel_indices(out / "panel.bim", bim)
    _emit(callback, "setup", f"resuming {out}")
    return _Setup(cfg, trait, kind, values, split, panel_index, covariates)


def _new_setup(out: Path, prefix: Path, fam, bim, hashes: dict, config: runs.TrainConfig, *, pheno_path,
               pheno_col, covar_path, covar_names, gwas_path, top, panel_path, epochs, seed, device, dev, threads,
               resume, callback, keep_gwas=False, trait_share=None) -> _Setup:
    """Split, trait, covariates, panel and config of a new run, written to ``out`` (panel, split, provenance,
    config). ``trait_share``: the decoder's trait shares to record (``_trait_shares``), instead of those of the
    GWAS (shadow models take their run's)."""
    from .covariates import summarise
    from .io.atomic import atomic_path
    from .io.plink import write_bim
    from .panel import write_panel

    kind, values, name, labels = _read_trait(fam, pheno_path, pheno_col)
    covariates, covar_columns = _read_covariates(fam, covar_path, covar_names)
    strata = trait_strata(values, kind) if kind != "none" else None
    split = split_samples(len(fam), strata=strata, holdout=0.0, validation=config.validation, seed=seed)
    table, panel_index, gwas_train, chosen, prior = _choose_panel(
        prefix, bim, split.train, gwas_path, top, panel_path, callback, trait=(kind, values[split.train]),
        keep_gwas=keep_gwas)
    if trait_share is None and prior is not None:  # a binary or quantitative trait (_choose_panel)
        from .association import association_share

        trait_share = {"n_tested": prior["n_tested"],
                       "share": np.round(association_share(table["P"].to_numpy(float), prior), 4).tolist()}
    trait = _trait_summary(kind, values[split.train], name, labels)
    cfg = _apply_data_to_config(config, len(panel_index), kind, len(labels), epochs, len(covar_columns))
    # what generation draws covariates and sex from: summaries of the training part only (covariates.py)
    drawn = summarise(None if covariates is None else covariates[split.train], covar_columns,
                      fam["sex"].to_numpy()[split.train], values[split.train], kind)
    if cfg.dp.enabled:  # refuse impossible DP settings before anything is written
        from .differential_privacy import check_individuals, resolve_delta

        if cfg.model == "wgan":
            raise InputError("differential privacy is implemented for the diffusion and markov models, not wgan",
                             hint="use --model markov or diffusion with --dp-epsilon, or train the GAN without DP")
        if cfg.model == "markov" and kind == "quantitative":
            raise InputError("the DP Markov chain conditions on trait classes; the quantile bins of a quantitative "
                             "trait would be chosen on the training individuals outside the accounting",
                             hint="give a binary or categorical trait, use --model diffusion with --dp-epsilon, "
                                  "or train without DP")
        if cfg.model == "diffusion":
            check_individuals(int(split.train.size), {"vae_fit": cfg.vae_fit.batch_size,
                                                      "diffusion_fit": cfg.diffusion_fit.batch_size})
        resolve_delta(cfg.dp, int(split.train.size))
        if "counts" in trait:  # generation's default mix: noisy class counts (differential_privacy.noisy_counts)
            trait = _private_counts(trait, cfg.dp, int(split.train.size))
    out.mkdir(parents=True, exist_ok=True)
    write_panel(table, out / "panel.tsv")
    if gwas_train is not None:
        from .association import write_gwas_table

        write_gwas_table(gwas_train, out / "gwas_train.tsv")
    with atomic_path(out / "panel.bim") as tmp:
        write_bim(tmp, bim.iloc[panel_index])
    write_split(split, fam, out / "split.tsv")
    params = {"bfile": str(prefix), "pheno_path": None if pheno_path is None else str(pheno_path),
              "pheno_col": pheno_col, "covar_path": None if covar_path is None else str(covar_path),
              "covar_names": None if covar_names is None else list(covar_names),
              "gwas_path": None if gwas_path is None else str(gwas_path), "top": top,
              "panel_path": None if panel_path is None else str(panel_path), "epochs": epochs,
              "device": str(device), "resume": resume, "keep_gwas": keep_gwas}
    write_json(out / "provenance.json", {
        "software": software_versions("torch", "pandas"), "seed": seed, "device": str(dev), "threads": threads,
        "started": now_utc(), "inputs": hashes, "parameters": params,
        "n_samples": len(fam), "n_train": int(split.train.size), "n_validation": int(split.validation.size),
        "snp_panel": chosen,  # who chose the SNPs (io.gwas.panel_provenance), for the model card
    })
    write_json(out / "config.json", {"format_version": runs.FORMAT_VERSION, "train": cfg.to_dict(),
                                          "phenotype": trait, "covariates": drawn, "n_snps": len(panel_index),
                                          "trait_share": trait_share})
    return _Setup(cfg, trait, kind, values, split, panel_index, covariates)


@torch.no_grad()
def encode_all(vae, dosages: np.ndarray, device: torch.device, batch_size: int = 1024):
    """Posterior means and log-variances (n, d) of ``dosages`` (n, m) int8, on the CPU."""
    vae.eval()
    mus, logvars = [], []
    for start in range(0, dosages.shape[0], batch_size):
        mu, logvar = vae.encode(torch.as_tensor(dosages[start:start + batch_size], device=device))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    d = vae.config.latent_dim
    return (torch.cat(mus) if mus else torch.zeros(0, d)), (torch.cat(logvars) if logvars else torch.zeros(0, d))


class _Cohort(NamedTuple):
    """What the memorisation checks compare: training and validation dosages (missing calls imputed from the
    training frequencies, seeded), their conditions, and an equal-size training subsample (likelihood gap)."""

    train: np.ndarray
    validation: np.ndarray
    cond_train: np.ndarray
    cond_validation: np.ndarray
    train_rows: np.ndarray
    floor: np.ndarray  # RELEASE_REPEATS times as many individuals as validation ones from the independent-SNP
    # baseline (memorisation.py), drawn with their conditions: the release check's floor; an epoch's, the first set
    cov_validation: np.ndarray | None  # the validation individuals' covariates (the synthetic ones get theirs)
    chrom: np.ndarray | None = None  # the panel SNPs' chromosomes (where shared segments restart)
    # rows of train in the synthetic people's place (memorisation.reference_people): up to RELEASE_REPEATS
    # validation-sized sets, the release check's; an epoch's, the first
    reference: np.ndarray | None = None


def _check_cohort(dosages: np.ndarray, cond: np.ndarray, split: Split, independent, seed: int,
                  covariates: np.ndarray | None = None, chrom: np.ndarray | None = None) -> _Cohort | None:
    """None when the validation part is too small (< 10 individuals) to measure anything. ``independent``: the
    fitted independent-SNP baseline, the checks' floor; training people with the validation people's conditions
    are the checks' reference."""
    from .memorisation import RELEASE_REPEATS, reference_people
    from .models.generators import SamplingOptions

    from .evaluation.distances import impute_missing

    tr, va = split.train, split.validation
    if va.size < 10:
        return None
    called = dosages[tr] >= 0
    freq = np.where(called, dosages[tr], 0).sum(0) / np.maximum(2 * called.sum(0), 1)
    rng = np.random.default_rng([seed, 7])
    floor = independent.sample(torch.as_tensor(np.tile(cond[va], RELEASE_REPEATS), dtype=torch.float32),
                               torch.Generator().manual_seed(seed), SamplingOptions()).numpy()
    return _Cohort(impute_missing(dosages[tr], freq, seed=rng), impute_missing(dosages[va], freq, seed=rng),
                   cond[tr], cond[va], np.sort(rng.choice(tr.size, min(tr.size, va.size), replace=False)), floor,
                   None if covariates is None else covariates[va], chrom,
                   reference_people(cond[tr], cond[va], RELEASE_REPEATS, rng))


@torch.no_grad()
def _nll(vae, dosages: np.ndarray, cond: np.ndarray, device: torch.device) -> np.ndarray:
    """Per-individual reconstruction NLL (nats) at the posterior mean, given each individual's trait."""
    vae.eval()
    x, y = torch.as_tensor(dosages, device=device), torch.as_tensor(cond, dtype=torch.float32, device=device)
    return (-vae.log_likelihood(x, y)).cpu().numpy()


def _reconstruction_nlls(vae, cohort: _Cohort, device: torch.device) -> dict:
    """The likelihood gap's inputs: per-individual NLLs of the equal-size training subsample and of validation."""
    return {"nll_train": _nll(vae, cohort.train[cohort.train_rows], cohort.cond_train[cohort.train_rows], device),
            "nll_validation": _nll(vae, cohort.validation, cohort.cond_validation, device)}


def _memorisation_monitor(cohort: _Cohort, generator_of, nlls_of, device: torch.device, seed: int,
                          kind: str | None = None, release: bool = False, trait_model=None):
    """``fit``'s monitor: as many synthetic individuals as validation ones, drawn with the validation conditions
    from ``generator_of(model)`` (a ``models.Generator``), graded by ``memorisation.check_memorisation``; the
    likelihood gap from ``nlls_of(model)`` (``_reconstruction_nlls`` of the VAE in use). With ``release`` (the
    released generator's check only: too slow for every epoch's) the release is ``RELEASE_REPEATS`` times as
    large, so the distance attacks average over that many validation-sized sets (their floor and reference too),
    and the same release meets the shared-segment attack; for a binary or quantitative trait ``kind``, the
    association copying too, of the trait as ``generate`` releases it (drawn from a fitted ``trait_model`` given
    the genotypes where it ``releases``, else the conditions), and the label attack on the same draws."""
    from .memorisation import (COPYING_REPEATS, RELEASE_REPEATS, check_memorisation, validation_association_copying,
                               validation_label_membership, validation_segment_membership)
    from .models.generators import SamplingOptions

    cov = None if cohort.cov_validation is None else torch.as_tensor(cohort.cov_validation, dtype=torch.float32,
                                                                      device=device)
    known = [None]  # the floor's and the reference's values, measured at the first check (the same at every one)

    def monitor(model) -> dict:
        gen = torch.Generator(device=device).manual_seed(seed)

        def draw(repeats: int) -> tuple[np.ndarray, np.ndarray]:  # the validation conditions, repeated
            conditions = np.tile(cohort.cond_validation, repeats)
            covariates = None if cov is None else cov.repeat(repeats, 1)
            return conditions, generator_of(model).sample(torch.as_tensor(conditions, dtype=torch.float32,
                                                                          device=device), gen, SamplingOptions(),
                                                          covariates).cpu().numpy()

        synthetic = draw(RELEASE_REPEATS if release else 1)[1]
        n = None if release else len(cohort.validation)
        reference = None if cohort.reference is None else cohort.reference[:n]
        check = check_memorisation(cohort.train, cohort.validation, synthetic, floor=cohort.floor[:n],
                                   reference=reference, seed=seed, known=known[0], **nlls_of(model))
        known[0] = (check.floor, check.reference)
        if release and kind in ("binary", "quantitative"):  # COPYING_REPEATS more validation-sized samples
            more, drawn = draw(COPYING_REPEATS)
            if trait_model is not None and trait_model.releases:
                on = trait_model.weight.device
                covariates = None if cov is None else cov.repeat(COPYING_REPEATS, 1).to(on)
                more = trait_model.draw(torch.as_tensor(drawn, device=on), torch.Generator(device=on).manual_seed(
                    seed + 1), covariates, binary=kind == "binary").cpu().numpy()
            traits = (cohort.cond_train, cohort.cond_validation, more)
            check.association_copying = validation_association_copying(cohort.train, cohort.validation, drawn,
                                                                       traits, kind, seed, COPYING_REPEATS)
            check.label_membership, check.label_limit = validation_label_membership(
                cohort.train, cohort.validation, drawn, traits, kind, seed)
        if release:  # the attacker holds a release larger than the validation part
            check.segment_membership, check.segment_limit = validation_segment_membership(
                cohort.train, cohort.validation, synthetic, cohort.chrom, seed)
        return check.to_dict()

    return monitor


def _vae_with_gaussian_prior(models: runs.RunModels, cohort: _Cohort, device: torch.device):
    """The VAE stage's generator: the decoder on latents from a Gaussian fitted to the current training latents
    (the diffusion prior is trained later, on the final latents)."""
    from .models.baselines import VAEGaussian

    cond = torch.as_tensor(cohort.cond_train, dtype=torch.float32, device=device)

    def generator_of(vae):
        mu, logvar = encode_all(vae, cohort.train, device)
        prior = copy.deepcopy(models.latent_gaussian).to(device).fit(mu.to(device), logvar.to(device), cond)
        return VAEGaussian(vae, prior)

    return generator_of


def _write_run(out: Path, models: runs.RunModels, states: dict[str, FitState],
               recon_dosages: np.ndarray, dev: torch.device, t0: float, privacy_check: dict | None, callback,
               dp_record: dict | None = None, calibration: dict | None = None,
               latent_path: dict | None = None, trait_model: dict | None = None,
               trait_share: dict | None = None, group_mix: dict | None = None) -> Path:
    """Weights, history (per stage in ``states``: losses, best epoch, why it stopped), reconstruction (the VAE's;
    a header only for a run without one), then ``run.json`` (the completeness marker); the checkpoints go and
    "done" is announced. Returns ``out``."""
    from safetensors.torch import save_file

    from .io.atomic import atomic_path
    from .models.vae import reconstruction_report

    recon = (reconstruction_report(models.vae, recon_dosages, device=dev) if "vae" in states else
             pd.DataFrame(columns=["maf_bin", "genotype", "n_snps", "n_genotypes", "accuracy"]))
    with atomic_path(out / "reconstruction.tsv") as tmp:
        recon.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(models.state_tensors(), str(tmp), metadata={"format_version": str(runs.FORMAT_VERSION)})
    write_json(out / "history.json", {
        **{name: s.history for name, s in states.items()},
        **{f"{name}_best_epoch": s.best_epoch for name, s in states.items()},
        **{f"{name}_stopped": s.stopped for name, s in states.items()},
    })
    write_json(out / "run.json", {
        "format_version": runs.FORMAT_VERSION, "finished": now_utc(),
        "train_seconds": time.perf_counter() - t0,
        "privacy_check": privacy_check,  # memorisation.MemorisationCheck on the validation individuals, or None
        "differential_privacy": dp_record,  # differential_privacy.record: (epsilon, delta) spent; None without DP
        "calibration": calibration,  # generators.calibrate (LD factors and frequency offsets): before / after; or None
        "decoder_latent": latent_path,  # decoder latent path "auto": the one kept, each one's validation loss
        "trait_model": trait_model,  # _fit_trait_model's record (a quantitative or binary trait's model); or None
        "trait_share": trait_share,  # _trait_shares: the decoder's trait shares, summarised; or None
        "group_mix": group_mix,  # _fit_groups: the latent groups each class's mix is kept over; or None
        "files": {f: sha256_file(out / f) for f in runs.RUN_FILES},
    })
    shutil.rmtree(out / runs.CHECKPOINTS, ignore_errors=True)
    _emit(callback, "done", f"run written to {out}")
    return out


def _fit_groups(diffusion, mu: torch.Tensor, logvar: torch.Tensor, cond: np.ndarray, seed: int,
                callback) -> dict | None:
    """The latent groups of the training individuals and each class's share of them (``GroupMix``, fitted by
    ``GaussianDiffusion.fit_groups``), kept when guided sampling draws a class; a record for ``run.json``, or None
    for a trait without classes."""
    if diffusion.group_mix.shares.shape[0] == 0:
        return None
    k = diffusion.fit_groups(mu, logvar, torch.as_tensor(cond, dtype=torch.float32), seed)
    if k < 2:
        _emit(callback, "check", "latent groups: one (no class mix to keep)")
        return {"groups": 1}
    shares = diffusion.group_mix.shares[:, :k].cpu().numpy()
    _emit(callback, "check", f"latent groups: {k}; each class keeps its training mix of them when guided ("
          + "; ".join(f"class {c}: " + " ".join(f"{v:.2f}" for v in row) for c, row in enumerate(shares)) + ")")
    return {"groups": k, "class_shares": np.round(shares, 4).tolist()}


def _trait_shares(vae, out: Path, trait: np.ndarray, use: bool, callback) -> dict | None:
    """Each panel SNP's share of the trait's effect in the decoder, from ``config.json``'s ``trait_share``
    (``association.association_share`` of its GWAS p-value), set on ``vae`` with the training individuals'
    ``trait`` values (``GenotypeVAE.set_trait_share``). A panel chosen by the training individuals' GWAS keeps
    their chance associations, and a decoder that sees the trait learns every SNP's training class difference,
    chance included, so the synthetic cohort follows the training sample's noise (issue 13's association copying).
    Returns the record for ``run.json``; None when not used (no GWAS, a trait the decoder does not see,
    ``--no-trait-shrinkage``, DP)."""
    given = json.loads((out / "config.json").read_text()).get("trait_share")
    if not use or given is None or vae.trait_embed is None:
        return None
    from .association import trait_share_summary

    share = np.asarray(given["share"], dtype=np.float64)
    vae.set_trait_share(share, trait)
    record = {"n_tested": given["n_tested"], "mean": float(share.mean()),
              "quantiles_10_50_90": np.quantile(share, [0.1, 0.5, 0.9]).tolist()}
    _emit(callback, "check", trait_share_summary(record))
    return record


def _fit_trait_model(model, dosages: np.ndarray, values: np.ndarray, split: Split, covariates: np.ndarray | None,
                     kind: str, dp: bool, choice: str, callback, seed: int = 0, outside=None) -> dict | None:
    """A quantitative or binary trait's model given the genotypes (``models/trait_model.py``; a binary trait's on
    its 0/1 class), fitted on the training part with the penalty ``choice`` (``TrainConfig.trait_model``;
    ``"auto"``: ridge and lasso both, the one whose prediction correlates better with the validation individuals'
    trait kept, ridge on a tie or without 10 of them; for a binary trait the lasso, keeping at most one SNP per
    ``PER_KEPT_SNP`` training individuals), and a binary trait's logistic
    link on the training part's out-of-fold predictions (``_fit_link``). Where its slope is not positive beyond
    chance (``LINK_Z``), the panel's principal components are asked (``_ancestry_z``): if they tell the classes, the
    model is unfitted again and the condition is released; if not, the model is emptied (``TraitModel.forget``) and
    the classes are released independently of the genotypes. ``outside``: a reader of genotypes of SNPs the panel
    does not hold (``_outside_panel``), whose components are asked the same and recorded, for ancestry apart from the
    panel's choice. run.json's record, with each fit's validation r and where the trait is ``released`` from
    ("model", "condition" or "independent"), or None (no such trait, or differential privacy)."""
    from .models.trait_model import KINDS

    if kind not in KINDS or dp:
        return None
    if choice == "auto" and kind == "binary":  # the released classes tell the fewer of the training sample's chance
        choice = "lasso"  # associations, the fewer directions the model fits (TrainConfig.trait_model)
    tr, va = split.train, split.validation
    max_kept = max(1, tr.size // PER_KEPT_SNP) if kind == "binary" else None
    known = va[np.isfinite(values[va])]
    scored = known.size >= 10
    if scored:
        from .evaluation.align import impute_mean, training_means

        x_va = torch.as_tensor(impute_mean(dosages[known], training_means(dosages[tr])))
        cov_va = None
        if covariates is not None:
            cov_va = torch.as_tensor(np.where(np.isfinite(covariates[known]), covariates[known],
                                              np.nanmean(covariates[tr], axis=0)))
    penalties = (("ridge", "lasso") if scored else ("ridge",)) if choice == "auto" else (choice,)
    try:  # the pass over the individuals, once for every penalty
        equations = model.normal_equations(dosages[tr], values[tr], None if covariates is None else covariates[tr])
    except ValueError as err:  # too few differing values: the condition is released, as without a model
        _emit(callback, "check", f"no trait model: {err}")
        return None
    fits = []
    for penalty in penalties:
        record = model.fit_equations(equations, penalty, max_kept)
        if scored:
            pred = model.predict(x_va, cov_va).numpy()
            record["validation_r"] = float(np.corrcoef(pred, values[known])[0, 1]) if np.ptp(pred) > 0 else 0.0
        fits.append((record, {k: t.clone() for k, t in model.state_dict().items()}))
    record, state = max(fits, key=lambda f: f[0].get("validation_r", 0.0))  # the first (ridge) on a tie
    model.load_state_dict(state)
    if len(fits) > 1:
        record["validation_r_by_penalty"] = {f[0]["penalty"]: f[0]["validation_r"] for f in fits}
    what = "the released trait is drawn from it given the genotypes"
    if kind == "binary":
        record["link"] = link = _fit_link(model, dosages, values, tr, covariates, record["penalty"], seed, max_kept)
        if link is None or link["z"] < LINK_Z:
            record["ancestry_z"] = z = _ancestry_z(dosages, values, tr, seed)
            other = None if outside is None else outside()
            aside = ""
            if other is not None and other.shape[1]:  # ancestry apart from the GWAS's choice of the panel
                record["outside_panel_z"] = u = _ancestry_z(other, values, tr, seed)
                record["outside_panel_snps"] = int(other.shape[1])
                aside = (f"; those of {other.shape[1]} SNPs outside the panel: z {u:.2f}"
                         + ("" if u >= LINK_Z or z < LINK_Z else ", so it is the panel's choice on these individuals' "
                            "own associations, not their ancestry"))
            if z >= LINK_Z:
                model.unfit()
            else:
                model.forget(float(np.nanmean(values[tr])))
            why = ("no link: a fold's others held one class only" if link is None else
                   f"link slope z {link['z']:.2f}, under {LINK_Z}")
            what = ("not used: its predictions for training individuals left out of its fit told cases from "
                    f"controls no better than chance ({why}); "
                    + (f"the panel's principal components did (z {z:.2f}{aside}), which the class-conditional "
                       "generator carries, so the released class is the condition the genotypes were drawn given"
                       if z >= LINK_Z else
                       f"nor did the panel's principal components (z {z:.2f}{aside}), so the released classes are "
                       "drawn independently of the genotypes, at the training prevalence"))
    record["released"] = ("condition" if not model.releases else "model" if model.tells else "independent")
    kept = f", {record['nonzero']} columns kept" if "nonzero" in record else ""
    scores = "; ".join(f"{p} {r:.3f}" for p, r in record.get("validation_r_by_penalty", {}).items())
    _emit(callback, "check", f"trait model ({what}): "
                             f"{record['penalty']} penalty {record['alpha']:.3g}{kept}"
                             + (f", residual sd {record['noise_sd']:.3g}" if kind == "quantitative" else "")
                             + (f", r {record['validation_r']:.3f} on the validation individuals" if scored else "")
                             + (f" (kept of {scores})" if scores else ""))
    return record


LINK_FOLDS = 5  # a binary trait model's link is fitted on out-of-fold predictions of the training part
# ... and the model releases the classes only where the link's slope is positive beyond chance (Wald z, one-sided 5%).
# A weak trait in a small cohort gives a slope of either sign with the folds (1000 Genomes phase 1, 786 training
# individuals: z -1.3 to 1.2 over 8 fold seeds, b -5.5 to 3.9), and classes drawn through it carried no association
# or an inverted one (case-control difference r -0.24x and -0.03x the holdout's, TSTR 0.85-0.90x); a real one is far
# beyond it (HapMap 3: z 1.9-5.0; msprime, AGBL4: z 16.9-20.4). Where it is not, the panel's principal components are
# asked the same (``_ancestry_z``): phase 1's tell its classes (z 13-14), and the class-conditional generator carries
# what they tell (the condition: r 1.08x / 0.78x, TSTR 1.03-1.05x); a panel whose components tell nothing (msprime
# sim1's classes shuffled, on a panel chosen for another trait) releases classes independent of the genotypes, for its
# condition copies the training sample's chance differences (association copying 4.9, label attack 0.59; independent
# classes 1.3, 0.50). BENCHMARKS.md, forty-second pass. A panel chosen by a GWAS of the same individuals tells their
# classes by that choice alone: a trait drawn independently of msprime genotypes reads z 7.9 on its own GWAS's panel
# and -0.4 on SNPs outside it; phase 1 -0.6 to 0.3 outside its panel (forty-third pass). The condition is then released
# with each SNP's class difference shrunk for that selection by the trait shares (the null trait: association copying
# 2.05, label attack 0.49; independent classes 1.44, 0.50); run.json records the outside z beside the panel's. The
# link's own z hardly carries that choice: the capped lasso picks its few SNPs inside each fold, and a panel chosen
# again inside every fold moved it by at most 1.0 on five runs (forty-fourth pass).
LINK_Z = 1.645
ANCESTRY_PCS = 10  # principal components of the training genotypes standing for ancestry in ``_ancestry_z``
ANCESTRY_ROWS = 5000  # training individuals at most in its decomposition (seeded)
OUTSIDE_SNPS = 1000  # SNPs of the cohort outside the panel at most (seeded) whose components are asked too


def _ancestry_z(dosages: np.ndarray, values: np.ndarray, rows: np.ndarray, seed: int) -> float:
    """How far the training individuals' principal components of ``dosages`` tell a binary trait's classes beyond
    chance: the Wald z of the link (``trait_model.logistic_link``) on out-of-fold predictions of a logistic
    regression on their scores on the top ``ANCESTRY_PCS`` training components (``evaluation.structure.fit_pca``;
    ``LINK_FOLDS`` seeded folds; at most ``ANCESTRY_ROWS`` individuals). 0 where there are no components, or a
    fold's others hold one class only. The folds do not undo a choice of the SNPs made on the same individuals'
    classes (a panel from their own GWAS): its components tell the classes by that choice alone."""
    from sklearn.linear_model import LogisticRegression

    from .evaluation.structure import fit_pca
    from .models.trait_model import logistic_link

    rng = np.random.default_rng([seed, 29])
    rows = rows[np.isfinite(values[rows])]
    rows = np.sort(rng.choice(rows, ANCESTRY_ROWS, replace=False)) if rows.size > ANCESTRY_ROWS else rows
    pca = fit_pca(dosages[rows], ANCESTRY_PCS, seed=seed)
    if pca is None:
        return 0.0
    pcs, y = pca.transform(dosages[rows]), values[rows]

    def predict(fit: np.ndarray, out: np.ndarray) -> np.ndarray | None:
        if np.ptp(y[fit]) == 0:
            return None
        return LogisticRegression(max_iter=1000).fit(pcs[fit], y[fit]).decision_function(pcs[out])

    score = _out_of_fold(rows.size, rng, predict)
    return 0.0 if score is None else logistic_link(score, y)["z"]


def _out_of_fold(n: int, rng: np.random.Generator, predict) -> np.ndarray | None:
    """Scores (n,) of n individuals, each predicted by a fit on the others: cut into ``LINK_FOLDS`` folds by
    ``rng``, fold k scored by ``predict(fit, out)`` (boolean masks over the n). None where ``predict`` gives None
    (a fold's others cannot be fitted)."""
    fold = rng.permutation(n) % LINK_FOLDS
    score = np.empty(n)
    for k in range(LINK_FOLDS):
        if (part := predict(fold != k, fold == k)) is None:
            return None
        score[fold == k] = part
    return score


def _outside_panel(prefix: Path, n_variants: int, panel_index: np.ndarray, seed: int) -> np.ndarray:
    """Genotypes (n, k) of at most ``OUTSIDE_SNPS`` seeded SNPs of the cohort's .bed that the panel does not hold
    (k = 0 where it holds every SNP). A GWAS of the trait left them out rather than chose them, so on a null trait
    their components' z leans below 0 (forty-third pass: -4.3 to -0.06 on null traits)."""
    from .io.plink import read_plink

    rest = np.setdiff1d(np.arange(n_variants), panel_index)
    if rest.size == 0:
        return np.zeros((0, 0), np.int8)
    pick = np.random.default_rng([seed, 31]).choice(rest, min(OUTSIDE_SNPS, rest.size), replace=False)
    return read_plink(prefix, variants=np.sort(pick)).dosages


# a binary trait's lasso keeps at most one SNP per this many training individuals: its classes carry what each kept
# SNP learnt of the training sample (msprime sim1: GCV kept 495 of 1,000, label attack 0.553; at most 100: 0.505,
# and TSTR 1.009 -> 1.030x; BENCHMARKS.md, thirty-ninth pass)
PER_KEPT_SNP = 20


def _fit_link(model, dosages: np.ndarray, values: np.ndarray, rows: np.ndarray, covariates: np.ndarray | None,
              penalty: str, seed: int, max_kept: int | None = None) -> dict:
    """A binary trait model's link (``TraitModel.fit_link``), fitted on out-of-fold predictions: the training
    individuals ``rows`` with a class cut into ``LINK_FOLDS`` seeded folds, each predicted by a model of the same
    ``penalty`` fitted on the others (missing calls and covariates at those others' means). In-sample predictions
    carry the fit's own noise, so a link fitted on them is too steep, and a release drawn through it has larger
    case-control differences than the training cohort (thirty-ninth pass: slope 1.11-1.25 of the training's, on
    two fresh msprime cohorts). None where a fold's others hold one class only (the panel's principal components are
    then asked, as where the link's slope is not beyond chance)."""
    from .evaluation.align import impute_mean, training_means
    from .models.trait_model import TraitModel

    rows = rows[np.isfinite(values[rows])]

    def predict(fit: np.ndarray, out: np.ndarray) -> np.ndarray | None:
        fit, out = rows[fit], rows[out]
        cov_fit = None if covariates is None else covariates[fit]
        part = TraitModel(model.n_snps, model.n_covariates)
        try:
            part.fit(dosages[fit], values[fit], cov_fit, penalty=penalty, max_kept=max_kept)
        except ValueError:  # too few of one class
            return None
        cov = None
        if covariates is not None:
            cov = torch.as_tensor(np.where(np.isfinite(covariates[out]), covariates[out], np.nanmean(cov_fit, axis=0)))
        return part.predict(torch.as_tensor(impute_mean(dosages[out], training_means(dosages[fit]))), cov).numpy()

    score = _out_of_fold(rows.size, np.random.default_rng([seed, 23]), predict)
    return None if score is None else model.fit_link(score, values[rows])


def _private_counts(trait: dict, dp, n: int) -> dict:
    """The trait summary with its class counts and missing count under DP: Gaussian noise from a secret seed,
    ``counts_noise_sd`` recorded (its share of epsilon is accounted with the run's training)."""
    from .differential_privacy import counts_multiplier, noisy_counts, secret_generator

    sd = counts_multiplier(dp, n)
    counts = trait["counts"] + [trait["n_missing"]]  # one individual is in exactly one of these: sensitivity 1
    noisy = noisy_counts(counts, sd, secret_generator(), low=[1] * len(trait["counts"]) + [0])  # all drawable
    return {**trait, "counts": noisy[:-1], "n_missing": noisy[-1], "counts_noise_sd": sd}


def _release_check(cohort: _Cohort | None, generator, nlls: dict | None, dev: torch.device, seed: int,
                   callback, kind: str | None = None, trait_model=None) -> dict | None:
    """The released generator's privacy check on the validation individuals (``memorisation.py``), announced;
    None without enough validation individuals. ``trait_model``: the run's (``_memorisation_monitor``)."""
    if cohort is None:
        return None
    check = _memorisation_monitor(cohort, lambda _: generator, lambda _: nlls, dev, seed, kind, release=True,
                                  trait_model=trait_model)(None)
    _emit(callback, "check", MemorisationCheck(**check).summary())
    if warning := release_warning(MemorisationCheck(**check)):
        _emit(callback, "check", warning)
    return check


def _fit_markov(markov, dosages: np.ndarray, cond: np.ndarray, chrom: np.ndarray, cfg: runs.TrainConfig,
                trait: dict, callback) -> dict | None:
    """The Markov chain's stage: genotype-pair counts of the training individuals; with DP, Gaussian noise on them
    from a secret seed (``models/markov.py``, ``differential_privacy.gaussian_multiplier``). Returns the DP
    record, or None."""
    if not cfg.dp.enabled:
        markov.fit(dosages, cond, chrom)
        return None
    from .differential_privacy import markov_multiplier, markov_record, secret_generator

    n = dosages.shape[0]
    multiplier = markov_multiplier(cfg.dp, n, with_counts="counts_noise_sd" in trait)
    markov.fit(dosages, cond, chrom, noise_multiplier=multiplier, generator=secret_generator(),
               prior=cfg.markov_prior)
    record = markov_record(cfg.dp, n, multiplier, markov.sensitivity, trait.get("counts_noise_sd"))
    _emit(callback, "check", f"differential privacy: (epsilon {record['epsilon']:.3g}, delta {record['delta']:.2g}) "
                             f"on the Markov chain's pair counts (noise sd {record['count_noise_sd']:.3g} "
                             f"individuals per count)")
    return record


def _train_gan(gan, dosages: np.ndarray, cond: np.ndarray, split: Split, cfg: runs.TrainConfig,
               dev: torch.device, seed: int, callback, stop_event, on_epoch_end, resume, monitor) -> FitState:
    """The GAN's stage: missing calls imputed from the training allele frequencies (seeded; the critic must not
    learn that real people have missing calls), then ``fit`` on the training individuals. No validation loss:
    the critic's estimate on validation individuals cannot choose weights (``models/gan.py``), so the EMA
    weights are kept; the memorisation checks on the validation individuals are recorded."""
    from .evaluation.distances import impute_missing

    tr = split.train
    called = dosages[tr] >= 0
    freq = np.where(called, dosages[tr], 0).sum(0) / np.maximum(2 * called.sum(0), 1)
    x = impute_missing(dosages[tr], freq, seed=np.random.default_rng([seed, 14]))
    gan.init_from_data(x, cond[tr])
    return fit(gan, (torch.as_tensor(x), torch.as_tensor(cond[tr], dtype=torch.float32)), None, cfg.gan_fit,
               stage="gan", seed=seed, device=dev, callback=callback, stop_event=stop_event,
               on_epoch_end=on_epoch_end, resume=resume, monitor=monitor)


# ---------------------------------------------------------------------------------------------------------------
# The pipeline


EARLY_EPOCH = 3  # a VAE whose best validation loss came this early stopped before it learned the cohort's structure


def early_stop_note(state: FitState, window: int) -> str | None:
    """One line for ``train`` when the kept VAE is one of its first ``EARLY_EPOCH`` epochs although training went
    on (its validation loss rose from then on): on a small cohort with a sparse panel the decoder's neighbour
    weights fit the panel's chance correlations within a few epochs, early stopping ends the fit before the latent
    has learned the population structure, and the synthetic cohort's ancestry comes out compressed (BENCHMARKS.md,
    issue 13, tenth pass: 1000 Genomes phase 1, top PCs 0.3-0.5x a real sample's spread). None otherwise."""
    if window == 0 or not 0 < state.best_epoch <= EARLY_EPOCH or state.epoch <= state.best_epoch:
        return None
    kl = state.history[state.best_epoch - 1].get("val_kl", float("nan")) if state.history else float("nan")
    return (f"the VAE kept epoch {state.best_epoch} of {state.epoch} (latent {kl:.1f} nats): its neighbour weights "
            f"fitted this panel's chance correlations before the latent learned the cohort's structure, so the "
            f"synthetic people's ancestry will be compressed; --vae-window 0 learns it, at a privacy cost (README, "
            f"known limits)")


def _leaves_nothing_on_failure(train):
    """A run that fails (bad input, a numerical error, a full disk) leaves ``out_dir`` as it found it, so the same
    command can be retried; a cancelled or interrupted one keeps its checkpoints for ``resume=True``."""
    @functools.wraps(train)
    def guarded(bfile, out_dir, *args, **kwargs):
        out = Path(out_dir)
        existed, fresh = out.exists(), not (out / "config.json").exists()
        try:
            return train(bfile, out_dir, *args, **kwargs)
        except (Cancelled, KeyboardInterrupt):
            raise
        except BaseException:
            if fresh and out.is_dir() and not (out / "run.json").exists():
                if existed:  # it was empty (train_run refuses a folder holding anything else)
                    for child in out.iterdir():
                        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
                else:
                    shutil.rmtree(out, ignore_errors=True)
            raise
    return guarded


@_leaves_nothing_on_failure
def train_run(bfile, out_dir, *, pheno_path=None, pheno_col: str | None = None, covar_path=None,
              covar_names: list[str] | None = None, gwas_path=None, top: int | None = None, panel_path=None,
              config=None, seed: int = 0, device: str = "auto",
              epochs: int | None = None, callback: Callback | None = None,
              stop_event: threading.Event | None = None, resume: bool = False,
              threads: int | None = None, keep_gwas: bool = False, trait_share: dict | None = None) -> Path:
    """Train a SNPgen model on the PLINK cohort ``bfile`` and write the run directory ``out_dir``.

    Trait: ``pheno_path``/``pheno_col`` (``phenotypes.read_phenotype``), else ``.fam`` column 6 (an all-missing
    column trains an unconditioned model). Covariates: ``covar_path``/``covar_names``
    (``phenotypes.read_covariates``; all columns when no names), seen by the latent diffusion beside the trait and
    summarised for generation (``covariates.py``). Panel: ``gwas_path`` + ``top`` (``select_panel`` on the
    training part), or ``panel_path`` (a panel TSV or SNP list). A GWAS that states it was computed on more
    individuals than ``bfile`` has (holdout individuals may have ranked the SNPs) is recomputed on the training
    part (``association.gwas_table``, written as ``gwas_train.tsv``) unless ``keep_gwas``; ``provenance.json``
    records who chose the SNPs (``snp_panel``). Part ``config.validation`` of the cohort (stratified by trait,
    seeded) is held out for early stopping and recorded in ``split.tsv``; every other individual trains the VAE,
    the diffusion and the baselines. Evaluation holdouts are the caller's own separate cohort: none is carved here.

    ``config``: a ``runs.TrainConfig``, a dict of its sections, a JSON path, or None (defaults). ``epochs`` caps
    the VAE epochs (the diffusion's scale in proportion). ``device``: "auto", "cpu" or "cuda". ``threads``: CPU
    threads (default: the current torch setting, capped at ``default_threads()``). ``resume``: continue an
    unfinished run in ``out_dir`` from its last epoch checkpoint (same inputs required). ``stop_event`` cancels
    between batches: ``training.Cancelled`` is raised, the last checkpoint stays, ``run.json`` is not written.
    Any other failure leaves ``out_dir`` as it was (retry the same command). Returns ``out_dir``. See ``runs.py`` for the directory layout.
    """
    from .io.plink import plink_prefix, read_bim_fam, read_plink

    t0 = time.perf_counter()
    out = Path(out_dir)
    prefix = plink_prefix(bfile)
    resuming = _check_output(out, resume, gwas_path, panel_path)
    config = _as_config(config)
    dev = resolve_device(device)
    cap = threads or min(torch.get_num_threads(), default_threads())
    if torch.get_num_threads() != cap:
        torch.set_num_threads(cap)

    bim, fam = read_bim_fam(prefix)
    hashes = _hash_inputs(prefix, pheno_path, gwas_path, panel_path, covar_path)
    if resuming:
        setup = _resume_setup(out, fam, bim, hashes, pheno_path, covar_path, callback)
    else:
        setup = _new_setup(out, prefix, fam, bim, hashes, config, pheno_path=pheno_path, pheno_col=pheno_col,
                           covar_path=covar_path, covar_names=covar_names, gwas_path=gwas_path, top=top,
                           panel_path=panel_path, epochs=epochs, seed=seed, device=device, dev=dev, threads=cap,
                           resume=resume, callback=callback, keep_gwas=keep_gwas, trait_share=trait_share)
    cfg, trait, kind, values, split, panel_index, covariates = setup
    if str(device) == "auto" and dev.type == "cpu":
        _emit(callback, "setup", "no CUDA GPU found: training on the CPU")
    _emit(callback, "setup", f"{len(panel_index)} SNPs, {split.train.size} training and {split.validation.size} "
                             f"validation individuals, trait {trait['name'] or '(none)'} ({kind}), device {dev}")

    dosages = read_plink(prefix, variants=panel_index).dosages
    cond = values.astype(np.float32)
    tr, va = split.train, split.validation
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's RNG untouched
        torch.manual_seed(seed)
        models = runs.RunModels.build(cfg, kind, len(trait.get("labels", [])))
    ckpt = out / runs.CHECKPOINTS

    last_saved = [time.perf_counter()]

    def checkpoint(name):
        def save(state: FitState) -> None:
            # the VAE state (weights, best weights, Adam moments) is ~100 MB at 2,000 SNPs: not every epoch
            if state.done or time.perf_counter() - last_saved[0] >= cfg.checkpoint_seconds:
                runs.save_fit_state(ckpt / f"{name}.safetensors", state)
                last_saved[0] = time.perf_counter()
        return save

    def previous(name):
        p = ckpt / f"{name}.safetensors"
        return runs.load_fit_state(p) if p.exists() else None

    # memorisation is measured on the validation individuals while training (never on any evaluation holdout)
    models.independent.fit(dosages[tr], cond[tr])  # a baseline, and the floor of the memorisation checks
    cohort = _check_cohort(dosages, cond, split, models.independent, seed, covariates,
                           bim["chrom"].to_numpy()[panel_index])
    trait_record = _fit_trait_model(models.trait, dosages, values, split, covariates, kind, cfg.dp.enabled,
                                    cfg.trait_model, callback, seed,
                                    outside=lambda: _outside_panel(prefix, len(bim), panel_index, seed))
    if cohort is None:
        _emit(callback, "setup", f"only {va.size} validation individuals: memorisation is not checked while "
                                 "training (give the run more individuals or a larger validation share)")

    if cfg.model == "markov":  # a Markov chain from (noisy) genotype-pair counts instead of the VAE and diffusion
        dp_record = _fit_markov(models.markov, dosages[tr], cond[tr], bim["chrom"].to_numpy()[panel_index], cfg,
                                trait, callback)
        check = _release_check(cohort, models.markov, {}, dev, seed, callback, kind, models.trait)
        return _write_run(out, models, {}, dosages[tr], dev, t0, check, callback, dp_record,
                          trait_model=trait_record)

    # differential privacy: noise planned for both stages within one budget; no data-dependent starting values,
    # and no monitor (choosing or stopping by a check on training individuals is outside the accounting)
    dp_plans = None
    if cfg.dp.enabled:
        from .differential_privacy import plan

        dp_plans = plan(cfg.dp, int(tr.size), {"vae": (cfg.vae_fit.batch_size, cfg.vae_fit.epochs),
                                               "diffusion": (cfg.diffusion_fit.batch_size, cfg.diffusion_fit.epochs)},
                        trait.get("counts_noise_sd"))
        _emit(callback, "setup", f"differential privacy: epsilon {cfg.dp.epsilon:g} over both stages; noise "
              + ", ".join(f"{k} {p.noise_multiplier:.3g}" for k, p in dp_plans.items()))
        if kind in ("binary", "categorical"):
            _emit(callback, "setup", "note: at epsilon 1-8 DP-SGD has kept almost none of the trait in our benchmarks; "
                                     "--model markov --dp-epsilon keeps it (BENCHMARKS.md)")

    def monitor(generator_of, nlls_of):
        if cohort is None or dp_plans is not None:
            return None
        return _memorisation_monitor(cohort, generator_of, nlls_of, dev, seed)

    if cfg.model == "wgan":  # a conditional WGAN-GP instead of the VAE and the diffusion (models/gan.py)
        state = _train_gan(models.gan, dosages, cond, split, cfg, dev, seed, callback, stop_event,
                           checkpoint("gan"), previous("gan"), monitor(lambda g: g, lambda g: {}))
        if stop_event is not None and stop_event.is_set():
            raise Cancelled("training cancelled before the run was written")
        check = _release_check(cohort, models.gan, {}, dev, seed, callback, kind, models.trait)
        return _write_run(out, models, {"gan": state}, dosages[tr], dev, t0, check, callback,
                          trait_model=trait_record)

    # 1. VAE; decoder latent path "auto": one VAE per path (mlp first), the lower validation loss kept (without
    # validation individuals, or under DP where choosing by validation is outside the accounting: mlp)
    m = len(panel_index)
    as_t = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    auto = cfg.vae.decoder_latent == "auto"
    paths = (LATENT_PATHS if va.size and dp_plans is None else ("mlp",)) if auto else (cfg.vae.decoder_latent,)
    fitted = {}
    for path in paths:
        vae = models.vae
        if path != paths[0]:  # the same seeded start as the first
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                vae = GenotypeVAE(dataclasses.replace(cfg.vae, decoder_latent=path))
        first = fitted[paths[0]][0].decoder if fitted else None  # its neighbours, chosen on the same people
        vae.init_from_data(dosages[tr] if dp_plans is None else np.zeros((0, m), np.int8),
                           values[tr] if dp_plans is None else None, chrom=bim["chrom"].to_numpy()[panel_index],
                           neighbours=None if first is None else (first.neighbours.cpu(), first.mask.cpu() > 0))
        stage = "vae" if path == paths[0] else f"vae_{path}"
        fitted[path] = vae, fit(
            vae, (as_t(dosages[tr], torch.int8), as_t(cond[tr], torch.float32)),
            (as_t(dosages[va], torch.int8), as_t(cond[va], torch.float32)), cfg.vae_fit, stage=stage, seed=seed,
            device=dev, callback=callback, stop_event=stop_event, on_epoch_end=checkpoint(f"vae-{path}"),
            resume=previous(f"vae-{path}"),
            monitor=monitor(_vae_with_gaussian_prior(models, cohort, dev),
                            lambda v: _reconstruction_nlls(v, cohort, dev)) if cohort else None,
            privacy=None if dp_plans is None else dp_plans["vae"])
    chosen = min(paths, key=lambda p: fitted[p][1].best_val)
    vae, vae_state = fitted[chosen]
    models.vae = vae
    cfg.vae.decoder_latent = chosen
    choice = None  # run.json's record of the choice, when there was one
    if len(paths) > 1:
        choice = {"chosen": chosen, "candidates": {p: {"validation_loss": fitted[p][1].best_val,
                                                       "best_epoch": fitted[p][1].best_epoch} for p in paths}}
        _emit(callback, "check", "decoder latent path: " + ", ".join(
            f"{p} validation loss {c['validation_loss']:.1f}" for p, c in choice["candidates"].items())
            + f"; kept {chosen}")

    if (note := early_stop_note(vae_state, cfg.vae.window)) is not None:
        _emit(callback, "check", note)

    # 2. latent diffusion on the training latents (validation latents for early stopping)
    mu_tr, lv_tr = encode_all(vae, dosages[tr], dev)
    mu_va, lv_va = encode_all(vae, dosages[va], dev)
    diffusion = models.diffusion.to(dev)
    vae_nlls = None if cohort is None else _reconstruction_nlls(vae, cohort, dev)  # the VAE is final now
    cov_tr = cov_va = ()  # covariates, when given, are the batches' fourth tensor
    if covariates is not None:
        cov_tr, cov_va = (as_t(covariates[tr], torch.float32),), (as_t(covariates[va], torch.float32),)
    group_mix = None  # run.json's record of the latent groups whose mix each class keeps (group_mix.py)
    if dp_plans is None:  # DP: the prior's N(0, 1) moments stand in for the training latents', and no groups
        diffusion.set_statistics(mu_tr.to(dev), lv_tr.to(dev), torch.as_tensor(cond[tr], device=dev),
                                 *(c.to(dev) for c in cov_tr))
        group_mix = _fit_groups(diffusion, mu_tr, lv_tr, cond[tr], seed, callback)
    diff_state = fit(diffusion, (mu_tr, lv_tr, as_t(cond[tr], torch.float32), *cov_tr),
                     (mu_va, lv_va, as_t(cond[va], torch.float32), *cov_va), cfg.diffusion_fit, stage="diffusion",
                     seed=seed, device=dev, callback=callback, stop_event=stop_event,
                     on_epoch_end=checkpoint("diffusion"), resume=previous("diffusion"),
                     monitor=monitor(lambda d: LatentDiffusion(vae, d), lambda d: vae_nlls),
                     privacy=None if dp_plans is None else dp_plans["diffusion"])

    # 3. the trait's effect on each SNP shrunk for the panel's selection bias, then the released generator's LD and
    # genotype frequencies calibrated to the training cohort's (the decoder's trait_share, ld_scale and calibration;
    # a DP run keeps none: the training cohort's statistics are outside its accounting)
    shares = _trait_shares(vae, out, values[tr], cfg.trait_shrinkage and dp_plans is None, callback)
    calibration = None
    if dp_plans is None and cfg.calibration_rounds > 0:
        cov_calibration = None if covariates is None else covariates[tr]  # drawn with their conditions' rows
        calibration = calibrate(LatentDiffusion(vae, diffusion), vae, dosages[tr], cond[tr], seed=seed,
                                per_lag=cfg.ld_calibration == "lag", rounds=cfg.calibration_rounds,
                                covariates=cov_calibration)
        _emit(callback, "check", calibration_summary(calibration))
        if cfg.class_calibration and shares is not None and kind in CLASS_KINDS:
            from .evaluation.structure import training_groups

            calibration["classes"] = calibrate_classes(LatentDiffusion(vae, diffusion), vae, dosages[tr], cond[tr],
                                                       training_groups(dosages[tr], seed=seed), seed=seed,
                                                       rounds=cfg.calibration_rounds, covariates=cov_calibration)
            _emit(callback, "check", class_calibration_summary(calibration["classes"]))

    # 4. baselines (seconds; the independent SNPs were fitted first)
    models.latent_gaussian.to(dev).fit(mu_tr.to(dev), lv_tr.to(dev), torch.as_tensor(cond[tr], device=dev))

    # 5. the release check of the default generator, then the run directory
    if stop_event is not None and stop_event.is_set():
        raise Cancelled("training cancelled before the run was written")
    check = _release_check(cohort, models.generator("diffusion"), vae_nlls, dev, seed, callback, kind,
                           models.trait)
    dp_record = None
    if dp_plans is not None:
        from .differential_privacy import record

        dp_record = record(cfg.dp, int(tr.size), dp_plans,
                           {"vae": vae_state.epoch * dp_plans["vae"].steps_per_epoch,
                            "diffusion": diff_state.epoch * dp_plans["diffusion"].steps_per_epoch},
                           trait.get("counts_noise_sd"))
        _emit(callback, "check", f"differential privacy: (epsilon {dp_record['epsilon']:.3g}, delta "
                                 f"{dp_record['delta']:.2g}) spent over both stages")
    if auto:  # config.json names the path the weights have, for load_run
        info = json.loads((out / "config.json").read_text())
        info["train"]["vae"]["decoder_latent"] = chosen
        write_json(out / "config.json", info)
    others = {f"vae_{p}": fitted[p][1] for p in paths if p != chosen}
    return _write_run(out, models, {"vae": vae_state, "diffusion": diff_state, **others},
                      dosages[va] if va.size else dosages[tr], dev, t0, check, callback, dp_record, calibration,
                      choice, trait_record, shares, group_mix)


# ---------------------------------------------------------------------------------------------------------------
# Shadow models: the run's own pipeline, retrained on parts of its training cohort (evaluation.attacks)


class ShadowTrainer:
    """The shadow-model attack's generators (``evaluation.attacks.shadow_model_attack``): each one is this
    run's whole pipeline (``train_run`` with its config, panel and trait; its own generator released) trained
    on a part of the training cohort, in ``work_dir``. Covariates are not passed on (a run trained with them gets
    trait-only shadows). ``trainer(variants)`` gives the attack's ``train_generator(dosages, cond, seed)`` for
    dosages in ``variants``' order; ``sample(generator, n, seed)`` draws from the run's training mix of
    conditions."""

    def __init__(self, run_dir, work_dir, n_shadow: int = 4, threads: int | None = None):
        self.run = runs.load_run(run_dir)
        self.work = Path(work_dir)
        self.n_shadow = int(n_shadow)
        self.threads = threads

    def trainer(self, variants: pd.DataFrame):
        from .genotypes import Genotypes, make_samples
        from .io.plink import write_plink
        from .phenotypes import encode_trait

        panel = self.run.variants["snp"].astype(str).tolist()
        if variants["snp"].astype(str).tolist() != panel:
            raise InputError("the evaluated SNPs are not the run's panel in its order", path=str(self.run.path),
                             hint="evaluate the synthetic cohort this run generated, against its own training cohort")
        kind, labels = self.run.phenotype["kind"], self.run.phenotype.get("labels") or []
        trait = self.run.phenotype.get("name") or "PHENO"
        count = [0]

        def train_generator(dosages: np.ndarray, cond, seed: int):
            count[0] += 1
            d = self.work / f"shadow{count[0]}"
            ids = [f"M{i:06d}" for i in range(len(dosages))]
            write_plink(d / "cohort", Genotypes(np.asarray(dosages, np.int8), self.run.variants,
                                                 make_samples(ids)))
            pheno = None
            if kind != "none":
                pheno = d / "pheno.tsv"
                pd.DataFrame({"FID": ids, "IID": ids, trait: encode_trait(cond, kind, labels)[1]}).to_csv(
                    pheno, sep="\t", index=False)
            out = train_run(d / "cohort", d / "run", pheno_path=pheno, pheno_col=None if pheno is None else trait,
                            panel_path=self.run.path / "panel.tsv", config=copy.deepcopy(self.run.config),
                            seed=seed, device="cpu", threads=self.threads,
                            trait_share=self.run.info.get("trait_share"))
            return runs.load_run(out).generator(self.run.config.model)  # the generator the run released

        return train_generator

    def sample(self, generator, n: int, seed: int) -> np.ndarray:
        from .generation import condition_mix
        from .models.generators import SamplingOptions

        cond = torch.as_tensor(condition_mix(self.run.phenotype, n, seed=seed), dtype=torch.float32)
        return generator.sample(cond, torch.Generator().manual_seed(seed), SamplingOptions()).numpy()
