"""Export of a synthetic cohort: its PLINK files and sidecars, the evaluation report and a model card, as a folder
and a zip that a data-governance board can review and a pipeline can use.

``model_card`` writes what the files are, the data and model behind them, how they were generated, the report
card against the real holdout, and what they may and may not be used for; everything it states comes from the
run directory, the generation's ``.provenance.json`` and the report. ``export_cohort`` is the one entry point
(``snpgen export`` and the app's Export page): it gathers the files and writes the folder (complete or not at
all) and, when asked, the zip. The genotypes go out in one of ``FORMATS`` (``write_genotypes``): PLINK 1, a
bgzipped VCF (``io.vcf``) or PLINK 2 ``.pgen`` (``io.pgen``, needs pgenlib).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .io.atomic import atomic_path
from .provenance import read_json

REPORT_FILES = ("report.html", "report.json")
FORMATS = {  # format -> (its files' suffixes, what the model card calls it)
    "bed": ((".bed", ".bim", ".fam"), "PLINK 1 binary"),
    "vcf": ((".vcf.gz",), "bgzipped VCF 4.2 (GT only, REF = the .bim A2 allele, ALT = the counted A1 allele)"),
    "pgen": ((".pgen", ".pvar", ".psam"), "PLINK 2 binary (ALT = the counted A1 allele)"),
}


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of ``FORMATS``, else InputError naming the choices."""
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} unknown", hint=f"choose from {', '.join(FORMATS)}")
    return fmt


def write_genotypes(cohort_prefix: str | os.PathLike, out_prefix: str | os.PathLike, fmt: str) -> list[Path]:
    """Write the PLINK cohort at ``cohort_prefix`` (a ``.bed`` or ``.pgen`` set) as ``out_prefix`` + the format's
    suffixes (``FORMATS``), streamed a block of variants at a time; every file appears complete or not at all.
    Returns the paths written."""
    from . import __version__
    from .io.pgen import pgenlib_or_error, write_pgen
    from .io.plink import PlinkWriter, plink_path, read_bim_fam, variant_blocks
    from .io.vcf import write_vcf

    check_format(fmt)
    if fmt == "pgen":
        pgenlib_or_error()  # before any work
    variants, samples = read_bim_fam(cohort_prefix)
    out_prefix = Path(out_prefix)
    if fmt == "vcf":
        return [write_vcf(plink_path(out_prefix, ".vcf.gz"), variants, samples, variant_blocks(cohort_prefix),
                          source=f"SNPgen Studio {__version__}")]
    if fmt == "pgen":
        return write_pgen(out_prefix, variants, samples, variant_blocks(cohort_prefix))
    from .io.plink import read_plink  # bed: rows at a time through the streamed writer

    with PlinkWriter(out_prefix, variants, len(samples)) as writer:
        step = max(1, (1 << 26) // max(len(variants), 1))
        for start in range(0, len(samples), step):
            rows = np.arange(start, min(start + step, len(samples)))
            writer.write(read_plink(cohort_prefix, samples=rows).dosages, samples.iloc[rows])
    return [plink_path(out_prefix, s) for s in FORMATS["bed"][0]]


def safe_name(name: str, default: str = "file", max_len: int = 80) -> str:
    """A file name safe to write anywhere: the last path component only, characters outside ``[A-Za-z0-9._-]``
    replaced by ``_``, no leading dots or dashes, at most ``max_len`` characters, ``default`` if nothing is left."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".-_")
    base = base[:max_len].rstrip("._-")
    return base or default


def export_name(name: str) -> str:
    """The folder / file prefix of an export: ``safe_name`` without dots (no tool mistakes a part for a suffix)."""
    return safe_name(name, "snpgen_synthetic").replace(".", "_")


def _group_mix_text(kept: bool, record: dict | None) -> str:
    """The generation line's note on the classes' latent group mix (``models/group_mix.py``), from the
    cohort's provenance (``kept``) and ``run.json``'s record."""
    if not kept or not record:
        return ""
    return (f", each class drawn with its training mix of the latent's {record.get('groups')} groups (ancestry), "
            "which guidance would otherwise exaggerate")


def _sampler_text(g: dict) -> str:
    """The latent diffusion's solver in the card's generation line (nothing for another generator)."""
    from .models.diffusion import SAMPLER_NAMES

    return (f"; latents by {SAMPLER_NAMES.get(g['sampler'], g['sampler'])} in {g.get('steps')} steps"
            if g.get("sampler") else "")


def generation_settings(synthetic_prefix: str | os.PathLike) -> dict:
    """What made a synthetic cohort, from its ``.provenance.json`` (``generation.generate``): n, model, guidance,
    whether each class kept its training mix of latent groups (group_mix), seed, the diffusion's ODE solver and its
    steps (``sampler`` None for another generator or an older cohort, ``steps``), the condition (case_fraction,
    label or value), the covariates ({"names", "fixed", "conditioned"}) and
    where the released trait came from (``trait_drawn_from``: "condition", or the run's trait model given the
    genotypes)."""
    prefix = Path(synthetic_prefix)
    prov = read_json(prefix.with_name(prefix.name + ".provenance.json")) or {}
    if not prov:
        raise InputError("no generation record (.provenance.json) beside the synthetic cohort", path=str(prefix),
                         hint="export a cohort written by snpgen generate")
    condition = prov.get("condition") or {}
    return {"n": prov.get("n"), "model": prov.get("model"), "guidance": prov.get("guidance"),
            "group_mix": bool(prov.get("group_mix")), "seed": prov.get("seed"), "covariates": prov.get("covariates"),
            "trait_drawn_from": prov.get("trait_drawn_from", "condition"), "sampler": prov.get("sampler"),
            "steps": prov.get("steps"), **{k: condition.get(k) for k in ("case_fraction", "label", "value")}}


def _cohort_from_run(prov: dict) -> dict:
    """The training cohort as the run recorded it: name, individuals, SNPs (counted from its .bim if readable)."""
    bim = ((prov.get("inputs") or {}).get("bim") or {}).get("path")
    try:
        with open(bim, "rb") as fh:
            n_variants = sum(1 for _ in fh)
    except (OSError, TypeError):
        n_variants = "?"
    bfile = (prov.get("parameters") or {}).get("bfile") or "?"
    return {"name": Path(bfile).name, "demo": False, "n_samples": prov.get("n_samples"), "n_variants": n_variants}


def release_gate(report: dict, confirm_release: str | None) -> dict:
    """The release decision of an export: {"grade", "confirmed" (bool), "reason", "date"}. A cohort whose overall
    grade is not "pass" is exported only with an explicit confirmation (``confirm_release``: the reason, in the
    user's words), which the model card records; InputError without one."""
    from .provenance import now_utc

    grade = report.get("overall", "warn")
    reason = (confirm_release or "").strip()
    if grade != "pass" and not reason:
        raise InputError(f"the cohort's report-card grade is {grade}: exporting it needs an explicit confirmation",
                         hint="read the report card, then confirm with a reason (snpgen export --confirm-release "
                              "'REASON'; the app's Export page asks for it); the reason is recorded in the model card")
    return {"grade": grade, "confirmed": bool(reason), "reason": reason, "date": now_utc()}


def _calibration_text(record: dict | None) -> str:
    from .models.generators import calibration_summary

    return "none (a DP or GAN run, or one trained with --calibration-rounds 0)" if not record else \
        calibration_summary(record)


def _dp_text(dp: dict | None) -> str:
    """The model card's line on differential privacy (``run.json``'s record)."""
    if not dp:
        return "none: the model was trained without it; privacy is measured by the attacks below, not guaranteed."
    if "stages" not in dp:  # the Markov chain: one Gaussian mechanism (differential_privacy.markov_record)
        return (f"{dp['mechanism']}, (epsilon = {dp['epsilon']:.3g}, delta = {dp['delta']:.2g}) for the "
                f"{dp['n_individuals']} training individuals by the {dp['accountant']} (target "
                f"{dp['target_epsilon']:g}; L2 sensitivity {dp['sensitivity']:.3g}, noise sd "
                f"{dp['count_noise_sd']:.3g} per count). Covers {dp['covers']}; not covered: {dp['not_covered']}.")
    stages = ", ".join(f"{k} noise {v['noise_multiplier']:.3g} over {v['steps']} steps" for k, v in dp["stages"].items())
    return (f"DP-SGD, (epsilon = {dp['epsilon']:.3g}, delta = {dp['delta']:.2g}) for the {dp['n_individuals']} "
            f"training individuals, accounted over both stages by the {dp['accountant']} accountant (target "
            f"{dp['target_epsilon']:g}; {stages}; clipping norm {dp['max_grad_norm']:g}). Covers {dp['covers']}; "
            f"not covered: {dp['not_covered']}.")


def _model_text(config: dict, model: str | None, covar_names: list[str], latent_path: dict | None = None) -> str:
    """The model card's line on the generator that made the cohort (``latent_path``: run.json's record of the
    decoder latent path chosen by validation loss, or None)."""
    vae, diffusion = config.get("vae", {}), config.get("diffusion", {})
    chosen = ("" if not latent_path else " kept for the lower validation loss: " + ", ".join(
        f"{p} {c['validation_loss']:.1f}" for p, c in latent_path["candidates"].items()))
    window, nearest = vae.get("window"), vae.get("neighbour_nearest", vae.get("window"))
    neighbours = (f"{window} neighbours per SNP: the {nearest} nearest, the others linked within "
                  f"{vae.get('neighbour_reach')}" if window and window > nearest else f"window {window}")
    if vae.get("decoder_far_rank"):
        neighbours += (f", and a {vae['decoder_far_rank']}-number summary of the genotypes up to "
                       f"{vae.get('decoder_far_reach')} SNPs back")
    vae_text = (f"a VAE ({vae.get('encoder')} encoder, {vae.get('latent_dim')}-d latent, "
                f"{vae.get('decoder_latent', 'mlp')} latent path{chosen}, {neighbours})")
    covars = f" and the covariates {', '.join(covar_names)}" if covar_names else ""
    return {
        "diffusion": f"SNPgen: {vae_text} and a latent diffusion model ({diffusion.get('timesteps')} steps, "
                     f"{diffusion.get('prediction')}-prediction, classifier-free guidance), conditioned on the "
                     f"trait{covars}.",
        "vae_gaussian": f"baseline: {vae_text} decoding latents from a Gaussian per trait class.",
        "independent": "baseline: every SNP drawn on its own from its genotype frequencies per trait class.",
        "wgan": "a conditional Wasserstein GAN with gradient penalty and Gumbel-softmax genotypes (Xie et al.; "
                "Yelmen et al.), conditioned on the trait.",
        "markov": "a Markov chain along the panel per trait class, each SNP depending on one earlier SNP, from "
                  "genotype-pair counts (LD with that one SNP only).",
    }.get(model or "diffusion", f"generator {model}.")


def _release_text(decision: dict | None) -> str:
    if decision is None:
        return "No release decision was recorded (the card was written outside `export_cohort`)."
    if decision["grade"] == "pass":
        text = f"Grade **pass**: exported on {decision['date']} without a confirmation being needed."
        return text + (f" Note given: \"{decision['reason']}\"." if decision["reason"] else "")
    return (f"Grade **{decision['grade']}**: exported on {decision['date']} **despite the grade**, after the "
            f"explicit confirmation required for a cohort that does not pass, with the reason given: "
            f"\"{decision['reason']}\". Read the report card's non-passing rows before using these files.")


def condition_text(generation: dict, trait_model: dict | None, kind: str | None) -> str:
    """The model card's condition: what the cohort was generated given (``generation_settings``), and where the
    released trait came from (the run's ``trait_model`` record from run.json; ``kind``: the trait's)."""
    from .generation import INDEPENDENT, RULED_CONDITION, WHY_CONDITION, WHY_INDEPENDENT

    g = generation
    condition = next((f"{k.replace('_', ' ')} {v}" for k in ("case_fraction", "label", "value")
                      if (v := g.get(k)) is not None), "the training distribution of the trait")
    drawn = g.get("trait_drawn_from", "condition")
    if drawn == INDEPENDENT:
        condition += f"; the released trait was drawn independently of the genotypes: {WHY_INDEPENDENT}"
    elif drawn == RULED_CONDITION:
        condition += f"; the released class is the one the genotypes were drawn given: {WHY_CONDITION}"
    elif drawn != "condition":
        penalty = (trait_model or {}).get("penalty", "ridge")  # runs before the lasso: ridge
        what = "class" if kind == "binary" else "value"
        condition += (f"; the released trait is not the {what} the genotypes were drawn given but a draw of the "
                      f"run's trait model ({penalty} regression on the training individuals) given each "
                      "individual's genotypes")
    return condition


def model_card(name: str, report: dict, *, run_dir: str | os.PathLike, generation: dict,
               cohort: dict | None = None, panel: dict | None = None, release: dict | None = None,
               fmt: str = "bed") -> str:
    """A Markdown model card for the export ``name``: ``report`` is the evaluation (report.json content),
    ``run_dir`` the run that generated the cohort, ``generation`` its settings (:func:`generation_settings`),
    ``cohort`` the real cohort ({"name", "demo", "n_samples", "n_variants"}; default: as the run recorded it),
    ``panel`` who chose the SNPs (``io.gwas.panel_provenance``; default: as the run recorded it, else not
    known, and said so), ``release`` the
    release decision (:func:`release_gate`), ``fmt`` the genotype format exported (``FORMATS``)."""
    from . import __version__
    from .association import trait_share_summary
    from .evaluation.card import card_markdown
    from .io.gwas import panel_provenance
    from .memorisation import release_warning
    from .runs import read_privacy_check

    run_dir = Path(run_dir)
    prov = read_json(run_dir / "provenance.json") or {}
    info = read_json(run_dir / "config.json") or {}
    config = info.get("train", {})
    history = read_json(run_dir / "history.json") or {}
    done = read_json(run_dir / "run.json") or {}
    trait = info.get("phenotype", {})
    n_snps = info.get("n_snps")
    cohort = cohort or _cohort_from_run(prov)
    g = generation
    sizes = report["provenance"]["sizes"]
    condition = condition_text(g, done.get("trait_model"), trait.get("kind"))
    notes = "".join(f"- {n}\n" for n in report["provenance"].get("notes", []))
    panel = panel or prov.get("snp_panel") or panel_provenance(None, (prov.get("n_train") or 0)
                                                               + (prov.get("n_validation") or 0))
    covar_names = ((g.get("covariates") or {}).get("names")) or []
    covar_text = (f"\n- `{name}.covar.tsv`: each individual's covariates ({', '.join(covar_names)}), drawn from "
                  "per-class summaries of the training individuals' (means, covariances, counts)"
                  if covar_names else "")
    check = read_privacy_check(run_dir)
    check_text = ("no validation privacy check was made (too few validation individuals)" if check is None
                  else check.summary() + (f". **Warning**: {w}" if (w := release_warning(check)) else ""))
    return f"""# Model card: {name}

Synthetic genotypes made by SNPgen Studio {__version__}. **No row is a real person**; every individual was
sampled from a generative model trained on a real cohort. Overall report-card grade: **{report['overall']}**.

## Release decision

{_release_text(release)}

## Files

- `{name}{'/'.join(FORMATS[fmt][0])}`: {FORMATS[fmt][1]}, {g['n']} synthetic individuals x {n_snps} SNPs;
  dosages count the `.bim` column-5 allele (A1); the trait column holds each individual's released trait
  (PLINK coding).
- `{name}.pheno.tsv`: the released trait of each individual; `{name}.provenance.json`: every generation setting.
  Sex (`.fam` column 5) is drawn from the training shares of each individual's class.{covar_text}
- `report.html`, `report.json`: the evaluation report (fidelity, association, utility, privacy).

## Training data

- Cohort `{cohort['name']}`{' (simulated demo)' if cohort.get('demo') else ''}: {cohort['n_samples']} individuals,
  {cohort['n_variants']} SNPs; trait {trait.get('name') or '(none)'} ({trait.get('kind')}).
- The model learnt from {prov.get('n_train')} training individuals (plus {prov.get('n_validation')} for early
  stopping) at a panel of {n_snps} GWAS-selected, LD-clumped SNPs {panel['panel']}.
- {sizes['holdout']} real **holdout** individuals {panel['holdout']}: the report compares with them.

## Model

- {_model_text(config, g.get('model'), covar_names, done.get('decoder_latent'))}
- Epochs: VAE {len(history.get('vae', []))} (best {history.get('vae_best_epoch')}), diffusion
  {len(history.get('diffusion', []))} (best {history.get('diffusion_best_epoch')}); seed {prov.get('seed')};
  device {prov.get('device')}; software {', '.join(f'{k} {v}' for k, v in (prov.get('software') or {}).items())}.
- Memorisation measured while training, on the validation individuals (never the holdout): {check_text}.
- Differential privacy: {_dp_text(done.get("differential_privacy"))}
- The trait's effect per SNP: {trait_share_summary(done.get("trait_share"))}.
- Calibration after training (from the training individuals' mean neighbour r^2 and genotype frequencies only):
  {_calibration_text(done.get("calibration"))}.

## Generation

- {g['n']} individuals from the `{g.get('model')}` generator, condition: {condition}; guidance
  {g.get('guidance')}{_group_mix_text(g.get('group_mix'), done.get('group_mix'))}{_sampler_text(g)}; seed {g['seed']}.

## Evaluation against the real holdout

Each row: the synthetic cohort vs training, beside the real holdout vs training computed the same way (what a
perfect generator would score). Critical rows are marked *.

{card_markdown(report)}

{notes}
## Intended use and limits

- For method development, teaching, pipeline testing and sharing where the report card's privacy rows pass.
- Not for clinical decisions or for inferring anything about individuals of the training cohort.
- Only the {n_snps} panel SNPs are modelled; other variants, relatedness and rare variation are not.
- Privacy is measured (distances to closest records, membership inference, kinship), not guaranteed: a model
  that memorises can leak. Do not filter synthetic individuals by their distance to real ones: the filter itself
  leaks (Ganev & De Cristofaro, "ReconSyn").
"""


def _export_files(synthetic_prefix: str | os.PathLike, report_dir: str | os.PathLike, name: str,
                 card: str, fmt: str = "bed") -> dict[str, bytes]:
    """The export's files by name: ``<name>.bed/.bim/.fam/.pheno.tsv/.provenance.json`` (every file of the
    synthetic prefix, renamed; the genotypes converted to ``fmt``), ``report.html``, ``report.json`` and
    ``MODEL_CARD.md``."""
    prefix = Path(synthetic_prefix)
    files = {}
    for src in sorted(prefix.parent.glob(prefix.name + ".*")):
        suffix = src.name[len(prefix.name):]
        if fmt == "bed" or suffix not in FORMATS["bed"][0]:
            files[f"{name}{suffix}"] = src.read_bytes()
    if not files:
        raise InputError("no synthetic cohort at this prefix", path=str(prefix), hint="give the --out of snpgen generate")
    if fmt != "bed":
        with tempfile.TemporaryDirectory(prefix=".snpgen-export-") as tmp:
            for path in write_genotypes(prefix, Path(tmp) / name, fmt):
                files[path.name] = path.read_bytes()
    for what in REPORT_FILES:
        path = Path(report_dir) / what
        if not path.is_file():
            raise InputError(f"{what} not found", path=str(report_dir), hint="give the --out of snpgen evaluate")
        files[what] = path.read_bytes()
    files["MODEL_CARD.md"] = card.encode()
    return files


def _check_export_folder(out_root: str | os.PathLike, name: str) -> Path:
    """``out_root/name``, or InputError when it exists (an export is never overwritten)."""
    folder = Path(out_root) / name
    if folder.exists():
        raise InputError(f"export folder {name} already exists", path=str(Path(out_root)), hint="choose another name")
    return folder


def _write_export_folder(files: dict[str, bytes], out_root: str | os.PathLike, name: str) -> Path:
    """Write ``files`` into ``out_root/name/``: staged beside it and renamed, so it appears complete or not at
    all; an existing folder is never overwritten."""
    folder = _check_export_folder(out_root, name)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_root))
    try:
        for file_name, data in files.items():
            (staging / file_name).write_bytes(data)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _write_zip(files: dict[str, bytes], name: str, path: str | os.PathLike) -> Path:
    """The same files as a zip (entries ``name/<file>``), written atomically to ``path``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for file_name, data in files.items():
            entry = zipfile.ZipInfo(f"{name}/{file_name}", date_time=time.localtime()[:6])
            entry.external_attr = 0o644 << 16  # -rw-r--r-- when unpacked (writestr's default is 0600)
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def _read_report(report_dir: Path) -> dict:
    path = Path(report_dir) / "report.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("report.json not found", path=str(report_dir), hint="give the --out of snpgen evaluate") from None
    except (OSError, ValueError) as err:
        raise InputError(f"report.json cannot be read ({err})", path=str(path), hint="evaluate the cohort again") from None


def export_cohort(synthetic_prefix: str | os.PathLike, report_dir: str | os.PathLike, run_dir: str | os.PathLike,
                  out_root: str | os.PathLike, name: str, *, report: dict | None = None,
                  generation: dict | None = None, cohort: dict | None = None, panel: dict | None = None,
                  zip_path: str | os.PathLike | None = None, confirm_release: str | None = None,
                  fmt: str = "bed") -> dict:
    """Export a synthetic cohort to ``out_root/<name>/`` (``name`` made safe by :func:`export_name`; an existing
    folder is never overwritten): its PLINK files and sidecars renamed ``<name>.*``, ``report.html``,
    ``report.json`` and ``MODEL_CARD.md``; and the same files as a zip at ``zip_path`` when given.

    ``synthetic_prefix``: ``snpgen generate``'s output; ``report_dir``: ``snpgen evaluate``'s; ``run_dir``: the run
    that generated it. ``report`` (default: read from ``report_dir``), ``generation`` (default: the cohort's
    ``.provenance.json``) and ``cohort`` (see :func:`model_card`) are for callers that already hold them.
    The release gate (:func:`release_gate`): a cohort graded "warn" or "fail" needs ``confirm_release`` (the
    reason), recorded in the model card. Returns {"name", "folder", "zip", "files" (sorted names), "model_card"
    (its text), "release" (the decision)}. ``fmt``: the genotypes' format (``FORMATS``: bed, vcf or pgen).
    """
    check_format(fmt)
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").is_file():
        raise InputError("not a finished run directory (no run.json)", path=str(run_dir),
                         hint="give the --out of snpgen train that generated the cohort")
    name = export_name(name)
    _check_export_folder(out_root, name)
    report = _read_report(Path(report_dir)) if report is None else report
    release = release_gate(report, confirm_release)
    generation = generation_settings(synthetic_prefix) if generation is None else generation
    card = model_card(name, report, run_dir=run_dir, generation=generation, cohort=cohort, panel=panel,
                      release=release, fmt=fmt)
    files = _export_files(synthetic_prefix, report_dir, name, card, fmt)
    folder = _write_export_folder(files, out_root, name)
    written_zip = _write_zip(files, name, zip_path) if zip_path is not None else None
    return {"name": name, "folder": folder, "zip": written_zip, "files": sorted(files), "model_card": card,
            "release": release}
