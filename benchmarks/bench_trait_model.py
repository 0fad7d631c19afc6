"""Benchmark: a quantitative trait's model given the genotypes, ridge or lasso (``TrainConfig.trait_model``), and the
TSTR of the trait each releases.

Per trained run, the trait model is fitted again on the run's own training part (its ``split.tsv``) with each
penalty and scored on the run's validation individuals (the r ``train`` reports; ``auto`` keeps the higher). Then
``--draws`` K synthetic genotype cohorts as large as the training part are drawn once from the run's generator (draw
k seeded 100 + k, the condition values drawn from the training part's), each penalty's model releases a trait for
the same genotypes with the same noise seed, and the report's TSTR / TRTR ratio (linear model, on the real holdout)
is scored for each, with the per-SNP effects' agreement with the training's over the holdout's (effect-r ratio)
and the card's association copying (``privacy.copying`` of that agreement). Rows go to
``benchmarks/results/trait_model.json``.

Runs: ``bench_targets.py``'s (``--cohorts agbl4_qt --training-seeds 1 --config trait_shrinkage``: run
``run_<config>_<seed>`` of the cohort), and with ``--unseen DIR ...`` folders laid out as the command line leaves
them: ``cohort.train`` / ``cohort.holdout`` (PLINK), ``cohort.pheno.tsv`` (column ``QT``) and the run in ``run``
(``--unseen-run``; ``bench_unseen.py --trait QT`` leaves it in ``run_default_qt``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trait_model.py --cohorts agbl4_qt --training-seeds 1 \\
        --config trait_shrinkage --draws 4
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "trait_model.json"


def score(run_dir: Path, train, holdout, y_train: np.ndarray, y_holdout: np.ndarray, draws: int) -> dict:
    """Each penalty's validation r, fit record and per-draw TSTR ratio on the run ``run_dir`` (its training cohort
    ``train`` and ``holdout``: Genotypes on the run's panel, in its order; ``y_*`` their trait values)."""
    import pandas as pd
    import torch

    from snpgen_core.evaluation.align import impute_mean, training_means
    from snpgen_core.evaluation.association import effect_r
    from snpgen_core.evaluation.privacy import copying
    from snpgen_core.evaluation.utility import tstr
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.models.trait_model import PENALTIES, TraitModel
    from snpgen_core.runs import load_run

    split = pd.read_csv(run_dir / "split.tsv", sep="\t", dtype=str)
    part = train.samples["iid"].map(dict(zip(split["IID"], split["SPLIT"]))).to_numpy()
    fit, val = np.flatnonzero(part == "train"), np.flatnonzero(part == "validation")
    x = train.dosages
    x_val = torch.as_tensor(impute_mean(x[val], training_means(x[fit])))
    known = np.isfinite(y_train[val])
    models, out = {}, {"n_fit": len(fit), "n_validation": len(val)}
    for penalty in PENALTIES:
        model = TraitModel(x.shape[1])
        t = time.perf_counter()
        record = model.fit(x[fit], y_train[fit], penalty=penalty)
        record["seconds"] = round(time.perf_counter() - t, 2)
        pred = model.predict(x_val).numpy()
        record["validation_r"] = float(np.corrcoef(pred[known], y_train[val][known])[0, 1])
        models[penalty] = model
        out[penalty] = {"fit": record, "tstr_ratio": [], "effect_r_ratio": [], "association_copying": []}
    out["auto"] = max(PENALTIES, key=lambda p: out[p]["fit"]["validation_r"])  # ridge first on a tie, as train
    generator = load_run(run_dir).generator("diffusion")
    y = y_train[np.isfinite(y_train)]
    for k in range(draws):
        seed = 100 + k
        mix = y[np.random.default_rng(seed).integers(0, len(y), train.n_samples)]
        drawn = generator.sample(torch.as_tensor(mix, dtype=torch.float32), torch.Generator().manual_seed(seed),
                                 SamplingOptions())
        for penalty, model in models.items():
            released = model.draw(drawn, torch.Generator().manual_seed(seed + 1)).numpy()
            v = tstr(x, holdout.dosages, drawn.numpy(), y_train, y_holdout, released, "quantitative", n_boot=10,
                     seed=seed)
            out[penalty]["tstr_ratio"].append(v.value / v.reference)
            e = effect_r(x, holdout.dosages, drawn.numpy(), y_train, y_holdout, released, "quantitative", seed=seed)
            out[penalty]["effect_r_ratio"].append(e.value / e.reference)
            out[penalty]["association_copying"].append(float(copying(e, "effects").value))
        print(f"  draw {k}: " + ", ".join(f"{p} {out[p]['tstr_ratio'][-1]:.4f}" for p in PENALTIES), flush=True)
    return out


def unseen_cohort(folder: Path, run: str):
    """(train, holdout, y_train, y_holdout) of a command-line folder, on its run's panel in the panel's order."""
    from snpgen_core.io.plink import read_plink
    from snpgen_core.phenotypes import read_phenotype
    from snpgen_core.runs import panel_indices

    out = []
    for part in ("train", "holdout"):
        g = read_plink(folder / f"cohort.{part}")
        out.append(g.subset(variants=panel_indices(folder / run / "panel.bim", g.variants)))
    ys = [read_phenotype(g.samples, folder / "cohort.pheno.tsv", "QT").values for g in out]
    return out[0], out[1], ys[0], ys[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="agbl4_qt", help="bench_targets cohorts with a quantitative trait, or none")
    ap.add_argument("--training-seeds", default="1")
    ap.add_argument("--config", default="trait_shrinkage")
    ap.add_argument("--unseen", nargs="*", default=[], type=Path, help="command-line folders (see above)")
    ap.add_argument("--unseen-run", default="run", help="the run's folder name in each --unseen folder")
    ap.add_argument("--draws", type=int, default=4)
    args = ap.parse_args()

    jobs = []
    for cohort in [] if args.cohorts == "none" else args.cohorts.split(","):
        for seed in args.training_seeds.split(","):
            jobs.append((cohort, f"{args.config}_{seed}", WORK / cohort / f"run_{args.config}_{seed}"))
    jobs += [(f"unseen {folder.name}", args.unseen_run, folder / args.unseen_run) for folder in args.unseen]
    for cohort, run_name, run_dir in jobs:
        if cohort.startswith("unseen"):
            train, holdout, y_train, y_holdout = unseen_cohort(run_dir.parent, run_dir.name)
        else:
            prep = prepare_cohort(cohort, WORK)
            values = prep["trait"].values
            train, holdout = prep["train"], prep["holdout"]
            y_train, y_holdout = values[prep["split"].train], values[prep["split"].holdout]
        print(f"{cohort} {run_name}:", flush=True)
        row = {"cohort": cohort, "run": run_name, "draws": args.draws, "machine": machine(),
               "threads": os.environ.get("OMP_NUM_THREADS", "all"), "date": time.strftime("%Y-%m-%d %H:%M"),
               **score(run_dir, train, holdout, y_train, y_holdout, args.draws)}
        record_row(RESULTS, row, key=lambda r: (r["cohort"], r["run"]))
        fits = "; ".join(f"{p}: validation r {row[p]['fit']['validation_r']:.3f}, TSTR ratio "
                         f"{np.mean(row[p]['tstr_ratio']):.4f}, effect-r ratio "
                         f"{np.mean(row[p]['effect_r_ratio']):.3f}, association copying {np.mean(row[p]['association_copying']):.2f}"
                         for p in ("ridge", "lasso"))
        print(f"| {cohort} | {run_name} | {fits} | auto keeps {row['auto']} |", flush=True)


if __name__ == "__main__":
    main()
