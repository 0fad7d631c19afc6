"""Nearest neighbours between individuals by exact L1 (identity-by-state) distance, through chunked matrix products.

Orientation: samples x variants; dosages are int8 0/1/2 counts of the ``.bim`` column-5 allele.

The L1 distance between two dosage vectors, sum_j |x_j - y_j|, is the identity-by-state distance (0, 1 or 2
alleles not shared per SNP). With the 2-bit encoding t(x) = [x >= 1, x >= 2] (so |x - y| = |t(x) - t(y)|_1 and,
the bits being 0/1, |t(x) - t(y)|_1 = |t(x) - t(y)|^2):

    L1(x, y) = |t(x)|^2 + |t(y)|^2 - 2 t(x).t(y),      |t(x)|^2 = sum_j x_j,

so all distances between two sets are one matrix product of their (n, 2m) encodings. It is computed block by
block (a query chunk against a reference chunk, never an n x n matrix), and only the k nearest per query row are
kept, merged across reference chunks.

Exactness: the encodings hold 0/1 (and -2 after scaling), so every product and partial sum is an integer; float32
represents integers exactly up to 2^24, which covers every partial sum while 6m < 2^24 (``FP32_EXACT_MAX_SNPS``);
beyond that the product runs in float64. The integer inputs stay exact even where a GPU multiplies in TF32 (10
mantissa bits hold 0, 1 and 2); fp16/bf16 *outputs* would round integers above 2048, so the product never runs
under autocast.

Missing calls (-1) are refused: an L1 distance over the SNPs both individuals have called is not comparable from
pair to pair, and mean-imputation makes distances fractional and biased towards the mean individual. Callers
with missing calls impute first, as a documented and seeded step: ``impute_missing`` draws each missing call from
Binomial(2, p) with the per-SNP frequency p of a reference set (usually training).

One code path: torch, which multiplies with cuBLAS on CUDA and with MKL on CPU (measured as fast as numpy's
OpenBLAS on our 2-core machine; see benchmarks/bench_distances.py).
"""
from __future__ import annotations

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import InputError
from ..genotypes import MISSING, allele_frequencies

FP32_EXACT_MAX_SNPS = 2**21  # 6 * 2^21 < 2^24: every partial sum of the product is an exact float32 integer
_BLOCK_ELEMENTS = {"cpu": 2**24, "cuda": 2**28}  # floats per (chunk x 2m) encoding or (chunk x chunk) block


def check_complete_dosages(dosages: np.ndarray, name: str) -> np.ndarray:
    """Return ``dosages`` as a C-contiguous int8 (n, m) array after checking it holds only 0/1/2.

    Raises InputError naming ``name`` when a call is missing (-1) or out of range."""
    arr = np.asarray(dosages)
    if arr.ndim != 2:
        raise InputError(f"{name} dosages must be a 2-D samples x variants array, got shape {arr.shape}")
    if arr.size:
        n_missing = int(np.count_nonzero(arr == MISSING))
        if n_missing:
            raise InputError(
                f"{name} has {n_missing} missing calls (-1); exact distances need complete genotypes",
                hint="impute first, e.g. snpgen_core.evaluation.distances.impute_missing(dosages, train_frequency, seed=0)",
            )
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 2:
            raise InputError(f"{name} dosages must be 0, 1 or 2, found values in [{lo}, {hi}]")
    return np.ascontiguousarray(arr, dtype=np.int8)


def impute_missing(dosages: np.ndarray, a1_frequency: np.ndarray, *, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Copy of ``dosages`` (n, m) with every missing call (-1) drawn from Binomial(2, a1_frequency[j]).

    ``a1_frequency`` (m,) is the counted-allele frequency of a reference set (usually training, from
    ``Genotypes.a1_frequency()``); NaN (no call at all) is treated as 0. Seeded: same seed, same imputation."""
    rng = np.random.default_rng(seed)
    out = np.array(dosages, dtype=np.int8, copy=True)
    rows, cols = np.nonzero(out == MISSING)
    p = np.nan_to_num(np.asarray(a1_frequency, dtype=float), nan=0.0).clip(0.0, 1.0)
    out[rows, cols] = rng.binomial(2, p[cols]).astype(np.int8)
    return out


def impute_from_training(train: np.ndarray, *others: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """``train`` and ``others``, each with its missing calls drawn from the training a1 frequencies
    (``impute_missing``; cohort k of the tuple seeded [seed, 51, k]): complete rows for the distance statistics,
    as ``evaluate``'s privacy rows take them."""
    p = allele_frequencies(train)
    return tuple(impute_missing(x, p, seed=np.random.default_rng([seed, 51, k]))
                 for k, x in enumerate((train, *others)))


def default_chunk_rows(n_snps: int, device: torch.device) -> int:
    """Rows per chunk so that a chunk's encoding and a chunk x chunk block stay near 64 MiB (CPU) / 1 GiB (GPU)."""
    budget = _BLOCK_ELEMENTS["cuda" if device.type == "cuda" else "cpu"]
    rows = min(budget // max(2 * n_snps, 1), int(budget**0.5))
    return int(max(64, rows))


def _compute_dtype(n_snps: int) -> torch.dtype:
    return torch.float32 if n_snps <= FP32_EXACT_MAX_SNPS else torch.float64


def genotype_indicators(chunk: np.ndarray, tests: tuple[tuple[str, int], ...], device: torch.device,
                        dtype: torch.dtype) -> torch.Tensor:
    """Side-by-side 0/1 indicator blocks of an int8 (c, m) chunk -> (c, len(tests) m) tensor on ``device``.

    ``tests``: (comparison, value) pairs, comparison one of "ge", "eq", "ne"; e.g. (("ge", 1), ("ge", 2)) is t(x).
    Built by numpy on the CPU (torch's CPU comparison kernels measured ten times slower for this), by torch on a
    GPU (no float copy crosses the bus)."""
    c, m = chunk.shape
    if device.type == "cpu":
        out = np.empty((c, len(tests) * m), dtype=np.float32 if dtype == torch.float32 else np.float64)
        for k, (op, value) in enumerate(tests):
            getattr(np, _NUMPY_TESTS[op])(chunk, value, out=out[:, k * m: (k + 1) * m], casting="unsafe")
        return torch.from_numpy(out)
    x = torch.from_numpy(chunk).to(device)
    return torch.cat([getattr(x, op)(value) for op, value in tests], dim=1).to(dtype)


_NUMPY_TESTS = {"ge": "greater_equal", "eq": "equal", "ne": "not_equal"}
TWO_BIT_ENCODING = (("ge", 1), ("ge", 2))  # t(x) = [x >= 1, x >= 2]


def _checked_pair(queries, reference, k: int, exclude_self: bool) -> tuple[np.ndarray, np.ndarray]:
    q = check_complete_dosages(queries, "queries")
    r = check_complete_dosages(reference, "reference")
    if q.shape[1] != r.shape[1]:
        raise InputError(f"queries have {q.shape[1]} SNPs but reference has {r.shape[1]}; align the SNP sets first")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if exclude_self and (q.shape != r.shape or not np.array_equal(q, r)):
        raise ValueError("exclude_self=True needs queries and reference to be the same individuals in the same order")
    available = r.shape[0] - int(exclude_self)
    if available < k:
        raise ValueError(f"{k} nearest neighbours asked but the reference offers only {available} individuals")
    return q, r


def nearest_neighbours(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int = 1,
    *,
    exclude_self: bool = False,
    device: str = "auto",
    chunk_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference individuals of every query individual by exact L1 (IBS) distance.

    queries: (q, m) and reference: (r, m) int8 dosages 0/1/2 over the same aligned SNPs (missing calls refused,
    see module docstring). ``exclude_self=True`` is for distances within one set (``queries`` and ``reference``
    the same individuals in the same order): query i never returns reference i, though it does return any other
    individual with an identical genome. ``chunk_rows`` bounds both chunk sizes (default from the SNP count and
    the device); memory is O(chunk_rows * (m + chunk_rows)) whatever q and r.

    Returns ``(distances, indices)``, both (q, k) int64, sorted by increasing distance per row; equally distant
    reference individuals are returned in any order.
    """
    q, r = _checked_pair(queries, reference, k, exclude_self)
    return _search(q, r, k, exclude_self, resolve_device(device, warn=False), chunk_rows, reverse=False)[0]


def nearest_both_ways(
    a: np.ndarray, b: np.ndarray, k: int = 1, *, device: str = "auto", chunk_rows: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``nearest_neighbours(a, b, k)`` and ``nearest_neighbours(b, a, 1)`` from one pass over the distance blocks
    (the product, the expensive part, is shared). Returns ((distances (na, k), indices (na, k)),
    (distances (nb, 1), indices (nb, 1))), int64."""
    q, r = _checked_pair(a, b, k, False)
    if len(q) == 0:
        raise ValueError("nearest_both_ways needs at least one individual in each set")
    return _search(q, r, k, False, resolve_device(device, warn=False), chunk_rows, reverse=True)


def _search(q: np.ndarray, r: np.ndarray, k: int, exclude_self: bool, dev: torch.device, chunk_rows: int | None,
            reverse: bool):
    """Chunked k-nearest search of the rows of q among the rows of r; with ``reverse`` also the nearest row of q
    of every row of r. Inputs already checked. Returns ((d, i) (q, k), (d, i) (r, 1) or None)."""
    n_q, m = q.shape
    distances = np.empty((n_q, k), dtype=np.int64)
    indices = np.empty((n_q, k), dtype=np.int64)
    chunk = int(chunk_rows) if chunk_rows else default_chunk_rows(m, dev)
    dtype = _compute_dtype(m)
    reference_norms = torch.from_numpy(r.sum(axis=1, dtype=np.int64)).to(dev, dtype)  # |t(y)|^2 = sum_j y_j
    back_d = torch.full((len(r),), float("inf"), device=dev, dtype=dtype)  # reverse direction, full distances
    back_i = torch.full((len(r),), -1, device=dev, dtype=torch.long)
    with torch.no_grad(), torch.autocast(dev.type, enabled=False):
        for qs in range(0, n_q, chunk):
            qe = min(qs + chunk, n_q)
            tq = genotype_indicators(q[qs:qe], TWO_BIT_ENCODING, dev, dtype)  # (cq, 2m)
            query_norms = torch.from_numpy(q[qs:qe].sum(axis=1, dtype=np.int64)).to(dev, dtype)
            best_d = torch.full((qe - qs, k), float("inf"), device=dev, dtype=dtype)
            best_i = torch.full((qe - qs, k), -1, device=dev, dtype=torch.long)
            for rs in range(0, r.shape[0], chunk):
                re = min(rs + chunk, r.shape[0])
                tr = genotype_indicators(r[rs:re], TWO_BIT_ENCODING, dev, dtype)  # (cr, 2m)
                # |t(y)|^2 - 2 t(x).t(y): the query's own |t(x)|^2 is constant along its row, added at the end
                block = torch.addmm(reference_norms[rs:re].unsqueeze(0), tq, tr.T, alpha=-2.0)  # (cq, cr)
                if exclude_self:
                    lo, hi = max(qs, rs), min(qe, re)
                    if lo < hi:
                        own = torch.arange(lo, hi, device=dev)
                        block[own - qs, own - rs] = float("inf")
                kk = min(k, re - rs)
                if kk == 1:
                    d, i = torch.min(block, dim=1, keepdim=True)
                else:
                    d, i = torch.topk(block, kk, dim=1, largest=False)
                merged_d = torch.cat([best_d, d], dim=1)
                merged_i = torch.cat([best_i, i + rs], dim=1)
                order = torch.argsort(merged_d, dim=1, stable=True)[:, :k]
                best_d = torch.gather(merged_d, 1, order)
                best_i = torch.gather(merged_i, 1, order)
                if reverse:
                    d, i = torch.min(block.add_(query_norms.unsqueeze(1)), dim=0)  # (cr,) full distances
                    better = d < back_d[rs:re]
                    back_d[rs:re] = torch.where(better, d, back_d[rs:re])
                    back_i[rs:re] = torch.where(better, i + qs, back_i[rs:re])
            distances[qs:qe] = torch.round(best_d + query_norms.unsqueeze(1)).long().cpu().numpy()
            indices[qs:qe] = best_i.cpu().numpy()
    if not reverse:
        return (distances, indices), None
    back = (torch.round(back_d).long().cpu().numpy()[:, None], back_i.cpu().numpy()[:, None])
    return (distances, indices), back


def longest_shared_runs(queries: np.ndarray, reference: np.ndarray, segment=None, *, device: str = "auto",
                        block_elements: int | None = None) -> np.ndarray:
    """(q,) int64: for every query individual, the longest stretch of consecutive panel SNPs over which its
    genotypes equal those of one reference individual (identical by state on both alleles, IBS2), the longest over
    all reference individuals. A stretch never crosses a change of ``segment`` ((m,) chromosome labels, in panel
    order; None: one chromosome). Two people who share a haplotype identical by descent over a region share
    such a stretch wherever neither carries a discordant allele on their other haplotypes; the lengths of the
    longest shared stretches are what segment-matching attacks (IBD search, as genetic genealogy uses) read.

    queries (q, m), reference (r, m): int8 dosages 0/1/2 (missing calls refused). Exact: per pair, the longest gap
    between mismatching SNPs (a running maximum of the last mismatch position), computed in (queries x
    reference x SNPs) blocks of at most ``block_elements`` entries (default: the device's block size), so memory
    stays bounded whatever q and r. Cost O(q r m)."""
    q, r = _checked_pair(queries, reference, 1, False)
    n_q, m = q.shape
    out = np.zeros(n_q, dtype=np.int64)
    if m == 0 or n_q == 0:
        return out
    dev = resolve_device(device, warn=False)
    codes = np.zeros(m, dtype=np.int64) if segment is None else np.unique(np.asarray(segment).astype(str),
                                                                           return_inverse=True)[1]
    if len(codes) != m:
        raise InputError(f"segment has {len(codes)} labels for {m} SNPs")
    starts = np.r_[True, codes[1:] != codes[:-1]]
    dtype = torch.int16 if m < 2**15 else torch.int32  # int16 runs the scan about 3x faster on CPU
    position = torch.arange(m, device=dev, dtype=dtype)
    # the value a matching SNP takes in the running maximum: the position just before it where a segment starts
    # (a stretch restarts there), else -1; a mismatching SNP takes its own position
    matched = torch.where(torch.from_numpy(starts).to(dev), position - 1, torch.tensor(-1, device=dev, dtype=dtype))
    budget = block_elements or _BLOCK_ELEMENTS.get(dev.type, _BLOCK_ELEMENTS["cpu"]) // 4
    r_chunk = max(1, min(len(r), budget // m))
    q_chunk = max(1, budget // (r_chunk * m))
    with torch.no_grad():
        reference_t = torch.from_numpy(r).to(dev)
        for qs in range(0, n_q, q_chunk):
            block_q = torch.from_numpy(q[qs:qs + q_chunk]).to(dev)[:, None, :]
            best = torch.zeros(len(block_q), device=dev, dtype=dtype)
            for rs in range(0, len(r), r_chunk):
                mark = torch.where(block_q != reference_t[None, rs:rs + r_chunk], position, matched)
                run = position - torch.cummax(mark, dim=2).values  # SNPs since the last mismatch or restart
                best = torch.maximum(best, run.amax(dim=(1, 2)))
            out[qs:qs + len(block_q)] = best.cpu().numpy()
    return out


def nearest_distance(queries: np.ndarray, reference: np.ndarray, **kwargs) -> np.ndarray:
    """Distance (q,) int64 from every query individual to its closest reference individual (see
    ``nearest_neighbours`` for the arguments)."""
    return nearest_neighbours(queries, reference, 1, **kwargs)[0][:, 0]
