"""Screen a generator family that copies no one alone: a k-anonymous variable-order copying model. Not part of the
package (issue 13, thirty-first pass).

The thirtieth pass found that the detection classifier reads the tails of the PC scores, which real people get from
long stretches of genome they share with the training people; a generator gets them only by copying such stretches.
This model copies stretches, but only ones that at least k training people carry: each synthetic person walks along
the panel, and at SNP j draws its genotype from the genotypes at j of the training people (of its pool) identical
to it over its current context, the stretch since its last back-off; only genotypes that at least k of them carry
may be drawn, so every stretch it emits is identical in at least k training people. When no genotype qualifies it
backs off to the last ``window`` SNPs as context, then to none (the pool's genotype counts; the pool's most common
genotype if even those are all under k). The context restarts at each chromosome. Ancestry: each synthetic person's
pool is the ``pool`` training people nearest (on 10 training PCs) to a point drawn from a Gaussian mixture fitted
to the training people's PC scores (1-8 components by BIC); ``pool`` >= the cohort means everyone.

Each cohort (as large as the training part, trait ignored) is scored as ``bench_segments.py`` scores a release
(shared-segment attack, membership AUC, DCR share, AATS loss, detection as the card computes it and with the
marginals mapped) plus the card's LD r ratio. Rows to ``benchmarks/results/kanon_copying.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/screen_kanon_copying.py --cohort sim1 --k 5 --pool 300 --window 8
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_segments import score, shapes  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "kanon_copying.json"


def pools(train: np.ndarray, n: int, size: int, seed: int) -> np.ndarray:
    """(n, n_train) bool: each synthetic person's pool, the ``size`` training people nearest a point drawn from a
    Gaussian mixture (BIC, 1-8 components) on 10 training PCs."""
    from sklearn.mixture import GaussianMixture

    from snpgen_core.evaluation.structure import fit_pca

    if size >= len(train):
        return np.ones((n, len(train)), bool)
    scores = fit_pca(train, 10, seed=seed).transform(train.astype(np.float64))
    mixture = min((GaussianMixture(c, random_state=seed).fit(scores) for c in range(1, 9)), key=lambda g: g.bic(scores))
    points = mixture.sample(n)[0][np.random.default_rng(seed).permutation(n)]
    nearest = np.argsort(((points[:, None, :] - scores[None]) ** 2).sum(-1), 1)[:, :size]
    out = np.zeros((n, len(train)), bool)
    np.put_along_axis(out, nearest, True, 1)
    return out


def copy_cohort(train: np.ndarray, chrom: np.ndarray, n: int, k: int, pool: int, window: int, seed: int,
                batch: int = 1200) -> np.ndarray:
    """(n, m) int8: the k-anonymous copying model's cohort (``train`` complete dosages)."""
    gen = torch.Generator().manual_seed(seed)
    genotypes = torch.as_tensor(train, dtype=torch.long)
    onehot = torch.nn.functional.one_hot(genotypes, 3).float()  # (n_train, m, 3)
    member = pools(train, n, pool, seed)
    out = np.empty((n, train.shape[1]), np.int8)
    for b0 in range(0, n, batch):
        mask = torch.as_tensor(member[b0:b0 + batch])
        rows = mask.shape[0]
        agree = torch.zeros(rows, len(train), dtype=torch.int16)  # identical run ending at SNP j-1, per training person
        context = torch.zeros(rows, dtype=torch.int16)
        for j in range(train.shape[1]):
            if j > 0 and chrom[j] != chrom[j - 1]:
                agree.zero_()
                context.zero_()
            weights, used = torch.zeros(rows, 3), context.clone()
            found = torch.zeros(rows, dtype=torch.bool)
            for level in (context, context.clamp(max=window), torch.zeros_like(context)):  # the longest that allows
                counts = (mask & (agree >= level[:, None])).float() @ onehot[:, j]  # (rows, 3)
                allowed = counts * (counts >= k)
                fill = ~found & (allowed.sum(1) > 0)
                weights[fill], used[fill] = allowed[fill], level[fill]
                found |= fill
                if bool(found.all()):
                    break
            if not bool(found.all()):
                weights[~found] = torch.nn.functional.one_hot(
                    (mask[~found].float() @ onehot[:, j]).argmax(1), 3).float()
            g = torch.multinomial(weights, 1, generator=gen).squeeze(1)
            out[b0:b0 + rows, j] = g.numpy()
            agree = (agree + 1) * (genotypes[:, j][None, :] == g[:, None])
            context = used + 1
    return out


def main() -> None:
    from snpgen_core.evaluation.ld import ld_r

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", default="sim1")
    ap.add_argument("--k", type=int, default=5, help="training people every emitted stretch must be shared by")
    ap.add_argument("--pool", type=int, default=300, help="training people per synthetic person's pool")
    ap.add_argument("--window", type=int, default=8, help="the context kept at a back-off, in SNPs")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    prep = prepare_cohort(args.cohort, WORK)
    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    chrom = prep["train"].variants["chrom"].to_numpy()
    t0 = time.perf_counter()
    synthetic = copy_cohort(np.where(train < 0, 0, train).astype(np.int8), chrom, len(train), args.k, args.pool,
                            args.window, args.seed)
    seconds = time.perf_counter() - t0
    ld = ld_r(train, holdout, synthetic, chrom)
    row = {**score(train, holdout, synthetic, chrom), **shapes(train, holdout, synthetic, seed=100),
           "ld_r_ratio": ld.value / ld.reference, "generate_seconds": round(seconds, 1)}
    row = {key: round(v, 4) if isinstance(v, float) else v for key, v in row.items()}
    record_row(RESULTS, {"cohort": args.cohort, "k": args.k, "pool": args.pool, "window": args.window,
                         "seed": args.seed, "machine": machine(), **row},
               key=lambda r: (r["cohort"], r["k"], r["pool"], r["window"], r["seed"]))
    print(args.cohort, f"k {args.k} pool {args.pool} window {args.window}", row, flush=True)


if __name__ == "__main__":
    main()
