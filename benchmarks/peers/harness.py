"""The peer harness (issue 14): every generator on the same recorded split, scored by ``snpgen evaluate``.

    PY=/work/main/.venv/bin/python      # our venv;  PEER_PY=/tmp/peers-venv/bin/python (README: the peers' venv)
    $PY benchmarks/peers/harness.py prepare  --cohort 805|sim|agbl4
    $PY benchmarks/peers/harness.py ours     --cohort 805 --model diffusion|wgan [--epochs N]
    $PY benchmarks/peers/harness.py xie      --cohort 805 --model wgan_gs|vae [--epochs N]
    $PY benchmarks/peers/harness.py snpgen   --cohort 805 [--epochs VAE] [--ddpm-epochs DDPM] [--steps S]
    $PY benchmarks/peers/harness.py yelmen   --cohort 805
    $PY benchmarks/peers/harness.py evaluate --cohort 805        # every synthetic set not yet scored
    $PY benchmarks/peers/harness.py table                        # the Markdown table of BENCHMARKS.md

Cohorts (recorded splits, the same as ``bench_frontier.py``'s at seed 1): ``805`` = 1000 Genomes 805 SNPs,
trait SUPERPOP (categorical, 5 classes), stratified 80/20; ``sim`` = ``snpgen simulate --n 3000 --snps 6000
--seed 1``, its recorded 80/20 split, a 1,000-SNP panel chosen on the training part, trait CASE (binary);
``agbl4`` = 1000 Genomes AGBL4 (``bench_frontier.prepare_agbl4``: stratified 80/20, PLINK 1.9 --logistic on the
training part only, clumping r^2 0.9, top 2,000: 1,371 SNPs), trait CASE (binary). Each
generator writes as many individuals as the training part holds, with the training part's condition mix, as PLINK
under ``WORK/<cohort>/syn/<row>``; ``evaluate`` runs ``snpgen evaluate`` (training part vs holdout vs synthetic)
and keeps the numbers in ``benchmarks/results/peers_<cohort>.json``.

Only I/O glue is ours: the peers' code runs from the pinned snapshot (``xie_glue.py``, README).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results"
WORK = Path(os.environ.get("PEERS_WORK", "/tmp/snpgen-bench/peers"))
PY = sys.executable
PEER_PY = os.environ.get("PEER_PY", "/tmp/peers-venv/bin/python")
SEED = 1
COHORTS = ("805", "sim", "agbl4")
SNPGEN = {"repo": "ht-diva/SNPgen", "commit": "277aafde2d5065421c5d694045cd651d3eb9630b",
          "mirror": "/work/.mirror/ht-diva+SNPgen/repo"}
XIE = {"repo": "SihanXXX/DiscreteGenoGen", "commit": "89e1b748c8388257a6e0d414338ba7e10fc93806",
       "mirror": "/work/.mirror/SihanXXX+DiscreteGenoGen/repo"}


def snpgen(*argv: str) -> None:
    """``snpgen ARGV`` of this checkout, in a child process (its own CPU time, our venv)."""
    subprocess.run([PY, "-m", "snpgen_core", *argv], cwd=REPO, check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})


def cohort_dir(cohort: str) -> Path:
    return WORK / cohort


def spec_of(cohort: str) -> dict:
    return json.loads((cohort_dir(cohort) / "spec.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# prepare: the recorded split, restricted to the panel, plus the peers' inputs (numpy)


def prepare(cohort: str) -> dict:
    from bench_frontier import prepare_805, prepare_agbl4, prepare_sim

    from snpgen_core.io.plink import read_plink, write_plink
    from snpgen_core.panel import read_panel
    from snpgen_core.phenotypes import encode_trait, read_phenotype

    d = cohort_dir(cohort)
    d.mkdir(parents=True, exist_ok=True)
    src = {"805": prepare_805, "sim": prepare_sim, "agbl4": prepare_agbl4}[cohort](WORK / "frontier", SEED)
    train, holdout = read_plink(src["train"]), read_plink(src["holdout"])
    if src["panel"] is not None:  # each part by its own SNP list (agbl4's holdout is written panel-only)
        snps = set(read_panel(src["panel"])["SNP"].astype(str))
        train, holdout = (g.subset(variants=np.flatnonzero(g.variants["snp"].astype(str).isin(snps)))
                          for g in (train, holdout))
    assert list(train.variants["snp"]) == list(holdout.variants["snp"]), "training and holdout panels differ"
    write_plink(d / "train", train)
    write_plink(d / "holdout", holdout)
    col = src["column"]
    trait = {who: read_phenotype(g.samples, src["pheno"], col) for who, g in (("train", train), ("holdout", holdout))}
    t = trait["train"]
    # one phenotype file for both real parts; synthetic sets get theirs appended at evaluation
    rows = []
    for who, g in (("train", train), ("holdout", holdout)):
        text = encode_trait(trait[who].values, t.kind, t.labels)[1]  # binary 1/2, not labels (read as categories)
        rows += [f"{f}\t{i}\t{x}" for f, i, x in zip(g.samples["fid"], g.samples["iid"], text)]
    (d / "pheno.tsv").write_text(f"FID\tIID\t{col}\n" + "\n".join(rows) + "\n")
    # the peers' inputs: training dosages (n, m) int8 and class codes (n,), missing calls imputed (none here)
    np.save(d / "train_dosages.npy", train.dosages)
    np.save(d / "train_cond.npy", t.values.astype(np.float32))
    spec = {"cohort": cohort, "column": col, "kind": t.kind, "labels": list(t.labels), "n_train": train.n_samples,
            "n_holdout": holdout.n_samples, "n_snps": train.n_variants,
            "peers": {k: str(v) for k, v in src["peers"].items()}}
    (d / "spec.json").write_text(json.dumps(spec, indent=1) + "\n")
    print(json.dumps(spec))
    return spec


def _timing(cohort: str, row: str, **values) -> None:
    path = cohort_dir(cohort) / "timing.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[row] = {**data.get(row, {}), **values}
    path.write_text(json.dumps(data, indent=1) + "\n")


def _condition_flags(spec: dict) -> list[str]:
    """The training part's condition mix for ``snpgen generate`` (binary: its exact case share)."""
    if spec["kind"] == "binary":
        cond = np.load(cohort_dir(spec["cohort"]) / "train_cond.npy")
        return ["--case-fraction", f"{np.nanmean(cond):.6f}"]
    return []  # categorical / quantitative: generate's default, the training part's distribution


# ---------------------------------------------------------------------------------------------------------------
# ours: snpgen train / generate (our default with its baselines, or the WGAN-GP)


def ours(cohort: str, model: str, epochs: int | None) -> None:
    spec, d = spec_of(cohort), cohort_dir(cohort)
    tag = f"{model}" + (f"_e{epochs}" if epochs else "")
    run = d / "runs" / tag
    (d / "all_snps.txt").write_text("\n".join(l.split("\t")[1] for l in (d / "train.bim").read_text().splitlines())
                                    + "\n")
    if not (run / "run.json").exists():
        shutil.rmtree(run, ignore_errors=True)
        t0 = time.perf_counter()
        snpgen("train", "--bfile", str(d / "train"), "--pheno", str(d / "pheno.tsv"), "--pheno-col", spec["column"],
               "--snps", str(d / "all_snps.txt"), "--out", str(run), "--seed", str(SEED), "--device", "cpu",
               "--model", model, *(["--epochs", str(epochs)] if epochs else []))
        _timing(cohort, tag, train_s=time.perf_counter() - t0)
    generators = ["wgan"] if model == "wgan" else ["diffusion", "vae_gaussian", "independent"]
    for g in generators:
        row = f"ours_{g}" + (f"_e{epochs}" if epochs else "")
        t0 = time.perf_counter()
        snpgen("generate", "--run", str(run), "--n", str(spec["n_train"]), "--model", g, "--seed", str(SEED),
               "--out", str(d / "syn" / row), "--force", *_condition_flags(spec))
        _timing(cohort, row, generate_s=time.perf_counter() - t0, run=tag)
        if "train_s" in json.loads((d / "timing.json").read_text()).get(tag, {}):
            _timing(cohort, row, train_s=json.loads((d / "timing.json").read_text())[tag]["train_s"])


# ---------------------------------------------------------------------------------------------------------------
# Xie et al. (DiscreteGenoGen): their code, pinned, run by xie_glue.py in the peers' venv


def xie_checkout() -> Path:
    """The pinned snapshot's files (the paths the glue needs), extracted once under WORK."""
    dest = WORK / "DiscreteGenoGen"
    if not (dest / ".commit").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        paths = ["metric", "models/WGAN_GS/human/MULTI", "models/VAE/human/MULTI", "LICENSE"]
        tar = subprocess.run(["git", f"--git-dir={XIE['mirror']}", "archive", XIE["commit"], *paths],
                             check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
        (dest / ".commit").write_text(XIE["commit"] + "\n")
    return dest


def xie(cohort: str, model: str, epochs: int | None) -> None:
    from snpgen_core.genotypes import Genotypes, make_samples
    from snpgen_core.io.plink import read_bim, write_plink
    from snpgen_core.phenotypes import encode_trait

    spec, d = spec_of(cohort), cohort_dir(cohort)
    code = xie_checkout()
    row = f"xie_{model}" + (f"_e{epochs}" if epochs else "")
    out = d / "peer_out" / row
    out.mkdir(parents=True, exist_ok=True)
    argv = [PEER_PY, str(HERE / "xie_glue.py"), "--code", str(code), "--model", model, "--data", str(d),
            "--out", str(out), "--seed", str(SEED), "--n-classes", str(len(spec["labels"]) if spec["kind"] != "binary"
                                                                      else 1)]
    if epochs:
        argv += ["--epochs", str(epochs)]
    subprocess.run(argv, check=True, cwd=out)
    times = json.loads((out / "times.json").read_text())
    dosages = np.load(out / "generated.npy").astype(np.int8)
    cond = np.load(out / "generated_cond.npy")
    variants = read_bim(d / "train.bim")
    ids = [f"SYN{i:06d}" for i in range(1, len(dosages) + 1)]
    pheno = ["-9" if c != c else str(int(c) + 1) if spec["kind"] == "binary" else "-9" for c in cond]
    write_plink(d / "syn" / row, Genotypes(dosages, variants, make_samples(ids, pheno=pheno)))
    labels = encode_trait(cond, spec["kind"], spec["labels"])[1]
    (d / "syn" / f"{row}.pheno.tsv").write_text(f"FID\tIID\t{spec['column']}\n" + "".join(
        f"{i}\t{i}\t{x}\n" for i, x in zip(ids, labels)))
    _timing(cohort, row, **times)


# ---------------------------------------------------------------------------------------------------------------
# SNPgen (Lampis et al., ht-diva/SNPgen): their notebooks' code, pinned, run by snpgen_glue.py in the peers' venv


def snpgen_checkout() -> Path:
    """The whole pinned snapshot (notebooks, configs, package), extracted fresh under WORK: the glue writes the
    notebooks' scripts into it and applies ``snpgen_notebooks.patch``."""
    dest = WORK / "SNPgen-model"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    tar = subprocess.run(["git", f"--git-dir={SNPGEN['mirror']}", "archive", SNPGEN["commit"]],
                         check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    (dest / ".commit").write_text(SNPGEN["commit"] + "\n")
    return dest


def snpgen_peer(cohort: str, vae_epochs: int | None, ddpm_epochs: int | None, steps: int | None) -> None:
    from snpgen_core.genotypes import Genotypes, make_samples
    from snpgen_core.io.plink import read_bim, write_plink
    from snpgen_core.phenotypes import encode_trait

    spec, d = spec_of(cohort), cohort_dir(cohort)
    code = snpgen_checkout()
    row = "snpgen" + (f"_e{vae_epochs}_{ddpm_epochs}" if vae_epochs or ddpm_epochs else "") + (
        f"_s{steps}" if steps else "")
    out = d / "peer_out" / row
    out.mkdir(parents=True, exist_ok=True)
    argv = [PEER_PY, str(HERE / "snpgen_glue.py"), "--code", str(code), "--data", str(d), "--out", str(out),
            "--n-classes", str(len(spec["labels"]) if spec["kind"] != "binary" else 2)]
    if vae_epochs:
        argv += ["--vae-epochs", str(vae_epochs)]
    if ddpm_epochs:
        argv += ["--ddpm-epochs", str(ddpm_epochs)]
    if steps:
        argv += ["--sample-steps", str(steps)]
    subprocess.run(argv, check=True, cwd=out, env={**os.environ, "WANDB_MODE": "disabled"})
    times = json.loads((out / "times.json").read_text())
    dosages = np.load(out / "generated.npy").astype(np.int8)
    cond = np.load(out / "generated_cond.npy")
    variants = read_bim(d / "train.bim")
    ids = [f"SYN{i:06d}" for i in range(1, len(dosages) + 1)]
    pheno = [str(int(c) + 1) if spec["kind"] == "binary" else "-9" for c in cond]
    write_plink(d / "syn" / row, Genotypes(dosages, variants, make_samples(ids, pheno=pheno)))
    labels = encode_trait(cond, spec["kind"], spec["labels"])[1]
    (d / "syn" / f"{row}.pheno.tsv").write_text(f"FID\tIID\t{spec['column']}\n" + "".join(
        f"{i}\t{i}\t{x}\n" for i, x in zip(ids, labels)))
    _timing(cohort, row, **times)


# ---------------------------------------------------------------------------------------------------------------
# Yelmen et al.: their published genomes (805 SNPs only)


def yelmen(cohort: str) -> None:
    from snpgen_core.io.plink import read_plink, write_plink

    spec, d = spec_of(cohort), cohort_dir(cohort)
    for name, prefix in spec["peers"].items():
        peer = read_plink(prefix)  # 2,500 unconditioned genomes, published; no condition mix to match
        write_plink(d / "syn" / name, peer)
        _timing(cohort, name, note="published genomes (GAN 20,000 / RBM 800 epochs, their GPU runs)")


# ---------------------------------------------------------------------------------------------------------------
# evaluate: snpgen evaluate for every synthetic set, numbers kept


METRICS = {"ld_ratio": ("fidelity", "ld_r", "ratio"), "detection_auc": ("fidelity", "detection_auc", "value"),
           "af_mae_ratio": ("fidelity", "allele_frequency_mae", "ratio"),
           "tstr_ratio": ("utility", None, "ratio"), "membership_auc": ("privacy", "membership_auc", "value"),
           "dcr_share": ("privacy", "dcr_share", "value")}


def _numbers(report: dict, kind: str) -> dict:
    out = {}
    for name, (section, key, how) in METRICS.items():
        if key is None:
            key = {"binary": "tstr_auc", "categorical": "tstr_accuracy", "quantitative": "tstr_r"}[kind]
        m = report.get(section, {}).get(key) or {}
        v, r = m.get("value"), m.get("reference")
        out[name] = None if v is None else (v / r if how == "ratio" and r else v)
        out[name + "_holdout"] = r
    return out


def evaluate(cohort: str, again: bool = False) -> None:
    spec, d = spec_of(cohort), cohort_dir(cohort)
    path = RESULTS / f"peers_{cohort}.json"
    results = json.loads(path.read_text()) if path.exists() else {"rows": {}}
    timing = json.loads((d / "timing.json").read_text()) if (d / "timing.json").exists() else {}
    for bed in sorted((d / "syn").glob("*.bed")):
        row = bed.stem
        if row in results["rows"] and not again:
            continue
        pheno = d / "syn" / f"{row}.eval.pheno.tsv"  # real parts + this set's conditions, one file
        own = Path(f"{d / 'syn' / row}.pheno.tsv")
        extra = "".join(own.read_text().splitlines(keepends=True)[1:]) if own.exists() else ""
        pheno.write_text((d / "pheno.tsv").read_text() + extra)
        t0 = time.perf_counter()
        snpgen("evaluate", "--real", str(d / "train"), "--holdout", str(d / "holdout"), "--synthetic",
               str(d / "syn" / row), "--pheno", str(pheno), "--pheno-col", spec["column"], "--seed", str(SEED),
               "--device", "cpu", "--out", str(d / "reports" / row))
        report = json.loads((d / "reports" / row / "report.json").read_text())
        results["rows"][row] = {**_numbers(report, spec["kind"]), **timing.get(row, {}),
                                "evaluate_s": time.perf_counter() - t0}
        print(row, json.dumps(results["rows"][row]), flush=True)
        path.write_text(json.dumps(results, indent=1) + "\n")


def table() -> str:
    lines = ["| cohort | generator | LD ratio | detection AUC | AF MAE ratio | TSTR ratio | membership AUC | "
             "DCR share | training | generation |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for cohort in COHORTS:
        path = RESULTS / f"peers_{cohort}.json"
        if not path.exists():
            continue
        for row, r in json.loads(path.read_text())["rows"].items():
            f = lambda k, p=3: "-" if r.get(k) is None else f"{r[k]:.{p}f}"  # noqa: E731
            t = lambda k: "-" if r.get(k) is None else f"{r[k]:.0f} s"  # noqa: E731
            lines.append(f"| {cohort} | {row} | {f('ld_ratio')} | {f('detection_auc')} | {f('af_mae_ratio', 2)} | "
                         f"{f('tstr_ratio')} | {f('membership_auc')} | {f('dcr_share')} | {t('train_s')} | "
                         f"{t('generate_s')} |")
    return "\n".join(lines)


def figure(cohort: str) -> Path:
    """The scored sets of ``cohort`` on the fidelity-privacy frontier plot of ``bench_frontier.py`` (LD ratio and
    detection AUC against membership AUC, the real holdout as the target): ``docs/peers_<cohort>.svg``."""
    from bench_frontier import svg_frontier

    results = json.loads((RESULTS / f"peers_{cohort}.json").read_text())["rows"]
    ours = {"ours_diffusion": "diffusion", "ours_vae_gaussian": "vae_gaussian", "ours_independent": "independent"}
    rows = [{"point": "real holdout", "model": "reference", "ld_ratio": 1.0, "detection_auc": None,
             "membership_auc": None}]
    rows += [{"point": name, "model": ours.get(name, "peer"), "ld_ratio": r.get("ld_ratio"),
              "detection_auc": r.get("detection_auc"), "membership_auc": r.get("membership_auc")}
             for name, r in results.items()]
    path = REPO / "docs" / f"peers_{cohort}.svg"
    svg_frontier(rows, path, f"Peers on the same split, {cohort} (red: other model families, ours or theirs; "
                             "hover for names)")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["prepare", "ours", "xie", "snpgen", "yelmen", "evaluate", "table", "figure"])
    ap.add_argument("--cohort", choices=COHORTS, default="805")
    ap.add_argument("--model")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--ddpm-epochs", type=int, help="snpgen: the DDPM's epochs (--epochs: the VAE's)")
    ap.add_argument("--steps", type=int, help="snpgen: Euler sampling steps (theirs: 50)")
    ap.add_argument("--again", action="store_true", help="evaluate: score every set again")
    a = ap.parse_args()
    if a.command == "prepare":
        prepare(a.cohort)
    elif a.command == "ours":
        ours(a.cohort, a.model or "diffusion", a.epochs)
    elif a.command == "xie":
        xie(a.cohort, a.model or "wgan_gs", a.epochs)
    elif a.command == "snpgen":
        snpgen_peer(a.cohort, a.epochs, a.ddpm_epochs, a.steps)
    elif a.command == "yelmen":
        yelmen(a.cohort)
    elif a.command == "evaluate":
        evaluate(a.cohort, a.again)
    elif a.command == "figure":
        print(figure(a.cohort))
    else:
        print(table())


if __name__ == "__main__":
    main()
