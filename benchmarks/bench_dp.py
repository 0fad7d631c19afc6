"""Benchmark: utility, fidelity and the attacks of the report card at epsilon 1, 3, 8 and without differential
privacy (2 CPU cores: minutes per point, run with ``nice -n 19``), with a plot (``docs/dp_<dataset>.svg``).

Cohorts: ``--dataset sim``: ``simulate_cohort(n=N, n_snps=M, seed=S)``, its recorded split (train / holdout) and
training-only GWAS, a clumped panel of ``--top`` SNPs, trait CASE; ``--dataset 805``: the shared 1000 Genomes 805
SNPs conditioned on super-population, ``bench_frontier.py``'s seeded 80/20 split, every SNP; ``--dataset agbl4``:
1000 Genomes AGBL4, trait CASE, ``bench_frontier.py``'s split and training-only panel (clump r^2 0.9). Every
point trains the real pipeline (``train_run``) with the same settings and epochs (the DP points run every epoch;
the non-DP point may stop early), generates as many individuals as the holdout (the training part's condition
mix) and scores them with ``evaluate`` against the real holdout. Prints a Markdown table and appends the rows to
``benchmarks/results/dp.json``.

    nice -n 19 .venv/bin/python benchmarks/bench_dp.py [--n 1000] [--snps 300] [--top 200] [--epochs 10]
    nice -n 19 .venv/bin/python benchmarks/bench_dp.py --dataset 805 --epochs 10
    nice -n 19 .venv/bin/python benchmarks/bench_dp.py --dataset agbl4 --epochs 10
    nice -n 19 .venv/bin/python benchmarks/bench_dp.py --dataset 805 --model markov   # the DP Markov chain

``--model markov`` trains the Markov chain (``models/markov.py``) at each point instead (seconds; ``--epochs``
is then unused); ``--config '{"markov_prior": 1}'`` adds settings to every point.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
ROWS = [("fidelity", "ld_r", "LD r"), ("fidelity", "ld_decay_mae", "LD decay MAE"),
        ("fidelity", "allele_frequency_mae", "AF MAE"), ("fidelity", "detection_auc", "detection AUC"),
        ("utility", "tstr_auc|tstr_accuracy|tstr_r", "TSTR"), ("privacy", "membership_auc", "membership AUC"),
        ("privacy", "dcr_share", "DCR share"), ("privacy", "domias_auc", "DOMIAS AUC"),
        ("privacy", "attribute_inference_gap", "attribute inference gap")]


def main() -> None:
    from snpgen_core.evaluation import EvaluationConfig, evaluate
    from snpgen_core.generation import generate
    from snpgen_core.io.plink import read_plink
    from snpgen_core.pipeline import train_run
    from snpgen_core.runs import run_summary
    from snpgen_core.simulate import simulate_cohort, write_cohort
    from snpgen_core.splits import write_split_cohorts

    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["sim", "805", "agbl4"], default="sim")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--snps", type=int, default=300)
    ap.add_argument("--top", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epsilons", default="1,3,8,0", help="0 = no differential privacy")
    ap.add_argument("--model", choices=["diffusion", "markov"], default="diffusion",
                    help="diffusion: DP-SGD on the VAE and the denoiser; markov: the Markov chain's noisy counts")
    ap.add_argument("--config", default="{}", help="JSON of TrainConfig settings added to every point")
    args = ap.parse_args()
    print(machine())
    config = {"vae_fit": {"epochs": args.epochs, "min_epochs": 0},
              "diffusion_fit": {"epochs": 3 * args.epochs, "min_epochs": 0, "val_repeats": 1},
              "model": args.model, **json.loads(args.config)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        phenos, inputs, case_fraction = {}, {}, None
        if args.dataset == "sim":
            cohort = simulate_cohort(n=args.n, n_snps=args.snps, seed=args.seed)
            write_cohort(cohort, tmp / "sim")
            write_split_cohorts(tmp / "sim", cohort.split, tmp / "c")
            prefix = tmp / "c.train"
            train, holdout = read_plink(tmp / "c.train"), read_plink(tmp / "c.holdout")
            case_fraction = float((train.samples["pheno"].astype(str) == "2").mean())
            inputs = {"gwas_path": tmp / "sim.gwas.tsv", "top": args.top}
        else:
            from bench_frontier import _all_snps, prepare_805, prepare_agbl4

            from snpgen_core.phenotypes import read_phenotype

            spec = (prepare_805 if args.dataset == "805" else prepare_agbl4)(tmp, args.seed)
            prefix = spec["train"]
            train, holdout = read_plink(spec["train"]), read_plink(spec["holdout"])
            inputs = {"panel_path": spec["panel"] or _all_snps(spec["train"], tmp), "pheno_path": spec["pheno"],
                      "pheno_col": spec["column"]}
            phenos = {who: read_phenotype(g.samples, spec["pheno"], spec["column"])
                      for who, g in (("train_pheno", train), ("holdout_pheno", holdout))}
            if phenos["train_pheno"].kind == "binary":
                case_fraction = float(np.nanmean(phenos["train_pheno"].values))
        for eps in (float(e) for e in args.epsilons.split(",")):
            t0 = time.perf_counter()
            cfg = {**config, "dp": {"epsilon": eps}}
            run = tmp / f"run_{eps:g}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                train_run(prefix, run, config=cfg, seed=args.seed, device="cpu", **inputs)
            seconds = time.perf_counter() - t0
            syn = generate(run, holdout.n_samples, out_prefix=tmp / f"syn_{eps:g}", case_fraction=case_fraction,
                           seed=args.seed)
            synthetic = read_plink(syn)
            if phenos:
                from snpgen_core.phenotypes import read_phenotype

                phenos["synthetic_pheno"] = read_phenotype(synthetic.samples, f"{syn}.pheno.tsv",
                                                           phenos["train_pheno"].name)
            report = evaluate(train, holdout, synthetic, seed=args.seed, device="cpu",
                              config=EvaluationConfig(threads=1), model=run_summary(run), **phenos)
            dp = run_summary(run)["differential_privacy"]
            row = {"target_epsilon": eps or None, "epsilon": dp["epsilon"] if dp else None,
                   "delta": dp["delta"] if dp else None, "train_seconds": seconds, "overall": report["overall"]}
            for section, name, _ in ROWS:
                m = next((report[section][n] for n in name.split("|") if n in report[section]), {})
                row[name] = (m.get("value"), m.get("reference"), m.get("status"))
            rows.append(row)
            print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "dp.json", "a") as fh:
        for row in rows:
            fh.write(json.dumps({**row, "dataset": args.dataset, "n": args.n, "snps": args.snps, "top": args.top,
                                 "epochs": args.epochs, "seed": args.seed, "model": args.model,
                                 "config": json.loads(args.config), "date": time.strftime("%Y-%m-%d")}) + "\n")
    if args.model == "markov":
        svg_dp(rows, REPO / "docs" / f"dp_markov_{args.dataset}.svg", f"DP Markov chain (noisy pair counts) on "
               f"{args.dataset}: each metric against epsilon (dashed: the real holdout's value)")
    else:
        svg_dp(rows, REPO / "docs" / f"dp_{args.dataset}.svg", f"DP-SGD on {args.dataset}: each metric against "
               f"epsilon ({args.epochs} VAE epochs; dashed: the real holdout's value)")
    head = ["epsilon (target)", "epsilon spent", "train s"] + [label + " (holdout)" for *_, label in ROWS] + ["grade"]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for r in rows:
        cells = ["none" if r["target_epsilon"] is None else f"{r['target_epsilon']:g}", fmt(r["epsilon"]),
                 f"{r['train_seconds']:.0f}"]
        cells += [f"{fmt(r[name][0])} ({fmt(r[name][1])})" for _, name, _ in ROWS] + [r["overall"]]
        print("| " + " | ".join(cells) + " |")


def svg_dp(rows: list[dict], path: Path, title: str) -> None:
    """One small panel per metric of ``ROWS``: the synthetic value at each epsilon (and without DP, at the right
    edge), the real holdout's value dashed; hand-written SVG."""
    w, h, pad, cols = 230, 170, 38, 4
    eps = [r["target_epsilon"] for r in rows]
    xs = sorted({e for e in eps if e is not None})
    slots = [str(f"{e:g}") for e in xs] + (["none"] if None in eps else [])
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * w + 20}" '
             f'height="{((len(ROWS) + cols - 1) // cols) * (h + 30) + 40}" font-family="sans-serif" font-size="10">'
             f'<text x="10" y="16" font-size="12">{title}</text>']
    for k, (_, name, label) in enumerate(ROWS):
        ox, oy = 10 + (k % cols) * w, 30 + (k // cols) * (h + 30)
        x0, x1, y0, y1 = ox + pad, ox + w - 12, oy + h - 20, oy + 18
        values = [r[name][0] for r in rows] + [r[name][1] for r in rows]
        finite = [v for v in values if v is not None]
        if not finite:
            continue
        lo, hi = min(finite), max(finite)
        lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 1e-9 else (lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        px = lambda i: x0 + (i + 0.5) / len(slots) * (x1 - x0)  # noqa: E731
        py = lambda v: y0 - (v - lo) / (hi - lo) * (y0 - y1)  # noqa: E731
        parts.append(f'<text x="{ox + 4}" y="{oy + 10}">{label}</text>')
        parts.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#bbb"/>')
        for t in (lo, (lo + hi) / 2, hi):
            parts.append(f'<text x="{ox}" y="{py(t) + 3:.1f}">{t:.2f}</text>')
        for i, s in enumerate(slots):
            parts.append(f'<text x="{px(i) - 8:.1f}" y="{y0 + 12}">{s}</text>')
        pts = []
        for r in rows:
            i = slots.index("none" if r["target_epsilon"] is None else f"{r['target_epsilon']:g}")
            v, ref = r[name][0], r[name][1]
            if ref is not None:
                parts.append(f'<line x1="{px(i) - 10:.1f}" x2="{px(i) + 10:.1f}" y1="{py(ref):.1f}" '
                             f'y2="{py(ref):.1f}" stroke="#2ca02c" stroke-dasharray="3"/>')
            if v is not None:
                pts.append((px(i), py(v)))
                parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="3.5" fill="#1f77b4"/>')
        if len(pts) > 1:
            parts.append('<polyline fill="none" stroke="#1f77b4" points="'
                         + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
        parts.append(f'<text x="{(x0 + x1) / 2 - 12:.1f}" y="{y0 + 24}">epsilon</text>')
    path.write_text("\n".join(parts) + "</svg>\n")


if __name__ == "__main__":
    main()
