"""Benchmark: the fidelity-privacy frontier of our generators, against a real holdout that never trained a model
or chose a SNP.

Each trained point is one run of the real pipeline (``train_run``, the default ``TrainConfig`` except the knob
named), scored for the generators listed with it: latent diffusion (ours, the default), VAE + Gaussian (the same
VAE, a Gaussian prior), independent SNPs (frequencies only; it does not depend on the knobs, so it is scored once)
and the first-order Markov chain (its own run). Swept: the decoder (the independent decoder of SNPgen / Xie et al.
against today's local one), the issue's landed design, the latent's capacity, the VAE's epochs (stopped early on
the validation loss, or run to the end and the last weights kept: the memorising end); and, on the default run,
the sampling knobs (temperature, latent noise). Scored with the report's own functions at equal sizes: LD r^2
correlation (pairs within 50 SNPs) as a ratio to the holdout's, detection AUC (the card's: gradient boosting on 20
training PCs), membership AUC (distance to closest synthetic), DCR share, AATS privacy loss. The real holdout (a
fresh sample, which a perfect generator would match) is the reference point; on the 805 SNPs Yelmen et al.'s GAN
and RBM genomes are too (trained by their authors on all of 1000 Genomes, holdout included).

    .venv/bin/python benchmarks/bench_frontier.py --dataset sim|805|agbl4 [--seed 1] [--points default|sweep]

Cohorts (``agbl4``: 1000 Genomes AGBL4, CASE, GWAS on the training part, clump r^2 0.9, top 2,000); ``sim`` =
``snpgen simulate --n 3000 --snps 6000 --seed S``, its recorded 80/20 split and training-only GWAS, a 1,000-SNP
clumped panel, trait CASE; ``805`` = 1000 Genomes 805 SNPs conditioned on super-population
(``../shared/data/1000g_805``), seeded 80/20 split. Results: ``benchmarks/results/frontier_<dataset>.json`` (one
row per point and generator; a point measured again replaces its row; written after every point) and
``docs/frontier_<dataset>.svg`` (LD ratio and detection AUC against membership AUC, detection against AATS loss).
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
VAE_BASED = ("diffusion", "vae_gaussian")
# the design the issue found (independent decoder, 64-d latent, KL 0.02, no memorisation checks)
OLD_DEFAULTS = {"vae": {"window": 0, "latent_dim": 64, "kl_weight": 0.02, "decoder_gain": 1.0,
                        "decoder_trait": False},
                "vae_fit": {"check_every": 0}, "diffusion_fit": {"check_every": 0}}
# label -> (config overrides, generators scored); the default first
TRAINED = {
    "default": ({}, (*VAE_BASED, "independent")),
    "independent decoder (window 0)": ({"vae": {"window": 0}}, VAE_BASED),
    "issue's landed design": (OLD_DEFAULTS, VAE_BASED),
    "latent 4": ({"vae": {"latent_dim": 4}}, VAE_BASED),
    "latent 64": ({"vae": {"latent_dim": 64}}, VAE_BASED),
    "VAE 10 epochs": ({"vae_fit": {"epochs": 10}}, VAE_BASED),
    "VAE 100 epochs, last kept": ({"vae_fit": {"min_epochs": 100, "keep_from": 100}}, VAE_BASED),
    "Markov chain": ({"model": "markov"}, ("markov",)),
}
# label -> SamplingOptions fields: the default run's diffusion sampled with another knob
SAMPLED = {"temperature 0.9": {"temperature": 0.9}, "temperature 1.1": {"temperature": 1.1},
           "latent noise 0.5": {"latent_noise": 0.5}}
POINTS = {"default": ["default"], "sweep": list(TRAINED)}


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
            "pheno": d / "c.pheno.tsv", "column": "CASE", "gwas": d / "c.gwas.tsv", "peers": {}}


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
            "pheno": DATA / "1000g_agbl4" / "pheno.tsv", "column": "CASE", "gwas": d / "gwas_train.assoc.logistic",
            "peers": {}}
    return spec


def score(train, holdout, synthetic, chrom, seed: int = 0) -> dict:
    """The frontier's coordinates, each from the report's own metric functions (equal sizes inside)."""
    from snpgen_core.evaluation.ld import ld_r
    from snpgen_core.evaluation.privacy import PrivacyInputs, aats_privacy_loss, dcr_share, membership_auc
    from snpgen_core.evaluation.structure import detection_auc

    ld = ld_r(train, holdout, synthetic, chrom, seed=seed)
    det = detection_auc(train, holdout, synthetic, seed=seed)
    data = PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
    mia, dcr, aats = membership_auc(data), dcr_share(data), aats_privacy_loss(data)
    return {"ld_ratio": ld.value / ld.reference, "ld_r": ld.value, "ld_r_holdout": ld.reference,
            "detection_auc": det.value, "detection_auc_holdout": det.reference,
            "membership_auc": mia.value, "membership_auc_holdout": mia.reference,
            **{k: m.value for k, m in (("dcr_share", dcr), ("aats_privacy_loss", aats))},
            **{f"{k}_holdout": m.reference for k, m in (("dcr_share", dcr), ("aats_privacy_loss", aats))}}


def run_point(spec: dict, label: str, work: Path, seed: int) -> list[dict]:
    """Train (or reuse) the run of a TRAINED point and score its generators; for the default, also the SAMPLED
    points from the same run."""
    import torch

    from snpgen_core.generation import condition_mix
    from snpgen_core.io.plink import read_plink
    from snpgen_core.models.generators import SamplingOptions
    from snpgen_core.pipeline import train_run
    from snpgen_core.runs import load_run, read_privacy_check

    overrides, models = TRAINED[label]
    out = work / "runs" / f"{label.replace(' ', '_').replace(',', '').replace(chr(39), '')}_seed{seed}"
    if not (out / "run.json").exists():
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        train_run(spec["train"], out, pheno_path=spec["pheno"], pheno_col=spec["column"],
                  panel_path=spec["panel"] or _all_snps(spec["train"], work), gwas_path=spec.get("gwas"),
                  config=overrides, seed=seed, threads=1)
    train_s = json.loads((out / "run.json").read_text())["train_seconds"]  # also right for a reused run
    run = load_run(out)
    train = read_plink(spec["train"], variants=_panel_rows(spec["train"], run.variants))
    holdout = read_plink(spec["holdout"], variants=_panel_rows(spec["holdout"], run.variants))
    chrom = run.variants["chrom"].to_numpy()
    check = read_privacy_check(out)
    cond = torch.as_tensor(condition_mix(run.phenotype, train.n_samples, seed=seed), dtype=torch.float32)
    draws = [(label, model, {}) for model in models]
    if label == "default":
        draws += [(f"default, {name}", "diffusion", options) for name, options in SAMPLED.items()]
    rows = []
    for point, model, options in draws:
        t1 = time.perf_counter()
        synthetic = run.generator(model).sample(cond, torch.Generator().manual_seed(seed),
                                                SamplingOptions(**options)).numpy()
        rows.append({"point": point, "model": model, "seed": seed, "train_s": round(train_s, 1),
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
    """Three scatter panels (LD ratio and detection AUC against membership AUC, detection AUC against AATS loss),
    hand-written SVG: colour = generator, number = point (listed below the panels), green ring = the real holdout
    (its reference values, from the default's rows), dashed lines = the issue's targets."""
    colours = {"diffusion": "#1f77b4", "vae_gaussian": "#ff7f0e", "independent": "#7f7f7f", "markov": "#9467bd",
               "peer": "#d62728", "reference": "#2ca02c"}
    w, h, top = 330, 300, 40
    # (x key, x label, x range, x target; y key, y label, y range, y target)
    panels = [("membership_auc", "membership AUC (0.5 = private)", (0.45, 0.6), 0.53,
               "ld_ratio", "LD r^2 correlation / holdout's", (0.0, 1.1), 0.95),
              ("membership_auc", "membership AUC (0.5 = private)", (0.45, 0.6), 0.53,
               "detection_auc", "detection AUC (lower is better)", (0.45, 1.0), 0.60),
              ("aats_privacy_loss", "AATS privacy loss (0 = private)", (-0.02, 0.12), 0.02,
               "detection_auc", "detection AUC (lower is better)", (0.45, 1.0), 0.60)]
    scored = [r for r in rows if r["model"] != "reference" and r.get("membership_auc") is not None]
    numbers = {p: i + 1 for i, p in enumerate(dict.fromkeys(r["point"] for r in scored))}
    ref = next((r for r in scored if r["point"] == "default" and r["model"] == "diffusion"), None)
    holdout = None if ref is None else {"membership_auc": ref["membership_auc_holdout"], "ld_ratio": 1.0,
                                        "detection_auc": ref["detection_auc_holdout"],
                                        "aats_privacy_loss": ref.get("aats_privacy_loss_holdout")}
    legend_lines = (len(numbers) + 2) // 3
    height = h + 75 + 14 * legend_lines
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * w + 50}" height="{height}" '
             f'font-family="sans-serif" font-size="11"><text x="10" y="16" font-size="13">{title}</text>']
    for i, (xk, xl, (xa, xb), xt, yk, yl, (ya, yb), yt) in enumerate(panels):
        ox = 10 + i * (w + 10)
        x0, x1, y0, y1 = ox + 45, ox + w - 5, h, top

        def px(v, a=xa, b=xb, x0=x0, x1=x1):
            return x0 + (min(max(v, a), b) - a) / (b - a) * (x1 - x0)

        def py(v, a=ya, b=yb, y0=y0, y1=y1):
            return y0 - (min(max(v, a), b) - a) / (b - a) * (y0 - y1)

        parts.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{x0 + 20}" y="{h + 30}">{xl}</text><text x="{ox}" y="{top - 8}">{yl}</text>')
        for t in np.linspace(xa, xb, 5):
            parts.append(f'<text x="{px(t) - 10:.1f}" y="{h + 14}">{t:.2f}</text>')
        for t in np.linspace(ya, yb, 5):
            parts.append(f'<text x="{x0 - 32}" y="{py(t) + 4:.1f}">{t:.2f}</text>')
        parts.append(f'<line x1="{px(xt):.1f}" y1="{y1}" x2="{px(xt):.1f}" y2="{y0}" stroke="#2ca02c" '
                     f'stroke-dasharray="4"/><line x1="{x0}" y1="{py(yt):.1f}" x2="{x1}" y2="{py(yt):.1f}" '
                     f'stroke="#2ca02c" stroke-dasharray="4"/>')
        for r in scored:
            if r.get(xk) is None or r.get(yk) is None:
                continue
            cx, cy, c = px(r[xk]), py(r[yk]), colours.get(r["model"], "#000")
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{c}" fill-opacity="0.8">'
                         f'<title>{r["point"]} / {r["model"]}</title></circle>'
                         f'<text x="{cx + 5:.1f}" y="{cy - 3:.1f}" font-size="9" fill="{c}">'
                         f'{numbers[r["point"]]}</text>')
        if holdout is not None and holdout.get(xk) is not None and holdout.get(yk) is not None:
            parts.append(f'<circle cx="{px(holdout[xk]):.1f}" cy="{py(holdout[yk]):.1f}" r="6" fill="none" '
                         f'stroke="#2ca02c" stroke-width="2"><title>real holdout</title></circle>')
    y = h + 50
    legend = " ".join(f'<tspan fill="{c}">&#9679; {k}</tspan>' for k, c in colours.items() if k != "reference")
    parts.append(f'<text x="10" y="{y}">{legend} <tspan fill="#2ca02c">&#9711; real holdout</tspan>'
                 f' <tspan fill="#2ca02c">- - targets</tspan></text>')
    items = list(numbers.items())
    for k in range(legend_lines):
        line = " &#183; ".join(f"{n} {p}" for p, n in items[k * 3:(k + 1) * 3])
        parts.append(f'<text x="10" y="{y + 16 + 14 * k}">{line}</text>')
    parts.append("</svg>")
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
    out = RESULTS / f"frontier_{args.dataset}.json"
    save(out, reference_rows(spec, args.seed), args.dataset)
    for label in POINTS[args.points]:
        save(out, run_point(spec, label, work / args.dataset, args.seed), args.dataset)
    print(f"wrote {out} and docs/frontier_{args.dataset}.svg")


def save(out: Path, rows: list[dict], dataset: str) -> None:
    """Merge ``rows`` into ``out`` (a point measured again replaces its row) and redraw the figure."""
    RESULTS.mkdir(exist_ok=True)
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    new = {(r["point"], r["model"], r["seed"]) for r in rows}
    all_rows = [r for r in old if (r["point"], r["model"], r["seed"]) not in new] + rows
    out.write_text(json.dumps({"machine": machine(), "load": os.getloadavg(), "rows": all_rows}, indent=1) + "\n")
    svg_frontier(all_rows, REPO / "docs" / f"frontier_{dataset}.svg",
                 f"Fidelity-privacy frontier, {dataset} (colour: generator; number: run setting)")


if __name__ == "__main__":
    main()
