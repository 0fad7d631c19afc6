"""Benchmark: read a whole .bed (10,000 x 5,000 and 100,000 x 2,000) with snpgen_core.read_plink against
bed_reader's own raw read of the same file, in the same run. Peak memory is measured in a fresh subprocess
per reader so the numbers do not mix.

    .venv/bin/python benchmarks/bench_read.py [--repeats 5] [--dir /tmp/snpgen-bench]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time  # noqa: E402

SHAPES = [(10_000, 5_000), (100_000, 2_000)]


def make_file(prefix: Path, n: int, m: int) -> None:
    from snpgen_core.genotypes import Genotypes, make_samples, make_variants
    from snpgen_core.io.plink import write_plink

    if prefix.with_suffix(".bed").exists():
        return
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.5, m)
    dos = rng.binomial(2, p, size=(n, m)).astype(np.int8)
    dos[rng.random((n, m)) < 0.001] = -1
    variants = make_variants("1", [f"rs{j}" for j in range(m)], np.arange(m) * 100 + 1, ["A"] * m, ["G"] * m)
    write_plink(prefix, Genotypes(dos, variants, make_samples([f"S{i}" for i in range(n)])))


def read_ours(prefix: str):
    from snpgen_core.io.plink import read_plink

    return read_plink(prefix).dosages


def read_raw(prefix: str):
    from bed_reader import open_bed

    with open_bed(prefix + ".bed", count_A1=True) as bed:
        return bed.read(dtype="int8", order="C")


def peak_in_subprocess(which: str, prefix: str) -> float:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_read, _common; "
            f"bench_read.{which}({prefix!r}); print(_common.peak_rss_mib())")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/snpgen-bench")
    args = ap.parse_args()
    rows = []
    for n, m in SHAPES:
        prefix = Path(args.dir) / f"read_{n}x{m}"
        make_file(prefix, n, m)
        a, b = read_ours(str(prefix)), read_raw(str(prefix))
        assert np.array_equal(np.where(b == -127, -1, b), a)  # same genotypes before timing anything
        # interleave the two readers so drift on a shared machine hits both alike
        ours, raw = [], []
        for _ in range(args.repeats):
            ours += median_time(lambda: read_ours(str(prefix)), 1)[1]
            raw += median_time(lambda: read_raw(str(prefix)), 1)[1]
        t_ours, t_raw = float(np.median(ours)), float(np.median(raw))
        rows.append({
            "shape": f"{n:,} x {m:,}", "read_plink_s": t_ours, "bed_reader_s": t_raw, "ratio": t_ours / t_raw,
            "read_plink_peak_mib": peak_in_subprocess("read_ours", str(prefix)),
            "bed_reader_peak_mib": peak_in_subprocess("read_raw", str(prefix)),
            "matrix_mib": n * m / 2**20,
        })
    print(f"machine: {machine()}; median of {args.repeats} runs each, interleaved")
    print("| individuals x SNPs | read_plink (s) | bed_reader raw (s) | ratio | peak RSS ours / raw (MiB) | int8 matrix (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['shape']} | {r['read_plink_s']:.3f} | {r['bed_reader_s']:.3f} | {r['ratio']:.2f}x | "
              f"{r['read_plink_peak_mib']:.0f} / {r['bed_reader_peak_mib']:.0f} | {r['matrix_mib']:.0f} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
