"""Benchmark: classifier-free guidance scales against each other on the same runs, each run's own models.

A run is ``COHORT:SEED`` (``bench_targets.py``'s run ``run_SEED`` of that cohort) or ``DIR:TRAIT`` (a fresh
cohort of ``bench_unseen.py`` in ``DIR``, trait CASE or QT). For each run and each scale of ``--guidance``,
``bench_privacy_draws.score_run`` scores ``--draws`` seeded releases (draw k seeded 100 + k, the same at every
scale) with TSTR, association copying and detection. Rows (run, guidance, each metric's mean over the draws) go
to ``benchmarks/results/guidance.json`` under a lock, so several copies may run side by side; ``--table`` prints
each metric's change from the first scale to each other one, per run, and the runs' median. BENCHMARKS.md,
forty-fourth pass: a quantitative trait's default guidance, 1.5 against 1 over ten runs.

    .venv/bin/python benchmarks/bench_guidance.py --runs agbl4_qt:1,/tmp/unseen/s437:QT --guidance 1.5,1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "guidance.json"
METRICS = ("aats_privacy_loss", "dcr_share", "membership_auc", "tstr_ratio", "effect_r_ratio", "association_copying",
           "detection_auc")


def scored(run: str, guidance: float, draws: int) -> dict:
    """Each metric's mean over ``draws`` releases of ``run`` at ``guidance``."""
    from bench_privacy_draws import score_run
    from bench_unseen import cli_cohort, label

    where, what = run.rsplit(":", 1)
    if where.startswith("/"):  # a fresh cohort of bench_unseen.py
        prep, run_dir = cli_cohort(Path(where), "default", what), Path(where) / f"run_{label('default', what)}"
    else:
        prep, run_dir = prepare_cohort(where, WORK), WORK / where / f"run_{what}"
    values = score_run(prep, run_dir, draws, utility=True, detection=True, guidance=guidance)
    return {m: round(float(np.mean(values[m])), 4) for m in METRICS if values.get(m)}


def table(rows: list[dict], runs: list[str], scales: list[float]) -> str:
    by = {(r["run"], r["guidance"]): r for r in rows}
    lines = []
    for other in scales[1:]:
        lines += [f"guidance {scales[0]:g} -> {other:g}", "| run | " + " | ".join(METRICS) + " |",
                  "| --- |" + " --- |" * len(METRICS)]
        changes = {m: [] for m in METRICS}
        for run in runs:
            a, b = by.get((run, scales[0])), by.get((run, other))
            if a is None or b is None:
                continue
            cells = []
            for m in METRICS:
                if m in a and m in b:
                    changes[m].append(b[m] - a[m])
                    cells.append(f"{a[m]:.3f} -> {b[m]:.3f}")
                else:
                    cells.append("-")
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
        lines.append("| median change (lower / runs) | " + " | ".join(
            f"{np.median(c):+.4f} ({sum(x < 0 for x in c)} / {len(c)})" if c else "-" for c in changes.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="COHORT:SEED or DIR:TRAIT, comma-separated")
    ap.add_argument("--guidance", default="1.5,1", help="scales, comma-separated; the table compares with the first")
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--table", action="store_true", help="print the recorded rows' changes instead of scoring")
    args = ap.parse_args()
    runs, scales = args.runs.split(","), [float(g) for g in args.guidance.split(",")]
    if args.table:
        print(table(json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else [], runs, scales))
        return
    import torch

    torch.set_num_threads(1)
    for run in runs:
        for g in scales:
            t0 = time.perf_counter()
            row = {"run": run, "guidance": g, "draws": args.draws, **scored(run, g, args.draws),
                   "machine": machine(), "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"),
                   "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps(row), flush=True)
            record_row(RESULTS, row, lambda r: (r["run"], r["guidance"], r["draws"]))


if __name__ == "__main__":
    main()
