"""Benchmark: the release of a new user on a cohort the project never saw, through the real ``snpgen`` command line.

Per msprime seed S (pick them fresh, e.g. from ``$RANDOM``, so no setting was chosen on them) and protocol variant:

    snpgen simulate --out cohort --n 3000 --snps 6000 --seed S
    snpgen split    --bfile cohort --seed 1 --out cohort
    snpgen gwas     --bfile cohort.train --out gwas.tsv [--pcs K]          # not ancestry-adjusted unless --pcs
    snpgen train    --bfile cohort.train --gwas gwas.tsv --top 1000 --seed 1 --out run_<variant>
    snpgen generate --run run_<variant> --n 2400 --case-fraction 0.25 --seed 1 --out syn_<variant>
    snpgen evaluate --real cohort.train --holdout cohort.holdout --synthetic syn_<variant> --run run_<variant> \\
                    --out eval_<variant>

``--trait QT`` runs the same protocol on the simulated quantitative trait instead of CASE: ``gwas``, ``train`` and
``evaluate`` get ``--pheno cohort.pheno.tsv --pheno-col QT``, ``generate`` no case fraction, and every file and row
of the variant is labelled ``<variant>_qt``.

Variants: ``default`` (every default; the GWAS of ``snpgen gwas`` as it comes, not adjusted for ancestry) and
``pcsK`` (``snpgen gwas --pcs K``: the panel chosen from an association adjusted for the training individuals'
top K principal components). Then ``--draws`` synthetic cohorts as large as the training part are scored against
the training part and the real holdout with ``bench_privacy_draws.score_run`` (the report's functions; detection,
TSTR / TRTR and association copying included), and the single card's grade, TSTR and TRTR are read from
``eval_<variant>/report.json``. A step whose output exists is not redone. ``--guidance G`` draws with that
classifier-free guidance instead of ``generate``'s (rows labelled ``<variant>_g<G>``, without the card's columns,
which are the default's). Rows (means over the draws, and each draw) go to ``benchmarks/results/unseen.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_unseen.py --seeds 10899,6492 --variants default,pcs10
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "unseen.json"
WORK = Path("/tmp/snpgen-bench/unseen")
SNPGEN = [sys.executable, "-m", "snpgen_core"]


def snpgen(work: Path, log: str, *args: str) -> None:
    with open(work / log, "w") as out:
        subprocess.run([*SNPGEN, *args], cwd=work, stdout=out, stderr=subprocess.STDOUT, check=True)


def release(work: Path, seed: int, variant: str, trait: str = "CASE") -> None:
    """The command-line protocol of the module docstring for one cohort, variant and trait (steps already done are
    kept)."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "cohort.bed").exists():
        snpgen(work, "simulate.log", "simulate", "--out", "cohort", "--n", "3000", "--snps", "6000",
               "--seed", str(seed))
    if not (work / "cohort.train.bed").exists():
        snpgen(work, "split.log", "split", "--bfile", "cohort", "--seed", "1", "--out", "cohort")
    tag = label(variant, trait)
    pheno = [] if trait == "CASE" else ["--pheno", "cohort.pheno.tsv", "--pheno-col", trait]
    pcs = int(variant[3:]) if variant.startswith("pcs") else 0
    gwas = label(f"gwas_pc{pcs}" if pcs else "gwas", trait) + ".tsv"
    if not (work / gwas).exists():
        snpgen(work, f"gwas_{tag}.log", "gwas", "--bfile", "cohort.train", *pheno, "--out", gwas, "--pcs", str(pcs))
    if not (work / f"run_{tag}" / "run.json").exists():
        snpgen(work, f"train_{tag}.log", "train", "--bfile", "cohort.train", *pheno, "--gwas", gwas, "--top",
               "1000", "--seed", "1", "--out", f"run_{tag}")
    if not (work / f"eval_{tag}" / "report.json").exists():
        mix = ["--case-fraction", "0.25"] if trait == "CASE" else []
        snpgen(work, f"generate_{tag}.log", "generate", "--run", f"run_{tag}", "--n", "2400", *mix, "--seed", "1",
               "--out", f"syn_{tag}")
        snpgen(work, f"evaluate_{tag}.log", "evaluate", "--real", "cohort.train", "--holdout", "cohort.holdout",
               "--synthetic", f"syn_{tag}", "--run", f"run_{tag}", *pheno, "--out", f"eval_{tag}")


def label(variant: str, trait: str) -> str:
    """The files' and rows' name of a variant: ``default``, ``pcs10``; ``default_qt`` for the quantitative trait."""
    return variant if trait == "CASE" else f"{variant}_{trait.lower()}"


def cli_cohort(work: Path, variant: str, trait: str = "CASE") -> dict:
    """The cohort as the command line left it, on the run's panel: ``bench_privacy_draws``' prep dict (train,
    holdout, trait over both, split)."""
    from snpgen_core.io.plink import read_plink
    from snpgen_core.phenotypes import Phenotype, read_phenotype
    from snpgen_core.runs import panel_indices

    train, holdout = read_plink(work / "cohort.train"), read_plink(work / "cohort.holdout")
    keep = panel_indices(work / f"run_{label(variant, trait)}" / "panel.bim", train.variants)
    pheno = () if trait == "CASE" else (work / "cohort.pheno.tsv", trait)  # CASE: the .fam's column 6
    a, b = (read_phenotype(g.samples, *pheno) for g in (train, holdout))
    return {"train": train.subset(variants=keep), "holdout": holdout.subset(variants=keep),
            "trait": Phenotype(a.name, a.kind, np.concatenate([a.values, b.values]), a.labels),
            "split": SimpleNamespace(train=np.arange(train.n_samples),
                                     holdout=train.n_samples + np.arange(holdout.n_samples))}


def scored(work: Path, variant: str, draws: int, guidance: float | None = None, group_mix: bool = True,
           trait: str = "CASE") -> dict:
    """``bench_privacy_draws.score_run`` on the run."""
    from bench_privacy_draws import score_run

    return score_run(cli_cohort(work, variant, trait), work / f"run_{label(variant, trait)}", draws, utility=True,
                     detection=True, guidance=guidance, group_mix=group_mix)


def card(work: Path, tag: str) -> dict:
    """The single card's grade and trait rows, and how many of the simulated causal SNPs the panel holds (``tag``:
    the variant's ``label``)."""
    import pandas as pd

    report = json.loads((work / f"eval_{tag}" / "report.json").read_text())
    tstr = next(v for k, v in report["utility"].items() if k in ("tstr_auc", "tstr_r"))
    panel = pd.read_csv(work / f"run_{tag}" / "panel.bim", sep="\t", header=None)[1].astype(str)
    causal = pd.read_csv(work / "cohort.causal.tsv", sep="\t")["SNP"].astype(str)
    return {"card": report["overall"], "card_tstr": tstr["value"], "card_trtr": tstr["reference"],
            "causal_in_panel": int(causal.isin(set(panel)).sum()), "causal": len(causal)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", required=True, help="msprime seeds, comma-separated (fresh ones)")
    ap.add_argument("--variants", default="default", help="default and/or pcsK, comma-separated")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=None, help="the draws' guidance (default: generate's)")
    ap.add_argument("--no-group-mix", dest="group_mix", action="store_false",
                    help="the draws without the classes' latent group mix (SamplingOptions.group_mix); rows "
                         "labelled <variant>_nomix")
    ap.add_argument("--trait", default="CASE", choices=("CASE", "QT"), help="the simulated trait (default CASE)")
    ap.add_argument("--work", default=str(WORK))
    args = ap.parse_args()
    for variant in args.variants.split(","):
        if variant != "default" and not (variant.startswith("pcs") and variant[3:].isdigit()):
            ap.error(f"--variants: {variant!r} is neither default nor pcsK (e.g. pcs10)")
    import torch

    torch.set_num_threads(1)
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in args.variants.split(","):
            work = Path(args.work) / f"s{seed}"
            t0 = time.perf_counter()
            release(work, seed, variant, args.trait)
            draws = scored(work, variant, args.draws, args.guidance, args.group_mix, args.trait)
            tag = label(variant, args.trait)
            graded = card(work, tag)
            if args.guidance is not None or not args.group_mix:  # the card graded generate's own default draw
                graded = {"causal_in_panel": graded["causal_in_panel"], "causal": graded["causal"]}
            name = tag if args.guidance is None else f"{tag}_g{args.guidance:g}"
            name += "" if args.group_mix else "_nomix"
            row = {"seed": seed, "variant": name, "draws": args.draws,
                   **{m: round(float(np.mean(v)), 4) for m, v in draws.items()}, **graded,
                   "per_draw": draws, "machine": machine(), "load": os.getloadavg(),
                   "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps({k: v for k, v in row.items() if k != "per_draw"}), flush=True)
            record_row(RESULTS, row, lambda r: (r["seed"], r["variant"]))


if __name__ == "__main__":
    main()
