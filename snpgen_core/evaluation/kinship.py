"""KING-robust kinship between individuals of two sets, through chunked matrix products of genotype indicators.

Orientation: samples x variants; dosages int8 0/1/2 count the ``.bim`` column-5 allele; missing = -1.

Estimator: the KING-robust *between-family* kinship of Manichaikul et al. (2010, Bioinformatics 26:2867,
"Robust relationship inference in genome-wide association studies", equation 11), the one PLINK 2
``--make-king`` / ``--make-king-table`` and hail's ``hl.king`` report:

    phi_ij = 1/2 + (2 N_Aa,Aa - 4 N_AA,aa - N_Aa(i) - N_Aa(j)) / (4 min(N_Aa(i), N_Aa(j)))

N_Aa,Aa: SNPs where both are heterozygous; N_AA,aa: SNPs with opposite homozygotes (IBS0); N_Aa(i): SNPs where i
is heterozygous. Every count runs over the SNPs both individuals have called (pairwise complete, as PLINK 2).
Duplicates / monozygotic twins give 1/2, first-degree relatives about 1/4, second-degree about 1/8, unrelated
individuals about 0 (negative across populations). The usual cut-offs, geometric means of neighbouring degrees:
``KING_DUPLICATE`` = 2^-1.5 ~ 0.354 and ``KING_FIRST_DEGREE`` = 2^-2.5 ~ 0.177. A pair in which one individual
has no heterozygous call has no estimate (NaN).

(The *within-family* form, (N_Aa,Aa - 2 N_AA,aa) / (N_Aa(i) + N_Aa(j)), divides by the mean instead of the
minimum heterozygote count; it over-estimates kinship between individuals of different heterozygosity, e.g. a
synthetic individual and a real one, so we do not use it.)

Computation: with indicator matrices H (het), R (0 copies), A (2 copies) of a query chunk and a reference chunk,
N_Aa,Aa - 2 N_AA,aa = [H, R, A] . [H, -2A, -2R]^T, one product of width 3m (exact integers in float32, see
``distances``); with missing calls the pairwise heterozygote counts are H . C^T and C . H^T (C = called).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..genotypes import MISSING
from .distances import FP32_EXACT_MAX_SNPS, default_chunk_rows, genotype_indicators, resolve_device

KING_DUPLICATE = 2**-1.5  # 0.3536: duplicate or monozygotic twin
KING_FIRST_DEGREE = 2**-2.5  # 0.1768: parent-offspring or full sibling


def _check(dosages: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(dosages)
    if arr.ndim != 2:
        raise InputError(f"{name} dosages must be a 2-D samples x variants array, got shape {arr.shape}")
    if arr.size and (arr.min() < MISSING or arr.max() > 2):
        raise InputError(f"{name} dosages must be 0, 1, 2 or -1 (missing), found values in [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.int8)


class _Side:
    """One chunk's share of the products, on the compute device (c individuals, m SNPs).

    ``pairs``: [H, R, A] for the query side, [H, -2A, -2R] for the reference side, (c, 3m); ``het`` its first m
    columns; ``n_het`` (c,) heterozygote counts; ``called`` (c, m) indicators, only when a call is missing."""

    def __init__(self, chunk: np.ndarray, reference_side: bool, device: torch.device, dtype: torch.dtype):
        m = chunk.shape[1]
        order = (("eq", 1), ("eq", 2), ("eq", 0)) if reference_side else (("eq", 1), ("eq", 0), ("eq", 2))
        self.pairs = genotype_indicators(chunk, order, device, dtype)
        if reference_side:
            self.pairs[:, m:] *= -2
        self.het = self.pairs[:, :m]
        self.n_het = self.het.sum(dim=1)
        self.called = None
        if (chunk == MISSING).any():
            self.called = genotype_indicators(chunk, (("ne", MISSING),), device, dtype)


def _king_block(a: _Side, b: _Side) -> torch.Tensor:
    """KING-robust phi (ca, cb) float64 between the individuals of two chunks (NaN where min het count is 0)."""
    balance = (a.pairs @ b.pairs.T).double()  # N_Aa,Aa - 2 N_AA,aa
    if a.called is None and b.called is None:
        het_a = a.n_het.double().unsqueeze(1).expand_as(balance)
        het_b = b.n_het.double().unsqueeze(0).expand_as(balance)
    else:  # heterozygote counts over the SNPs the other individual has called too
        called_a = a.called if a.called is not None else torch.ones_like(a.het)
        called_b = b.called if b.called is not None else torch.ones_like(b.het)
        het_a = (a.het @ called_b.T).double()
        het_b = (called_a @ b.het.T).double()
    smallest = torch.minimum(het_a, het_b)
    phi = 0.5 + (2 * balance - het_a - het_b) / (4 * smallest)
    return phi.masked_fill_(smallest == 0, float("nan"))


def _chunks(queries, reference, device, chunk_rows):
    """Yield (query start, query end, reference start, reference end, phi block) over all chunk pairs."""
    dev = resolve_device(device)
    m = queries.shape[1]
    chunk = int(chunk_rows) if chunk_rows else default_chunk_rows(3 * m, dev)  # ~7m floats per chunk row here
    dtype = torch.float32 if m <= FP32_EXACT_MAX_SNPS else torch.float64
    with torch.no_grad(), torch.autocast(dev.type, enabled=False):
        for qs in range(0, queries.shape[0], chunk):
            qe = min(qs + chunk, queries.shape[0])
            a = _Side(queries[qs:qe], False, dev, dtype)
            for rs in range(0, reference.shape[0], chunk):
                re = min(rs + chunk, reference.shape[0])
                yield qs, qe, rs, re, _king_block(a, _Side(reference[rs:re], True, dev, dtype))


def _aligned(queries, reference):
    q, r = _check(queries, "queries"), _check(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise InputError(f"queries have {q.shape[1]} SNPs but reference has {r.shape[1]}; align the SNP sets first")
    return q, r


def king_kinship(queries: np.ndarray, reference: np.ndarray, *, device: str = "auto",
                 chunk_rows: int | None = None) -> np.ndarray:
    """Full KING-robust kinship matrix (q, r) float64 between two sets of (n, m) int8 dosages (-1 = missing).

    Materialises q x r values: for small sets and checks; use ``max_kinship`` for cohorts."""
    q, r = _aligned(queries, reference)
    out = np.full((q.shape[0], r.shape[0]), np.nan)
    for qs, qe, rs, re, phi in _chunks(q, r, device, chunk_rows):
        out[qs:qe, rs:re] = phi.cpu().numpy()
    return out


def max_kinship(queries: np.ndarray, reference: np.ndarray, *, device: str = "auto",
                chunk_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For every query individual, its closest relative in ``reference`` by KING-robust kinship.

    queries (q, m), reference (r, m): int8 dosages over the same aligned SNPs, -1 = missing. Memory stays
    O(chunk_rows * (m + chunk_rows)) whatever q and r. Returns ``(phi_max (q,) float64, index (q,) int64)``;
    NaN and -1 where no pair had an estimate (a query or every reference without heterozygous calls)."""
    q, r = _aligned(queries, reference)
    best = np.full(q.shape[0], -np.inf)
    best_index = np.full(q.shape[0], -1, dtype=np.int64)
    for qs, qe, rs, re, phi in _chunks(q, r, device, chunk_rows):
        value, where = torch.max(torch.nan_to_num(phi, nan=-np.inf), dim=1)
        value, where = value.cpu().numpy(), where.cpu().numpy() + rs
        better = value > best[qs:qe]
        best[qs:qe][better] = value[better]
        best_index[qs:qe][better] = where[better]
    best[best_index < 0] = np.nan
    return best, best_index
