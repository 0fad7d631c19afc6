"""Realistic cohorts simulated with msprime: the built-in demo and the source of all test data.

An out-of-Africa demography (three populations, migration, bottleneck and growth), a recombination map with
hotspots, and JC69 mutations give biallelic SNPs with real linkage disequilibrium and population structure. Two
traits share the same causal SNPs: a quantitative trait ``QT`` and a binary ``CASE`` from a liability threshold.
A GWAS of ``CASE`` is computed on the training part of a seeded, stratified split, as a real analysis would.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msprime
import numpy as np
import pandas as pd
import tskit
from scipy import stats

from .association import gwas_table
from .errors import InputError
from .genotypes import Genotypes, make_samples, make_variants
from .provenance import json_default, software_versions
from .io.atomic import atomic_paths
from .io.plink import plink_path, plink_prefix, write_plink
from .ld import ld_r2_pairs
from .splits import Split, split_samples, write_split

POPULATIONS = ("AFR", "EUR", "EAS")  # the sampled populations of out_of_africa_demography()
MAX_SNPS = 100_000  # beyond this one simulated region takes minutes; real cohorts are for big panels
MAX_INDIVIDUALS = 1_000_000  # msprime memory and time grow with n; a biobank-size cohort is out of scope here


@dataclass
class SimulationConfig:
    """Everything that defines a simulated cohort; saved in its ``.params.json``.

    Demography: Gutenkunst et al. (2009) out-of-Africa model (as in stdpopsim ``OutOfAfrica_3G09``); samples are
    drawn by ``population_shares`` (any of ``POPULATIONS``). Recombination: ``recombination_rate`` per bp per
    generation in the background plus hotspots of ``hotspot_width_bp`` every ``hotspot_spacing_bp`` on average,
    each ``hotspot_fold`` (log-uniform) times hotter. The region is ``bp_per_snp * n_snps`` long (about 2.7 SNPs
    with MAF >= ``min_maf`` per kept SNP; it is lengthened if too few pass); ``n_snps`` of them are kept at random.
    Traits: ``n_causal`` (default min(15, n_snps)) SNPs with MAF >= ``causal_min_maf``, standardised effects
    ~ N(0, 1) (per-allele effect ``z / sqrt(2 p (1 - p))``), genetic value scaled to variance ``h2_qt`` for ``QT``
    and ``h2_liability`` for the liability; ``CASE`` = liability above the standard-normal ``1 - prevalence``
    quantile.
    ``population_shift`` > 0 adds a per-population offset ~ N(0, shift^2) to both traits (stratification).
    """

    n: int = 2000
    n_snps: int = 1000
    seed: int = 0
    population_shares: dict = field(default_factory=lambda: {"AFR": 0.25, "EUR": 0.5, "EAS": 0.25})
    bp_per_snp: float = 1500.0
    mutation_rate: float = 1.25e-8
    recombination_rate: float = 1e-8
    hotspot_spacing_bp: float = 50_000.0
    hotspot_width_bp: float = 2_000.0
    hotspot_fold: tuple = (10.0, 100.0)
    min_maf: float = 0.01
    n_causal: int | None = None  # None: min(15, n_snps)
    causal_min_maf: float = 0.05
    h2_qt: float = 0.5
    h2_liability: float = 0.5
    prevalence: float = 0.3
    population_shift: float = 0.0
    holdout: float = 0.2
    chrom: str = "1"

    def check(self) -> None:
        """Raise ``InputError`` naming the first bad parameter and its allowed range."""
        rules = [
            (10 <= self.n <= MAX_INDIVIDUALS, f"n = {self.n}: simulate between 10 and {MAX_INDIVIDUALS:,} individuals"),
            (0 < self.n_snps <= MAX_SNPS, f"snps = {self.n_snps}: choose between 1 and {MAX_SNPS}"),
            (0 <= self.seed < 2**63, f"seed = {self.seed}: use a non-negative integer"),
            (bool(self.population_shares) and all(v > 0 for v in self.population_shares.values()),
             "population_shares must be positive"),
            (set(self.population_shares) <= set(POPULATIONS),
             f"population_shares names {sorted(self.population_shares)}: choose from {POPULATIONS}"),
            (self.bp_per_snp > 0, "bp_per_snp must be positive"),
            (1 <= self.hotspot_fold[0] <= self.hotspot_fold[1] and self.hotspot_width_bp > 0
             and self.hotspot_spacing_bp > 0, "hotspots need width and spacing > 0 and 1 <= fold low <= fold high"),
            (self.mutation_rate > 0 and self.recombination_rate > 0,
             "mutation and recombination rates must be positive"),
            (0 < self.min_maf < 0.5 and 0 < self.causal_min_maf < 0.5, "MAF thresholds must be in (0, 0.5)"),
            (self.n_causal is None or 1 <= self.n_causal <= self.n_snps,
             f"n_causal = {self.n_causal}: choose between 1 and snps ({self.n_snps})"),
            (0 < self.h2_qt < 1 and 0 < self.h2_liability < 1, "heritabilities must be in (0, 1)"),
            (0 < self.prevalence < 1, f"prevalence = {self.prevalence}: must be in (0, 1)"),
            (self.population_shift >= 0, "population_shift must be >= 0"),
            (0 < self.holdout < 1, f"holdout = {self.holdout}: must be in (0, 1)"),
        ]
        for ok, message in rules:
            if not ok:
                raise InputError(message)
        if round(self.n * (1 - self.holdout)) < 2 * len(self.population_shares):
            raise InputError(f"n = {self.n} leaves too few training individuals", hint="increase n")


@dataclass
class SimulatedCohort:
    """A simulated cohort and everything known about how it was made.

    genotypes:   the cohort (samples x SNPs; a1 = derived allele, a2 = ancestral); ``samples.fid`` = population,
                 ``samples.pheno`` = CASE as PLINK text "1" control / "2" case.
    phenotypes:  FID, IID, POP, CASE (1 control / 2 case), QT; rows in the order of ``genotypes.samples``.
    causal:      SNP, CHR, BP, A1, A2, A1_FREQ, EFFECT (per copy of A1 on the QT scale), EFFECT_LIABILITY (per copy
                 of A1 on the liability scale), COLUMN (index into ``genotypes.variants``).
    gwas:        logistic GWAS of CASE on ``split.train`` only, adjusted for population (indicator covariates):
                 SNP CHR BP A1 A2 A1_FREQ OR BETA SE P N, BETA = ln(OR) per copy of A1, A1_FREQ among the training
                 individuals.
    split:       the seeded split, stratified on CASE (holdout share ``params["holdout"]``, no validation part).
    params:      the configuration, the seeds handed to msprime, software versions and realised statistics.
    """

    genotypes: Genotypes
    phenotypes: pd.DataFrame
    causal: pd.DataFrame
    gwas: pd.DataFrame
    split: Split
    params: dict


def simulate_cohort(n: int = 2000, n_snps: int = 1000, seed: int = 0, **options) -> SimulatedCohort:
    """Simulate ``n`` diploid individuals typed at exactly ``n_snps`` biallelic SNPs with MAF >= ``min_maf``.

    ``options`` are further :class:`SimulationConfig` fields. The same arguments always give the same cohort.
    """
    unknown = set(options) - set(SimulationConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown simulation option(s) {sorted(unknown)}",
                         hint=f"choose from {sorted(SimulationConfig.__dataclass_fields__)}")
    config = SimulationConfig(n=n, n_snps=n_snps, seed=seed, **options)
    config.check()
    if config.n_causal is None:
        config.n_causal = min(15, config.n_snps)
    rng = np.random.default_rng(config.seed)

    genotypes, region = _simulate_genotypes(config, rng)
    pops = genotypes.samples["fid"].to_numpy()
    causal_idx, effects = _draw_causal(genotypes, config, rng)
    qt, case = _traits(genotypes.dosages[:, causal_idx], pops, effects, config, rng)
    genotypes.samples["pheno"] = np.where(case, "2", "1")

    phenotypes = pd.DataFrame({"FID": genotypes.samples["fid"], "IID": genotypes.samples["iid"], "POP": pops,
                               "CASE": case.astype(np.int64) + 1, "QT": qt})
    split = split_samples(config.n, strata=case, holdout=config.holdout, seed=config.seed)
    causal = _causal_table(genotypes, causal_idx, effects, config)
    # adjust for ancestry as a real analysis would (PCs there): unadjusted, stratification inflates lambda ~10x
    ancestry = pd.get_dummies(pops[split.train], drop_first=True, dtype=float).to_numpy()
    gwas = gwas_table(genotypes.subset(samples=split.train), case[split.train].astype(float), "binary", ancestry)

    params = {**asdict(config), **region, "gwas_model": "logistic CASE ~ 1 + POP indicators + dosage, train only",
              "software": software_versions("msprime", "tskit"),
              "realised": _summary(genotypes, case, qt)}
    return SimulatedCohort(genotypes, phenotypes, causal, gwas, split, params)


# --- genotypes ---------------------------------------------------------------------------------------------------

def out_of_africa_demography() -> msprime.Demography:
    """Gutenkunst et al. (2009) three-population out-of-Africa model, 25-year generations (stdpopsim OutOfAfrica_3G09).

    The ancestral population grows from 7,300 to 12,300 8,800 generations ago; AFR (N 12,300) and the
    out-of-Africa bottleneck (N 2,100) split from it 5,600 generations ago; EUR and EAS split from the bottleneck
    848 generations ago and grow exponentially to ~30,000 and ~54,000.
    """
    generation_time = 25
    t_af, t_b, t_eu_as = 220e3 / generation_time, 140e3 / generation_time, 21.2e3 / generation_time
    r_eu, r_as = 0.004, 0.0055
    demography = msprime.Demography()
    demography.add_population(name="AFR", initial_size=12_300, description="African")
    demography.add_population(name="EUR", initial_size=1_000 * math.exp(r_eu * t_eu_as), growth_rate=r_eu,
                              description="European")
    demography.add_population(name="EAS", initial_size=510 * math.exp(r_as * t_eu_as), growth_rate=r_as,
                              description="East Asian")
    demography.add_population(name="OOA", initial_size=2_100, description="out-of-Africa bottleneck")
    demography.add_population(name="ANC", initial_size=12_300, description="ancestral African")
    demography.add_population_parameters_change(time=t_af, population="ANC", initial_size=7_300)
    demography.set_symmetric_migration_rate(["AFR", "EUR"], 3e-5)
    demography.set_symmetric_migration_rate(["AFR", "EAS"], 1.9e-5)
    demography.set_symmetric_migration_rate(["EUR", "EAS"], 9.6e-5)
    demography.add_population_split(time=t_eu_as, derived=["EUR", "EAS"], ancestral="OOA")
    demography.add_symmetric_migration_rate_change(time=t_eu_as, populations=["AFR", "OOA"], rate=25e-5)
    demography.add_population_split(time=t_b, derived=["AFR", "OOA"], ancestral="ANC")
    demography.sort_events()
    return demography


def hotspot_map(length: float, config: SimulationConfig, rng: np.random.Generator) -> msprime.RateMap:
    """Background rate with non-overlapping hotspots at uniform positions, each 10-100x hotter (log-uniform)."""
    width = config.hotspot_width_bp
    count = rng.poisson(length / config.hotspot_spacing_bp)
    starts = np.sort(rng.uniform(0, max(length - width, 0), size=count))
    folds = np.exp(rng.uniform(*np.log(config.hotspot_fold), size=count))
    base = config.recombination_rate
    position, rate = [0.0], []
    for start, fold in zip(starts, folds):
        if start <= position[-1]:  # overlaps the previous hotspot: skip it
            continue
        position += [start, min(start + width, length)]
        rate += [base, base * fold]
        if position[-1] >= length:
            break
    if position[-1] < length:
        position.append(length)
        rate.append(base)
    return msprime.RateMap(position=position, rate=rate)


def _simulate_genotypes(config: SimulationConfig, rng: np.random.Generator) -> tuple[Genotypes, dict]:
    sizes = _population_sizes(config)
    demography = out_of_africa_demography()
    length = math.ceil(config.n_snps * config.bp_per_snp)
    attempts = []
    while True:  # lengthen the region until enough SNPs pass the MAF filter (rarely needed)
        rate_map = hotspot_map(length, config, rng)
        ancestry_seed, mutation_seed = (int(s) for s in rng.integers(1, 2**31 - 1, size=2))
        ts = msprime.sim_ancestry(samples=sizes, demography=demography, sequence_length=length,
                                  recombination_rate=rate_map, random_seed=ancestry_seed)
        ts = msprime.sim_mutations(ts, rate=config.mutation_rate, random_seed=mutation_seed)
        site_ids, counts = _biallelic_sites(ts)
        frequency = counts / (2 * config.n)
        candidates = site_ids[np.minimum(frequency, 1 - frequency) >= config.min_maf]
        attempts.append({"sequence_length": length, "ancestry_seed": ancestry_seed, "mutation_seed": mutation_seed,
                         "candidate_snps": int(len(candidates)),
                         "hotspots": int((rate_map.rate > config.recombination_rate).sum())})
        if len(candidates) >= config.n_snps:
            break
        length = math.ceil(length * 1.5 * config.n_snps / max(len(candidates), 1))

    chosen = np.sort(rng.choice(candidates, size=config.n_snps, replace=False))
    ts = ts.delete_sites(np.setdiff1d(np.arange(ts.num_sites), chosen))
    column_of_node = {node: k for k, node in enumerate(ts.samples())}  # genotype vectors follow ts.samples()
    nodes = np.array([[column_of_node[u] for u in ind.nodes] for ind in ts.individuals()])  # (n, 2)
    dosages = np.empty((config.n, config.n_snps), dtype=np.int8)
    for variant in ts.variants():  # one site at a time: never a (2n x sites) matrix in memory
        haplotype = variant.genotypes  # 0 = ancestral, 1 = derived
        dosages[:, variant.site.id] = haplotype[nodes[:, 0]] + haplotype[nodes[:, 1]]

    pop_names = [pop.metadata["name"] for pop in ts.populations()]
    pops = np.array([pop_names[ts.node(ind.nodes[0]).population] for ind in ts.individuals()])
    order = rng.permutation(config.n)  # a cohort file is not sorted by ancestry
    dosages, pops = np.ascontiguousarray(dosages[order]), pops[order]
    iid = [f"{p}_{k:05d}" for k, p in enumerate(pops)]
    samples = make_samples(iid, fid=pops, sex=rng.integers(1, 3, size=config.n))

    sites = ts.tables.sites
    position = sites.position.astype(np.int64) + 1  # msprime positions are 0-based; PLINK's are 1-based
    ancestral = tskit.unpack_strings(sites.ancestral_state, sites.ancestral_state_offset)
    muts = ts.tables.mutations
    derived = tskit.unpack_strings(muts.derived_state, muts.derived_state_offset)  # one mutation per kept site
    variants = make_variants(config.chrom, [f"{config.chrom}:{p}" for p in position], position, a1=derived,
                             a2=ancestral, cm=100 * rate_map.get_cumulative_mass(sites.position))
    region = {"sequence_length": length, "attempts": attempts}
    return Genotypes(dosages, variants, samples), region


def _population_sizes(config: SimulationConfig) -> dict:
    """Largest-remainder allocation of ``n`` by share, at least one individual per population."""
    names = list(config.population_shares)
    shares = np.array([config.population_shares[k] for k in names], dtype=float)
    exact = config.n * shares / shares.sum()
    sizes = np.maximum(np.floor(exact).astype(int), 1)
    for k in np.argsort(-(exact - np.floor(exact))):
        if sizes.sum() >= config.n:
            break
        sizes[k] += 1
    while sizes.sum() > config.n:
        sizes[np.argmax(sizes)] -= 1
    return {name: int(s) for name, s in zip(names, sizes)}


def _biallelic_sites(ts: tskit.TreeSequence) -> tuple[np.ndarray, np.ndarray]:
    """Sites with exactly one mutation (hence two alleles) and the number of sample genomes carrying it."""
    ids, counts = [], []
    for tree in ts.trees():
        for site in tree.sites():
            if len(site.mutations) == 1:
                ids.append(site.id)
                counts.append(tree.num_samples(site.mutations[0].node))
    return np.array(ids, dtype=np.int64), np.array(counts, dtype=np.int64)


# --- traits ------------------------------------------------------------------------------------------------------

def _draw_causal(genotypes: Genotypes, config: SimulationConfig, rng: np.random.Generator):
    """Causal columns (common SNPs preferred) and their per-allele effects on the standardised genetic value."""
    freq = genotypes.a1_frequency()
    common = np.flatnonzero(np.minimum(freq, 1 - freq) >= config.causal_min_maf)
    pool = common if len(common) >= config.n_causal else np.arange(genotypes.n_variants)
    causal_idx = np.sort(rng.choice(pool, size=config.n_causal, replace=False))
    p = freq[causal_idx]
    per_allele = rng.standard_normal(config.n_causal) / np.sqrt(2 * p * (1 - p))
    value = genotypes.dosages[:, causal_idx] @ per_allele
    return causal_idx, per_allele / value.std()  # genetic value now has variance 1 in this cohort


def _traits(causal_dosages, pops, effects, config, rng):
    """QT = sqrt(h2_qt) g + noise; liability = sqrt(h2_liability) g + noise; CASE = liability > threshold."""
    g = causal_dosages @ effects
    g = g - g.mean()
    _, pop_code = np.unique(pops, return_inverse=True)
    offsets = rng.normal(0.0, config.population_shift, size=pop_code.max() + 1)[pop_code]
    qt = math.sqrt(config.h2_qt) * g + math.sqrt(1 - config.h2_qt) * rng.standard_normal(len(g)) + offsets
    liability = (math.sqrt(config.h2_liability) * g + math.sqrt(1 - config.h2_liability) * rng.standard_normal(len(g))
                 + offsets)
    case = liability > stats.norm.ppf(1 - config.prevalence)
    return qt, case


def _causal_table(genotypes: Genotypes, causal_idx: np.ndarray, effects: np.ndarray,
                  config: SimulationConfig) -> pd.DataFrame:
    """Causal SNPs with per-copy-of-A1 effects on each trait's scale (``effects`` give a unit-variance value)."""
    v = genotypes.variants.iloc[causal_idx]
    return pd.DataFrame({
        "SNP": v["snp"].to_numpy(), "CHR": v["chrom"].to_numpy(), "BP": v["pos"].to_numpy(),
        "A1": v["a1"].to_numpy(), "A2": v["a2"].to_numpy(),
        "A1_FREQ": genotypes.a1_frequency()[causal_idx],
        "EFFECT": effects * math.sqrt(config.h2_qt),
        "EFFECT_LIABILITY": effects * math.sqrt(config.h2_liability),
        "COLUMN": causal_idx,
    })


def mean_adjacent_r2(dosages: np.ndarray) -> float:
    """Mean dosage r^2 (``ld.ld_r2_pairs``) of consecutive SNPs; pairs with a monomorphic SNP are skipped, NaN if
    there is no pair left."""
    _, _, r2 = ld_r2_pairs(dosages, np.zeros(dosages.shape[1], dtype=np.int64), window=1)
    r2 = r2[np.isfinite(r2)]
    return float(r2.mean()) if r2.size else float("nan")


def _summary(genotypes: Genotypes, case: np.ndarray, qt: np.ndarray) -> dict:
    freq = genotypes.a1_frequency()
    maf = np.minimum(freq, 1 - freq)
    r2 = mean_adjacent_r2(genotypes.dosages)
    return {"mean_adjacent_r2": None if math.isnan(r2) else r2, "maf_min": float(maf.min()),
            "maf_max": float(maf.max()), "case_fraction": float(case.mean()), "qt_variance": float(qt.var())}


def write_cohort(cohort: SimulatedCohort, prefix: str | os.PathLike) -> list[Path]:
    """Write PREFIX.bed/.bim/.fam, .pheno.tsv, .gwas.tsv, .causal.tsv, .split.tsv and .params.json (all atomic).

    ``.fam`` column 6 holds CASE (1 control / 2 case); ``.pheno.tsv`` has FID IID POP CASE QT; ``.gwas.tsv`` the
    training-part GWAS of CASE; ``.causal.tsv`` the causal SNPs and effects; ``.split.tsv`` FID IID SPLIT.
    Returns the written paths.
    """
    prefix = plink_prefix(prefix)
    base = str(prefix)
    tables = {base + ".pheno.tsv": cohort.phenotypes, base + ".gwas.tsv": cohort.gwas,
              base + ".causal.tsv": cohort.causal}
    split_path, params_path = Path(base + ".split.tsv"), Path(base + ".params.json")
    with atomic_paths(*tables, params_path) as temps:
        for table, tmp in zip(tables.values(), temps):
            table.to_csv(tmp, sep="\t", index=False, float_format="%.8g")
        temps[-1].write_text(json.dumps(cohort.params, indent=2, default=json_default) + "\n")
        write_plink(prefix, cohort.genotypes)
        write_split(cohort.split, cohort.genotypes.samples, split_path)
    plink = [plink_path(prefix, s) for s in (".bed", ".bim", ".fam")]
    return plink + [Path(p) for p in tables] + [split_path, params_path]
