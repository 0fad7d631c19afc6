"""The ``snpgen`` command line: each subcommand parses its options, calls the public API and prints.

Our own input errors (``InputError``) become one line on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path

from .errors import InputError


# ---------------------------------------------------------------------------------------------------------------
# Option values: refused by the parser, as one line, before any work


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    """A positive whole number (sizes, epochs, steps)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive whole number (at least 1)")
    return value


def _at_least_0(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be a whole number of at least 0")
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"{value} must be in [0, 2^63), e.g. 0")
    return value


def _number(text: str) -> float:
    """A finite number (inf and nan are refused: every numeric option has a finite meaning)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def _names(text: str) -> list[str]:
    """A comma-separated list of column names."""
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name: give NAME,NAME,...")
    return names


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a file or folder name")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (the usage itself is in --help)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_simulate(args: argparse.Namespace) -> None:
    from .simulate import simulate_cohort, write_cohort

    cohort = simulate_cohort(n=args.n, n_snps=args.snps, seed=args.seed)
    paths = write_cohort(cohort, args.out)
    print(f"simulated {args.n} individuals x {cohort.genotypes.n_variants} SNPs -> {', '.join(map(str, paths))}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluation import evaluate, write_report
    from .evaluation.align import check_cohort_sizes
    from .evaluation.card import card_markdown
    from .io.plink import cohort_files, read_bim_fam, read_plink, read_plink_snps
    from .phenotypes import read_phenotype
    from .provenance import read_json
    from .runs import run_summary

    prefixes = {"training": args.real, "holdout": args.holdout, "synthetic": args.synthetic}
    # only the synthetic cohort's SNPs of the real ones (evaluate aligns on them): memory bounded by the panel,
    # whatever the size of a genome-wide .bed
    cohorts = {"synthetic": read_plink(args.synthetic)}
    ids = cohorts["synthetic"].variants["snp"]
    for who in ("training", "holdout"):
        cohorts[who] = read_plink_snps(prefixes[who], ids)
        if cohorts[who].n_variants == 0:
            example = read_bim_fam(prefixes[who])[0]["snp"].iloc[0]
            raise InputError(f"the {who} and synthetic cohorts share no SNP ID (e.g. {example!r}, {ids.iloc[0]!r})",
                             path=str(prefixes[who]), hint="all three must be genotyped on the same panel with the "
                                                           "same SNP IDs (see the .bim column 2)")
    cohorts = {who: cohorts[who] for who in prefixes}
    check_cohort_sizes(*cohorts.values())  # the API skips what tiny sets cannot measure; a command refuses them
    sources = {who: [str(f) for f in cohort_files(p).values()] for who, p in prefixes.items()}
    phenos = {}
    if args.pheno:
        sources["phenotype"] = [args.pheno]
        for who in ("training", "holdout"):
            phenos[who] = read_phenotype(cohorts[who].samples, args.pheno, args.pheno_col)
        try:  # synthetic individuals are usually not in the file: their trait is in their .fam column 6
            phenos["synthetic"] = read_phenotype(cohorts["synthetic"].samples, args.pheno, args.pheno_col)
        except InputError:
            phenos["synthetic"] = None
    elif args.pheno_col:
        raise InputError("--pheno-col needs --pheno FILE", hint="omit both to use .fam column 6")
    populations = None
    if args.populations:
        from .phenotypes import read_labels

        populations = read_labels(cohorts["training"].samples, args.populations, args.population_col)
    shadow, scratch = None, None
    if args.shadow_models is not None:
        import tempfile

        from .pipeline import ShadowTrainer

        if not args.run:
            raise InputError("--shadow-models needs --run RUN_DIR (the attack retrains that run's generator)",
                             hint="add --run, the run that generated --synthetic")
        if args.shadow_models < 4:
            raise InputError(f"--shadow-models {args.shadow_models}: the attack needs at least 4 shadow generators",
                             hint="e.g. --shadow-models 4")
        scratch = tempfile.TemporaryDirectory(prefix="snpgen-shadow-")
        shadow = ShadowTrainer(args.run, scratch.name, args.shadow_models)
    try:
        report = evaluate(cohorts["training"], cohorts["holdout"], cohorts["synthetic"],
                          train_pheno=phenos.get("training"), holdout_pheno=phenos.get("holdout"),
                          synthetic_pheno=phenos.get("synthetic"), seed=args.seed, device=args.device,
                          sources=sources, model=run_summary(args.run) if args.run else None, shadow=shadow,
                          train_populations=populations)
    finally:
        if scratch is not None:
            scratch.cleanup()
    chosen = (read_json(Path(args.run) / "provenance.json") or {}).get("snp_panel") if args.run else None
    if chosen:  # who chose the SNPs, as the run recorded it (and the model card says)
        report["provenance"]["snp_panel"] = {"training_only": chosen["training_only"], "text": chosen["panel"]}
        report["provenance"]["notes"].append(f"SNP panel: {chosen['panel']}")
    paths = write_report(report, args.out)
    print(card_markdown(report))
    for note in report["provenance"]["notes"]:
        print(f"note: {note}")
    print(f"report: {paths['json']}  {paths['html']}")


def _cmd_select(args: argparse.Namespace) -> None:
    import warnings

    import numpy as np

    from .io.gwas import align_gwas, panel_provenance, parse_column_mapping, read_gwas
    from .io.plink import plink_prefix, read_bim_fam, read_plink
    from .phenotypes import read_phenotype
    from .clumping import check_clump_parameters
    from .panel import PanelWarning, read_snp_list, select_panel, write_panel
    from .splits import read_split, split_file_beside

    check_clump_parameters(args.clump_p1, args.clump_p2, args.clump_r2, args.clump_kb)
    prefix = plink_prefix(args.bfile)
    bim, fam = read_bim_fam(prefix)
    split_path = args.split or (split_file_beside(prefix) if split_file_beside(prefix).exists() else None)
    if split_path:
        split = read_split(split_path, fam)
        train = split.train
        found = "" if args.split else " (found next to the .bed)"
        print(f"split {split_path}{found}: {train.size} train / {split.validation.size} validation / "
              f"{split.holdout.size} holdout individuals; only the {train.size} train individuals enter QC and "
              "clumping")
    else:
        train = np.arange(len(fam))
        print(f"split: none given and no {split_file_beside(prefix).name}: all {len(fam)} individuals choose SNPs "
              "(run snpgen split first to keep a holdout out of selection)")
    if args.pheno or args.pheno_col:
        trait = read_phenotype(fam, args.pheno, args.pheno_col).subset(train)
        if trait.kind != "quantitative" and len([c for c in trait.classes().values() if c]) < 2:
            raise InputError(f"trait {trait.name} has a single class among the {train.size} training individuals",
                             path=args.pheno, hint="check the column, or make a split stratified on it")
        print(f"phenotype (training individuals) {trait.describe()}")
    gwas = read_gwas(args.gwas, columns=parse_column_mapping(args.gwas_columns))
    print(f"GWAS {gwas.describe()}")
    genotypes = read_plink(prefix, samples=train)
    not_holdout = len(fam) - (split.holdout.size if split_path else 0)  # validation individuals are no holdout
    warning = panel_provenance(gwas.n_samples_max, not_holdout)["warning"]
    if warning and (args.keep_gwas or args.snps):  # with --snps the GWAS only gives the panel's effects
        print(f"warning: {Path(args.gwas).name}: {warning}" + ("" if args.snps else " (drop --keep-gwas to do so)"),
              file=sys.stderr)
    elif warning:
        gwas = _training_gwas(args, fam, train, genotypes, gwas.n_samples_max, not_holdout)
    aligned = align_gwas(gwas, bim)
    print(f"alignment: {aligned.summary()}")
    snps = read_snp_list(args.snps) if args.snps else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PanelWarning)  # the same text is in panel.notes, printed below
        panel = select_panel(genotypes, aligned, top=args.top, p1=args.clump_p1, p2=args.clump_p2,
                             r2=args.clump_r2, kb=args.clump_kb, maf=args.maf, max_missing=args.max_missing,
                             estimator=args.r2_estimator, snps=snps)
    print(panel.qc.describe())
    if panel.clumps is not None:
        print(f"clumping ({args.r2_estimator} r^2 > {args.clump_r2:g} within {args.clump_kb:g} kb, p1 "
              f"{args.clump_p1:g}, p2 {args.clump_p2:g}): {panel.n_candidates} candidate SNPs -> "
              f"{len(panel.clumps)} index SNPs")
    for note in panel.notes:
        print(f"warning: {note}", file=sys.stderr)
    write_panel(panel, args.out)
    print(f"selected {len(panel)} SNPs on {panel.table['CHR'].nunique()} chromosome(s) -> {args.out}")


def _training_gwas(args: argparse.Namespace, fam, train, genotypes, n_gwas: int, n_not_holdout: int):
    """select's default for a GWAS computed on more individuals than the cohort has outside its holdout
    (``pipeline.recompute_gwas``), written beside --out as OUT.gwas_train.tsv."""
    from .phenotypes import fam_trait_is_empty, read_phenotype
    from .pipeline import recompute_gwas

    trait = None
    if args.pheno or args.pheno_col or not fam_trait_is_empty(fam):
        trait = read_phenotype(fam, args.pheno, args.pheno_col).subset(train)
    out = Path(args.out).with_name(Path(args.out).stem + ".gwas_train.tsv")
    _, gwas, message = recompute_gwas(genotypes, "none" if trait is None else trait.kind,
                                      None if trait is None else trait.values, gwas_path=args.gwas, n_gwas=n_gwas,
                                      n_outside=n_not_holdout, path=out, shown_as=f"-> {out}",
                                      trait_name=None if trait is None else trait.name)
    print(message, file=sys.stderr)
    return gwas


def _cmd_split(args: argparse.Namespace) -> None:
    from .io.plink import plink_path, read_fam
    from .phenotypes import fam_trait_is_empty, read_phenotype
    from .splits import SPLIT_NAMES, read_split, split_samples, trait_strata, write_split_cohorts

    if not 0 < args.holdout < 1:
        raise InputError(f"--holdout {args.holdout} must be a fraction in (0, 1)", hint="e.g. --holdout 0.2")
    fam = read_fam(plink_path(args.bfile, ".fam"))
    trait = None
    if args.pheno or args.pheno_col:
        trait = read_phenotype(fam, args.pheno, args.pheno_col)
    elif not fam_trait_is_empty(fam):
        try:
            trait = read_phenotype(fam)
        except InputError as err:  # an uninformative .fam column 6 only means no stratification
            print(f"note: not stratified: {err}")
    if args.split_file:
        split = read_split(args.split_file, fam)
        print(f"reusing the split recorded in {args.split_file}")
    else:
        strata = None if trait is None else trait_strata(trait.values, trait.kind)
        split = split_samples(len(fam), strata=strata, holdout=args.holdout, validation=args.validation,
                              seed=args.seed)
        how = f"stratified on {trait.name} ({trait.kind})" if trait else "not stratified (no trait given)"
        print(f"split of {len(fam)} individuals, seed {args.seed}, {how}")
    for part in SPLIT_NAMES:
        idx = getattr(split, part)
        if idx.size:
            classes = f": {trait.subset(idx).describe()}" if trait is not None else ""
            print(f"  {part}: {idx.size} individuals{classes}")
    paths = write_split_cohorts(args.bfile, split, args.out)
    print("wrote " + ", ".join(str(p) for p in paths))


def _cmd_train(args: argparse.Namespace) -> None:
    import tempfile
    import warnings

    from tqdm import tqdm

    from .options import apply_flags
    from .pipeline import train_run
    from .runs import TrainConfig, read_config
    from .training import distributed

    if args.top is not None and args.gwas is None:
        raise InputError("--top needs --gwas FILE", hint="or give a fixed panel with --snps PANEL.tsv")
    explicit_epsilon = getattr(args, "opt:dp.epsilon", None)
    if explicit_epsilon is not None and not explicit_epsilon > 0:  # 0 is the default "off", never asked for
        raise InputError(f"--dp-epsilon {explicit_epsilon} is impossible: epsilon must be positive",
                         hint="e.g. --dp-epsilon 3 (smaller = more private); omit it for no differential privacy")
    bars: dict = {}

    def progress(event: dict) -> None:  # one tqdm bar (stderr) per stage, driven by the training callback
        stage = event.get("stage")
        if event["event"] == "message":
            tqdm.write(f"{stage}: {event['message']}", file=sys.stderr)
        elif event["event"] == "start":
            # redirected to a file, a bar redrawn ten times a second becomes thousands of lines: redraw rarely
            bars[stage] = tqdm(total=event["n_epochs"], initial=event.get("epoch", 0), desc=stage, unit="epoch",
                               file=sys.stderr, leave=True, dynamic_ncols=True,
                               mininterval=0.1 if sys.stderr.isatty() else 30.0)
        elif event["event"] == "epoch" and stage in bars:
            losses = event["losses"]
            bars[stage].set_postfix({k: f"{losses[k]:.4g}" for k in ("train", "val") if k in losses})
            bars[stage].update(event["epoch"] - bars[stage].n)
        elif event["event"] == "end" and stage in bars:
            bars.pop(stage).close()
            how = {"early_stopping": "stopped early",
                   "memorisation": "stopped by the memorisation check (the last safe weights kept)"}.get(
                event["stopped"], "done")
            tqdm.write(f"{stage}: {how} after {event['epoch']} epochs, best epoch {event['best_epoch']}",
                       file=sys.stderr)

    config = apply_flags(read_config(args.config) if args.config else TrainConfig(), args)
    with warnings.catch_warnings(), distributed() as (rank, n_ranks), tempfile.TemporaryDirectory() as scratch:
        warnings.simplefilter("ignore", RuntimeWarning)  # "no CUDA: CPU" is reported below instead
        # under torchrun every rank trains the same model (training.fit shares each batch); rank 0 writes the run,
        # the others write theirs to a scratch folder that is dropped
        out_dir = args.out if rank == 0 else Path(scratch) / "run"
        try:
            out = train_run(args.bfile, out_dir, pheno_path=args.pheno, pheno_col=args.pheno_col,
                            covar_path=args.covar, covar_names=args.covar_name, gwas_path=args.gwas, top=args.top,
                            panel_path=args.snps, config=config, seed=args.seed, device=args.device,
                            epochs=args.epochs, callback=progress if rank == 0 else None,
                            resume=args.resume and rank == 0, keep_gwas=args.keep_gwas)
        finally:
            for bar in bars.values():
                bar.close()
    if rank == 0:
        print(f"trained run -> {out}" + (f" ({n_ranks} processes)" if n_ranks > 1 else ""))


def _cmd_generate(args: argparse.Namespace) -> None:
    from .generation import INDEPENDENT, RULED_CONDITION, WHY_CONDITION, WHY_INDEPENDENT, generate
    from .provenance import read_json

    prefix = generate(args.run, args.n, out_prefix=args.out, case_fraction=args.case_fraction, label=args.label,
                      value=args.value, guidance=args.guidance, steps=args.steps, sampler=args.sampler,
                      seed=args.seed, sample=args.sample, temperature=args.temperature, latent_noise=args.latent_noise,
                      group_mix=args.group_mix, covariate_values=args.covar_value, model=args.model, device=args.device,
                      trait_from=args.trait_from, overwrite=args.force)
    prov = read_json(prefix.with_name(prefix.name + ".provenance.json"))
    extra = ", .covar.tsv" if Path(f"{prefix}.covar.tsv").exists() else ""
    print(f"generated {args.n} individuals ({args.model or prov['model']}) -> {prefix}.bed/.bim/.fam, "
          f"{prefix}.pheno.tsv{extra}")
    kept = f" ({args.n:,} kept of {prov['draws']:,} drawn to fill each class)" if prov["draws"] > args.n else ""
    drawn = prov["trait_drawn_from"]
    if drawn == INDEPENDENT:
        print(f"the released trait is drawn independently of the genotypes{kept}: {WHY_INDEPENDENT}")
    elif drawn == RULED_CONDITION:
        print(f"the released trait is the condition the genotypes were drawn given: {WHY_CONDITION}")
    elif drawn != "condition":
        print(f"the released trait is the run's trait model's draw given each individual's genotypes{kept}")
    _print_release_check(args.run)


def _print_release_check(run_dir) -> None:
    """The run's validation privacy check, and the one-line warning when it failed (the release gate)."""
    from .memorisation import release_warning
    from .runs import read_privacy_check

    check = read_privacy_check(run_dir)
    if check is None:
        print("note: this run has no validation privacy check (too few validation individuals); "
              "grade the cohort with snpgen evaluate before sharing it", file=sys.stderr)
        return
    print(check.summary())
    warning = release_warning(check)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _cmd_gwas(args: argparse.Namespace) -> None:
    from .association import gwas_table, lambda_gc, write_gwas_table
    from .io.plink import plink_path, read_fam, read_plink
    from .phenotypes import read_phenotype
    from .pipeline import gwas_covariates
    from .splits import read_split

    if args.pheno_col and not args.pheno:
        raise InputError("--pheno-col needs --pheno FILE", hint="omit both to use .fam column 6")
    fam = read_fam(plink_path(args.bfile, ".fam"))
    rows = read_split(args.split, fam).train if args.split else None
    genotypes = read_plink(args.bfile, samples=rows)
    trait = read_phenotype(genotypes.samples, args.pheno, args.pheno_col)
    covariates, adjusted = gwas_covariates(genotypes, args.covar, args.covar_name, args.pcs)
    table = gwas_table(genotypes, trait.values, trait.kind, covariates)
    write_gwas_table(table, args.out)
    test = "logistic" if trait.kind == "binary" else "linear"
    part = " (the split's train part)" if args.split else ""
    print(f"{test} GWAS of {trait.name} on {genotypes.n_samples} individuals{part} x {genotypes.n_variants} SNPs"
          f"{f', adjusted for {adjusted}' if adjusted else ''} ({int(table['P'].notna().sum())} with a p-value; "
          f"genomic inflation λGC {lambda_gc(table['P']):.2f}) -> {args.out}")


def _cmd_export(args: argparse.Namespace) -> None:

    from .export import export_cohort, export_name

    name = export_name(args.name or Path(args.synthetic).name)
    zip_path = Path(args.out) / f"{name}.zip" if args.zip else None
    result = export_cohort(args.synthetic, args.report, args.run, args.out, name, zip_path=zip_path,
                           confirm_release=args.confirm_release, fmt=args.format)
    if result["release"]["grade"] != "pass":
        print(f"warning: exported a cohort graded {result['release']['grade']}; the confirmation is recorded in "
              "MODEL_CARD.md", file=sys.stderr)
    print(f"exported {', '.join(result['files'])} -> {result['folder']}"
          + (f" and {result['zip']}" if result["zip"] else ""))


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    done = run_batch(args.jobs, args.out, address=args.address, callback=print)
    print(f"{len(done['results']) - len(done['failed'])} of {len(done['results'])} jobs finished -> {done['tsv']}  "
          f"{done['html']}")
    if done["failed"]:
        print(f"warning: {len(done['failed'])} job(s) failed after a retry: {', '.join(done['failed'])} (their errors "
              "are in results.tsv; run the same command again to retry them)", file=sys.stderr)
        return 1
    return 0


# Subcommands registered below; each entry: name -> (help, add_arguments, handler)
def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=_path, required=True, help="output prefix")
    p.add_argument("--n", type=_count, default=2000, help="individuals (default 2000)")
    p.add_argument("--snps", type=_count, default=1000, help="SNPs with MAF >= 1%% (default 1000)")
    p.add_argument("--seed", type=_seed, default=0)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, metavar="TRAIN_PREFIX", help="PLINK prefix of the training cohort")
    p.add_argument("--holdout", required=True, metavar="HOLDOUT_PREFIX",
                   help="PLINK prefix of real individuals never used for training (the reference)")
    p.add_argument("--synthetic", required=True, metavar="SYN_PREFIX", help="PLINK prefix of the synthetic cohort")
    p.add_argument("--run", metavar="RUN_DIR", help="the run that generated it: the report's summary names it, "
                                                    "hashes its weights and states its epsilon (DP runs)")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (header FID IID NAME ...); default .fam column 6")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where the distance computations run (default auto: CUDA when present)")
    p.add_argument("--shadow-models", type=_whole, metavar="N",
                   help="also run the shadow-model membership attack: retrain --run's generator N (>= 4) times on "
                        "random halves of --real (N trainings of the run's pipeline: minutes each)")
    p.add_argument("--populations", metavar="FILE",
                   help="the training individuals' known populations (a table with IID and --population-col, e.g. "
                        "1000 Genomes' populations.tsv): the privacy notes add what a generator that knows only "
                        "these populations' frequencies gets (context, not a grade)")
    p.add_argument("--population-col", default="POP", metavar="NAME",
                   help="the population column in --populations (default %(default)s)")
    p.add_argument("--out", type=_path, required=True, metavar="DIR", help="output folder for report.json and report.html")



def _add_keep_gwas(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-gwas", action="store_true",
                   help="rank the SNPs by --gwas as given even when it states (N, NMISS, OBS_CT) more individuals "
                        "than the cohort has outside its holdout; by default such a GWAS is recomputed on the "
                        "training individuals, so holdout individuals cannot rank the SNPs")


def _add_select(p: argparse.ArgumentParser) -> None:
    from .ld import R2_ESTIMATORS
    from .panel import PanelOptions

    p.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK prefix of the cohort")
    p.add_argument("--gwas", required=True, metavar="FILE",
                   help="summary statistics (PLINK 1.9/2, REGENIE, BOLT-LMM, GWAS-SSF or a generic table; .gz ok)")
    p.add_argument("--gwas-columns", metavar="FIELD=COLUMN,...", help="explicit GWAS columns, e.g. p=PVAL,a1=EA")
    _add_keep_gwas(p)
    d = PanelOptions()
    p.add_argument("--top", type=_count, default=d.top, metavar="K",
                   help="panel size: the K clumped index SNPs with the smallest p (default %(default)s)")
    p.add_argument("--snps", metavar="FILE", help="use these SNPs instead (one ID per line, or a table with a SNP "
                   "column); --top and clumping are then ignored")
    p.add_argument("--clump-p1", type=_number, default=d.p1, metavar="P",
                   help="index SNPs need p <= P (default %(default)s: every SNP is a candidate; PLINK's default is "
                        "1e-4)")
    p.add_argument("--clump-p2", type=_number, default=d.p2, metavar="P",
                   help="clumped SNPs listed need p < P, P >= p1 (default %(default)s; PLINK's default is 0.01)")
    p.add_argument("--clump-r2", type=_number, default=d.r2, metavar="R",
                   help="SNPs with r^2 > R to an index SNP join its clump (default %(default)s, as PLINK)")
    p.add_argument("--clump-kb", type=_number, default=d.kb, metavar="KB",
                   help="clumping window: SNPs less than KB kilobases away (default %(default)s, as PLINK)")
    p.add_argument("--r2-estimator", choices=list(R2_ESTIMATORS), default=d.estimator,
                   help="haplotype: PLINK 1.9 --clump's r^2 (default); dosage: squared correlation of dosages")
    p.add_argument("--maf", type=_number, default=d.maf,
                   help="minimum minor-allele frequency (default %(default)s)")
    p.add_argument("--max-missing", type=_number, default=d.max_missing, metavar="SHARE",
                   help="maximum share of missing calls per SNP (default %(default)s)")
    p.add_argument("--split", metavar="SPLIT.tsv", help="recorded split (FID IID SPLIT): only its train part chooses "
                   "SNPs (default PREFIX.split.tsv when it exists, else every individual)")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file to validate the trait (header FID IID NAME ...)")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--out", type=_path, required=True, metavar="PANEL.tsv", help="output panel (SNP CHR BP A1 A2 BETA P)")


def _add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK prefix of the cohort")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file to stratify on (default .fam column 6, if set)")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--holdout", type=_number, default=0.2, help="share of individuals held out (default 0.2)")
    p.add_argument("--validation", type=_number, default=0.0, help="share for validation (default 0)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--split-file", metavar="SPLIT.tsv", help="reuse this recorded split instead of drawing one")
    p.add_argument("--out", type=_path, required=True, metavar="OUTPREFIX",
                   help="writes OUTPREFIX.train/.holdout(.validation).bed/.bim/.fam and OUTPREFIX.split.tsv")

def _add_train(p: argparse.ArgumentParser, with_options: bool = False) -> None:
    p.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK prefix of the training cohort")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (header FID IID NAME ...); default .fam column 6")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--covar", metavar="FILE", help="covariate file (header FID IID NAME ...): the diffusion "
                   "conditions on them and generated individuals get them (PREFIX.covar.tsv)")
    p.add_argument("--covar-name", type=_names, metavar="A,B", help="covariate columns of --covar (default: all)")
    p.add_argument("--gwas", metavar="FILE", help="GWAS summary statistics to choose the panel from (with --top)")
    p.add_argument("--top", type=_count, metavar="K", help="panel size chosen from --gwas (default 1000)")
    _add_keep_gwas(p)
    p.add_argument("--snps", metavar="PANEL.tsv", help="a fixed panel instead (snpgen select output or SNP list)")
    p.add_argument("--out", type=_path, required=True, metavar="RUN_DIR", help="output run directory (new or empty)")
    p.add_argument("--config", metavar="FILE", help="JSON settings, e.g. {\"vae\": {\"latent_dim\": 32}}")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CUDA when present, else the CPU (one seed trains a different model on each)")
    p.add_argument("--epochs", type=_count, metavar="N",
                   help="maximum VAE epochs (the diffusion's scale in proportion; early stopping may end sooner)")
    p.add_argument("--resume", action="store_true", help="continue an unfinished run in --out")
    if with_options:  # every setting of runs.TrainConfig, declared once in its dataclasses
        from .options import add_flags
        from .runs import TrainConfig

        add_flags(p, TrainConfig())


def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory written by snpgen train")
    p.add_argument("--n", type=_count, required=True, metavar="N", help="individuals to generate")
    cond = p.add_mutually_exclusive_group()
    cond.add_argument("--case-fraction", type=_number, metavar="F", help="binary trait: share of cases in [0, 1]")
    cond.add_argument("--label", metavar="VALUE", help="one class for everyone (categorical label; case/control)")
    cond.add_argument("--value", type=_number, metavar="X", help="quantitative trait: this value for everyone")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--model", choices=["diffusion", "vae_gaussian", "independent", "wgan", "markov"],
                   help="the generator: default the one the run trained (diffusion, or wgan / markov for snpgen "
                        "train --model wgan / markov); vae_gaussian and independent are baselines")
    from .generation import SAMPLING_KEYWORDS, TRAIT_FROM, TRAIT_FROM_HELP, sampling_flag
    from .models.generators import SamplingOptions
    from .options import options

    for o in options(SamplingOptions()):  # declared once, with the Generate page's widgets
        dest = SAMPLING_KEYWORDS.get(o.name, o.name)
        if o.type is bool:
            p.add_argument(sampling_flag(o), dest=dest, action="store_false", help=o.help)
        else:
            typed = {"choices": o.choices} if o.choices else {"type": _count if o.type is int else _number}
            p.add_argument(sampling_flag(o), dest=dest, default=o.default, help=o.describe(), **typed)
    p.add_argument("--trait-from", choices=TRAIT_FROM, default=TRAIT_FROM[0],
                   help=TRAIT_FROM_HELP + f" (default {TRAIT_FROM[0]})")
    p.add_argument("--covar-value", action="append", metavar="NAME=X",
                   help="fix a covariate of a run trained with --covar for everyone (repeatable; the others are "
                        "drawn given it; default: all drawn from the training distribution of each class)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where sampling runs (default cpu; a seed repeats its cohort, and CUDA draws another one, "
                        "which the seed repeats on that GPU)")
    p.add_argument("--out", type=_path, required=True, metavar="PREFIX", help="output PLINK prefix")
    p.add_argument("--force", action="store_true", help="replace an existing output set at --out")


def _add_gwas(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK prefix of the (training) cohort")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (header FID IID NAME ...); default .fam column 6")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--split", metavar="SPLIT.tsv", help="recorded split (FID IID SPLIT): analyse its train part only")
    p.add_argument("--covar", metavar="FILE", help="covariate file (header FID IID NAME ...) to adjust for")
    p.add_argument("--covar-name", type=_names, metavar="A,B", help="covariate columns of --covar (default: all)")
    from .pipeline import PCS_HELP

    p.add_argument("--pcs", type=_at_least_0, default=0, metavar="K", help=PCS_HELP)
    p.add_argument("--out", required=True, metavar="GWAS.tsv",
                   help="output table: SNP CHR BP A1 A2 A1_FREQ (OR) BETA SE P N, readable by --gwas")


def _add_export(p: argparse.ArgumentParser) -> None:
    from .export import FORMATS

    p.add_argument("--synthetic", required=True, metavar="SYN_PREFIX", help="PLINK prefix written by snpgen generate")
    p.add_argument("--report", required=True, metavar="DIR", help="report folder written by snpgen evaluate")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="the run directory that generated the cohort")
    p.add_argument("--out", required=True, metavar="DIR", help="exports go to DIR/NAME/ (never overwritten)")
    p.add_argument("--name", metavar="NAME", help="export name (default: the synthetic prefix's name)")
    p.add_argument("--zip", action="store_true", help="also write DIR/NAME.zip")
    p.add_argument("--format", choices=list(FORMATS), default="bed",
                   help="genotype files: bed = PLINK 1 .bed/.bim/.fam (default), vcf = bgzipped VCF (.vcf.gz), "
                        "pgen = PLINK 2 .pgen/.pvar/.psam (needs pgenlib)")
    p.add_argument("--confirm-release", metavar="REASON",
                   help="required to export a cohort whose report-card grade is warn or fail: why it is released "
                        "anyway (recorded in MODEL_CARD.md)")


def _add_batch(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobs", type=_path, metavar="JOBS.toml",
                   help="job file: [data] train, holdout, pheno, gwas; [grid] trait, panel_size, model, seed; [job] "
                        "epochs, config, n, cpus, gpus (see README, 'Many jobs on Ray')")
    p.add_argument("--out", type=_path, required=True, metavar="DIR",
                   help="results folder: runs/, jobs/<id>/, results.tsv, results.html (a re-run skips finished jobs)")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="an existing Ray cluster (its head node, or auto); default: a local Ray instance")


COMMANDS = {
    "evaluate": ("evaluate a synthetic cohort against training and a real holdout: report.json + report.html",
                 _add_evaluate, _cmd_evaluate),
    "simulate": ("simulate a realistic cohort with msprime (demo and test data)", _add_simulate, _cmd_simulate),
    "select": ("choose the SNP panel: QC, LD clumping (PLINK --clump rules) and top-K GWAS SNPs, on training "
               "individuals only", _add_select, _cmd_select),
    "split": ("split a cohort into train / holdout (/ validation) PLINK files, stratified on the trait",
              _add_split, _cmd_split),
    "train": ("train the VAE + conditional latent diffusion (and baselines) on a cohort: a run directory",
              _add_train, _cmd_train),
    "generate": ("generate a synthetic PLINK cohort from a trained run, for a mix of conditions",
                 _add_generate, _cmd_generate),
    "gwas": ("per-SNP association (PLINK 1.9 --logistic / --linear equivalent) on the given individuals: a GWAS "
             "table for select and train", _add_gwas, _cmd_gwas),
    "export": ("export a synthetic cohort with its report and a model card: a folder (and zip) to share",
               _add_export, _cmd_export),
    "batch": ("run a grid of (trait, panel size, model, seed) train -> generate -> evaluate jobs on Ray: one "
              "comparison table", _add_batch, _cmd_batch),
}


def build_parser(train_options: bool = False) -> argparse.ArgumentParser:
    """The snpgen parser; ``train_options`` adds a flag per training setting to ``train`` (it imports the models,
    so only when that subcommand runs)."""
    from . import __version__

    parser = _Parser(prog="snpgen", description="SNPgen Studio: synthetic phenotype-conditioned genotype cohorts")
    parser.add_argument("--version", action="version", version=f"snpgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if add_args is _add_train:
            add_args(p, train_options)
        else:
            add_args(p)
        p.set_defaults(handler=handler)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every ``finally`` and cleanup block runs (no leftover files)."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    from .io.atomic import check_output_path, disk_full_message, removing_new_folders

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(train_options=argv[:1] == ["train"]).parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed as one line
        return int(done.code or 0)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        check_output_path(args.out)  # every subcommand writes to --out: refuse an unwritable place before any work
        with removing_new_folders(args.out):
            status = args.handler(args)  # None, or an exit status of its own (batch: 1 when a job failed)
    except InputError as err:
        return _fail(args.command, str(err))
    except OSError as err:  # the file system refused: disk full, read-only, not writable
        message = disk_full_message(err)
        if message is None:
            raise
        return _fail(args.command, message)
    except MemoryError:
        return _fail(args.command, "not enough memory (use a smaller cohort, panel or --n, or a bigger machine)")
    except Terminated:
        print(f"snpgen {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"snpgen {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return status or 0


def _fail(command: str, message: str) -> int:
    print(f"snpgen {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
