"""Shared fixtures: small simulated cohorts, made once per test session (msprime, seeded)."""
import os

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".numba_cache"))

from pathlib import Path

import numpy as np
import pytest
import torch

# The tests' models are tiny: one thread is as fast as two on an idle machine and many times faster on a busy
# one (two threads spin against each other and every other process; measured 6.8 s vs 62 s for one small run).
torch.set_num_threads(1)

# Small enough to build in well under a second, big enough for LD, structure and GWAS checks.
SIM_N, SIM_SNPS, SIM_SEED = 500, 200, 7


@pytest.fixture(scope="session")
def sim_cohort():
    """A ``SimulatedCohort`` of 500 individuals x 200 SNPs (seed 7), built once per session.

    msprime out-of-Africa demography (FID = AFR/EUR/EAS), a 300 kb region with recombination hotspots, MAF >= 1%,
    15 causal SNPs; ``phenotypes`` has CASE (1/2, ~30% cases) and QT (h2 0.5); ``gwas`` is the population-adjusted
    logistic GWAS of CASE on ``split.train`` (400 individuals); ``split.holdout`` has the other 100.
    Shared by every test in the session: never modify it in place (copy or ``.subset()`` first).
    """
    from snpgen_core.simulate import simulate_cohort

    return simulate_cohort(n=SIM_N, n_snps=SIM_SNPS, seed=SIM_SEED)


@pytest.fixture(scope="session")
def sim_prefix(sim_cohort, tmp_path_factory) -> Path:
    """``sim_cohort`` written once by ``write_cohort``; returns the prefix ``.../sim`` of the files

    sim.bed/.bim/.fam (CASE in .fam column 6), sim.pheno.tsv (FID IID POP CASE QT), sim.gwas.tsv (SNP CHR BP A1 A2
    A1_FREQ OR BETA SE P N), sim.causal.tsv, sim.split.tsv (FID IID SPLIT), sim.params.json. Read-only: tests that
    write must use their own ``tmp_path``.
    """
    from snpgen_core.simulate import write_cohort

    prefix = tmp_path_factory.mktemp("sim_cohort") / "sim"
    write_cohort(sim_cohort, prefix)
    return prefix


def populations(rng, sizes, m, fst=0.1):
    """Dosages (sum(sizes), m) of len(sizes) populations, Balding-Nichols frequencies around a common one."""
    p = rng.uniform(0.1, 0.9, m)
    return np.concatenate([rng.binomial(2, rng.beta(p * (1 - fst) / fst, (1 - p) * (1 - fst) / fst), (n, m))
                           for n in sizes]).astype(np.int8)
