"""Benchmark: the distance-based privacy rows of trained runs, averaged over several synthetic draws.

One synthetic draw scored once moves the AATS privacy loss by 0.01-0.03 and the DCR share by about 0.01 (the
twelfth and thirteenth passes of BENCHMARKS.md): two generators compared on one draw each are mostly compared on
that noise. Per run of ``bench_targets.py`` (cohort, training seed, config; the run must exist), ``--draws`` K
cohorts as large as the training part are drawn from the run's latent-diffusion generator with the training
part's condition mix (draw k seeded 100 + k), and each is scored against the training part and the real holdout
with the report's own functions (``evaluation.privacy``, subsets seeded 100 + k; with ``--utility`` also the
TSTR / TRTR ratio, ``evaluation.utility.tstr``; with ``--detection`` the detection AUC on the training PCs,
``evaluation.structure.detection_auc``). Rows (each draw's value, per metric) go to
``benchmarks/results/privacy_draws.json``; ``--table`` prints the means per config over the listed runs, and the
mean pair difference against the first config. Rows are recorded under a lock (``_common.record_row``), so
several copies may run side by side.

    .venv/bin/python benchmarks/bench_privacy_draws.py --cohorts sim1,sim2 --training-seeds 2,3 \\
        --configs nearest_16_by_lag,nearest_16_linked_16_by_lag --draws 4
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

RESULTS = Path(__file__).resolve().parent / "results" / "privacy_draws.json"
METRICS = ("aats_privacy_loss", "dcr_share", "membership_auc")


def score_run(prep: dict, run_dir: Path, draws: int, utility: bool = False, detection: bool = False,
              guidance: float | None = None, group_mix: bool = True) -> dict:
    """Each metric of ``METRICS`` on ``draws`` seeded synthetic cohorts of the run: {metric: [value per draw]};
    with ``utility`` also ``tstr_ratio`` (the report's linear TSTR over its TRTR on the same holdout, scored with
    the trait ``generate`` releases) and for a quantitative trait ``effect_r_ratio`` (the per-SNP effects'
    agreement with the training's, over the holdout's) and ``association_copying`` (the card's row,
    ``privacy.copying``: of the case-control allele-frequency differences for a binary trait, of the per-SNP effects
    for a quantitative one); when the run's trait model releases the trait, also both
    with the condition released instead (``*_condition``, ``generate --trait-from condition``); with
    ``detection`` also ``detection_auc`` (the report's, on the training PCs). ``guidance``: the diffusion's
    classifier-free guidance (None: ``generate``'s default); ``group_mix``: ``SamplingOptions.group_mix``."""
    import torch

    from snpgen_core.evaluation import privacy
    from snpgen_core.evaluation.structure import detection_auc
    from snpgen_core.evaluation.association import case_control_af_diff_r, effect_r
    from snpgen_core.evaluation.distances import impute_from_training
    from snpgen_core.evaluation.privacy import copying
    from snpgen_core.evaluation.utility import tstr
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    trait = prep["trait"]
    y_train, y_holdout = trait.values[prep["split"].train], trait.values[prep["split"].holdout]
    y = y_train[~np.isnan(y_train)]
    run = load_run(run_dir)
    generator = run.generator("diffusion")
    out = {m: [] for m in METRICS + (("tstr_ratio",) if utility else ()) + (("detection_auc",) if detection else ())}
    for k in range(draws):
        seed = 100 + k
        mix = y[np.random.default_rng(seed).integers(0, len(y), len(train))]
        options = SamplingOptions(group_mix=group_mix)
        if guidance is not None:
            options.guidance = guidance
        drawn = generator.sample(torch.as_tensor(mix, dtype=torch.float32), torch.Generator().manual_seed(seed),
                                 options)
        synthetic = drawn.numpy()
        released = mix  # the trait generate releases: drawn from the trait model (if fitted) given the genotypes
        if run.models.trait.is_fitted:  # (a binary trait at the training mix: no class counts to fill)
            released = run.models.trait.draw(drawn, torch.Generator().manual_seed(seed + 1),
                                             binary=trait.kind == "binary").numpy()
        cohorts = (train, holdout, synthetic)  # HapMap 3 has 0.15% missing calls: imputed as the report does
        if any((x < 0).any() for x in cohorts):
            cohorts = impute_from_training(*cohorts, seed=seed)
        data = privacy.PrivacyInputs(*cohorts, seed=seed, device="cpu")
        for m in METRICS:
            out[m].append(float(getattr(privacy, m)(data).value))
        if utility:
            v = tstr(train, holdout, synthetic, y_train, y_holdout, released, trait.kind, n_boot=10, seed=seed)
            out["tstr_ratio"].append(v.value / v.reference)
            if trait.kind == "quantitative":  # per-SNP effects against the training's, over the holdout's
                e = effect_r(train, holdout, synthetic, y_train, y_holdout, released, trait.kind, seed=seed)
                out.setdefault("effect_r_ratio", []).append(e.value / e.reference)
                out.setdefault("association_copying", []).append(float(copying(e, "effects").value))
            elif trait.kind == "binary":  # the card's association copying row (privacy.copying)
                a = case_control_af_diff_r(train, holdout, synthetic, y_train, y_holdout, released, trait.kind,
                                           seed=seed)
                out.setdefault("association_copying", []).append(float(copying(a, "differences").value))
            if released is not mix:  # the same genotypes with the condition released instead (trait_from)
                v = tstr(train, holdout, synthetic, y_train, y_holdout, mix, trait.kind, n_boot=10, seed=seed)
                out.setdefault("tstr_ratio_condition", []).append(v.value / v.reference)
                if trait.kind == "quantitative":
                    e = effect_r(train, holdout, synthetic, y_train, y_holdout, mix, trait.kind, seed=seed)
                    out.setdefault("effect_r_ratio_condition", []).append(e.value / e.reference)
        if detection:
            out["detection_auc"].append(float(detection_auc(train, holdout, synthetic, seed=seed).value))
    return out


def table(rows: list[dict], configs: list[str]) -> str:
    """Means over the runs each config has, and the mean pair difference (config - the first) over the runs both
    have."""
    by = {(r["cohort"], r["training_seed"], r["config"]): r for r in rows}
    runs = sorted({(c, s) for c, s, _ in by})
    metrics = METRICS + tuple(m for m in ("tstr_ratio", "tstr_ratio_condition", "effect_r_ratio",
                                          "effect_r_ratio_condition", "association_copying", "detection_auc")
                              if any(m in r for r in rows if r["config"] in configs))
    lines = ["| config | runs | " + " | ".join(metrics) + " | pair difference against " + configs[0] + " |",
             "| --- | --- |" + " --- |" * (len(metrics) + 1)]
    for cfg in configs:
        mine = [by[(c, s, cfg)] for c, s in runs if (c, s, cfg) in by]
        if not mine:
            continue
        means = [np.nanmean([np.mean(r.get(m, np.nan)) for r in mine]) for m in metrics]
        pairs = [(by[(c, s, cfg)], by[(c, s, configs[0])]) for c, s in runs
                 if (c, s, cfg) in by and (c, s, configs[0]) in by]
        gaps = {m: np.nanmean([np.mean(a.get(m, np.nan)) - np.mean(b.get(m, np.nan)) for a, b in pairs])
                for m in metrics}
        diff = "; ".join(f"{m} {g:+.4f}" for m, g in gaps.items()) + f" ({len(pairs)} runs)"
        lines.append(f"| {cfg} | {len(mine)} | " + " | ".join(f"{v:.4f}" for v in means) + f" | {diff} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim1,sim2,sim3")
    ap.add_argument("--training-seeds", default="1,2,3")
    ap.add_argument("--configs", required=True, help="config names (run_<config>_<seed>), comma-separated")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--utility", action="store_true", help="also the TSTR / TRTR ratio of each draw (slower)")
    ap.add_argument("--detection", action="store_true", help="also the detection AUC of each draw")
    ap.add_argument("--guidance", type=float, default=None,
                    help="classifier-free guidance of the draws (default: generate's); rows are labelled "
                         "<config>_g<guidance>, the name --table then takes")
    ap.add_argument("--no-group-mix", dest="group_mix", action="store_false",
                    help="draw the guided prior as is (SamplingOptions.group_mix off); rows labelled <config>_nomix")
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--table", action="store_true", help="print the means of the recorded rows for --configs")
    args = ap.parse_args()
    configs = args.configs.split(",")
    if args.table:
        old = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
        cohorts, seeds = set(args.cohorts.split(",")), {int(s) for s in args.training_seeds.split(",")}
        print(table([r for r in old if r["cohort"] in cohorts and r["training_seed"] in seeds], configs))
        return
    import torch

    torch.set_num_threads(1)
    for name in args.cohorts.split(","):
        prep = prepare_cohort(name, Path(args.work))
        for seed in (int(s) for s in args.training_seeds.split(",")):
            for cfg in configs:
                run_dir = Path(args.work) / name / f"run_{cfg}_{seed}"
                if not (run_dir / "run.json").exists():
                    print(f"skipped: no finished run {run_dir}", flush=True)
                    continue
                t0 = time.perf_counter()
                label = (cfg if args.guidance is None else f"{cfg}_g{args.guidance:g}") + (
                    "" if args.group_mix else "_nomix")
                row = {"cohort": name, "training_seed": seed, "config": label, "draws": args.draws,
                       **score_run(prep, run_dir, args.draws, args.utility, args.detection, args.guidance,
                                   args.group_mix),
                       "machine": machine(),
                       "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"),
                       "wall_s": round(time.perf_counter() - t0, 1)}
                print(json.dumps(row), flush=True)
                record_row(RESULTS, row, lambda r: (r["cohort"], r["training_seed"], r["config"]))


if __name__ == "__main__":
    main()
