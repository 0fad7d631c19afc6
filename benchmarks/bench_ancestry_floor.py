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
  populations   with ``--populations TSV`` (IID, POP, SUPERPOP, as 1000 Genomes' ``populations.tsv``): the same with
                the people's known populations as groups (those of fewer than 20 training people take their
                super-population's frequencies), with their super-populations, and with each
                population's genotype frequencies shrunk towards its super-population's (Balding-Nichols: the
                posterior mean under a Beta prior of F_ST F, F estimated by moments within each super-population;
                ``population_frequencies``), which is what an estimator that knows populations are noisy samples of
                their super-population would use
  the run       the run's default generator (latent diffusion), as many individuals as the training part; with
                ``--populations``, also a cohort drawn from the release's own per-population genotype frequencies
                (each synthetic person given the population a logistic regression on 20 training PCs, fitted on the
                training people, assigns; how often it is right on the holdout is recorded), in the release's mix:
                the part of the run's privacy loss that its population frequencies alone explain (a lower bound,
                since wrong assignments blur the populations)

Membership AUC, DCR share and AATS privacy loss (``evaluation.privacy``) are means over ``DRAWS`` synthetic draws
of each generator and, per draw, three seeded subsamples (``PrivacyInputs`` seeds 0, 1, 2): one draw's DCR share
moves by about 0.03 at 720 people, and the rows should differ by their generators, not by their draws. With
``--detection``, also the card's detection AUC (``evaluation.structure.detection_auc``) of each generator's first
draw: what knowing no more than those frequencies costs in fidelity.

    .venv/bin/python benchmarks/bench_ancestry_floor.py --cohorts sim11t720,agbl4 --config one_factor
    .venv/bin/python benchmarks/bench_ancestry_floor.py --cohorts 805 --config group_mix --detection \
        --populations ../shared/data/1000g_805/populations.tsv

Needs the runs ``<work>/<cohort>/run_<config>_<seed>`` of ``bench_targets.py --config
benchmarks/configs/<config>.json``. Rows are appended to ``benchmarks/results/ancestry_floor.json``.
"""
from __future__ import annotations

import argparse
import fcntl
import functools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402
# training people a population needs for frequencies of its own (else its super-population's), as the report's floor
from snpgen_core.evaluation.report import MIN_POPULATION  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ancestry_floor.json"
# msprime's out-of-Africa populations; the continental groups of 1000 Genomes (phase 1 has no South Asians) and HapMap 3
KNOWN_GROUPS = {"sim": 3, "agbl4": 5, "805": 5, "phase1": 4, "hapmap3": 5}
DRAWS = 3


def known_groups(cohort: str) -> int:
    return next(k for prefix, k in KNOWN_GROUPS.items() if cohort.startswith(prefix))


def attacks(train: np.ndarray, holdout: np.ndarray, draw, detection: bool = False) -> dict[str, float]:
    """The three attacks, averaged over ``DRAWS`` cohorts ``draw(k)`` and three subsamples each (and the detection
    AUC of the first draw)."""
    from snpgen_core.evaluation.privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc
    from snpgen_core.evaluation.structure import detection_auc

    values, row = [], {}
    for k in range(DRAWS):
        synthetic = draw(k)
        for seed in range(3):
            data = PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
            values.append([f(data).value for f in (membership_auc, dcr_share, aats_privacy_loss)])
        if detection and k == 0:
            found = detection_auc(train, holdout, synthetic, seed=0)
            row = {"detection_auc": round(found.value, 4), "detection_auc_holdout": round(found.reference, 4)}
    return {**dict(zip(("membership_auc", "dcr_share", "aats_privacy_loss"), np.mean(values, 0).round(4).tolist())),
            **row}


def genotype_frequencies(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(m, 3) genotype frequencies of the training ``rows`` (complete dosages): what the attacks' independent-SNP
    generator keeps."""
    from snpgen_core.evaluation.attacks import independent_snps

    return independent_snps(train[rows], None, 0)


def population_frequencies(train: np.ndarray, pop: np.ndarray, sup: np.ndarray,
                           shrink: bool) -> dict[str, np.ndarray]:
    """Each population's (m, 3) genotype frequencies; a population of fewer than ``MIN_POPULATION`` training
    people gets its super-population's. With ``shrink``, each is shrunk towards its super-population's: the
    posterior mean under the Balding-Nichols prior p_pop ~ Beta(p (1-F)/F, (1-p)(1-F)/F) around the
    super-population's allele frequency p, i.e. (n_pop f_pop + (c / 2) f_sup) / (n_pop + c / 2) with c = (1 - F) / F
    prior alleles. F per super-population by moments: its populations' allele-frequency variance around it beyond
    binomial sampling noise, over p (1 - p), summed over SNPs."""
    out = {}
    for s in np.unique(sup):
        f_sup = genotype_frequencies(train, sup == s)
        members = [x for x in np.unique(pop[sup == s]) if (pop == x).sum() >= MIN_POPULATION]
        out.update({x: f_sup for x in np.unique(pop[sup == s]) if x not in members})
        if not members:
            continue
        n = np.array([(pop == x).sum() for x in members])
        c = 0.0
        if shrink:
            q = train[sup == s].mean(0) / 2
            p = np.stack([train[pop == x].mean(0) / 2 for x in members])
            excess = ((p - q) ** 2).mean(0) - (q * (1 - q) / (2 * n[:, None])).mean(0)
            F = float(np.clip(excess.sum() / max((q * (1 - q)).sum(), 1e-12), 1e-4, 0.5))
            c = (1 - F) / F
        for x, size in zip(members, n):
            out[x] = (size * genotype_frequencies(train, pop == x) + c / 2 * f_sup) / (size + c / 2)
    return out


def frequency_cohort(frequencies: dict[str, np.ndarray], labels: np.ndarray, n: int,
                     rng: np.random.Generator) -> np.ndarray:
    """``n`` individuals, each given a label drawn from the training people's ``labels`` and each SNP on its own
    from that label's (m, 3) genotype ``frequencies`` (inverse CDF)."""
    drawn = rng.choice(labels, n)
    cdf = np.stack([frequencies[x] for x in drawn]).cumsum(-1)  # (n, m, 3)
    return (rng.random(cdf.shape[:2])[..., None] > cdf[..., :2]).sum(-1).astype(np.int8)


def measure(cohort: str, run_dir: Path, seed: int, populations: Path | None = None, detection: bool = False) -> dict:
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
           "pooled": attacks(train, holdout, lambda k: group_floor_cohort(train, np.zeros(n, int), n, rng, k),
                             detection)}
    for k in sorted({known_groups(cohort), best} - {1}):
        labels = chosen if k == best else training_groups(train, k, seed=0)
        row[f"{k} groups"] = {**attacks(train, holdout, lambda d: group_floor_cohort(train, labels, n, rng, d),
                                        detection), "smallest_group": int(np.bincount(labels).min())}
    if populations is not None:
        known = pd.read_csv(populations, sep="\t", dtype=str).set_index("IID")
        missing = set(prep["train"].samples["iid"]) - set(known.index)
        if missing:
            sys.exit(f"{populations}: no POP and SUPERPOP for {len(missing)} training people (e.g. {min(missing)})")
        pop, sup = (known.loc[prep["train"].samples["iid"], c].to_numpy() for c in ("POP", "SUPERPOP"))
        supers = {x: genotype_frequencies(train, sup == x) for x in np.unique(sup)}
        row[f"{len(supers)} super-populations"] = attacks(
            train, holdout, lambda d: frequency_cohort(supers, sup, n, rng), detection)
        big = sum((pop == x).sum() >= MIN_POPULATION for x in np.unique(pop))
        for name, shrink in ((f"{big} populations", False),
                             (f"{big} populations, shrunk to their super-population", True)):
            frequencies = population_frequencies(train, pop, sup, shrink)
            row[name] = attacks(train, holdout, lambda d: frequency_cohort(frequencies, pop, n, rng), detection)
    cond = prep["trait"].values[prep["split"].train].astype(np.float32)
    cond = torch.as_tensor(cond[rng.integers(0, len(cond), n)])
    generator = load_run(run_dir).generator("diffusion")

    @functools.cache  # the run's draws, scored as they are and, with --populations, for their frequencies
    def release(k: int) -> np.ndarray:
        return generator.sample(cond, torch.Generator().manual_seed(100 * seed + k), SamplingOptions()).numpy()

    row["run's generator"] = attacks(train, holdout, release, detection)
    if populations is not None:  # how much of it the release's own population frequencies explain
        from sklearn.linear_model import LogisticRegression

        from snpgen_core.evaluation.structure import fit_pca

        pca = fit_pca(train, 20, seed=0)
        scale = pca.transform(train).std(0)
        assign = LogisticRegression(max_iter=5000).fit(pca.transform(train) / scale, pop)

        def own_frequencies(k: int) -> np.ndarray:
            synthetic = release(k)
            given = assign.predict(pca.transform(synthetic) / scale)
            return frequency_cohort({x: genotype_frequencies(synthetic, given == x) for x in np.unique(given)},
                                    given, n, rng)

        right = assign.score(pca.transform(holdout) / scale, known.loc[prep["holdout"].samples["iid"], "POP"])
        row["run's population frequencies"] = {**attacks(train, holdout, own_frequencies, detection),
                                               "holdout_assigned_right": round(float(right), 3)}
    return row


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default="sim11t720,sim12t720,sim13t720,sim14t720")
    ap.add_argument("--config", default="one_factor", help="the bench_targets.py config whose runs to use")
    ap.add_argument("--training-seeds", default="1")
    ap.add_argument("--populations", type=Path, help="TSV with IID, POP and SUPERPOP of the cohort's people")
    ap.add_argument("--detection", action="store_true", help="also each generator's detection AUC (one draw)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for cohort in args.cohorts.split(","):
        for seed in (int(s) for s in args.training_seeds.split(",")):
            run_dir = WORK / cohort / f"run_{args.config}_{seed}"
            if not (run_dir / "run.json").exists():
                sys.exit(f"{run_dir}: no finished run; train it first with bench_targets.py --cohorts {cohort} "
                         f"--training-seeds {seed} --config benchmarks/configs/{args.config}.json")
            row = {**measure(cohort, run_dir, seed, args.populations, args.detection), "machine": machine()}
            print(json.dumps(row), flush=True)
            with open(RESULTS.with_suffix(".lock"), "w") as lock:  # several cohorts may run side by side
                fcntl.flock(lock, fcntl.LOCK_EX)
                rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
                RESULTS.write_text(json.dumps(rows + [row], indent=1) + "\n")


if __name__ == "__main__":
    main()
