"""Benchmark: LD clumping of 5,000 SNPs for 10,000 individuals, snpgen_core.clumping.clump against
plink1.9 --clump on the same files, in the same run (interleaved), with the index SNPs compared.

Data (seeded): msprime, 10,000 diploid individuals over a 10 Mb region (Ne 10,000, recombination 1e-8), 5,000
SNPs with MAF >= 1% drawn at random, and a GWAS of a quantitative trait with 20 causal SNPs (per-SNP regression
p-values). Two settings: the panel default (p1 = p2 = 1: every SNP is a candidate) and PLINK's own defaults.

    .venv/bin/python benchmarks/bench_clump.py [--repeats 5] [--dir /tmp/snpgen-bench]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time  # noqa: E402

N, M, LENGTH, SEED = 10_000, 5_000, 10e6, 7
SETTINGS = [("panel: p1 = p2 = 1", 1.0, 1.0), ("PLINK defaults: p1 1e-4, p2 0.01", 1e-4, 1e-2)]
R2, KB = 0.5, 250


def make_data(prefix: Path) -> None:
    """Write PREFIX.bed/.bim/.fam and PREFIX.assoc (SNP P) once."""
    import msprime
    from scipy import stats

    from snpgen_core.genotypes import Genotypes, make_samples, make_variants
    from snpgen_core.io.plink import write_plink

    if prefix.with_suffix(".assoc").exists():
        return
    ts = msprime.sim_ancestry(samples=N, sequence_length=LENGTH, recombination_rate=1e-8, population_size=10_000,
                              random_seed=SEED)
    ts = msprime.sim_mutations(ts, rate=3e-9, random_seed=SEED, model=msprime.BinaryMutationModel())
    haps = ts.genotype_matrix()  # (sites, 2N)
    pos = ts.tables.sites.position.astype(np.int64) + 1
    dos = (haps[:, 0::2] + haps[:, 1::2]).astype(np.int8)
    freq = dos.mean(axis=1) / 2
    common = np.flatnonzero((np.minimum(freq, 1 - freq) >= 0.01) & np.r_[True, np.diff(pos) > 0])
    rng = np.random.default_rng(SEED)
    keep = np.sort(rng.choice(common, M, replace=False))
    dos, pos = np.ascontiguousarray(dos[keep].T), pos[keep]
    x = dos.astype(np.float32)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    beta = np.zeros(M)
    beta[rng.choice(M, 20, replace=False)] = rng.normal(0, 0.1, 20)
    y = x @ beta + rng.normal(size=N)
    r = (x.T @ ((y - y.mean()) / y.std())) / N
    p = 2 * stats.t.sf(np.abs(r * np.sqrt((N - 2) / (1 - r * r))), N - 2)
    variants = make_variants("1", [f"rs{j}" for j in range(M)], pos, ["A"] * M, ["G"] * M)
    write_plink(prefix, Genotypes(dos, variants, make_samples([f"S{i}" for i in range(N)])))
    pd.DataFrame({"SNP": variants["snp"], "P": p}).to_csv(prefix.with_suffix(".assoc"), sep=" ", index=False)


def plink_clump(prefix: Path, p1: float, p2: float) -> pd.DataFrame:
    out = prefix.with_name(prefix.name + "_plink")
    subprocess.run(["plink1.9", "--bfile", str(prefix), "--clump", str(prefix.with_suffix(".assoc")),
                    "--clump-p1", str(p1), "--clump-p2", str(p2), "--clump-r2", str(R2), "--clump-kb", str(KB),
                    "--out", str(out)], check=True, capture_output=True)
    return pd.read_csv(out.with_suffix(".clumped"), sep=r"\s+")


def main() -> None:
    from snpgen_core.io.plink import read_plink
    from snpgen_core.clumping import clump

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/snpgen-bench")
    args = ap.parse_args()
    prefix = Path(args.dir) / "clump_10000x5000"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    make_data(prefix)
    table = pd.DataFrame({"variant_index": np.arange(M), "p": pd.read_csv(prefix.with_suffix(".assoc"), sep=" ")["P"]})
    genotypes = read_plink(prefix)
    have_plink = shutil.which("plink1.9") is not None
    rows = []
    for label, p1, p2 in SETTINGS:
        ours, ours_read, theirs = [], [], []
        for _ in range(args.repeats):  # interleaved so drift on a shared machine hits all alike
            ours += median_time(lambda: clump(genotypes, table, p1=p1, p2=p2, r2=R2, kb=KB), 1)[1]
            ours_read += median_time(lambda: clump(read_plink(prefix), table, p1=p1, p2=p2, r2=R2, kb=KB), 1)[1]
            if have_plink:
                theirs += median_time(lambda: plink_clump(prefix, p1, p2), 1)[1]
        mine = clump(genotypes, table, p1=p1, p2=p2, r2=R2, kb=KB)
        same = None
        if have_plink:
            ref = plink_clump(prefix, p1, p2)
            same = mine["SNP"].tolist() == ref["SNP"].tolist() and mine["TOTAL"].tolist() == ref["TOTAL"].tolist()
        rows.append({"setting": label, "index_snps": len(mine), "clump_s": float(np.median(ours)),
                     "read_and_clump_s": float(np.median(ours_read)),
                     "plink_s": float(np.median(theirs)) if theirs else None, "same_as_plink": same})
    print(f"machine: {machine()}; median of {args.repeats} runs each, interleaved; "
          f"{N:,} individuals x {M:,} SNPs (msprime, 10 Mb), r2 > {R2}, kb {KB}")
    print("| setting | index SNPs | clump, in memory (s) | read_plink + clump (s) | plink1.9 --clump (s) | "
          "same index SNPs and TOTAL as plink1.9 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        plink = f"{r['plink_s']:.2f}" if r["plink_s"] is not None else "not installed"
        same = {True: "yes", False: "NO", None: "n/a"}[r["same_as_plink"]]
        print(f"| {r['setting']} | {r['index_snps']:,} | {r['clump_s']:.2f} | {r['read_and_clump_s']:.2f} | "
              f"{plink} | {same} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
