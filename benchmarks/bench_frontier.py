"""Benchmark: the fidelity-privacy frontier of our generators, against a real holdout that never trained a model
or chose a SNP.

Each point is one run of the real pipeline (``train_run``, default ``TrainConfig`` except the swept knob), and
each run gives three generators (latent diffusion = ours, VAE + Gaussian, independent SNPs). Swept: the decoder
(``vae.window``: 0 = the independent decoder of SNPgen / Xie et al., 16 = each SNP conditioned on its 16
predecessors) and the main memorisation knob (VAE epochs). Scored with the report's own functions at equal
sizes: LD r^2 correlation (pairs within 50 SNPs) as a ratio to the holdout's, detection AUC, membership AUC (distance
to closest synthetic), DCR share, AATS privacy loss. The real holdout itself (a fresh sample, which a perfect
generator would match) is the reference point; on the 805 SNPs Yelmen et al.'s GAN and RBM genomes are too.

    .venv/bin/python benchmarks/bench_frontier.py --dataset sim [--seed 1] [--points default|compare|sweep|global]
    .venv/bin/python benchmarks/bench_frontier.py --dataset 805

Cohorts (``agbl4``: 1000 Genomes AGBL4, CASE, GWAS on the training part, clump r^2 0.9, top 2,000); ``sim`` = ``snpgen simulate --n 3000 --snps 6000 --seed S``, its recorded 80/20 split and training-only
GWAS, a 1,000-SNP clumped panel, trait CASE; ``805`` = 1000 Genomes 805 SNPs conditioned on super-population
(``../shared/data/1000g_805``), seeded 80/20 split. Results: ``benchmarks/results/frontier_<dataset>.json`` (one
row per point, appended) and ``docs/frontier_<dataset>.svg`` (LD ratio and detection AUC against membership AUC).
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
from _common import machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = (REPO / ".." / "shared" / "data").resolve()
RESULTS = REPO / "benchmarks" / "results"
GENERATORS = ("diffusion", "vae_gaussian", "independent")
# (label, config overrides): the default, then the sweep of decoder x VAE epochs
OLD_DEFAULTS = {"vae": {"window": 0, "latent_dim": 64, "kl_weight": 0.02, "decoder_gain": 1.0,
                        "decoder_trait": False},
                "vae_fit": {"check_every": 0}, "diffusion_fit": {"check_every": 0}}
POINTS = {
    "default": [("window 16 (default)", {})],
    # the landed design before the local decoder (independent decoder, 64-d latent, KL 0.02, no checks)
    "compare": [("window 16 (default)", {}), ("window 0, otherwise default", {"vae": {"window": 0}}),
                ("previous defaults (window 0, 64-d, KL 0.02)", OLD_DEFAULTS)],
    "sweep": [(f"window {w}, {e} VAE epochs", {"vae": {"window": w}, "vae_fit": {"epochs": e}})
              for w in (0, 16) for e in (10, 30, 100)],
    # global structure in the latent: a head predicting the training PCs (vae.pc_components / pc_weight), and
    # hidden units in the decoder (vae.decoder_hidden)
    "global": [("pc20 w0.01", {"vae": {"pc_components": 20, "pc_weight": 0.01}}),
               ("pc20 w0.02", {"vae": {"pc_components": 20, "pc_weight": 0.02}}),
               ("pc20 w0.05", {"vae": {"pc_components": 20, "pc_weight": 0.05}}),
               ("pc10 w0.02", {"vae": {"pc_components": 10, "pc_weight": 0.02}}),
               ("dh16", {"vae": {"decoder_hidden": 16}}),
               ("dh16 pc20 w0.02", {"vae": {"pc_components": 20, "pc_weight": 0.02, "decoder_hidden": 16}})],
}


def prepare_sim(work: Path, seed: int, n: int = 3000) -> dict:
    """``snpgen simulate --n n --snps 6000 --seed seed``, its recorded split and a 1,000-SNP panel chosen on the
    training part, in ``work``/sim<seed> (n = 3000) or sim<seed>n<n>; made once."""
    from snpgen_core.cli import main as snpgen

    d = work / (f"sim{seed}" if n == 3000 else f"sim{seed}n{n}")
    if not (d / "panel.tsv").exists():
        d.mkdir(parents=True, exist_ok=True)
        for argv in (["simulate", "--out", f"{d}/c", "--n", str(n), "--snps", "6000", "--seed", str(seed)],
                     ["split", "--bfile", f"{d}/c", "--split-file", f"{d}/c.split.tsv", "--out", f"{d}/cohort"],
                     ["select", "--bfile", f"{d}/cohort.train", "--gwas", f"{d}/c.gwas.tsv", "--top", "1000",
                      "--out", f"{d}/panel.tsv"]):
            assert snpgen(argv) == 0, argv
    return {"train": d / "cohort.train", "holdout": d / "cohort.holdout", "panel": d / "panel.tsv",
            "pheno": d / "c.pheno.tsv", "column": "CASE", "peers": {}}


def prepare_805(work: Path, seed: int) -> dict:
    from snpgen_core.io.plink import read_fam
    from snpgen_core.phenotypes import read_phenotype
    from snpgen_core.splits import split_samples, trait_strata, write_split_cohorts

    src = DATA / "1000g_805"
    d = work / "805"
    if not (d / "cohort.train.bed").exists():
        d.mkdir(parents=True, exist_ok=True)
        trait = read_phenotype(read_fam(src / "real.fam"), src / "populations.tsv", "SUPERPOP")
        split = split_samples(len(trait.values), strata=trait_strata(trait.values, trait.kind), holdout=0.2,
                              seed=seed)
        write_split_cohorts(src / "real", split, d / "cohort")
    return {"train": d / "cohort.train", "holdout": d / "cohort.holdout", "panel": None,
            "pheno": src / "populations.tsv", "column": "SUPERPOP",
            "peers": {p: src / "peers" / p for p in ("yelmen_gan", "yelmen_rbm")}}


def prepare_agbl4(work: Path, seed: int) -> dict:
    """1000 Genomes AGBL4, trait CASE: 80/20 split, PLINK 1.9 --logistic on the training part only, clumping at
    r^2 0.9 and the top 2,000 (so that the panel has >= 1,000 SNPs), as bench_quality.py prepares it."""
    from bench_quality import prepare

    from snpgen_core.io.plink import write_plink

    d = work / "agbl4"
    if not (d / "holdout.bed").exists():
        prep = prepare("agbl4", work, seed, 2000, 0.9)
        write_plink(d / "holdout", prep["holdout"])
    spec = {"train": d / "train", "holdout": d / "holdout", "panel": d / "panel.tsv",
            "pheno": DATA / "1000g_agbl4" / "pheno.tsv", "column": "CASE", "peers": {}}
    return spec


def score(train, holdout, synthetic, chrom, seed: int = 0) -> dict:
    """The frontier's coordinates, each from the report's own metric functions (equal sizes inside)."""
    from snpgen_core.evaluation.ld import ld_r
    from snpgen_core.evaluation.privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc
    from snpgen_core.evaluation.structure import detection_auc

    ld = ld_r(train, holdout, synthetic, chrom, seed=seed)
    det = detection_auc(train, holdout, synthetic, seed=seed)
    data = PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
    mia = membership_auc(data)
    return {"ld_ratio": ld.value / ld.reference, "ld_r": ld.value, "ld_r_holdout": ld.reference,
            "detection_auc": det.value, "detection_auc_holdout": det.reference,
            "membership_auc": mia.value, "membership_auc_holdout": mia.reference,
            "dcr_share": dcr_share(data).value, "aats_privacy_loss": aats_privacy_loss(data).value}


def run_point(spec: dict, label: str, overrides: dict, work: Path, seed: int) -> list[dict]:
    import torch

    from snpgen_core.generation import condition_mix
    from snpgen_core.io.plink import read_plink
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.pipeline import train_run
    from snpgen_core.runs import load_run, read_privacy_check

    out = work / "runs" / f"{label.replace(' ', '_').replace(',', '')}_seed{seed}"
    if not (out / "run.json").exists():
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        train_run(spec["train"], out, pheno_path=spec["pheno"], pheno_col=spec["column"],
                  panel_path=spec["panel"] or _all_snps(spec["train"], work), config=overrides, seed=seed, threads=1)
    train_s = json.loads((out / "run.json").read_text())["train_seconds"]  # also right for a reused run
    run = load_run(out)
    train = read_plink(spec["train"], variants=_panel_rows(spec["train"], run.variants))
    holdout = read_plink(spec["holdout"], variants=_panel_rows(spec["holdout"], run.variants))
    chrom = run.variants["chrom"].to_numpy()
    check = read_privacy_check(out)
    rows = []
    for model in GENERATORS:
        cond = torch.as_tensor(condition_mix(run.phenotype, train.n_samples, seed=seed), dtype=torch.float32)
        t1 = time.perf_counter()
        synthetic = run.generator(model).sample(cond, torch.Generator().manual_seed(seed), SamplingOptions()).numpy()
        rows.append({"point": label, "model": model, "seed": seed, "train_s": round(train_s, 1),
                     "generate_s": round(time.perf_counter() - t1, 2),
                     "validation_check_passed": None if check is None else check.passed,
                     **score(train.dosages, holdout.dosages, synthetic, chrom, seed)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _panel_rows(prefix, variants) -> np.ndarray:
    from snpgen_core.io.plink import read_bim

    import pandas as pd

    return pd.Index(read_bim(f"{prefix}.bim")["snp"]).get_indexer(variants["snp"]).astype(np.int64)


def _all_snps(prefix, work: Path) -> Path:
    from snpgen_core.io.plink import read_bim

    path = work / "all_snps.txt"
    path.write_text("\n".join(read_bim(f"{prefix}.bim")["snp"].astype(str)) + "\n")
    return path


def reference_rows(spec: dict, seed: int) -> list[dict]:
    """The holdout (by construction) and the published peers' genomes, scored the same way."""
    from snpgen_core.io.plink import read_plink

    train, holdout = read_plink(spec["train"]), read_plink(spec["holdout"])
    rows = [{"point": "real holdout", "model": "reference", "seed": seed, "ld_ratio": 1.0,
             "detection_auc": None, "membership_auc": None}]
    for name, prefix in spec["peers"].items():
        peer = read_plink(prefix)
        rows.append({"point": name, "model": "peer", "seed": seed,
                     **score(train.dosages, holdout.dosages, peer.dosages, train.variants["chrom"].to_numpy(), seed)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def svg_frontier(rows: list[dict], path: Path, title: str) -> None:
    """Two scatter panels (LD ratio and detection AUC against membership AUC), hand-written SVG."""
    colours = {"diffusion": "#1f77b4", "vae_gaussian": "#ff7f0e", "independent": "#7f7f7f", "peer": "#d62728",
               "reference": "#2ca02c"}
    w, h, pad = 360, 300, 50
    panels = [("ld_ratio", "LD r^2 correlation / holdout's", 0.0, 1.1),
              ("detection_auc", "detection AUC (lower is better)", 0.45, 1.0)]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w + 40}" height="{h + 70}" '
             f'font-family="sans-serif" font-size="11"><text x="10" y="16" font-size="13">{title}</text>']
    ref = next((r for r in rows if r["model"] == "reference"), None)
    for i, (key, label, lo, hi) in enumerate(panels):
        ox = 20 + i * (w + 10)
        x0, x1, y0, y1 = ox + pad, ox + w - 10, h, 40
        parts.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{(x0 + x1) / 2 - 60}" y="{h + 30}">membership AUC (0.5 = private)</text>')
        parts.append(f'<text x="{ox}" y="30">{label}</text>')

        def px(v, a=0.45, b=0.8):
            return x0 + (min(max(v, a), b) - a) / (b - a) * (x1 - x0)

        def py(v):
            return y0 - (min(max(v, lo), hi) - lo) / (hi - lo) * (y0 - y1)

        for t in (0.5, 0.6, 0.7, 0.8):
            parts.append(f'<text x="{px(t) - 8}" y="{h + 14}">{t:.1f}</text>')
        for t in np.linspace(lo, hi, 5):
            parts.append(f'<text x="{x0 - 30}" y="{py(t) + 4}">{t:.2f}</text>')
        parts.append(f'<line x1="{px(0.53)}" y1="{y1}" x2="{px(0.53)}" y2="{y0}" stroke="#2ca02c" '
                     f'stroke-dasharray="4"/>')
        for r in rows:
            if r.get(key) is None or r.get("membership_auc") is None:
                continue
            c = colours.get(r["model"], "#000")
            parts.append(f'<circle cx="{px(r["membership_auc"]):.1f}" cy="{py(r[key]):.1f}" r="4" fill="{c}">'
                         f'<title>{r["point"]} / {r["model"]}</title></circle>')
        if ref is not None and key == "ld_ratio":
            parts.append(f'<circle cx="{px(0.5)}" cy="{py(1.0)}" r="5" fill="none" stroke="#2ca02c" '
                         f'stroke-width="2"><title>real holdout</title></circle>')
    legend = " ".join(f'<tspan fill="{c}">&#9679; {k}</tspan>' for k, c in colours.items())
    parts.append(f'<text x="20" y="{h + 55}">{legend}</text></svg>')
    path.write_text("\n".join(parts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["sim", "805", "agbl4"], default="sim")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--points", choices=sorted(POINTS), default="default")
    ap.add_argument("--work", default="/tmp/snpgen-bench/frontier")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    spec = {"sim": prepare_sim, "805": prepare_805, "agbl4": prepare_agbl4}[args.dataset](work, args.seed)
    rows = reference_rows(spec, args.seed)
    for label, overrides in POINTS[args.points]:
        rows += run_point(spec, label, overrides, work / args.dataset, args.seed)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"frontier_{args.dataset}.json"
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    keep = [r for r in old if (r["point"], r["model"], r["seed"]) not in {(x["point"], x["model"], x["seed"])
                                                                          for x in rows}]
    all_rows = keep + rows
    out.write_text(json.dumps({"machine": machine(), "load": os.getloadavg(), "rows": all_rows}, indent=1) + "\n")
    svg_frontier(all_rows, REPO / "docs" / f"frontier_{args.dataset}.svg",
                 f"Fidelity-privacy frontier, {args.dataset} (points: run settings x generator)")
    print(f"wrote {out} and docs/frontier_{args.dataset}.svg")


if __name__ == "__main__":
    main()
