"""The SNP panel the models learn: QC of the training genotypes, then the top clumped GWAS SNPs or a user list.

Reading order: quality control (MAF, call rate, monomorphism) -> panel choice (:func:`select_panel`) -> panel
files (a TSV with ``PANEL_COLUMNS``, or a SNP list).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .clumping import check_clump_parameters, clump
from .errors import InputError, not_utf8
from .genotypes import Genotypes, chromosome_rank
from .io.atomic import atomic_path
from .io.tables import missing_mask, read_text_table
from .ld import R2_ESTIMATORS
from .options import option

# ---------------------------------------------------------------------------------------------------------------
# Quality control


@dataclass
class QcReport:
    """Which variants pass QC and why the others fail.

    mask: (n_variants,) bool, True = kept. A variant is dropped when it is monomorphic among its called genotypes
    (or has none), when its minor-allele frequency is below ``maf``, or when its share of missing calls exceeds
    ``max_missing`` (PLINK ``--maf``/``--geno`` semantics: MAF >= maf and missing <= max_missing are kept). The
    three counts may overlap; ``n_low_maf`` counts polymorphic variants only.
    """

    mask: np.ndarray
    maf: float
    max_missing: float
    n_samples: int
    n_monomorphic: int
    n_low_maf: int
    n_high_missing: int

    @property
    def n_variants(self) -> int:
        return int(self.mask.size)

    @property
    def n_pass(self) -> int:
        return int(self.mask.sum())

    def describe(self) -> str:
        return (f"QC on {self.n_samples} individuals: {self.n_pass} of {self.n_variants} SNPs pass "
                f"({self.n_monomorphic} monomorphic, {self.n_low_maf} with MAF < {self.maf:g}, "
                f"{self.n_high_missing} with missing calls > {self.max_missing:.0%})")


def qc_report(genotypes: Genotypes, maf: float = 0.01, max_missing: float = 0.05) -> QcReport:
    """Minor-allele-frequency, call-rate and monomorphism filters (see :class:`QcReport`).

    MAF = min(f, 1 - f) with f = a1 frequency among called genotypes (``Genotypes.a1_frequency``).
    """
    if not 0 <= maf <= 0.5:
        raise InputError(f"MAF threshold {maf} must be within [0, 0.5]")
    if not 0 <= max_missing <= 1:
        raise InputError(f"maximum missing-call share {max_missing} must be within [0, 1]")
    freq = genotypes.a1_frequency()
    minor = np.minimum(freq, 1 - freq)  # NaN when no genotype is called
    missing = genotypes.missing_rate()
    monomorphic = ~(minor > 0)
    low_maf = ~monomorphic & (minor < maf)
    high_missing = missing > max_missing
    mask = ~(monomorphic | low_maf | high_missing)
    return QcReport(mask, maf, max_missing, genotypes.n_samples, int(monomorphic.sum()), int(low_maf.sum()),
                    int(high_missing.sum()))


def qc_mask(genotypes: Genotypes, maf: float = 0.01, max_missing: float = 0.05) -> np.ndarray:
    """(n_variants,) bool: True for variants passing :func:`qc_report`'s filters."""
    return qc_report(genotypes, maf, max_missing).mask


# ---------------------------------------------------------------------------------------------------------------
# Panels

PANEL_COLUMNS = ["SNP", "CHR", "BP", "A1", "A2", "BETA", "P"]


class PanelWarning(UserWarning):
    """A panel was chosen, but not quite as asked (fewer SNPs than requested, listed IDs not found)."""


@dataclass
class Panel:
    """The SNPs the models learn, in chromosome then position order.

    table: ``PANEL_COLUMNS``: SNP (variant ID), CHR, BP, A1 / A2 (the genotypes' ``.bim`` alleles; dosages count
           A1), BETA (GWAS effect per copy of A1; NaN for a listed SNP without GWAS row), P.
    variant_index: (k,) rows of the genotype variant table, in ``table`` order.
    qc: the QC of the training genotypes; clumps: the clumping result and n_candidates the SNPs that entered it
    (GWAS mode); notes: what differs from the request, in words (also raised as :class:`PanelWarning`);
    missing_ids: listed IDs absent from the genotypes.
    """

    table: pd.DataFrame
    variant_index: np.ndarray
    qc: QcReport | None = None
    clumps: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    missing_ids: list[str] = field(default_factory=list)
    n_candidates: int | None = None  # GWAS SNPs with a p-value that passed QC (GWAS mode)

    def __len__(self) -> int:
        return len(self.table)


def _panel_table(variants: pd.DataFrame, vi: np.ndarray, beta: np.ndarray, p: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    order = np.lexsort((vi, variants["pos"].to_numpy()[vi], chromosome_rank(variants["chrom"].to_numpy()[vi])))
    vi, beta, p = vi[order], beta[order], p[order]
    table = pd.DataFrame({
        "SNP": variants["snp"].astype(str).to_numpy()[vi],
        "CHR": variants["chrom"].astype(str).to_numpy()[vi],
        "BP": variants["pos"].to_numpy(dtype=np.int64)[vi],
        "A1": variants["a1"].astype(str).to_numpy()[vi],
        "A2": variants["a2"].astype(str).to_numpy()[vi],
        "BETA": beta.astype(np.float64),
        "P": p.astype(np.float64),
    })
    return table, vi.astype(np.int64)


def _note(notes: list[str], text: str) -> None:
    notes.append(text)
    warnings.warn(text, PanelWarning, stacklevel=3)


@dataclass
class PanelOptions:
    """How :func:`select_panel` chooses SNPs: its defaults, which ``snpgen select`` and the app's Panel page use."""

    top: int = option(1000, "panel size: the K clumped index SNPs with the smallest p", low=1)
    # p1 = p2 = 1: every QC-passing SNP with a p-value is a candidate (PLINK's 1e-4 / 1e-2 suit finding loci)
    p1: float = option(1.0, "index SNPs need p <= p1 (PLINK's default is 1e-4)", low=0.0, high=1.0)
    p2: float = option(1.0, "clumped SNPs listed need p < p2, p2 >= p1 (PLINK's default is 0.01)", low=0.0,
                       high=1.0)
    r2: float = option(0.5, "SNPs with r^2 > r2 to an index SNP join its clump (as PLINK)", low=0.0, high=1.0)
    kb: float = option(250.0, "clumping window: SNPs less than kb kilobases away (as PLINK)", low=0.0)
    maf: float = option(0.01, "minimum minor-allele frequency in the training individuals", low=0.0, high=0.5)
    max_missing: float = option(0.05, "maximum share of missing calls per SNP", low=0.0, high=1.0)
    estimator: str = option("haplotype", "r^2 estimator: haplotype (PLINK 1.9 --clump) or dosage (squared "
                                         "correlation of dosages)", choices=R2_ESTIMATORS)


_DEFAULT = PanelOptions()


def select_panel(genotypes_train: Genotypes, aligned, top: int = _DEFAULT.top, p1: float = _DEFAULT.p1,
                 p2: float = _DEFAULT.p2, r2: float = _DEFAULT.r2, kb: float = _DEFAULT.kb, *,
                 maf: float = _DEFAULT.maf, max_missing: float = _DEFAULT.max_missing,
                 estimator: str = _DEFAULT.estimator, snps: list[str] | None = None) -> Panel:
    """Choose the SNP panel from the TRAINING genotypes: QC, then clumping, then the ``top`` index SNPs by p.

    Defaults: p1 = p2 = 1 so that every QC-passing SNP with a GWAS p-value is a candidate (PLINK's own defaults,
    1e-4 / 1e-2, suit finding loci, not filling a panel); r2 = 0.5 and kb = 250 as PLINK; MAF >= 0.01 and at most
    5% missing calls. ``aligned`` is ``align_gwas(...)`` output (or its table) for ``genotypes_train.variants``.
    When fewer index SNPs than ``top`` exist, all are used and a :class:`PanelWarning` says so.

    With ``snps`` (variant IDs, e.g. from :func:`read_snp_list`) the panel is exactly those found in the
    genotypes, whatever their p or QC; BETA/P come from the GWAS rows with the same ID (by ``variant_index`` when
    the table has no ``snp`` column) where it has them. IDs not in the genotypes are reported (``missing_ids``, a
    warning); none found raises InputError.
    """
    variants = genotypes_train.variants
    notes: list[str] = []
    qc = qc_report(genotypes_train, maf, max_missing)
    table = aligned.table if hasattr(aligned, "table") else aligned
    by_variant = pd.DataFrame({"variant_index": table["variant_index"].to_numpy(dtype=np.int64),
                               "beta": table["beta"].to_numpy(dtype=np.float64),
                               "p": table["p"].to_numpy(dtype=np.float64)}).drop_duplicates("variant_index")
    by_variant = by_variant.set_index("variant_index")

    if snps is not None:
        wanted = list(dict.fromkeys(str(s) for s in snps))
        lookup = pd.Index(variants["snp"].astype(str))
        hit = lookup.get_indexer(wanted)
        missing = [s for s, h in zip(wanted, hit) if h < 0]
        if not (hit >= 0).any():
            raise InputError(f"none of the {len(wanted)} listed SNPs is in the genotypes (e.g. {', '.join(wanted[:3])})",
                             hint="IDs must match the .bim column 2")
        vi = hit[hit >= 0].astype(np.int64)
        if missing:
            _note(notes, f"{len(missing)} of {len(wanted)} listed SNPs are not in the genotypes "
                         f"(e.g. {', '.join(missing[:3])}); the panel has the other {vi.size}")
        if "snp" in table.columns:  # listed SNPs are IDs: take their GWAS rows by ID too
            by_id = pd.DataFrame({"beta": table["beta"].to_numpy(dtype=np.float64),
                                  "p": table["p"].to_numpy(dtype=np.float64)},
                                 index=table["snp"].astype(str)).groupby(level=0).first()
            stats = by_id.reindex(variants["snp"].astype(str).to_numpy()[vi])
        else:
            stats = by_variant.reindex(vi)
        if stats["p"].isna().any():
            _note(notes, f"{int(stats['p'].isna().sum())} listed SNPs have no GWAS row: BETA and P are NA for them")
        failing = int((~qc.mask[vi]).sum())
        if failing:
            _note(notes, f"{failing} listed SNPs fail QC on the training individuals; kept as listed")
        t, vi = _panel_table(variants, vi, stats["beta"].to_numpy(), stats["p"].to_numpy())
        return Panel(t, vi, qc, None, notes, missing)

    if int(top) != top or top < 1:
        raise InputError(f"top = {top} must be a positive whole number of SNPs", hint="e.g. --top 1000")
    check_clump_parameters(p1, p2, r2, kb)
    eligible = table[qc.mask[table["variant_index"].to_numpy(dtype=np.int64)]]
    n_candidates = int(np.isfinite(pd.to_numeric(eligible["p"], errors="coerce")).sum())
    if n_candidates == 0:
        raise InputError(f"no GWAS SNP passes QC ({qc.describe()})",
                         hint="lower --maf or raise --max-missing, or check that the GWAS matches the genotypes")
    clumps = clump(genotypes_train, eligible, p1=p1, p2=p2, r2=r2, kb=kb, estimator=estimator)
    if clumps.empty:
        best = float(pd.to_numeric(eligible["p"], errors="coerce").min())
        raise InputError(f"no GWAS SNP passing QC has p <= p1 = {p1:g} (smallest p {best:.3g})",
                         hint="raise --clump-p1 (1 makes every SNP a candidate)")
    if len(clumps) < top:
        _note(notes, f"--top {top} asked for more SNPs than the {len(clumps)} index SNPs left after QC and "
                     f"clumping (r2 > {r2:g} within {kb:g} kb, p <= {p1:g}); using all {len(clumps)}")
    chosen = clumps["variant_index"].to_numpy(dtype=np.int64)[:int(top)]
    stats = by_variant.reindex(chosen)
    t, vi = _panel_table(variants, chosen, stats["beta"].to_numpy(), stats["p"].to_numpy())
    return Panel(t, vi, qc, clumps, notes, [], n_candidates)


def read_snp_list(path: str | os.PathLike) -> list[str]:
    """Variant IDs from a file: one ID per line, or a table whose header has a SNP column (tab, comma or
    whitespace separated; case-insensitive). Blank lines and ``#`` comments are skipped; repeats kept once."""
    p = Path(path)
    if not p.is_file():
        raise InputError("SNP list file not found", path=str(p), hint="one variant ID per line, or a table with a SNP column")
    try:
        with open(p, "r", encoding="utf-8") as fh:
            lines = [(i + 1, ln.strip()) for i, ln in enumerate(fh) if ln.strip() and not ln.lstrip().startswith("#")]
    except UnicodeDecodeError:
        raise not_utf8(p) from None
    if not lines:
        raise InputError("SNP list file is empty", path=str(p), hint="one variant ID per line")

    def fields(text: str) -> list[str]:
        return [f.strip() for f in text.split("\t")] if "\t" in text else (
            [f.strip() for f in text.split(",")] if "," in text else text.split())

    header = [h.upper() for h in fields(lines[0][1])]
    if "SNP" in header:
        col = header.index("SNP")
        ids = []
        for no, ln in lines[1:]:
            f = fields(ln)
            if len(f) <= col:
                raise InputError(f"line has {len(f)} fields, the header has a SNP column at position {col + 1}",
                                 path=str(p), line=no)
            ids.append(f[col])
    elif len(header) == 1:
        ids = [ln for _, ln in lines]
    else:
        raise InputError(f"several columns ({', '.join(fields(lines[0][1])[:5])}) but none named SNP", path=str(p),
                         line=lines[0][0], hint="name the ID column SNP, or give one ID per line")
    if not ids:
        raise InputError("SNP list has a header but no IDs", path=str(p))
    return list(dict.fromkeys(ids))


def write_panel(panel: Panel | pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the panel as a tab-separated table with a header (``PANEL_COLUMNS``; NA for a missing value),
    atomically."""
    table = panel.table if isinstance(panel, Panel) else panel
    with atomic_path(path) as tmp:
        table[PANEL_COLUMNS].to_csv(tmp, sep="\t", index=False, na_rep="NA", float_format="%.10g")


def read_panel(path: str | os.PathLike) -> pd.DataFrame:
    """Read a panel TSV written by :func:`write_panel` (or by hand): columns ``PANEL_COLUMNS`` with SNP, CHR,
    A1, A2 as text, BP int64, BETA and P float (NA -> NaN), rows in file order. Raises InputError for a missing
    file, missing columns, non-numeric values and repeated SNP IDs."""
    where = str(path)
    raw = read_text_table(path, PANEL_COLUMNS, "panel", "make one with snpgen select")
    if raw.empty:
        raise InputError("panel has no SNPs", path=where)
    out = pd.DataFrame({c: raw[c].str.strip() for c in ("SNP", "CHR", "A1", "A2")})
    for col, kind in (("BP", "an integer"), ("BETA", "a number"), ("P", "a number")):
        text = raw[col].str.strip()
        na = missing_mask(text)
        values = pd.to_numeric(text.where(~na, None), errors="coerce")
        bad = values.isna() & ~na | (na & (col == "BP"))
        if col == "BP":
            bad |= values.notna() & (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"column {col} must be {kind}, found {raw[col][i]!r}", path=where, line=i + 2)
        out[col] = values.astype(np.int64) if col == "BP" else values.astype(np.float64)
    dup = out["SNP"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"SNP {out['SNP'][i]!r} appears twice", path=where, line=i + 2, hint="one row per SNP")
    return out[PANEL_COLUMNS]
