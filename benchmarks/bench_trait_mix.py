"""Benchmark: does the synthetic cohort keep how the trait is spread over the cohort's ancestry groups?

A trait whose prevalence differs between populations ties each class to an ancestry mix (cases more often of one
group). Classifier-free guidance above 1 sharpens the latent prior's conditional, and with it that tie: the
synthetic cases can come out more of one group than the real cases are, which a downstream GWAS of the release
sees as confounding. Per run: the training individuals' groups are the report's (``structure.training_groups``: a
Gaussian mixture on the top training PCs, the number of groups by BIC, or ``--groups K``), every other person is
given the group of the nearest group mean on those PCs, and per class (terciles of the training values for a
quantitative trait) the groups' shares are compared with the training cohort's: total variation distance, averaged
over the classes with the training class shares as weights. The real holdout's distance is the reference (a fresh
sample's own noise). ``--draws`` synthetic cohorts as large as the training part with its condition mix (draw k
seeded 100 + k) at each ``--guidance``. Rows go to ``benchmarks/results/trait_mix.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trait_mix.py --cohorts sim1,agbl4,805 --config trait_shrinkage
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_trait_mix.py --unseen 10899,6492 --groups 3 \
        --unseen-work /tmp/snpgen-bench/unseen
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

RESULTS = Path(__file__).resolve().parent / "results" / "trait_mix.json"


def measure(train: np.ndarray, holdout: np.ndarray, y_train: np.ndarray, y_holdout: np.ndarray, kind: str,
            run_dir: Path, guidances: list[float], draws: int, k: int | None = None, group_mix: bool = True) -> dict:
    import torch

    from snpgen_core.evaluation.structure import group_assigner, group_mix_tv, trait_classes
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    found = group_assigner(train, k, seed=0)
    if found is None:
        return {"groups": 1}
    groups, assign = found
    ok = ~np.isnan(y_train)
    mine = groups[ok], trait_classes(y_train[ok], kind, y_train)
    row = {"groups": int(groups.max()) + 1,
           "holdout_tv": round(group_mix_tv(*mine, assign(holdout), trait_classes(y_holdout, kind, y_train)), 4)}
    run = load_run(run_dir)
    generator = run.generator("diffusion")
    y = y_train[ok]
    for g in guidances:
        tvs = []
        for d in range(draws):
            mix = y[np.random.default_rng(100 + d).integers(0, len(y), len(train))]
            drawn = generator.sample(torch.as_tensor(mix, dtype=torch.float32), torch.Generator().manual_seed(100 + d),
                                     SamplingOptions(guidance=g, group_mix=group_mix))
            released = mix
            if run.models.trait.is_fitted:  # the trait released from the genotypes, as generate does
                released = run.models.trait.draw(drawn, torch.Generator().manual_seed(101 + d),
                                                 binary=kind == "binary").numpy()
            tvs.append(group_mix_tv(*mine, assign(drawn.numpy()), trait_classes(released, kind, y_train)))
        row[f"tv_g{g:g}" + ("" if group_mix else "_nomix")] = round(float(np.mean(tvs)), 4)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="", help="bench_targets cohorts (their run_<config>_<seed>)")
    ap.add_argument("--config", default="trait_shrinkage")
    ap.add_argument("--training-seed", type=int, default=1)
    ap.add_argument("--unseen", default="", help="bench_unseen seeds (their run_default)")
    ap.add_argument("--unseen-work", default="/tmp/snpgen-bench/unseen")
    ap.add_argument("--guidance", default="1,1.5,2")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--groups", type=int, default=None, help="this many ancestry groups (default: by BIC)")
    ap.add_argument("--no-group-mix", dest="group_mix", action="store_false",
                    help="draw the guided prior as is (SamplingOptions.group_mix off); columns tv_g<G>_nomix")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    guidances = [float(g) for g in args.guidance.split(",")]
    jobs = []
    for name in filter(None, args.cohorts.split(",")):
        jobs.append((name, "targets"))
    for seed in filter(None, args.unseen.split(",")):
        jobs.append((f"unseen{seed}", "unseen"))
    for name, source in jobs:
        t0 = time.perf_counter()
        if source == "targets":
            from bench_targets import WORK, prepare_cohort

            prep, run_dir = prepare_cohort(name, WORK), WORK / name / f"run_{args.config}_{args.training_seed}"
        else:
            from bench_unseen import cli_cohort

            work = Path(args.unseen_work) / f"s{name[6:]}"
            prep, run_dir = cli_cohort(work, "default"), work / "run_default"
        values = prep["trait"].values
        data = (prep["train"].dosages, prep["holdout"].dosages, values[prep["split"].train],
                values[prep["split"].holdout], prep["trait"].kind)
        row = {"cohort": name, "run": run_dir.name, "draws": args.draws, "groups_asked": args.groups,
               "group_mix": args.group_mix,
               **measure(*data, run_dir, guidances, args.draws, args.groups, args.group_mix), "machine": machine(),
               "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.perf_counter() - t0, 1)}
        print(json.dumps(row), flush=True)
        record_row(RESULTS, row, lambda r: (r["cohort"], r["run"], r.get("groups_asked"), r.get("group_mix", True)))


if __name__ == "__main__":
    main()
