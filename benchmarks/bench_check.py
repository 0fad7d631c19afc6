"""Benchmark: the run's own validation privacy check, re-drawn with several seeds, against the holdout's card.

The check (``memorisation.check_memorisation``) grades a synthetic sample against the training part with the
run's validation people in the holdout's place, and shifts its limits by what copying no one scores on the same
people: a generator of independent SNPs (the floor) and training people in the synthetic people's place (the
reference). How far the check can be trusted is measured here. Per run of ``bench_targets.py`` (cohort, training
seed, config; the run must exist) and per seed s of ``--seeds``: the check's cohort as training builds it
(``pipeline._check_cohort``, seed s), a release of the run's generator four times the validation part (seeded
s), graded as an epoch's check (its first validation-sized set) and as the release check (all four). Each row holds
the three attacks' values, the floor's, the reference's, the limits and the verdict, and the limits and verdict
with the floor alone (the rule before the thirty-sixth pass). Rows go to ``benchmarks/results/check.json``;
``--table`` prints per run the release check's DCR share against both limits and the failures per rule, then,
over the runs, how well the check's excess over each shift follows the card's value on the holdout (the mean over
the run's releases in ``privacy_draws.json``, where ``bench_privacy_draws.py`` recorded them). ``--runs`` takes
run folders of ``bench_unseen.py`` instead (``<work>/s<seed>/run_<variant>``; rows labelled cohort ``s<seed>``,
config ``run_<variant>``, the card's values from ``unseen.json``: the means over that cohort's last recorded draws).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check.py --cohorts sim1,sim2,sim3 --training-seeds 1,2,3 \\
        --config group_mix --seeds 4
    .venv/bin/python benchmarks/bench_check.py --cohorts sim1,sim2,sim3,805,agbl4,agbl4_qt --config group_mix --table
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_check.py --runs /tmp/a36/unseen/s*/run_default [--table]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_targets import WORK  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "check.json"
DRAWS = Path(__file__).resolve().parent / "results" / "privacy_draws.json"
UNSEEN = Path(__file__).resolve().parent / "results" / "unseen.json"


def check_rows(run_dir: Path, seeds: range) -> list[dict]:
    """One row per seed and size (1: an epoch's check, 4: the release check) for the finished run ``run_dir``."""
    import torch

    from snpgen_core import pipeline, runs
    from snpgen_core.io.plink import plink_prefix, read_bim_fam, read_plink
    from snpgen_core.memorisation import RELEASE_REPEATS, check_memorisation
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.splits import read_split

    provenance = json.loads((run_dir / "provenance.json").read_text())
    here = lambda path: path and str(run_dir.parent / path)  # noqa: E731 (bench_unseen trains in the cohort's folder)
    prefix = plink_prefix(here(provenance["parameters"]["bfile"]))
    bim, fam = read_bim_fam(prefix)
    pheno = here((provenance["inputs"].get("pheno") or {}).get("path"))
    _, values, _, _ = pipeline._read_trait(fam, pheno, provenance["parameters"].get("pheno_col"))
    split = read_split(run_dir / "split.tsv", fam)
    panel = runs.panel_indices(run_dir / "panel.bim", bim)
    dosages = read_plink(prefix, variants=panel).dosages
    run = runs.load_run(run_dir)
    generator = run.models.generator("diffusion")
    rows = []
    for seed in seeds:
        cohort = pipeline._check_cohort(dosages, values.astype(np.float32), split, run.models.independent, seed,
                                        None, bim["chrom"].to_numpy()[panel])
        nlls = pipeline._reconstruction_nlls(run.models.vae, cohort, torch.device("cpu"))
        conditions = torch.as_tensor(np.tile(cohort.cond_validation, RELEASE_REPEATS), dtype=torch.float32)
        synthetic = generator.sample(conditions, torch.Generator().manual_seed(seed), SamplingOptions()).numpy()
        for sets in (1, RELEASE_REPEATS):
            n = sets * len(cohort.validation)
            kept = dict(floor=cohort.floor[:n], seed=seed, **nlls)
            check = check_memorisation(cohort.train, cohort.validation, synthetic[:n],
                                       reference=cohort.reference[:n], **kept)
            floor_only = check_memorisation(cohort.train, cohort.validation, synthetic[:n], **kept)
            rows.append({"seed": seed, "sets": sets, "values": check.values, "floor": check.floor,
                         "reference": check.reference, "limits": check.limits, "passed": check.passed,
                         "limits_floor_only": floor_only.limits, "passed_floor_only": floor_only.passed})
    return rows


def _card(cohort: str, seed: int, config: str, metric: str) -> float:
    if config.startswith("run_") and cohort[1:].isdigit():  # a bench_unseen run: s<seed>/run_<variant>
        rows = json.loads(UNSEEN.read_text())["rows"] if UNSEEN.exists() else []
        found = [r[metric] for r in rows if (r.get("seed"), r.get("variant")) == (int(cohort[1:]), config[4:])]
    else:
        rows = json.loads(DRAWS.read_text())["rows"] if DRAWS.exists() else []
        found = [r[metric] for r in rows if (r.get("cohort"), r.get("training_seed"), r.get("config")) ==
                 (cohort, seed, config) and metric in r]
    return float(np.mean(found)) if found else float("nan")


def table(rows: list[dict]) -> str:
    """Per run: the release check's DCR share, reference, floor, both limits and failures; then correlations."""
    out = ["| run | DCR share | reference (sd over seeds) | floor | limit: reference / floor alone | release "
           "checks failed: reference / floor alone | epoch checks failed |", "| --- | --- | --- | --- | --- | --- | --- |"]
    runs = sorted({(r["cohort"], r["training_seed"], r["config"]) for r in rows})
    pairs = {m: [] for m in ("dcr_share", "aats_privacy_loss", "membership_auc")}
    for key in runs:
        mine = [r for r in rows if (r["cohort"], r["training_seed"], r["config"]) == key]
        release = [r for r in mine if r["sets"] > 1]
        epoch = [r for r in mine if r["sets"] == 1]
        mean = lambda part, m, rs=release: float(np.mean([r[part][m] for r in rs]))  # noqa: E731
        sd = float(np.std([r["reference"]["dcr_share"] for r in release], ddof=1)) if len(release) > 1 else 0.0
        out.append(f"| {key[0]} s{key[1]} | {mean('values', 'dcr_share'):.3f} | {mean('reference', 'dcr_share'):.3f} "
                   f"({sd:.3f}) | {mean('floor', 'dcr_share'):.3f} | {mean('limits', 'dcr_share'):.3f} / "
                   f"{mean('limits_floor_only', 'dcr_share'):.3f} | {sum(not r['passed'] for r in release)} / "
                   f"{sum(not r['passed_floor_only'] for r in release)} of {len(release)} | "
                   f"{sum(not r['passed'] for r in epoch)} / {sum(not r['passed_floor_only'] for r in epoch)} of "
                   f"{len(epoch)} |")
        for m in pairs:
            pairs[m].append((mean("values", m), mean("reference", m), mean("floor", m), _card(*key, m)))
    out.append("")
    for m, values in pairs.items():
        v, ref, floor, card = map(np.array, zip(*values))
        ok = np.isfinite(card)
        if ok.sum() < 3:
            continue
        r = lambda a, b: float(np.corrcoef(a[ok], b[ok])[0, 1])  # noqa: E731
        out.append(f"{m}: over {ok.sum()} runs, the check's excess follows the card's value with r = "
                   f"{r(v - ref, card):.2f} over the reference, {r(v - floor, card):.2f} over the floor; the "
                   f"reference follows the check with r = {r(ref, v):.2f}, the floor with {r(floor, v):.2f}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim1,sim2,sim3")
    ap.add_argument("--training-seeds", default="1,2,3")
    ap.add_argument("--config", default="group_mix", help="the runs' config name (run_<config>_<seed>)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds of the check per run")
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--runs", nargs="+", type=Path, help="bench_unseen run folders instead of --cohorts")
    ap.add_argument("--table", action="store_true", help="print the recorded rows of these runs")
    args = ap.parse_args()
    if args.runs:  # (cohort, training seed, config) of each run folder
        runs = [(d.parent.name, 1, d.name, d) for d in args.runs]
    else:
        runs = [(cohort, int(seed), args.config, Path(args.work) / cohort / f"run_{args.config}_{seed}")
                for cohort in args.cohorts.split(",") for seed in args.training_seeds.split(",")]
    if args.table:
        rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
        keys = {key[:3] for key in runs}
        print(table([r for r in rows if (r["cohort"], r["training_seed"], r["config"]) in keys]))
        return
    for cohort, seed, config, run_dir in runs:
        for row in check_rows(run_dir, range(args.seeds)):
            row = {"cohort": cohort, "training_seed": seed, "config": config, **row, "machine": machine()}
            record_row(RESULTS, row, lambda r: (r["cohort"], r["training_seed"], r["config"], r["seed"], r["sets"]))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
