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


# Subcommands registered below; each entry: name -> (help, add_arguments, handler)
def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output prefix")
    p.add_argument("--n", type=int, default=2000, help="individuals (default 2000)")
    p.add_argument("--snps", type=int, default=1000, help="SNPs with MAF >= 1%% (default 1000)")
    p.add_argument("--seed", type=int, default=0)


COMMANDS = {
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
