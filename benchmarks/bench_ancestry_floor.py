"""Benchmark: how much of a release's privacy excess a generator that copies no one, but knows the ancestry
groups' allele frequencies, already shows (issue 13, eighth pass).

The report's no-copy floor (``evaluation.report._no_copy_floor``) draws every SNP from the pooled training
frequencies: it has no population structure, so its synthetic people are detected at once (detection AUC ~1).
A generator that reproduces ancestry must estimate each group's frequencies from that group's training people
only, and on a small cohort those estimates carry the group's own sampling noise, which distance attacks read as
closeness to the training people. This script measures that on the same training and holdout individuals as a
finished ``bench_targets.py`` run:

  pooled        each SNP on its own from the training genotype frequencies (the report's floor, trait ignored)
  k groups      ``evaluation.structure.training_groups`` assigns every training person to one of k groups (a
                Gaussian mixture on the top 4 training PCs); each synthetic person gets a group in the training
                proportions and each SNP on its own from that group's genotype frequencies
                (``evaluation.report.group_floor_cohort``, as the report's group floor). k: the cohort's known number
                of populations (3 for the msprime cohorts, 5 super-populations for 1000 Genomes), and the k the
                report's group floor chooses (BIC, groups of at least 50; ``bic_groups``, 1 = none)
  the run       the run's default generator (latent diffusion), as many individuals as the training part

Membership AUC, DCR share and AATS privacy loss (``evaluation.privacy``) are means over ``DRAWS`` synthetic draws
of each generator and, per draw, three seeded subsamples (``PrivacyInputs`` seeds 0, 1, 2): one draw's DCR share
moves by about 0.03 at 720 people, and the rows should differ by their generators, not by their draws.

    .venv/bin/python benchmarks/bench_ancestry_floor.py --cohorts sim11t720,agbl4 --config one_factor

Needs the runs ``<work>/<cohort>/run_<config>_<seed>`` of ``bench_targets.py --config
benchmarks/configs/<config>.json``. Rows are appended to ``benchmarks/results/ancestry_floor.json``.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ancestry_floor.json"
KNOWN_GROUPS = {"sim": 3, "agbl4": 5, "805": 5}  # msprime's out-of-Africa populations; 1000G super-populations
DRAWS = 3


def known_groups(cohort: str) -> int:
    return next(k for prefix, k in KNOWN_GROUPS.items() if cohort.startswith(prefix))


def attacks(train: np.ndarray, holdout: np.ndarray, draw) -> dict[str, float]:
    """The three attacks, averaged over ``DRAWS`` cohorts ``draw(k)`` and three subsamples each."""
    from snpgen_core.evaluation.privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc

    values = []
    for k in range(DRAWS):
        synthetic = draw(k)
        for seed in range(3):
            data = PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
            values.append([f(data).value for f in (membership_auc, dcr_share, aats_privacy_loss)])
    return dict(zip(("membership_auc", "dcr_share", "aats_privacy_loss"), np.mean(values, 0).round(4).tolist()))


def measure(cohort: str, run_dir: Path, seed: int) -> dict:
    import pandas as pd
    import torch

    from snpgen_core.evaluation.distances import impute_missing
    from snpgen_core.evaluation.report import group_floor_cohort
    from snpgen_core.evaluation.structure import training_groups
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.runs import load_run

    prep = prepare_cohort(cohort, WORK)
    panel = pd.read_csv(run_dir / "panel.tsv", sep="\t")["SNP"]
    raw = [g.dosages[:, pd.Index(g.variants["snp"]).get_indexer(panel)] for g in (prep["train"], prep["holdout"])]
    called = raw[0] >= 0
    freq = np.where(called, raw[0], 0).sum(0) / np.maximum(2 * called.sum(0), 1)
    rng = np.random.default_rng(seed)
    train, holdout = (impute_missing(x, freq, seed=rng) for x in raw)
    n = len(train)
    chosen = training_groups(train, seed=0)
    best = 1 if chosen is None else int(chosen.max()) + 1
    row = {"cohort": cohort, "run": run_dir.name, "n_train": n, "n_snps": train.shape[1], "bic_groups": best,
           "pooled": attacks(train, holdout, lambda k: group_floor_cohort(train, np.zeros(n, int), n, rng, k))}
    for k in sorted({known_groups(cohort), best} - {1}):
        labels = chosen if k == best else training_groups(train, k, seed=0)
        row[f"{k} groups"] = {**attacks(train, holdout, lambda d: group_floor_cohort(train, labels, n, rng, d)),
                              "smallest_group": int(np.bincount(labels).min())}
    cond = prep["trait"].values[prep["split"].train].astype(np.float32)
    cond = torch.as_tensor(cond[rng.integers(0, len(cond), n)])
    generator = load_run(run_dir).generator("diffusion")
    row["run's generator"] = attacks(train, holdout, lambda k: generator.sample(
        cond, torch.Generator().manual_seed(100 * seed + k), SamplingOptions()).numpy())
    return row


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim11t720,sim12t720,sim13t720,sim14t720")
    ap.add_argument("--config", default="one_factor", help="the bench_targets.py config whose runs to use")
    ap.add_argument("--training-seeds", default="1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for cohort in args.cohorts.split(","):
        for seed in (int(s) for s in args.training_seeds.split(",")):
            run_dir = WORK / cohort / f"run_{args.config}_{seed}"
            if not (run_dir / "run.json").exists():
                sys.exit(f"{run_dir}: no finished run; train it first with bench_targets.py --cohorts {cohort} "
                         f"--training-seeds {seed} --config benchmarks/configs/{args.config}.json")
            row = {**measure(cohort, run_dir, seed), "machine": machine()}
            print(json.dumps(row), flush=True)
            with open(RESULTS.with_suffix(".lock"), "w") as lock:  # several cohorts may run side by side
                fcntl.flock(lock, fcntl.LOCK_EX)
                rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
                RESULTS.write_text(json.dumps(rows + [row], indent=1) + "\n")


if __name__ == "__main__":
    main()
