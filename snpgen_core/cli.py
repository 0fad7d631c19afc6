"""The ``snpgen`` command line: each subcommand parses its options, calls the public API and prints.

Our own input errors (``InputError``) become one line on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import sys

from .errors import InputError


def _cmd_simulate(args: argparse.Namespace) -> None:
    from .simulate import simulate_cohort, write_cohort

    cohort = simulate_cohort(n=args.n, n_snps=args.snps, seed=args.seed)
    paths = write_cohort(cohort, args.out)
    print(f"simulated {args.n} individuals x {cohort.genotypes.n_variants} SNPs -> {', '.join(map(str, paths))}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .evaluation import evaluate, write_report
    from .evaluation.report import card_markdown
    from .io.plink import plink_prefix, read_plink
    from .phenotypes import read_phenotype

    prefixes = {"training": args.real, "holdout": args.holdout, "synthetic": args.synthetic}
    cohorts = {who: read_plink(p) for who, p in prefixes.items()}
    sources = {who: [str(plink_prefix(p).with_suffix(s)) for s in (".bed", ".bim", ".fam")]
               for who, p in prefixes.items()}
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
    report = evaluate(cohorts["training"], cohorts["holdout"], cohorts["synthetic"],
                      train_pheno=phenos.get("training"), holdout_pheno=phenos.get("holdout"),
                      synthetic_pheno=phenos.get("synthetic"), seed=args.seed, device=args.device, sources=sources)
    paths = write_report(report, args.out)
    print(card_markdown(report))
    for note in report["provenance"]["notes"]:
        print(f"note: {note}")
    print(f"report: {paths['json']}  {paths['html']}")


# Subcommands registered below; each entry: name -> (help, add_arguments, handler)
def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output prefix")
    p.add_argument("--n", type=int, default=2000, help="individuals (default 2000)")
    p.add_argument("--snps", type=int, default=1000, help="SNPs with MAF >= 1%% (default 1000)")
    p.add_argument("--seed", type=int, default=0)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", required=True, metavar="TRAIN_PREFIX", help="PLINK prefix of the training cohort")
    p.add_argument("--holdout", required=True, metavar="HOLDOUT_PREFIX",
                   help="PLINK prefix of real individuals never used for training (the reference)")
    p.add_argument("--synthetic", required=True, metavar="SYN_PREFIX", help="PLINK prefix of the synthetic cohort")
    p.add_argument("--pheno", metavar="FILE", help="phenotype file (header FID IID NAME ...); default .fam column 6")
    p.add_argument("--pheno-col", metavar="NAME", help="phenotype column in --pheno")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where the distance computations run (default auto: CUDA when present)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for report.json and report.html")


COMMANDS = {
    "evaluate": ("evaluate a synthetic cohort against training and a real holdout: report.json + report.html",
                 _add_evaluate, _cmd_evaluate),
    "simulate": ("simulate a realistic cohort with msprime (demo and test data)", _add_simulate, _cmd_simulate),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="snpgen", description="SNPgen Studio: synthetic phenotype-conditioned genotype cohorts")
    parser.add_argument("--version", action="version", version=f"snpgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except InputError as err:
        print(f"snpgen {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"snpgen {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
