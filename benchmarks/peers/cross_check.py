"""The peers' own evaluators on a synthetic set of the harness (issue 14, item 4), beside ``snpgen evaluate``.

    /tmp/peers-venv/bin/python benchmarks/peers/cross_check.py --cohort 805 --row ours_diffusion

Run in the peers' venv (README). Reads WORK/<cohort>/{train,holdout}.bed and syn/<row>.bed (bed_reader, count A1),
and the report ``snpgen evaluate`` wrote for that row. Their code, unchanged, from the pinned snapshots:

- SNPgen (ht-diva, ``snpgen/evaluation/privacy/metrics.py``): ``membership_inference_distance`` (AUC of -distance
  from every training vs every holdout individual to its nearest synthetic one), ``dcr_analysis`` (median DCR of
  synthetic and holdout individuals to training; share of synthetic below the holdout's 5th percentile), ``nnaa``
  (NNAA privacy score), ``nndr_analysis``; Hamming distance on genotype vectors (their default) and Manhattan.
- Xie et al. (DiscreteGenoGen, ``metric/LD.py``): ``LD`` = Rogers-Huff r (scikit-allel) for every SNP pair; we
  correlate the synthetic and training r^2 over pairs within 50 SNPs (our ``ld_r`` window) and over all pairs.

Writes ``benchmarks/results/cross_check_<cohort>_<row>.json`` and prints it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORK = Path(os.environ.get("PEERS_WORK", "/tmp/snpgen-bench/peers"))
SNPGEN = {"repo": "ht-diva/SNPgen", "commit": "277aafde2d5065421c5d694045cd651d3eb9630b",
          "mirror": "/work/.mirror/ht-diva+SNPgen/repo"}


def snapshot(info: dict, name: str, paths: list[str]) -> Path:
    import subprocess

    dest = WORK / name
    if not (dest / ".commit").exists():
        dest.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", f"--git-dir={info['mirror']}", "archive", info["commit"], *paths],
                             check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
        (dest / ".commit").write_text(info["commit"] + "\n")
    return dest


def read(prefix: Path) -> np.ndarray:
    from bed_reader import open_bed

    with open_bed(f"{prefix}.bed", count_A1=True) as bed:
        x = bed.read(dtype="int8")
    return x


def xie_ld(train: np.ndarray, holdout: np.ndarray, syn: np.ndarray, window: int = 50) -> dict:
    """Xie et al.'s ``metric/LD.LD`` (Rogers-Huff r, scikit-allel) on each cohort; Pearson r of the synthetic's and
    the holdout's r^2 with the training r^2, over pairs within ``window`` SNPs and over all pairs."""
    import pandas as pd

    from harness import xie_checkout

    sys.path.insert(0, str(xie_checkout() / "metric"))
    from LD import LD  # noqa: E402

    m = train.shape[1]
    i, j = np.triu_indices(m, 1)  # scipy's condensed order, as LD returns r
    near = (j - i) <= window
    r2 = {k: np.nan_to_num(LD(pd.DataFrame(x.astype(float)))[1]) for k, x in
          (("train", train), ("holdout", holdout), ("synthetic", syn))}
    out = {}
    for name, mask in (("within_50", near), ("all_pairs", np.ones_like(near))):
        syn_r = float(np.corrcoef(r2["train"][mask], r2["synthetic"][mask])[0, 1])
        hold_r = float(np.corrcoef(r2["train"][mask], r2["holdout"][mask])[0, 1])
        out[name] = {"synthetic": syn_r, "holdout": hold_r, "ratio": syn_r / hold_r}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohort", default="805")
    ap.add_argument("--row", default="ours_diffusion")
    a = ap.parse_args()
    d = WORK / a.cohort
    train, holdout, syn = read(d / "train"), read(d / "holdout"), read(d / "syn" / a.row)
    ours = json.loads((d / "reports" / a.row / "report.json").read_text())
    out = {"cohort": a.cohort, "row": a.row, "sizes": [len(train), len(holdout), len(syn)]}

    # SNPgen's privacy module (imported as the package ``privacy``: their package __init__ pulls in lightning)
    snp = snapshot(SNPGEN, "SNPgen", ["snpgen/evaluation/privacy", "LICENSE"])
    sys.path.insert(0, str(snp / "snpgen" / "evaluation"))
    from privacy import metrics as pm  # noqa: E402

    for metric in ("hamming", "manhattan"):
        mi = pm.membership_inference_distance(syn, train, holdout, metric=metric, device="cpu", verbose=False)
        dcr = pm.dcr_analysis(syn, train, holdout, metric=metric, device="cpu", verbose=False)
        nn = pm.nnaa(syn, train, metric=metric, device="cpu", verbose=False)
        nndr = pm.nndr_analysis(syn, train, metric=metric, device="cpu", verbose=False)
        out[f"snpgen_{metric}"] = {"mi_auc": mi.auc, "dcr_syn_median": dcr.dcr_syn_median,
                                   "dcr_holdout_median": dcr.dcr_holdout_median,
                                   "dcr_frac_below_holdout_5pct": dcr.frac_below_5th_pct,
                                   "nnaa_privacy_score": nn.privacy_score, "nnaa_aa_train": nn.aa_train,
                                   "nnaa_aa_syn": nn.aa_syn, "nndr_mean": nndr.nndr_mean}
    # equal sizes (as ours compares): a random training subsample as large as the holdout
    rows = np.random.default_rng(0).choice(len(train), len(holdout), replace=False)
    mi_eq = pm.membership_inference_distance(syn, train[rows], holdout, metric="manhattan", device="cpu",
                                             verbose=False)
    out["snpgen_manhattan"]["mi_auc_equal_sizes"] = mi_eq.auc

    out["xie_ld"] = xie_ld(train, holdout, syn)

    m = lambda s, k: (ours.get(s, {}).get(k) or {})  # noqa: E731
    out["snpgen_evaluate"] = {k: {"value": m(s, k).get("value"), "reference": m(s, k).get("reference")}
                              for s, k in (("privacy", "membership_auc"), ("privacy", "dcr_share"),
                                           ("privacy", "aats"), ("privacy", "aats_privacy_loss"),
                                           ("fidelity", "ld_r"))}
    path = REPO / "benchmarks" / "results" / f"cross_check_{a.cohort}_{a.row}.json"
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
