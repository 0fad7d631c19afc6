"""Benchmark: a binary trait released as the condition its genotypes were drawn given, or drawn from the run's trait
model given the genotypes (issue 13, thirty-ninth pass; ``generate --trait-from condition|genotypes``).

Per run (trained with the current code, so that its trait model is fitted for a binary trait): ``--draws`` K
cohorts as large as the training part, drawn with the training part's condition mix (draw k seeded 100 + k).
Each draw's genotypes are scored twice, with the two released traits: the conditions themselves
(``condition``), and a draw of the run's trait model given the genotypes (``genotypes``, the default; at the
training mix no class count needs filling). The scores are ``screen_class_calibration.scored``'s: the card's
AATS loss, DCR share, membership AUC, TSTR / TRTR at equal n, association copying, case-control difference r over
the holdout's, the slope of the release's case-control differences on the training's, detection AUC and the
label attack (``utility.label_membership``). Genotype-only rows are the same for both (the same genotypes).

Runs: ``--unseen`` folders of ``bench_unseen.py`` (their ``run_default``) and ``--cohorts`` of
``bench_targets.py`` (their ``run_<seed>``, for ``--training-seeds``). Rows (means, and each draw) to
``benchmarks/results/binary_labels.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_binary_labels.py --unseen /tmp/a39/new/s16124 --draws 4
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_binary_labels.py --cohorts agbl4,sim2 --draws 4
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "binary_labels.json"


def measure(prep: dict, run_dir: Path, draws: int) -> dict:
    from screen_class_calibration import release, scored

    from snpgen_core.runs import load_run

    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    y = prep["trait"].values
    y_train, y_holdout = y[prep["split"].train], y[prep["split"].holdout]
    run = load_run(run_dir)
    if not run.models.trait.is_fitted:
        raise SystemExit(f"{run_dir}: no trait model (trained before the thirty-ninth pass, or under DP)")
    generator = run.generator("diffusion")
    row = {"trait_model": json.loads((run_dir / "run.json").read_text())["trait_model"]}
    per = {"condition": [], "genotypes": []}
    for k in range(draws):
        seed = 100 + k
        labels = y_train[np.random.default_rng(seed).integers(0, len(y_train), len(y_train))]
        x = release(generator, labels, seed)
        drawn = run.models.trait.draw(torch.as_tensor(x), torch.Generator().manual_seed(seed + 7), binary=True)
        for name, released in (("condition", labels), ("genotypes", drawn.numpy())):
            per[name].append({**scored(train, holdout, y_train, y_holdout, x, released, seed),
                              "case_fraction": float(released.mean())})
    for name, rows in per.items():
        row[name] = {m: round(float(np.mean([r[m] for r in rows])), 4) for m in rows[0]}
        row[name + "_draws"] = rows
    return row


def main() -> None:
    from screen_class_calibration import record_runs, runs_parser

    record_runs(runs_parser(__doc__).parse_args(), lambda seed: f"run_{seed}", measure, RESULTS)


if __name__ == "__main__":
    main()
