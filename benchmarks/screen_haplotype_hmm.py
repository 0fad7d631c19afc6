"""Screen a different decoder family: the haplotype-cluster hidden Markov model of fastPHASE (Scheet & Stephens
2006, the model SNPknock and early BEAGLE build on), on unphased genotypes. Not part of the package.

Each of a person's two haplotypes sits in one of K clusters at every SNP; between SNPs j-1 and j it keeps its
cluster with probability 1 - r_j, else jumps to cluster k with probability alpha_jk; it carries allele a1 at SNP j
with probability theta_jk. A genotype is the sum of the two alleles, so the hidden state is the ordered pair of
clusters (K^2 states; the transition factorises, so a forward step costs O(K^2)). The likelihood is exact by the
forward algorithm (a missing call has emission 1). Fitted by EM: the expected counts are p * dlogL/dp of each
probability p entering the forward pass (autograd gives them). With ``--latent-epochs N`` the cluster weights are then
made a function of the trained run's latent, alpha_j(z) = softmax(A_j + z L_j) (z the run's encoder posterior means,
scaled to unit sd), fitted by Adam for N epochs; the decoded cohorts then use the holdout's own latents (the
twentieth pass's oracle: the best a perfect prior could do) or the training people's. Each cohort (as large as the
training part; draws seeded 100 + k) is scored with the report's functions: detection AUC on 20 training PCs, LD r,
membership AUC, DCR share, AATS loss. One JSON line per draw on stdout; the summary is appended to
``benchmarks/results/haplotype_hmm.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/screen_haplotype_hmm.py --cohort sim1 --clusters 12 \\
        --em-iterations 12 [--latent-epochs 10 --run /tmp/snpgen-bench/frontier/sim1/run_reach_256_1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, record_row  # noqa: E402
from bench_privacy_draws import METRICS  # noqa: E402
from bench_targets import WORK, prepare_cohort  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "haplotype_hmm.json"


class ClusterHMM(torch.nn.Module):
    def __init__(self, a1_frequency: np.ndarray, clusters: int, latent_dim: int = 0, seed: int = 0):
        super().__init__()
        m = len(a1_frequency)
        g = torch.Generator().manual_seed(seed)
        base = torch.logit(torch.as_tensor(a1_frequency, dtype=torch.float32).clamp(0.02, 0.98))
        self.theta = torch.nn.Parameter(base[:, None] + 1.5 * torch.randn(m, clusters, generator=g))
        self.jump = torch.nn.Parameter(torch.full((m,), -2.5))
        self.alpha = torch.nn.Parameter(torch.zeros(m, clusters))
        self.L = torch.nn.Parameter(torch.zeros(m, latent_dim, clusters))

    def probabilities(self, z: torch.Tensor | None, n: int):
        """(theta, 1 - theta, 1 - r, r, alpha (n, m, K))."""
        logits = self.alpha.expand(n, -1, -1)
        if z is not None:
            logits = logits + torch.einsum("bd,mdk->bmk", z, self.L)
        return (torch.sigmoid(self.theta), torch.sigmoid(-self.theta), torch.sigmoid(-self.jump),
                torch.sigmoid(self.jump), torch.softmax(logits, -1))

    @staticmethod
    def log_prob(x: torch.Tensor, probs) -> torch.Tensor:
        """log p(called genotypes) per person, (B,), by the scaled forward algorithm; x (B, m) long, -1 missing."""
        th, nth, stay, jump, al = probs
        em = torch.stack([nth[:, :, None] * nth[:, None, :],
                          th[:, :, None] * nth[:, None, :] + nth[:, :, None] * th[:, None, :],
                          th[:, :, None] * th[:, None, :]], 1)  # (m, 3, K, K)
        xo, ll = x.clamp(min=0), torch.zeros(x.shape[0])
        f = al[:, 0, :, None] * al[:, 0, None, :]
        for j in range(x.shape[1]):
            if j:
                s, q, a = stay[j], jump[j], al[:, j]
                rows, cols = f.sum(2, keepdim=True), f.sum(1, keepdim=True)  # one haplotype stays, one jumps
                f = (s * s * f + s * q * (rows * a[:, None, :] + cols * a[:, :, None])
                     + q * q * a[:, :, None] * a[:, None, :])
            f = f * torch.where((x[:, j] >= 0)[:, None, None], em[j][xo[:, j]], 1.0)
            c = f.sum((1, 2))
            ll = ll + c.log()
            f = f / c[:, None, None]
        return ll

    def em_step(self, x: torch.Tensor) -> float:
        """One EM iteration of the latent-free model on all of ``x``; returns the mean log-likelihood before it.
        Batches of 800 people at K = 12 and 1,000 SNPs (autograd keeps every SNP's forward table: about 5 GB), fewer
        for larger K or more SNPs (the sums are the same)."""
        m, k = self.alpha.shape
        batch = max(50, 800 * 144 * 1000 // (k * k * m))
        with torch.no_grad():
            leaves = [p[:1].clone() if i == 4 else p.clone() for i, p in enumerate(self.probabilities(None, 1))]
        leaves = [p.requires_grad_(True) for p in leaves]
        grads, total = [torch.zeros_like(p) for p in leaves], 0.0
        for i in range(0, len(x), batch):
            rows = x[i:i + batch]
            ll = self.log_prob(rows, leaves[:4] + [leaves[4].expand(len(rows), -1, -1)]).sum()
            for acc, g in zip(grads, torch.autograd.grad(ll, leaves)):
                acc += g
            total += ll.item()
        n1, n0, n_stay, n_jump, n_to = (p.detach() * g for p, g in zip(leaves, grads))
        eps = 1e-3
        with torch.no_grad():
            self.theta.copy_(torch.logit(((n1 + eps) / (n1 + n0 + 2 * eps)).clamp(1e-4, 1 - 1e-4)))
            self.jump.copy_(torch.logit(((n_jump + eps) / (n_stay + n_jump + 2 * eps)).clamp(1e-5, 1 - 1e-5)))
            self.alpha.copy_((n_to[0] + eps).log())
        return total / len(x)

    @torch.no_grad()
    def sample(self, n: int, z: torch.Tensor | None, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        th, _, _, jump, al = self.probabilities(z, n)
        al = torch.cat([al, al])  # the two haplotypes of person i: rows i and n + i
        out = torch.zeros(n, th.shape[0], dtype=torch.int8)
        c = torch.multinomial(al[:, 0], 1, generator=g).squeeze(1)
        for j in range(th.shape[0]):
            if j:
                new = torch.multinomial(al[:, j], 1, generator=g).squeeze(1)
                c = torch.where(torch.rand(2 * n, generator=g) < jump[j], new, c)
            allele = (torch.rand(2 * n, generator=g) < th[j, c]).to(torch.int8)
            out[:, j] = allele[:n] + allele[n:]
        return out.numpy()


def score(train, holdout, synthetic, chrom, seed) -> dict:
    from snpgen_core.evaluation import privacy
    from snpgen_core.evaluation.ld import ld_r
    from snpgen_core.evaluation.structure import detection_auc

    data = privacy.PrivacyInputs(train, holdout, synthetic, seed=seed, device="cpu")
    row = {m: float(getattr(privacy, m)(data).value) for m in METRICS}
    row["detection_auc"] = float(detection_auc(train, holdout, synthetic, seed=seed).value)
    ld = ld_r(train, holdout, synthetic, chrom, seed=seed)
    row["ld_ratio"] = float(ld.value / ld.reference)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", default="sim1")
    ap.add_argument("--clusters", type=int, default=12)
    ap.add_argument("--em-iterations", type=int, default=12)
    ap.add_argument("--latent-epochs", type=int, default=0, help="then fit alpha_j(z) on --run's latents")
    ap.add_argument("--run", help="the trained run whose encoder gives the latents")
    ap.add_argument("--draws", type=int, default=2)
    args = ap.parse_args()
    if args.latent_epochs and not args.run:
        ap.error("--latent-epochs needs --run (the trained run whose latents the clusters follow)")
    torch.set_num_threads(1)
    prep = prepare_cohort(args.cohort, WORK)
    train, holdout = prep["train"].dosages, prep["holdout"].dosages
    chrom = prep["train"].variants["chrom"].to_numpy()
    n = len(train)
    rng = np.random.default_rng(0)
    val = np.sort(rng.choice(n, n // 10, replace=False))  # held out of fitting, for the validation NLL
    fit = np.setdiff1d(np.arange(n), val)
    x = torch.as_tensor(train, dtype=torch.long)
    zt = zh = None
    if args.latent_epochs:
        from snpgen_core.runs import load_run

        vae = load_run(args.run).models.vae.eval()
        with torch.no_grad():
            zt, zh = (vae.encode(torch.as_tensor(d))[0].float() for d in (train, holdout))
        sd = zt.std(0)
        zt, zh = zt / sd, zh / sd
    model = ClusterHMM(prep["train"].a1_frequency(), args.clusters, 0 if zt is None else zt.shape[1])
    t0 = time.perf_counter()
    for it in range(args.em_iterations):
        print(f"EM {it}: training NLL {-model.em_step(x[fit]):.1f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for ep in range(args.latent_epochs):
        perm, size = rng.permutation(fit), max(50, 400 * 144 // args.clusters ** 2)
        for i in range(0, len(perm), size):
            b = perm[i:i + size]
            loss = -model.log_prob(x[b], model.probabilities(zt[b], len(b))).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {ep} ({time.perf_counter() - t0:.0f} s)", flush=True)
    with torch.no_grad():
        z_val = None if zt is None else zt[val]
        nll = -model.log_prob(x[val], model.probabilities(z_val, len(val))).mean().item()
    row = {"cohort": args.cohort, "clusters": args.clusters, "em_iterations": args.em_iterations,
           "latent_epochs": args.latent_epochs, "run": args.run, "validation_nll": round(nll, 1),
           "fit_s": round(time.perf_counter() - t0), "draws": {}}
    sources = {"no latent": None} if zt is None else {"holdout latents": zh, "training latents": zt}
    for name, z in sources.items():
        for k in range(args.draws):
            seed = 100 + k
            zs = None if z is None else z[np.random.default_rng(seed).integers(0, len(z), n)]
            r = score(train, holdout, model.sample(n, zs, seed), chrom, seed)
            print(json.dumps({"from": name, **r}), flush=True)
            row["draws"].setdefault(name, []).append(r)
    row.update(machine=machine(), load=os.getloadavg(), date=time.strftime("%Y-%m-%d"))
    record_row(RESULTS, row, lambda r: (r["cohort"], r["clusters"], r["em_iterations"], r["latent_epochs"]))


if __name__ == "__main__":
    main()
