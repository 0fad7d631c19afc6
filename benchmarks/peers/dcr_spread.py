"""How much a synthetic set's DCR share moves with the training subsample (BENCHMARKS.md, "Peers side by side").

    PY=/work/main/.venv/bin/python
    $PY benchmarks/peers/dcr_spread.py --cohort 805 --row xie_vae_e50 [--draws 20]

``snpgen evaluate``'s DCR share compares each synthetic individual's nearest L1 distance to an equal-size training
subsample and to the holdout, from one seeded subsample. When a generator's outputs crowd around a few real
people ("hubs"), the 2,000 synthetic individuals are not 2,000 independent trials: this prints the number of
distinct nearest neighbours, the number of distinct synthetic rows, and the share over ``--draws`` training
subsamples (mean, sd, range), so a share far from 0.5 can be told apart from the noise of a few hubs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import WORK, cohort_dir  # noqa: E402


def main() -> None:
    from scipy.spatial.distance import cdist

    from snpgen_core.io.plink import read_plink

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", default="805")
    ap.add_argument("--row", required=True)
    ap.add_argument("--draws", type=int, default=20)
    a = ap.parse_args()
    d = cohort_dir(a.cohort)
    train, holdout, syn = (read_plink(p).dosages.astype(np.float32)
                           for p in (d / "train", d / "holdout", d / "syn" / a.row))
    to_h = cdist(syn, holdout, "cityblock")
    shares = []
    for seed in range(a.draws):
        t = np.random.default_rng(seed).choice(len(train), len(holdout), replace=False)
        to_t = cdist(syn, train[t], "cityblock")
        near_t, near_h = to_t.min(1), to_h.min(1)
        shares.append(np.mean(near_t < near_h) + 0.5 * np.mean(near_t == near_h))
        if seed == 0:
            print(f"{a.cohort} {a.row} (work {WORK}): distinct synthetic rows {len(np.unique(syn, axis=0))} of "
                  f"{len(syn)}; heterozygosity synthetic {np.mean(syn == 1):.3f}, training {np.mean(train == 1):.3f}; "
                  f"distinct nearest neighbours: training subsample {len(np.unique(to_t.argmin(1)))}, holdout "
                  f"{len(np.unique(to_h.argmin(1)))} (of {len(holdout)})")
    print(f"DCR share over {a.draws} training subsamples: mean {np.mean(shares):.3f}, sd {np.std(shares):.3f}, "
          f"range {np.min(shares):.3f}-{np.max(shares):.3f}")


if __name__ == "__main__":
    main()
