"""Generation: synthetic individuals for a mix of conditions, sampled in batches and streamed to PLINK.

Output ``PREFIX.bed/.bim/.fam``: the run's panel ``.bim`` exactly (IDs, cM, positions, alleles; dosages count
a1); ``.fam`` FID = IID = ``SYN000001``..., no parents, sex drawn from the training shares of the
individual's class (``covariates.py``), column 6 the condition in PLINK coding (binary 1 = control / 2 = case,
quantitative the value, categorical and unconditioned -9). ``PREFIX.pheno.tsv`` (FID IID
<trait>) holds each individual's condition for every kind (binary as 1/2, categorical as its label,
quantitative as its value, NA when unconditioned), readable by ``phenotypes.read_phenotype``. A quantitative
trait in the training distribution (no ``value`` / ``values``) is, by default (``trait_from`` "genotypes"), not
the value the genotypes were drawn given but a draw of the run's trait model given them (``models/trait_model.py``:
genotype to trait, as in real genetics); ``trait_from`` "condition" releases the condition itself. A binary
trait with both classes asked for (the training mix or ``case_fraction`` strictly between 0 and 1) is released
the same way: individuals are drawn given classes at the training mix (with the sex and covariates of that
class), each gets its class from the trait model given its genotypes, and draws are kept in order until each class
has its count (at most ``MAX_PROPOSALS`` draws per individual asked for). Where training found that the trait model
did not tell cases from controls (``pipeline._fit_trait_model``), the condition is released if the panel's
principal components did (``TraitModel.releases`` False), and otherwise the model is an empty one and the classes
come out independent of the genotypes (provenance ``INDEPENDENT``). One class for everyone (``label``, a case
fraction of 0 or 1) releases the condition. A run trained
with covariates also gives ``PREFIX.covar.tsv`` (FID IID and one column per covariate in the run's coding,
readable by ``phenotypes.read_covariates``): the values each individual was generated with.
``PREFIX.provenance.json`` records the run, the model, the condition mix and every sampling setting.
Memory is bounded by ``batch_size`` (the ``.bed`` is assembled on disk by ``PlinkWriter``); nothing appears at
``PREFIX`` unless every file was written.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .covariates import draw as draw_covariates, parse_fixed
from .errors import InputError
from .genotypes import make_samples
from .io.atomic import atomic_paths, check_output_path
from .io.plink import PlinkWriter, plink_prefix
from .models.generators import SamplingOptions
from .options import options as declared
from .phenotypes import encode_trait
from .provenance import now_utc, read_json, software_versions, write_json
from .runs import MODELS, load_run, recorded_privacy_check

MAX_INDIVIDUALS = 10_000_000  # per call: the sample table and IDs are held in memory (~1 GB at this size)
OUTPUT_SUFFIXES = (".bed", ".bim", ".fam", ".pheno.tsv", ".covar.tsv", ".provenance.json")
TRAIT_FROM = ("genotypes", "condition")
TRAIT_FROM_HELP = ("a quantitative trait in the training distribution, or a binary trait's mix of both classes: "
                   "release a draw of the run's trait model given each individual's genotypes (genotype to trait, "
                   "as in real genetics; a binary trait's draws are kept until each class has its count; where its "
                   "model did not tell cases from controls in training, the condition if the panel's principal "
                   "components did, else classes independent of the genotypes), or the condition the genotypes were "
                   "drawn given")
# provenance's ``trait_drawn_from`` where the run's trait model tells nothing (``TraitModel.tells``), and where
# training's rule released the condition in its place (``pipeline._fit_trait_model``: run.json's record "released")
INDEPENDENT = "independent of the genotypes (the run's trait model tells nothing of it)"
RULED_CONDITION = "condition (training did not use the run's trait model)"
# why a binary trait's classes were released independently of the genotypes, or as the condition, though the
# generation asked for the trait model's draws (``pipeline._fit_trait_model``; said by ``snpgen generate`` and the card)
WHY_INDEPENDENT = ("in training neither the run's trait model nor the panel's principal components told cases from "
                   "controls beyond chance")
WHY_CONDITION = ("in training the run's trait model did not tell cases from controls beyond chance, and the panel's "
                 "principal components did")
# the ``generate`` keyword (and ``snpgen generate`` flag) of a ``SamplingOptions`` field named otherwise
SAMPLING_KEYWORDS = {"mode": "sample"}
MAX_PROPOSALS = 50  # draws per individual asked for, at most, when a binary trait's classes come from its genotypes


def sampling_flag(o) -> str:
    """The ``snpgen generate`` flag of the declared ``SamplingOptions`` setting ``o`` (``options.Option``; a switch
    on by default: --no-...)."""
    flag = SAMPLING_KEYWORDS.get(o.name, o.name).replace("_", "-")
    return f"--no-{flag}" if o.type is bool else f"--{flag}"


def condition_mix(phenotype: dict, n: int, *, case_fraction: float | None = None, label: str | None = None,
                  value: float | None = None, values=None, seed: int = 0) -> np.ndarray:
    """The condition of each of ``n`` individuals, (n,) float (class code, trait value, or NaN = unconditioned).

    At most one of: ``case_fraction`` (binary: round(f * n) cases, the rest controls, in seeded random order),
    ``label`` (binary or categorical: everyone that class; binary also takes PLINK's "1"/"2"), ``value``
    (quantitative: everyone that value), ``values`` (quantitative: drawn with replacement from this array).
    None of them: the training distribution (class shares of the training part; a quantitative trait from a
    normal with its mean and sd). A model trained without a trait only takes none of them.
    """
    kind = phenotype["kind"]
    given = {k: v for k, v in (("case_fraction", case_fraction), ("label", label), ("value", value),
                               ("values", values)) if v is not None}
    if len(given) > 1:
        raise InputError(f"give at most one of {', '.join(given)}",
                         hint="--case-fraction, --label and --value exclude each other")
    rng = np.random.default_rng(seed)
    trait = phenotype.get("name") or "(none)"
    if kind == "none":
        if given:
            raise InputError(f"this model was trained without a trait; {next(iter(given))} cannot be used",
                             hint="generate without a condition")
        return np.full(n, np.nan)
    if case_fraction is not None:
        if kind != "binary":
            raise InputError(f"--case-fraction needs a case/control model; {trait} is {kind}",
                             hint="use --label for a categorical trait, --value for a quantitative one")
        f = float(case_fraction)
        if not 0.0 <= f <= 1.0:
            raise InputError(f"case fraction {case_fraction} is outside [0, 1]", hint="e.g. --case-fraction 0.5")
        n_case = int(round(f * n))
        return rng.permutation(np.r_[np.ones(n_case), np.zeros(n - n_case)])
    if label is not None:
        if kind == "quantitative":
            raise InputError(f"--label needs a binary or categorical model; {trait} is quantitative",
                             hint="use --value X")
        labels = list(phenotype["labels"])
        aliases = {"1": "control", "2": "case"} if kind == "binary" else {}
        name = aliases.get(str(label), str(label))
        if name not in labels:
            raise InputError(f"label {label!r} was never seen in training; the labels of {trait} are "
                             f"{', '.join(labels)}", hint="choose one of them")
        return np.full(n, float(labels.index(name)))
    if value is not None or values is not None:
        if kind != "quantitative":
            what = "--case-fraction or --label" if kind == "binary" else "--label"
            raise InputError(f"a quantitative value was given but {trait} is {kind}", hint=f"use {what}")
        if value is not None:
            v = float(value)
            if not np.isfinite(v):
                raise InputError(f"value {value} is not a finite number")
            return np.full(n, v)
        pool = np.asarray(values, dtype=np.float64).ravel()
        pool = pool[np.isfinite(pool)]
        if pool.size == 0:
            raise InputError("the distribution of values is empty", hint="give at least one finite value")
        return rng.choice(pool, size=n, replace=True)
    if kind == "quantitative":
        return rng.normal(phenotype["mean"], phenotype["sd"], size=n)
    counts = np.asarray(phenotype["counts"], dtype=np.float64)
    return rng.choice(len(counts), size=n, p=counts / counts.sum()).astype(np.float64)


def _classes_from_genotypes(drawn_given, trait_model, trait_gen: torch.Generator, cond: np.ndarray, phenotype: dict,
                            batch_size: int, seed: int):
    """A binary trait's individuals with classes from the trait model (the module docstring): batches of
    (covariates, genotypes, classes, sex) of draws kept in order until the class counts of ``cond`` are filled.
    ``drawn_given(c)``: (covariates, their tensor, genotypes, sex) drawn given conditions ``c``. InputError when
    more than ``MAX_PROPOSALS`` draws per individual would be needed."""
    want = np.bincount(cond.astype(np.int64), minlength=2)
    n, proposed, round_ = len(cond), 0, 0
    labelled = np.asarray(phenotype["counts"], np.float64)[:2] + 1  # each class's share of the draws, so far
    while want.sum() > 0:
        if proposed >= MAX_PROPOSALS * n:
            c = int(np.argmax(want))
            raise InputError(f"after {proposed:,} draws, {want[c]:,} of the {phenotype['labels'][c]} individuals "
                             f"asked for were still missing: the run's trait model gives that class to too few of "
                             f"the genotypes drawn", hint="ask for a case fraction nearer the training cohort's, or "
                                                          "release the condition with --trait-from condition")
        share = labelled / labelled.sum()  # enough draws for the class that needs the most, 10% over
        size = int(min(batch_size, max(256, 1.1 * (want / share).max()), MAX_PROPOSALS * n - proposed))
        proposal = condition_mix(phenotype, size, seed=int(np.random.SeedSequence([seed, 17, round_])
                                                            .generate_state(1)[0]))
        cv, ct, x, sx = drawn_given(proposal)
        released = trait_model.draw(x, trait_gen, ct, binary=True).cpu().numpy()
        labelled += np.bincount(released.astype(np.int64), minlength=2)
        keep = np.zeros(size, dtype=bool)
        for c in (0, 1):
            rows = np.flatnonzero(released == c)[:want[c]]
            keep[rows] = True
            want[c] -= rows.size
        proposed, round_ = proposed + size, round_ + 1
        if keep.any():
            rows = torch.as_tensor(np.flatnonzero(keep), device=x.device)
            yield cv[keep], x[rows], released[keep], sx[keep]


def generate(run_dir, n: int, *, out_prefix, case_fraction: float | None = None, label: str | None = None,
             value: float | None = None, values=None, guidance: float | None = None, steps: int | None = None,
             sampler: str | None = None,
             seed: int = 0, sample: str = "probabilities", temperature: float = 1.0, latent_noise: float = 0.0,
             group_mix: bool = True, covariate_values=None, batch_size: int = 4096, trait_from: str = "genotypes",
             model: str | None = None, device: str = "cpu", callback: Callable[[dict], None] | None = None,
             stop_event=None, overwrite: bool = False) -> Path:
    """Generate ``n`` synthetic individuals from the run in ``run_dir`` and write the PLINK trio ``out_prefix``
    (see the module docstring for the files). Conditions: ``condition_mix``; ``trait_from``: the module docstring.
    ``guidance``: classifier-free guidance scale (diffusion), None = the run's (``GaussianDiffusion.guidance``: 1 for
    a quantitative trait, 1.5 for a class); ``steps`` and ``sampler`` (``diffusion.SAMPLERS``): the
    diffusion's ODE solver and its steps, None = the run's (``DiffusionConfig``). ``sample``: "probabilities" draws
    each genotype from the decoder's softmax at ``temperature``; "argmax" takes the most probable one.
    ``latent_noise`` adds Gaussian noise of that many latent standard deviations to each sampled latent before
    decoding (a privacy knob; not for "independent"). ``group_mix`` (diffusion): each class's latents keep the
    training class's mix of latent groups (``models/group_mix.py``); False draws the guided prior as is.
    Covariates and sex: drawn per individual given its condition (``covariates.draw``); ``covariate_values``
    (``["AGE=50", ...]``, CLI ``--covar-value``) fixes some covariates for everyone. Only the latent diffusion
    conditions its genotypes on covariates; the other generators' cohorts carry them but ignore them.
    ``model``: None (the generator the run trained: "diffusion", "wgan" or "markov"), "diffusion" (ours),
    "vae_gaussian" or "independent" (baselines), "wgan" or "markov" (a run trained with that ``model``). The same
    run, arguments and ``seed`` give the same files (on the same device).
    ``callback`` receives ``{"event": "batch", "stage": "generate", "done", "total", "eta_s"}``; a set
    ``stop_event`` (``threading.Event``) stops between batches with ``training.Cancelled`` and writes nothing.
    An existing output set at ``out_prefix`` is refused unless ``overwrite`` (CLI ``--force``). Returns the
    output prefix.
    """
    if int(n) != n or n <= 0:
        raise InputError(f"N = {n} must be a positive whole number of individuals", hint="e.g. --n 1000")
    n = int(n)
    if n > MAX_INDIVIDUALS:
        raise InputError(f"N = {n} is more than {MAX_INDIVIDUALS:,} individuals in one call",
                         hint="generate several cohorts with different --seed values and merge them")
    if int(seed) != seed or not 0 <= seed < 2**63:
        raise InputError(f"seed {seed} must be a whole number in [0, 2^63)", hint="e.g. --seed 0")
    options = SamplingOptions(guidance=guidance, steps=steps, sampler=sampler, temperature=temperature, mode=sample,
                              latent_noise=latent_noise, group_mix=group_mix)
    for o in declared(options):
        if (why := o.problem(setting := getattr(options, o.name))) is not None:
            raise InputError(f"{o.name.replace('_', ' ')} {setting!r} {why}",
                             hint=f"{sampling_flag(o)}: {o.describe()}")
    if trait_from not in TRAIT_FROM:
        raise InputError(f"trait source {trait_from!r} unknown", hint=f"choose from {', '.join(TRAIT_FROM)}")
    if model is not None and model not in MODELS:
        raise InputError(f"model {model!r} unknown", hint=f"choose from {', '.join(MODELS)}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"batch size {batch_size} must be a positive whole number", hint="e.g. 4096")
    from .devices import resolve_device
    from .training import Cancelled

    prefix = check_output_path(plink_prefix(out_prefix) if str(out_prefix).strip() else "", "--out")
    existing = [str(prefix) + s for s in OUTPUT_SUFFIXES if Path(str(prefix) + s).exists()]
    if existing and not overwrite:
        raise InputError("already exists", path=existing[0],
                         hint="add --force (overwrite=True) to replace the set, or choose another --out")
    dev = resolve_device(device)
    run = load_run(run_dir, device=dev)
    model = model or run.config.model
    if run.config.dp.enabled and model != run.config.model:
        raise InputError(f"this run was trained with differential privacy, which covers the {run.config.model} "
                         f"generator only; the {model!r} baseline was fitted without it",
                         hint=f"use --model {run.config.model}")
    timesteps = run.config.diffusion.timesteps
    if steps is not None and steps > timesteps:
        raise InputError(f"steps = {steps} is more than the run's {timesteps} diffusion timesteps",
                         hint=f"choose 1 to {timesteps}; the default is {run.config.diffusion.sampling_steps}")
    # scratch matrix (1 byte per genotype) + .bed (2 bits) + text, with a 10% margin
    check_output_path(prefix, "--out", need_bytes=int(1.1 * (n * len(run.variants) * 1.25 + n * 64)) + (1 << 20))
    cond = condition_mix(run.phenotype, n, case_fraction=case_fraction, label=label, value=value, values=values,
                         seed=seed)
    drawn = run.covariates()
    names = [] if drawn is None else drawn["names"]
    fixed = parse_fixed(covariate_values, names)
    covariate_rng = np.random.default_rng([int(seed), 11])
    width = max(6, len(str(n)))
    ids = [f"SYN{i:0{width}d}" for i in range(1, n + 1)]
    kind, labels = run.phenotype["kind"], run.phenotype.get("labels") or []
    # a quantitative trait in the training distribution, or a binary trait's mix of both classes: drawn from the
    # trait model given the genotypes
    mixed = kind == "binary" and label is None and 0 < np.nansum(cond) < n
    wanted = trait_from == "genotypes" and ((kind == "quantitative" and value is None and values is None) or mixed)
    trait_model = run.models.trait if wanted and run.models.trait.releases else None
    record = run.record()  # run.json: the release check, and where training released the trait from
    ruled = wanted and trait_model is None and (record.get("trait_model") or {}).get("released") == "condition"
    sidecar = []  # the released trait of each individual, in the phenotype file's coding
    trait = run.phenotype.get("name") or "PHENO"
    gen = run.generator(model)
    check = recorded_privacy_check(record)
    torch_gen = torch.Generator(device=dev).manual_seed(int(seed))
    trait_seed = int(np.random.SeedSequence([int(seed), 13]).generate_state(1)[0])  # apart from the genotypes'
    trait_gen = torch.Generator(device=dev).manual_seed(trait_seed)
    pheno_path = prefix.with_name(prefix.name + ".pheno.tsv")
    covar_path = prefix.with_name(prefix.name + ".covar.tsv")
    prov_path = prefix.with_name(prefix.name + ".provenance.json")

    written, stats = [0], {"draws": 0}

    def drawn_given(c: np.ndarray):
        """(covariates, their tensor, genotypes (B, m), sex) of individuals drawn given conditions ``c``."""
        if stop_event is not None and stop_event.is_set():
            raise Cancelled(f"generation cancelled after {written[0]} of {n} individuals")
        stats["draws"] += len(c)
        cv, sx = draw_covariates(drawn, c, covariate_rng, fixed)
        ct = torch.as_tensor(cv, dtype=torch.float32, device=dev) if names else None
        return cv, ct, gen.sample(torch.as_tensor(c, dtype=torch.float32, device=dev), torch_gen, options, ct), sx

    def each_given_its_condition():
        for begin in range(0, n, batch_size):
            cv, ct, x, sx = drawn_given(cond[begin:begin + batch_size])
            released = (cond[begin:begin + batch_size] if trait_model is None
                        else trait_model.draw(x, trait_gen, ct).cpu().numpy())
            yield cv, x, released, sx

    batches = (each_given_its_condition() if not mixed or trait_model is None else
               _classes_from_genotypes(drawn_given, trait_model, trait_gen, cond, run.phenotype, batch_size, seed))
    t0 = time.perf_counter()
    writer = PlinkWriter(prefix, run.variants, n)
    try:
        outputs = (pheno_path, prov_path, *([covar_path] if names else []))
        with atomic_paths(*outputs) as (tmp_pheno, tmp_prov, *tmp_cov):
            start, covs = 0, []
            for cv, drawn_x, released, batch_sex in batches:
                stop = start + len(released)
                dosages = drawn_x.cpu().numpy().astype(np.int8, copy=False)
                fam6, column = encode_trait(released, kind, labels)
                sidecar += column
                covs.append(cv)
                writer.write(dosages, make_samples(ids[start:stop], sex=batch_sex, pheno=fam6))
                start = written[0] = stop
                if callback is not None:
                    elapsed = time.perf_counter() - t0
                    callback({"event": "batch", "stage": "generate", "done": stop, "total": n,
                              "eta_s": elapsed / stop * (n - stop)})
            pd.DataFrame({"FID": ids, "IID": ids, trait: sidecar}).to_csv(tmp_pheno, sep="\t", index=False)
            if names:
                table = pd.DataFrame(np.concatenate(covs), columns=names)
                table.insert(0, "IID", ids)
                table.insert(0, "FID", ids)
                table.to_csv(tmp_cov[0], sep="\t", index=False, float_format="%.6g")
            write_json(tmp_prov, {
                "software": software_versions("torch", "pandas"), "created": now_utc(), "run_dir": str(Path(run_dir).resolve()),
                "run_provenance": read_json(Path(run_dir) / "provenance.json"), "model": model, "n": n,
                "seed": seed, "guidance": run.models.diffusion.guidance if guidance is None else guidance,
                "steps": steps or run.config.diffusion.sampling_steps,
                "sampler": (sampler or run.config.diffusion.sampler) if model == "diffusion" else None,
                "sample": sample, "temperature": temperature, "latent_noise": latent_noise, "device": str(dev),
                "group_mix": model == "diffusion" and run.models.diffusion.keeps_group_mix(group_mix, bool(names)),
                "batch_size": batch_size,
                "trait": run.phenotype, "condition": {"case_fraction": case_fraction, "label": label,
                                                      "value": value, "values": None if values is None else "given"},
                "trait_drawn_from": (RULED_CONDITION if ruled else "condition" if trait_model is None else
                                     "genotypes (the run's trait model)" if trait_model.tells else INDEPENDENT),
                "draws": stats["draws"],  # individuals drawn (more than n where a binary trait's classes were kept)
                "covariates": {"names": names, "fixed": fixed, "conditioned": bool(names) and model == "diffusion",
                               "drawn_from": "the run's per-class counts of discrete combinations and Gaussian of "
                                             "the others (covariates.py)"},
                "seconds": time.perf_counter() - t0,
                # the run's own validation privacy check (memorisation.py), measured for its default model
                "release_check": None if check is None else check.to_dict(),
            })
            writer.close()
    except BaseException:
        writer.abort()
        raise
    if not names:  # a replaced set (--force) must not keep another run's covariates
        covar_path.unlink(missing_ok=True)
    return prefix
