"""Screen: where a binary trait's TSTR ratio is lost, how large the release's case-control differences are, and a
frequency calibration per class. Not part of the package (issue 13, thirty-seventh pass).

Per run of a binary trait (a default run of ``bench_targets.py`` or of ``bench_unseen.py``):

- *The model's own association.* The TSTR classifier (the card's logistic regression) fitted on a release of
  20,000 people, scored on the real holdout, over TRTR fitted on the whole training part: how good the trait signal
  the model learnt is, with almost no sampling noise of the release's own. Beside it the card's ratio at equal n
  (a release as large as the training part), where the classifier fitted on the release adds that noise.
- *The size of the case-control differences.* Per SNP d = a1 frequency in cases - in controls. The least-squares
  slope (through 0, over the panel) of the 20,000-person release's d on the training's, beside the real holdout's
  slope on the training's. A fresh sample's slope is below 1 where the panel was chosen by the training GWAS (the
  winner's curse) or the training differences are noisy; a release at 1 carries the training sample's own noise.
- *The label attack* (``utility.label_membership``, thirty-eighth pass): a model fitted on each release, scored on
  how much better it predicts training people's own trait than strangers'; per run also on two bracketing releases
  (``label_references``: class-conditional independent SNPs from the training frequencies, and the training people
  themselves).
- *Plain conditional sampling* (``guidance_1``): the same releases drawn with classifier-free guidance 1.
- *A calibration per class* (``class_share``; today's release: ``base``). The decoder's frequency offsets fitted
  again for each class on its own, aimed at the release's pooled genotype frequencies plus the training class's
  deviation from the pooled training frequencies, shrunk per SNP by the decoder's trait share (the selection-bias
  share of the twenty-sixth pass, Tweedie's formula on the GWAS of every tested SNP): target_c = q + s (p_c - p).
  Today's offsets are one per SNP, fitted with the training mix of classes, and the trait share scales only the
  decoder's own trait path, so a class's deviation carried by the latent reaches the release unshrunk. Three
  rounds of 8,000 draws per class (log target / sampled, as ``generators.calibrate_marginals``). Releases at the
  training mix, as large as the training part, ``--draws`` each, scored by the card's functions (AATS loss, DCR
  share, membership AUC, TSTR ratio, association copying, case-control difference r over the holdout's, detection,
  and the label attack). Three more variants (thirty-eighth pass, ``class_offsets``'s ``ancestry``):
  ``class_share_ancestry`` keeps whole the part of a class's deviation its mix of ancestry groups explains
  (``structure.training_groups``) and shrinks only the rest, target_c = q + (a_c - p) + s (p_c - a_c) (the package's
  ``generators.class_targets``); ``class_share_release_groups`` takes that part from the release's own group
  frequencies; ``class_share_eb`` also shrinks the rest by how much of it sampling noise explains.

The runs screened were trained before the thirty-eighth pass built the ancestry-aware variant into the package
(``generators.calibrate_classes``, the decoder's ``class_calibration``): their ``base`` has no class offsets.

Rows to ``benchmarks/results/class_calibration.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/screen_class_calibration.py --cohorts phase1,agbl4 --draws 3
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/screen_class_calibration.py --cohorts none \\
        --unseen /tmp/snpgen-bench/unseen/s22880 --draws 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_privacy_draws import METRICS  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "class_calibration.json"
LARGE = 20_000


def differences(dosages: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per SNP, a1 frequency in cases - in controls (missing calls left out)."""
    x = np.where(dosages < 0, np.nan, dosages)
    return (np.nanmean(x[y == 1], 0) - np.nanmean(x[y == 0], 0)) / 2


def slope(d: np.ndarray, on: np.ndarray) -> float:
    """Least-squares slope of ``d`` on ``on`` through 0."""
    return float((d * on).sum() / (on * on).sum())


def release(generator, y: np.ndarray, seed: int, per_class: dict | None = None, guidance: float | None = None
            ) -> np.ndarray:
    """``len(y)`` people with conditions ``y``; with ``per_class`` {class: offsets (m, 3)}, each class drawn with its
    own offsets in the decoder's ``calibration``; ``guidance``: that classifier-free guidance, not the default."""
    from snpgen_core.models.generators import SamplingOptions

    options = SamplingOptions() if guidance is None else SamplingOptions(guidance=guidance)
    if per_class is None:
        return generator.sample(torch.as_tensor(y, dtype=torch.float32), torch.Generator().manual_seed(seed),
                                options).numpy()
    calibration = generator.vae.decoder.calibration
    kept = calibration.clone()
    out = np.empty((len(y), calibration.shape[0]), np.int8)
    try:
        for c, offsets in per_class.items():
            calibration.copy_(offsets)
            rows = np.flatnonzero(y == c)
            out[rows] = generator.sample(torch.full((len(rows),), float(c)),
                                         torch.Generator().manual_seed(seed + 1000 * c), options).numpy()
    finally:
        calibration.copy_(kept)
    return out


def class_offsets(generator, train: np.ndarray, y: np.ndarray, *, draws: int = 8000, rounds: int = 3,
                  ancestry: str = "", guidance: float | None = None) -> dict:
    """The per-class frequency offsets of the module docstring: {class: (m, 3)}. ``ancestry`` "training": only the
    part of a class's deviation that its mix of ancestry groups (``structure.training_groups``) does not explain is
    shrunk, target_c = q + (a_c - p) + s (p_c - a_c), a_c = sum_g share of group g in class c x p_g; "release": the
    same with the ancestry-explained part taken from the release's own group frequencies q_g (its people assigned to
    the nearest group mean, ``structure.group_assigner``), target_c = sum_g share x q_g + s (p_c - a_c);
    ``guidance``: the offsets fitted on draws at that classifier-free guidance (None: the default);
    "training_eb": as "training", the residual p_c - a_c also shrunk by lambda = tau^2 / (tau^2 + p_c (1 - p_c) /
    n_c), tau^2 its mean square beyond sampling noise over the panel (empirical Bayes, as the pooled calibration)."""
    from snpgen_core.evaluation.structure import group_assigner
    from snpgen_core.models.generators import _shares

    decoder = generator.vae.decoder
    kept = decoder.calibration.clone()
    share = decoder.trait_share.numpy().astype(float)[:, None]
    pooled = _shares(train)[0]
    found = group_assigner(train) if ancestry else None
    groups = None if found is None else found[0]
    mix = y[np.random.default_rng(11).integers(0, len(y), 4 * draws)]
    drawn = release(generator, mix, 11, guidance=guidance)
    q = _shares(drawn)[0]
    drawn_groups = found[1](drawn) if found is not None and ancestry == "release" else None
    out = {}
    try:
        for c in (0, 1):
            p_c, a_c, base = _shares(train[y == c])[0], pooled, q - pooled
            if groups is not None:
                weights = {g: (groups[y == c] == g).mean() for g in np.unique(groups)}
                a_c = sum(w * _shares(train[groups == g])[0] for g, w in weights.items())
                base = q + (a_c - pooled) - a_c
                if drawn_groups is not None:
                    base = sum(w * _shares(drawn[drawn_groups == g])[0] for g, w in weights.items()) - a_c
            residual = share * (p_c - a_c)
            if ancestry == "training_eb":  # the residual also shrunk by how much of it sampling noise explains
                noise = p_c * (1 - p_c) / max(int((y == c).sum()), 1)
                tau2 = max(float(np.mean((p_c - a_c) ** 2 - noise)), 0.0)
                residual = residual * (tau2 / (tau2 + noise) if tau2 > 0 else 0.0)
            target = np.clip(base + a_c + residual, 1e-4, None)
            target /= target.sum(1, keepdims=True)
            decoder.calibration.copy_(kept)
            for r in range(rounds):
                got = _shares(release(generator, np.full(draws, c), 31 + 10 * c + r, guidance=guidance))[0]
                decoder.calibration.add_(torch.as_tensor(np.log(target + 1e-4) - np.log(got + 1e-4),
                                                         dtype=decoder.calibration.dtype))
            out[c] = decoder.calibration.clone()
    finally:
        decoder.calibration.copy_(kept)
    return out


def label_references(train, holdout, y_train, y_holdout) -> dict:
    """The label attack (``utility.label_membership``) on two releases that bracket a generator's: each class's
    SNPs drawn on their own from the training class's genotype frequencies (copies no one, but carries the class
    differences of the training sample), and the training people themselves with their own trait (a copier)."""
    from snpgen_core.evaluation.attacks import draw_independent
    from snpgen_core.evaluation.utility import label_membership

    floor = np.empty_like(train)
    for c in (0, 1):
        rows = train[y_train == c]
        counts = np.stack([(rows == g).sum(0) for g in (0, 1, 2)], axis=1) + 0.5
        floor[y_train == c] = draw_independent(counts / counts.sum(1, keepdims=True), len(rows), 5 + c)
    return {"label_floor": label_membership(train, holdout, floor, y_train, y_holdout, y_train, "binary").value,
            "label_copier": label_membership(train, holdout, train, y_train, y_holdout, y_train, "binary").value}


def scored(train, holdout, y_train, y_holdout, synthetic, y_synthetic, seed: int) -> dict:
    """The card's functions on one release."""
    from snpgen_core.evaluation import privacy
    from snpgen_core.evaluation.association import case_control_af_diff_r
    from snpgen_core.evaluation.privacy import copying
    from snpgen_core.evaluation.structure import detection_auc
    from snpgen_core.evaluation.utility import label_membership, tstr

    data = privacy.PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
    row = {m: float(getattr(privacy, m)(data).value) for m in METRICS}
    v = tstr(train, holdout, synthetic, y_train, y_holdout, y_synthetic, "binary", n_boot=2, seed=seed)
    a = case_control_af_diff_r(train, holdout, synthetic, y_train, y_holdout, y_synthetic, "binary", seed=seed)
    return {**row, "tstr_ratio": v.value / v.reference, "association_copying": float(copying(a, "differences").value),
            "cc_diff_r_ratio": a.value / a.reference,
            "slope": slope(differences(synthetic, y_synthetic), differences(train, y_train)),
            "detection_auc": float(detection_auc(train, holdout, synthetic, seed=seed).value),
            "label_membership_auc": float(label_membership(train, holdout, synthetic, y_train, y_holdout, y_synthetic,
                                                           "binary", seed=seed).value)}


def screen(prep: dict, run_dir: Path, draws: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from snpgen_core.evaluation.utility import prediction_model, _predict, impute_mean, training_means
    from snpgen_core.runs import load_run

    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    y = prep["trait"].values
    y_train, y_holdout = y[prep["split"].train], y[prep["split"].holdout]
    generator = load_run(run_dir).generator("diffusion")
    means = training_means(train)

    def holdout_auc(x, labels, seed):
        fitted = prediction_model("binary", "linear", seed, len(labels)).fit(impute_mean(x, means), labels)
        return roc_auc_score(y_holdout, _predict(fitted, impute_mean(holdout, means), "binary"))

    trtr = holdout_auc(train, y_train, 0)
    mix = y_train[np.random.default_rng(7).integers(0, len(y_train), LARGE)]
    large = release(generator, mix, 7)
    d_train = differences(train, y_train)
    row = {"trtr_auc": trtr, "tstr_large_ratio": holdout_auc(large, mix, 7) / trtr,
           "holdout_slope": slope(differences(holdout, y_holdout), d_train),
           "release_slope": slope(differences(large, mix), d_train),
           "mean_trait_share": float(generator.vae.decoder.trait_share.mean()),
           **label_references(train, holdout, y_train, y_holdout)}
    variants = {"base": (None, None), "class_share": (class_offsets(generator, train, y_train), None),
                "class_share_ancestry": (class_offsets(generator, train, y_train, ancestry="training"), None),
                "class_share_release_groups": (class_offsets(generator, train, y_train, ancestry="release"), None),
                "class_share_eb": (class_offsets(generator, train, y_train, ancestry="training_eb"), None),
                "guidance_1": (None, 1.0)}
    for name, (per_class, guidance) in variants.items():
        rows = []
        for k in range(draws):
            seed = 100 + k
            labels = y_train[np.random.default_rng(seed).integers(0, len(y_train), len(y_train))]
            rows.append(scored(train, holdout, y_train, y_holdout, release(generator, labels, seed, per_class,
                                                                           guidance), labels, seed))
        row[name] = {m: round(float(np.mean([r[m] for r in rows])), 4) for m in rows[0]}
    return row


def main() -> None:
    ap = runs_parser(__doc__, cohorts="phase1,agbl4", draws=3)
    ap.add_argument("--config", default="group_mix", help="the runs' config name (run_<config>_<seed>)")
    args = ap.parse_args()
    record_runs(args, lambda seed: f"run_{args.config}_{seed}", screen, RESULTS)


def runs_parser(doc: str, cohorts: str = "none", draws: int = 4) -> argparse.ArgumentParser:
    """The command line of a script that scores runs with ``record_runs``: ``--cohorts``, ``--training-seeds``,
    ``--unseen``, ``--draws``, ``--work``."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", default=cohorts, help="bench_targets cohorts with a binary trait, or none")
    ap.add_argument("--training-seeds", default="1")
    ap.add_argument("--unseen", nargs="*", default=[], help="bench_unseen.py cohort folders (their run_default)")
    ap.add_argument("--draws", type=int, default=draws)
    ap.add_argument("--work", default=str(WORK))
    return ap


def record_runs(args, run_name, measure, results: Path) -> None:
    """``measure(prep dict, run folder, draws)`` on each run of ``--cohorts`` x ``--training-seeds``
    (``bench_targets`` runs ``run_name(seed)``) and of the ``--unseen`` folders (their ``run_default``), each row
    printed (without its per-draw lists, keys ending ``_draws``) and recorded in ``results``."""
    from bench_unseen import cli_cohort

    torch.set_num_threads(1)
    runs = [(name, seed, lambda n=name: prepare_cohort(n, Path(args.work)), Path(args.work) / name / run_name(seed))
            for name in args.cohorts.split(",") if name != "none"
            for seed in (int(s) for s in args.training_seeds.split(","))]
    runs += [(Path(u).name, 1, lambda u=u: cli_cohort(Path(u), "default"), Path(u) / "run_default")
             for u in args.unseen]
    for name, seed, prep, run_dir in runs:
        t0 = time.perf_counter()
        row = {"cohort": name, "training_seed": seed, "run": str(run_dir), "draws": args.draws,
               **measure(prep(), run_dir, args.draws), "machine": machine(), "load": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.perf_counter() - t0, 1)}
        print({k: v for k, v in row.items() if not k.endswith("_draws")}, flush=True)
        record_row(results, row, lambda r: (r["cohort"], r["training_seed"], r["run"]))


if __name__ == "__main__":
    main()
