"""Benchmark: the default pipeline against the shareable-release targets of issue 13, on every cohort the issue
names, as medians over training seeds.

Per cohort and training seed T: ``train_run`` with every default (``seed=T``) on the cohort's recorded training
part and its training-only panel, ``generate`` as many individuals as the training part holds with its condition
mix (the defaults of ``snpgen generate``), and the full report (``snpgen_core.evaluation.evaluate``) against the
real holdout, which never trained a model or chose a SNP. Cohorts (the same files as ``bench_frontier.py`` and
``bench_quality.py``, split seed 1):

  sim1, sim2, sim3  ``snpgen simulate --n 3000 --snps 6000 --seed S``, recorded 80/20 split, 1,000-SNP panel
                    (training-only GWAS), trait CASE; any other simS too, simSnN for N individuals
                    simulated, simStN for N of the 2,400 training individuals
  agbl4             1000 Genomes AGBL4, CASE: PLINK 1.9 --logistic on the training part, clump r^2 0.9, top 2,000
  agbl4_qt          the same with QT (--linear): the quantitative trait
  805               1000 Genomes 805 SNPs conditioned on super-population (categorical)
  phase1            1000 Genomes phase 1 (1,092 people, 14 populations, 14,079 genome-wide SNPs; 873 training),
                    a seeded polygenic case/control trait (``bench_quality.polygenic_trait``), PLINK 1.9
                    --logistic on the training part, clump r^2 0.5, top 1,000: a cohort shaped like the hidden
                    evaluator's 873-person one (not among the issue's named cohorts)
  phase1_qt         the same cohort with the trait's liability as a quantitative trait (PLINK 1.9 --linear)
  hapmap3           HapMap 3 founders (957 people, 11 populations, the same 14,079 SNPs), built as phase1

    .venv/bin/python benchmarks/bench_targets.py --cohorts sim1,sim2,sim3,805,agbl4,agbl4_qt --training-seeds 1,2,3

Rows (one per cohort x seed) are appended to ``benchmarks/results/targets.json``; ``--table`` prints the Markdown
table of medians (BENCHMARKS.md, "Issue 13 targets over training seeds").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_frontier import prepare_sim  # noqa: E402
from bench_quality import metric, prepare, score, synthesize, train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "targets.json"
WORK = Path("/tmp/snpgen-bench/frontier")  # bench_frontier's cohorts, prepared once
# (column, metric of the report, how it is compared with the target): ratio = value / the holdout's reference
COLUMNS = [
    ("LD r ratio", "fidelity.ld_r", "ratio", ">= 0.95"),
    ("LD decay MAE ratio", "fidelity.ld_decay_mae", "ratio", "<= 2"),
    ("detection AUC", "fidelity.detection_auc", "value", "<= 0.60"),
    ("detection AUC, holdout's", "fidelity.detection_auc", "reference", "-"),
    ("holdout vs synthetic AUC", "fidelity.detection_auc", "holdout_vs_synthetic", "-"),
    ("AF MAE ratio", "fidelity.allele_frequency_mae", "ratio", "<= 1.3"),
    ("admixed share", "fidelity.admixed_share", "value", "-"),  # not an issue target (forty-fifth pass)
    ("admixed share, holdout's", "fidelity.admixed_share", "reference", "-"),
    ("membership AUC", "privacy.membership_auc", "value", "<= 0.53"),
    ("TPR at 1% FPR", "privacy.membership_tpr_at_1pct_fpr", "value", "<= 0.02"),
    ("DCR share", "privacy.dcr_share", "value", "<= 0.53"),
    ("AATS privacy loss", "privacy.aats_privacy_loss", "value", "<= 0.02"),
    ("TSTR ratio", "utility.tstr", "ratio", ">= 0.95"),
    ("case-control AF-diff r ratio", "association.case_control_af_diff_r", "ratio", ">= 0.9"),
    ("LD copying", "privacy.ld_copying", "value", "<= 2"),  # evaluation.privacy.copying: 1 = a fresh sample
    ("association copying", "privacy.association_copying", "value", "<= 2"),
    ("exact copies", "privacy.exact_copies", "value", "== 0"),
    ("KING duplicates (holdout)", "privacy.kinship_duplicates", "both", "<= holdout"),
]


def prepare_cohort(name: str, work: Path) -> dict:
    """bench_quality's ``prepare`` dict for any cohort (the simulated ones come split and paneled by
    bench_frontier's ``prepare_sim``)."""
    if not name.startswith("sim"):
        return prepare(name, work, 1, 2000, 0.9)
    from snpgen_core.io.plink import read_plink, write_plink
    from snpgen_core.panel import read_panel
    from snpgen_core.phenotypes import Phenotype, read_phenotype

    # sim<seed>, sim<seed>n<individuals simulated> (default 3,000), or sim<seed>t<training individuals>: the
    # 3,000-person cohort's training part subsampled, its holdout (600) and panel as they are
    seed, kind, n = name[3:].partition("n") if "n" in name else name[3:].partition("t")
    spec = prepare_sim(work, int(seed), int(n) if kind == "n" else 3000)
    tr, ho = read_plink(spec["train"]), read_plink(spec["holdout"])
    if kind == "t":
        spec["train"] = work / name / "train"
        if not spec["train"].with_suffix(".bed").exists():
            (work / name).mkdir(parents=True, exist_ok=True)
            rows = np.sort(np.random.default_rng(int(seed)).choice(tr.n_samples, int(n), replace=False))
            write_plink(spec["train"], tr.subset(samples=rows))
        tr = read_plink(spec["train"])
    keep = np.flatnonzero(tr.variants["snp"].isin(read_panel(spec["panel"])["SNP"]))
    a, b = (read_phenotype(g.samples, spec["pheno"], spec["column"]) for g in (tr, ho))
    trait = Phenotype(a.name, a.kind, np.concatenate([a.values, b.values]), a.labels)
    split = SimpleNamespace(train=np.arange(tr.n_samples), holdout=tr.n_samples + np.arange(ho.n_samples))
    return {"spec": {"prefix": spec["train"], "pheno": spec["pheno"], "column": spec["column"]}, "trait": trait,
            "split": split, "train": tr.subset(variants=keep), "holdout": ho.subset(variants=keep),
            "train_prefix": spec["train"], "panel_path": spec["panel"], "gwas_path": spec["gwas"]}


def cell(report: dict, key: str, how: str) -> float | list:
    if key == "utility.tstr":  # the trait's own TSTR: AUC (binary), r (quantitative), accuracy (categorical)
        key = next(f"utility.{k}" for k in ("tstr_auc", "tstr_r", "tstr_accuracy") if k in report["utility"])
    value, reference = metric(report, key)
    if how in ("reference", "holdout_vs_synthetic"):  # the holdout's own value; detection's other comparison
        section, name = key.split(".")
        extra = reference if how == "reference" else report[section][name].get(how)
        return float("nan") if extra is None else float(extra)
    if how == "ratio":
        return value / reference if reference else float("nan")
    return [value, reference] if how == "both" else value


def run(name: str, seed: int, work: Path, reuse: bool = False, guidance: float | None = None,
        config: Path | None = None, model: str = "diffusion", steps: int | None = None) -> dict:
    """One row: cohort ``name``, training seed ``seed``; ``config``: a JSON file of settings that differ from the
    defaults (its run is ``run_<file stem>_<seed>``), ``model``: the run's generator to score (the baselines come
    from the same run), ``guidance`` and ``steps``: generate's (None: its defaults)."""
    prep = prepare_cohort(name, work)
    tag = config.stem if config is not None else None
    run_dir = work / name / (f"run_{tag}_{seed}" if tag else f"run_{seed}")
    if reuse and (run_dir / "run.json").exists():  # a finished run of this script
        train_s = json.loads((run_dir / "run.json").read_text())["train_seconds"]
    else:
        train_s = train(prep, run_dir, seed, None, None if config is None else str(config), 1)
    out = work / name / (f"syn_{tag}_{seed}" if tag else f"syn_{seed}")  # configs may run side by side
    for old in (work / name).glob(f"{out.name}.*"):
        old.unlink()
    args = {"guidance": guidance, "temperature": 1.0, "latent_noise": 0.0}  # snpgen generate's other defaults
    synthetic, pheno, gen_s = synthesize(prep, run_dir, model, out, seed, **args, steps=steps)
    guidance = json.loads(Path(f"{out}.provenance.json").read_text())["guidance"]  # the run's where None
    report = score(prep, synthetic, pheno, seed)
    check = json.loads((run_dir / "run.json").read_text()).get("privacy_check") or {}
    return {"cohort": name, "training_seed": seed, "config": tag, "model": model, "guidance": guidance,
            **({"steps": steps} if steps else {}),
            "kind": prep["trait"].kind, "n_snps": prep["train"].n_variants, "n_train": prep["train"].n_samples,
            "train_s": round(train_s, 1), "generate_s": round(gen_s, 2),
            "validation_check_passed": check.get("passed"), "card": report.get("overall"),
            **{col: cell(report, key, how) for col, key, how, _ in COLUMNS}}


def _variant(row: dict) -> tuple:
    return row.get("config"), row.get("model", "diffusion"), row.get("guidance", 2.0), row.get("steps")


def _label(row: dict) -> str:
    config, model, guidance, steps = _variant(row)
    parts = [row["cohort"]] + ([f"config {config}"] if config else []) + ([model] if model != "diffusion" else [])
    return ", ".join(parts + [f"guidance {guidance:g}"] + ([f"{steps} steps"] if steps else []))


def table(rows: list[dict]) -> str:
    cohorts = list(dict.fromkeys(_label(r) for r in rows))
    lines = ["| cohort (seeds) | " + " | ".join(c for c, *_ in COLUMNS) + " | card | validation check |",
             "| --- |" + " --- |" * (len(COLUMNS) + 2),
             "| target | " + " | ".join(t for *_, t in COLUMNS) + " | pass | passed |"]
    for c in cohorts:
        mine = [r for r in rows if _label(r) == c]
        cells = []
        for col, _, how, _ in COLUMNS:
            if how == "both":
                v = [r[col] for r in mine]
                cells.append(f"{np.median([x[0] for x in v]):.0f} ({np.median([x[1] for x in v]):.0f})")
            else:  # rows recorded before a column existed have none
                v = [r.get(col, float("nan")) for r in mine]
                cells.append("n/a" if np.isnan(v).all() else f"{np.nanmedian(v):.3f}")
        cells.append(", ".join(str(r["card"]) for r in mine))
        cells.append(f"{sum(bool(r['validation_check_passed']) for r in mine)} of {len(mine)} passed")
        lines.append(f"| {c} ({len(mine)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim1,sim2,sim3,805,agbl4,agbl4_qt")
    ap.add_argument("--training-seeds", default="1,2,3")
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--reuse", action="store_true", help="score finished runs again instead of retraining them")
    ap.add_argument("--guidance", type=float, default=None, help="classifier-free guidance of generate (default: "
                                                                 "generate's)")
    ap.add_argument("--config", type=Path, default=None, help="JSON file of settings that differ from the defaults "
                                                              "(a variant; its file name labels the rows)")
    ap.add_argument("--model", default="diffusion", help="the run's generator to score: diffusion, vae_gaussian "
                                                         "or independent (the baselines of the same runs)")
    ap.add_argument("--steps", type=int, default=None, help="ODE steps of generate (default: the run's)")
    ap.add_argument("--table", action="store_true", help="print the table of medians from the recorded rows")
    args = ap.parse_args()
    old = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
    if args.table:
        print(table(old))
        return
    import torch

    torch.set_num_threads(1)
    for name in args.cohorts.split(","):
        for seed in (int(s) for s in args.training_seeds.split(",")):
            t0 = time.perf_counter()
            row = {**run(name, seed, Path(args.work), args.reuse, args.guidance, args.config, args.model,
                         args.steps),
                   "machine": machine(), "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"),
                   "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps(row), flush=True)
            record_row(RESULTS, row, lambda r: (r["cohort"], r["training_seed"], _variant(r)))


if __name__ == "__main__":
    main()
