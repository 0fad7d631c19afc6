"""Benchmark: utility, fidelity and the attacks of the report card at epsilon 1, 3, 8 and without differential
privacy, on one small simulated cohort (2 CPU cores: minutes per point, run with ``nice -n 19``).

Cohort: ``simulate_cohort(n=N, n_snps=M, seed=S)``, its recorded split (train / holdout) and training-only GWAS, a
clumped panel of ``--top`` SNPs, trait CASE. Every point trains the real pipeline (``train_run``) with the same
settings and epochs (the DP points run every epoch; the non-DP point may stop early), generates as many
individuals as the holdout (case fraction of the training part) and scores them with ``evaluate`` against the real
holdout. Prints a Markdown table and appends the rows to ``benchmarks/results/dp.json``.

    nice -n 19 .venv/bin/python benchmarks/bench_dp.py [--n 1000] [--snps 300] [--top 200] [--epochs 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
ROWS = [("fidelity", "ld_r", "LD r"), ("fidelity", "detection_auc", "detection AUC"),
        ("utility", "tstr_auc", "TSTR AUC"), ("privacy", "membership_auc", "membership AUC"),
        ("privacy", "dcr_share", "DCR share"), ("privacy", "domias_auc", "DOMIAS AUC"),
        ("privacy", "attribute_inference_gap", "attribute inference gap")]


def main() -> None:
    from snpgen_core.evaluation import EvaluationConfig, evaluate
    from snpgen_core.generation import generate
    from snpgen_core.io.plink import read_plink
    from snpgen_core.pipeline import train_run
    from snpgen_core.runs import run_summary
    from snpgen_core.simulate import simulate_cohort, write_cohort
    from snpgen_core.splits import write_split_cohorts

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--snps", type=int, default=300)
    ap.add_argument("--top", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epsilons", default="1,3,8,0", help="0 = no differential privacy")
    args = ap.parse_args()
    print(machine())
    config = {"vae_fit": {"epochs": args.epochs, "min_epochs": 0},
              "diffusion_fit": {"epochs": 3 * args.epochs, "min_epochs": 0, "val_repeats": 1}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cohort = simulate_cohort(n=args.n, n_snps=args.snps, seed=args.seed)
        write_cohort(cohort, tmp / "sim")
        write_split_cohorts(tmp / "sim", cohort.split, tmp / "c")
        train, holdout = read_plink(tmp / "c.train"), read_plink(tmp / "c.holdout")
        case_fraction = float((train.samples["pheno"].astype(str) == "2").mean())
        for eps in (float(e) for e in args.epsilons.split(",")):
            t0 = time.perf_counter()
            cfg = {**config, "dp": {"epsilon": eps}}
            run = tmp / f"run_{eps:g}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train_run(tmp / "c.train", run, gwas_path=tmp / "sim.gwas.tsv", top=args.top, config=cfg,
                          seed=args.seed, device="cpu")
            seconds = time.perf_counter() - t0
            syn = generate(run, holdout.n_samples, out_prefix=tmp / f"syn_{eps:g}", case_fraction=case_fraction,
                           seed=args.seed)
            report = evaluate(train, holdout, read_plink(syn), seed=args.seed, device="cpu",
                              config=EvaluationConfig(threads=1), model=run_summary(run))
            dp = run_summary(run)["differential_privacy"]
            row = {"target_epsilon": eps or None, "epsilon": dp["epsilon"] if dp else None,
                   "delta": dp["delta"] if dp else None, "train_seconds": seconds, "overall": report["overall"]}
            for section, name, _ in ROWS:
                m = report[section].get(name, {})
                row[name] = (m.get("value"), m.get("reference"), m.get("status"))
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "dp.json", "a") as fh:
        for row in rows:
            fh.write(json.dumps({**row, "n": args.n, "snps": args.snps, "top": args.top, "epochs": args.epochs,
                                 "seed": args.seed, "date": time.strftime("%Y-%m-%d")}) + "\n")
    head = ["epsilon (target)", "epsilon spent", "train s"] + [label + " (holdout)" for *_, label in ROWS] + ["grade"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for r in rows:
        cells = ["none" if r["target_epsilon"] is None else f"{r['target_epsilon']:g}", fmt(r["epsilon"]),
                 f"{r['train_seconds']:.0f}"]
        cells += [f"{fmt(r[name][0])} ({fmt(r[name][1])})" for _, name, _ in ROWS] + [r["overall"]]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
