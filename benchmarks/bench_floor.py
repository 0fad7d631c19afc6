"""Benchmark: the cost of the report's no-copy floor (``evaluation.report._no_copy_floor``) beside the privacy
rows it annotates, one thread. Cohorts: N individuals x 2,000 SNPs drawn at random allele frequencies (the cost
depends on the sizes only); training 0.8N, holdout 0.2N, synthetic N, as ``bench_evaluate.py``.

    nice .venv/bin/python benchmarks/bench_floor.py [--sizes 2500 20000] [--privacy-up-to 2500]

Prints, per N, the seconds of ``privacy_metrics`` (measured up to ``--privacy-up-to``: at N = 20,000 it takes
minutes, see BENCHMARKS.md "Full evaluation") and of the floor.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine  # noqa: E402


def main() -> None:
    import torch

    from snpgen_core.evaluation.privacy import privacy_metrics
    from snpgen_core.evaluation.report import FLOOR_ROWS, _no_copy_floor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2500, 20000])
    ap.add_argument("--privacy-up-to", type=int, default=2500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(machine())
    rng = np.random.default_rng(0)
    for n in args.sizes:
        x = rng.binomial(2, rng.uniform(0.05, 0.5, 2000), size=(2 * n, 2000)).astype(np.int8)
        t, h, s = x[: int(0.8 * n)], x[int(0.8 * n): n], x[n:]
        rows, privacy_s = {}, None
        if n <= args.privacy_up_to:
            t0 = time.perf_counter()
            rows = privacy_metrics(t, h, s, seed=0, device="cpu")
            privacy_s = time.perf_counter() - t0
        else:
            from snpgen_core.evaluation.card import MetricValue

            rows = {k: MetricValue(0.5) for k in FLOOR_ROWS}
        t0 = time.perf_counter()
        _no_copy_floor(rows, t, h, len(s), None, 0, "cpu")
        floor_s = time.perf_counter() - t0
        shown = "not measured" if privacy_s is None else f"{privacy_s:.1f} s"
        print(f"N {n}: privacy rows {shown}, no-copy floor {floor_s:.1f} s; floor values "
              + ", ".join(f"{k} {rows[k].details['no_copy_floor']:.3f}" for k in FLOOR_ROWS))


if __name__ == "__main__":
    main()
