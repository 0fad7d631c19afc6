"""LD clumping with PLINK 1.9 ``--clump`` semantics, reproduced rule for rule, on the training genotypes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import InputError
from .genotypes import Genotypes, chromosome_rank
from .ld import haplotype_r2_ceiling, pack_genotype_classes, r2_exceeds_function, two_locus_counts

CLUMP_COLUMNS = ["CHR", "F", "SNP", "BP", "P", "TOTAL", "NSIG", "S05", "S01", "S001", "S0001", "SP2", "variant_index"]
_P_BINS = np.array([1e-4, 1e-3, 1e-2, 0.05])  # S0001 | S001 | S01 | S05 | NSIG


def check_clump_parameters(p1: float, p2: float, r2: float, kb: float) -> None:
    """InputError unless 0 < p1 <= p2 <= 1 (PLINK refuses p2 < p1), 0 < r2 <= 1 and kb > 0."""
    for name, value in (("p1", p1), ("p2", p2)):
        if not (0 < value <= 1):
            raise InputError(f"clump {name} = {value:g} must be in (0, 1]", hint=f"e.g. --clump-{name} 1e-4")
    if p2 < p1:
        raise InputError(f"clump p2 = {p2:g} is below p1 = {p1:g}; like PLINK, p2 must be at least p1",
                         hint="p1 chooses index SNPs, p2 (>= p1) the clumped SNPs listed with them")
    if not (0 < r2 <= 1):
        raise InputError(f"clump r2 = {r2:g} must be in (0, 1]", hint="LD threshold, e.g. --clump-r2 0.5")
    if not (kb > 0 and math.isfinite(kb)):
        raise InputError(f"clump kb = {kb:g} must be a positive distance in kilobases", hint="e.g. --clump-kb 250")


def _gwas_frame(aligned, n_variants: int) -> pd.DataFrame:
    """variant_index and p from an AlignedGwas or its table: finite p only, one row per variant (smallest p)."""
    table = aligned.table if hasattr(aligned, "table") else aligned
    missing = {"variant_index", "p"} - set(table.columns)
    if missing:
        raise ValueError(f"the GWAS table lacks column(s) {sorted(missing)}; pass align_gwas(...) output")
    t = pd.DataFrame({"variant_index": table["variant_index"].to_numpy(dtype=np.int64),
                      "p": pd.to_numeric(table["p"], errors="coerce").to_numpy(dtype=np.float64)})
    if len(t) and (t["variant_index"].min() < 0 or t["variant_index"].max() >= n_variants):
        raise ValueError("variant_index out of range for these genotypes: align the GWAS to the same variant table")
    t = t[np.isfinite(t["p"])]
    bad = (t["p"] < 0) | (t["p"] > 1)
    if bad.any():
        raise InputError(f"p-value {t['p'][bad].iloc[0]} outside [0, 1] in the GWAS table",
                         hint="p-values must be probabilities")
    return t.sort_values(["p", "variant_index"], kind="stable").drop_duplicates("variant_index")


def clump(genotypes: Genotypes, aligned, p1: float = 1e-4, p2: float = 1e-2, r2: float = 0.5, kb: float = 250,
          estimator: str = "haplotype") -> pd.DataFrame:
    """LD clumping with PLINK 1.9 ``--clump`` semantics; ``genotypes`` must be the TRAINING individuals.

    ``aligned``: an ``AlignedGwas`` (or its table) with ``variant_index`` into ``genotypes.variants`` and ``p``.
    Only variants with a finite p take part (as only variants in PLINK's ``--clump`` file do). Rules, checked
    against plink1.9 v1.90b6.26:

    - index candidates: p <= p1, taken greedily by ascending p; equal p in variant-table order;
    - a candidate already clumped into an earlier index is skipped;
    - an index clumps every variant not yet clumped on the same chromosome with |bp distance| < kb * 1000 and
      r^2 > r2 (strictly), whatever its p; variants with p < p2 (strictly) are listed in SP2;
    - r^2 is ``estimator`` over the individuals called at both SNPs: "haplotype" is PLINK 1.9's (maximum-
      likelihood haplotype frequencies, :func:`r2_haplotype`), "dosage" the squared correlation of dosages.
      PLINK uses founders only; here every individual given counts. Sex chromosomes are treated as autosomes.

    Returns one row per index SNP in clumping order, PLINK's ``.clumped`` columns: CHR, F (1), SNP, BP, P, TOTAL
    (variants clumped into it), NSIG / S05 / S01 / S001 / S0001 (of those, p >= 0.05, [0.01, 0.05), [1e-3, 0.01),
    [1e-4, 1e-3), < 1e-4), SP2 (IDs with p < p2 in position order, comma-separated, "NONE" if none), plus
    ``variant_index``. Cost: one popcount of bit masks per index SNP and window, O(window * n / 64) words.
    """
    check_clump_parameters(p1, p2, r2, kb)
    exceeds = r2_exceeds_function(estimator)
    gw = _gwas_frame(aligned, genotypes.n_variants)
    variants = genotypes.variants
    vi = gw["variant_index"].to_numpy()
    pv = gw["p"].to_numpy()
    rank = chromosome_rank(variants["chrom"].to_numpy()[vi])
    pos = variants["pos"].to_numpy(dtype=np.int64)[vi]
    order = np.lexsort((vi, pos, rank))  # position order within chromosomes
    vi, pv, rank, pos = vi[order], pv[order], rank[order], pos[order]
    # |d| < kb * 1000 for integer d  <=>  |d| <= ceil(kb * 1000) - 1; chromosomes kept 2^40 bp apart
    radius = min(math.ceil(kb * 1000) - 1, 1 << 38)
    key = rank * (1 << 40) + pos
    lo_all = np.searchsorted(key, key - radius, side="left")
    hi_all = np.searchsorted(key, key + radius, side="right")
    candidates = np.flatnonzero(pv <= p1)
    candidates = candidates[np.lexsort((vi[candidates], pv[candidates]))]
    # genotypes are only needed within the windows of candidate index SNPs
    cover = np.zeros(vi.size + 1, dtype=np.int64)
    np.add.at(cover, lo_all[candidates], 1)
    np.add.at(cover, hi_all[candidates], -1)
    needed = np.flatnonzero(np.cumsum(cover[:-1]) > 0)
    n = genotypes.n_samples
    bits = np.zeros((vi.size, 3, max(1, -(-n // 64))), dtype=np.uint64)
    bits[needed] = pack_genotype_classes(genotypes.dosages, vi[needed])
    class_counts = np.bitwise_count(bits).sum(axis=-1, dtype=np.int64)  # (k, 3) individuals per dosage
    complete = class_counts.sum(axis=1) == n  # no missing call at this SNP
    freq = (class_counts[:, 1] + 2 * class_counts[:, 2]) / (2.0 * n)  # a1 frequency where complete
    # pairs whose allele frequencies cap the haplotype r^2 at r2 or below cannot be clumped: skip their counts
    # (complete SNPs only, where the pair's frequencies are these; the margin absorbs rounding)
    prune = estimator == "haplotype"
    clumped = np.zeros(vi.size, dtype=bool)
    ids = variants["snp"].astype(str).to_numpy()[vi]
    chrom_names = variants["chrom"].astype(str).to_numpy()[vi]
    records = []
    for row in candidates:
        if clumped[row]:
            continue
        lo, hi = lo_all[row], hi_all[row]
        window = np.arange(lo, hi)
        window = window[~clumped[lo:hi] & (window != row)]
        if prune and complete[row] and window.size:
            ceiling = haplotype_r2_ceiling(freq[row], freq[window])
            window = window[~(complete[window] & (ceiling * (1 + 1e-9) <= r2))]
        members = window[:0]
        if window.size:
            margins = (class_counts[row], class_counts[window]) if complete[row] and complete[window].all() else None
            members = window[exceeds(two_locus_counts(bits[row], bits[window], complete=margins), r2)]
            clumped[members] = True
        bins = np.bincount(np.searchsorted(_P_BINS, pv[members], side="right"), minlength=5)
        sp2 = members[pv[members] < p2]
        records.append((chrom_names[row], 1, ids[row], int(pos[row]), float(pv[row]), int(members.size),
                        int(bins[4]), int(bins[3]), int(bins[2]), int(bins[1]), int(bins[0]),
                        ",".join(ids[sp2]) if sp2.size else "NONE", int(vi[row])))
    out = pd.DataFrame.from_records(records, columns=CLUMP_COLUMNS)
    return out.astype({"F": np.int64, "BP": np.int64, "P": np.float64, "TOTAL": np.int64, "variant_index": np.int64})
