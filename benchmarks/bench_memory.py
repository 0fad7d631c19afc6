"""Peak memory against the panel size when the cohort is much larger than the panel (issue 9, item 2).

One genome-wide-shaped PLINK cohort (default 10,000 training + 2,000 holdout individuals x 100,000 SNPs, written
directly as .bed bytes: seeded genotypes, no missing calls, a binary trait in .fam column 6), then, each in a
fresh process (peak RSS = VmHWM):

    tables      import snpgen_core + torch, parse the .bim/.fam: the floor every command pays
    read all    read_plink of the whole training .bed (what reading the cohort would cost)
    train K     snpgen train --snps PANEL_K --epochs 1 (default model; the panel's SNPs only are read)
    evaluate K  snpgen evaluate of 2,000 synthetic individuals from that run against the whole training and
                holdout .bed (only the synthetic cohort's SNPs are read from them)

for panels of K SNPs spread over the file. Prints a Markdown table with the machine, date and load average.

    .venv/bin/python benchmarks/bench_memory.py [--n 10000] [--m 100000] [--panels 500,1000,2000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import machine  # noqa: E402

_CODES = np.array([0b00, 0b10, 0b11], dtype=np.uint8)  # .bed 2-bit codes: hom A1, het, hom A2 (no 01 = missing)


def write_bed(prefix: Path, n: int, m: int, seed: int) -> None:
    """A PLINK trio of ``n`` (a multiple of 4) individuals x ``m`` SNPs, written as raw SNP-major bytes."""
    assert n % 4 == 0
    rng = np.random.default_rng(seed)
    with open(prefix.with_name(prefix.name + ".bed"), "wb") as fh:
        fh.write(bytes([0x6C, 0x1B, 0x01]))
        for s in range(0, m, 2_000):
            k = min(2_000, m - s)
            p = np.clip(rng.beta(0.4, 0.4, k), 0.05, 0.95)[:, None]
            codes = _CODES[(rng.random((k, n)) < p).astype(np.uint8) + (rng.random((k, n)) < p)]  # (k, n)
            c = codes.reshape(k, n // 4, 4)
            fh.write((c[..., 0] | c[..., 1] << 2 | c[..., 2] << 4 | c[..., 3] << 6).astype(np.uint8).tobytes())
    with open(prefix.with_name(prefix.name + ".bim"), "w") as fh:
        fh.writelines(f"1\trs{j}\t0\t{100 * (j + 1)}\tA\tG\n" for j in range(m))
    trait = rng.integers(1, 3, n)
    with open(prefix.with_name(prefix.name + ".fam"), "w") as fh:
        fh.writelines(f"{prefix.name}{i} {prefix.name}{i} 0 0 0 {trait[i]}\n" for i in range(n))


CHILD = """
import json, resource, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from snpgen_core.cli import main
from snpgen_core.io.plink import read_bim_fam, read_plink
what, args = sys.argv[1], sys.argv[2:]
if what == "tables":
    read_bim_fam(args[0])
elif what == "read_all":
    read_plink(args[0])
else:
    assert main(args) == 0, args
with open("/proc/self/status") as fh:
    peak = next(int(l.split()[1]) / 1024 for l in fh if l.startswith("VmHWM:"))
print(json.dumps({{"peak_mib": peak}}))
"""


def child(what: str, *args: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), what, *args], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="training individuals (a multiple of 4)")
    ap.add_argument("--m", type=int, default=100_000, help="SNPs in the file")
    ap.add_argument("--panels", default="500,1000,2000")
    ap.add_argument("--workdir", type=Path, help="keep the cohort here (default: a temporary folder)")
    args = ap.parse_args()
    panels = [int(k) for k in args.panels.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_memory-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train, holdout = work / "train", work / "holdout"
        if not train.with_name("train.bed").exists():
            write_bed(train, args.n, args.m, 1)
            write_bed(holdout, 2_000, args.m, 2)
        bed_mib = train.with_name("train.bed").stat().st_size / 2**20
        print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
        print(f"cohort: {args.n:,} training + 2,000 holdout individuals x {args.m:,} SNPs; training .bed "
              f"{bed_mib:,.0f} MiB, int8 matrix {args.n * args.m / 2**20:,.0f} MiB", flush=True)
        rows = [("parse .bim/.fam only", "-", child("tables", str(train))),
                ("read_plink, whole file", f"{args.m:,}", child("read_all", str(train)))]
        for r in rows:
            print(r, flush=True)
        for k in panels:
            ids = [f"rs{j}" for j in np.linspace(0, args.m - 1, k).astype(int)]
            (work / f"panel{k}.txt").write_text("\n".join(ids) + "\n")
            run, syn = work / f"run{k}", work / f"syn{k}"
            rows.append((f"snpgen train --snps (1 epoch)", f"{k:,}", child(
                "cli", "train", "--bfile", str(train), "--snps", str(work / f"panel{k}.txt"), "--epochs", "1",
                "--device", "cpu", "--out", str(run))))
            print(rows[-1], flush=True)
            subprocess.run([sys.executable, "-m", "snpgen_core", "generate", "--run", str(run), "--n", "2000",
                            "--out", str(syn)], check=True, capture_output=True, cwd=ROOT)
            rows.append((f"snpgen evaluate", f"{k:,}", child(
                "cli", "evaluate", "--real", str(train), "--holdout", str(holdout), "--synthetic", str(syn),
                "--device", "cpu", "--out", str(work / f"report{k}"))))
            print(rows[-1], flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}\n")
    print("| step | panel SNPs | peak RSS (MiB) | wall (s) |\n| --- | --- | --- | --- |")
    for name, k, r in rows:
        print(f"| {name} | {k} | {r['peak_mib']:,.0f} | {r['wall_s']:.0f} |")


if __name__ == "__main__":
    main()
