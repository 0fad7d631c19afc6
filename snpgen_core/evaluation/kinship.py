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

Computation, chunk by chunk: per SNP, [both heterozygous] - 2 [opposite homozygotes] = x y - 2 [x = 2] - 2 [y = 2]
for dosages x, y in {0, 1, 2}, so N_Aa,Aa - 2 N_AA,aa = X . Y^T - 2 N_2(i) - 2 N_2(j) (N_2: count of 2s): one
product of the dosage matrices, exact integers in float32 (see ``distances``). With missing calls (dosage 0 in the
product) the counts become pairwise through products with the called indicators C: X . Y^T - 2 A . C^T - 2 C . A^T
(A = [x = 2]) and N_Aa(i) = H . C^T (H = [x = 1]).
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

    ``dosage`` (c, m) float, missing as 0; ``n_het`` (c,) count of 1s, ``u`` (c,) 4 x count of 2s + ``n_het``.
    Only when a call is missing: ``het``, ``hom2``, ``called`` (c, m) indicators for the pairwise counts."""

    def __init__(self, chunk: np.ndarray, device: torch.device, dtype: torch.dtype):
        self.missing = bool((chunk == MISSING).any())
        dosage = np.where(chunk == MISSING, 0, chunk) if self.missing else chunk
        if device.type == "cpu":  # numpy's int8 -> float conversion is the faster one on a CPU
            self.dosage = torch.from_numpy(dosage.astype(np.float32 if dtype == torch.float32 else np.float64))
        else:
            self.dosage = torch.from_numpy(dosage).to(device).to(dtype)
        indicators = genotype_indicators(chunk, (("eq", 1), ("eq", 2), ("ne", MISSING)), device, dtype)
        m = chunk.shape[1]
        self.het, self.hom2, self.called = indicators[:, :m], indicators[:, m: 2 * m], indicators[:, 2 * m:]
        self.n_het = self.het.sum(dim=1)
        self.u = 4 * self.hom2.sum(dim=1) + self.n_het  # (c,): the individual's own part of the numerator
        if not self.missing:
            self.het = self.hom2 = self.called = None  # row counts suffice: free the (c, m) indicators


def _king_block(a: _Side, b: _Side) -> torch.Tensor:
    """KING-robust phi (ca, cb) between the individuals of two chunks (NaN where the min het count is 0).

    Per SNP, [both het] - 2 [opposite homozygotes] = x y - 2 [x = 2] - 2 [y = 2] for x, y in {0, 1, 2} (check the
    nine genotype pairs), so the numerator 2 N_Aa,Aa - 4 N_AA,aa - N_Aa(i) - N_Aa(j) = 2 X.Y^T - u_i - u_j with
    u = 4 N_2 + N_Aa: one product of the dosages and in-place passes, all exact integers until the division (one
    float32 rounding, |error| < 1e-7)."""
    if not (a.missing or b.missing):
        phi = torch.addmm(b.u.unsqueeze(0), a.dosage, b.dosage.T, beta=-1, alpha=2)  # 2 X.Y^T - u_j
        phi.sub_(a.u.unsqueeze(1))
        smallest = torch.minimum(a.n_het.unsqueeze(1), b.n_het.unsqueeze(0))
        phi.div_(4 * smallest).add_(0.5)
        return phi.masked_fill_(smallest == 0, float("nan"))
    # every count over the SNPs both individuals have called (missing dosages are 0 in the product)
    het_a_m, hom2_a, called_a = _pairwise(a)
    het_b_m, hom2_b, called_b = _pairwise(b)
    balance = (a.dosage @ b.dosage.T - 2 * (hom2_a @ called_b.T) - 2 * (called_a @ hom2_b.T)).double()
    het_a = (het_a_m @ called_b.T).double()
    het_b = (called_a @ het_b_m.T).double()
    smallest = torch.minimum(het_a, het_b)
    phi = 0.5 + (2 * balance - het_a - het_b) / (4 * smallest)
    return phi.masked_fill_(smallest == 0, float("nan"))


def _pairwise(side: _Side) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(het, hom2, called) indicator matrices of a chunk, rebuilt from its dosages when it has no missing call."""
    if side.missing:
        return side.het, side.hom2, side.called
    d = side.dosage
    return (d == 1).to(d.dtype), (d == 2).to(d.dtype), torch.ones_like(d)


def _chunks(queries, reference, device, chunk_rows):
    """Yield (query start, query end, reference start, reference end, phi block) over all chunk pairs."""
    dev = resolve_device(device, warn=False)
    m = queries.shape[1]
    chunk = int(chunk_rows) if chunk_rows else default_chunk_rows(m, dev)
    dtype = torch.float32 if m <= FP32_EXACT_MAX_SNPS else torch.float64
    with torch.no_grad(), torch.autocast(dev.type, enabled=False):
        for qs in range(0, queries.shape[0], chunk):
            qe = min(qs + chunk, queries.shape[0])
            a = _Side(queries[qs:qe], dev, dtype)
            for rs in range(0, reference.shape[0], chunk):
                re = min(rs + chunk, reference.shape[0])
                yield qs, qe, rs, re, _king_block(a, _Side(reference[rs:re], dev, dtype))


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
