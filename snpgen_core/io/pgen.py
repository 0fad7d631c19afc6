"""PLINK 2 binary files (.pgen/.pvar/.psam) through ``pgenlib`` (PyPI; optional: ``pip install .[formats]``).

Alleles: ``.pvar`` REF = the ``.bim`` column-6 allele (``a2``), ALT = the counted column-5 allele (``a1``), and a
``.pgen`` genotype counts ALT, so the dosage is unchanged both ways (plink2 ``--make-pgen`` from a ``.bim`` does
the same). The REF is not known to be the reference genome's: the ``.pgen`` carries plink2's "provisional REF"
flags, as for any PLINK 1 data. The ``.psam`` keeps FID, IID, parents, sex (0 -> NA) and the ``.fam`` trait text
as PHENO1. Only biallelic variants are read; a multiallelic one is refused with the plink2 command that splits it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..genotypes import MISSING, SAMPLE_COLUMNS, VARIANT_COLUMNS, Genotypes
from .atomic import atomic_paths

PGEN_SUFFIXES = (".pgen", ".pvar", ".psam")
_PGEN_MISSING = -9


def pgenlib_or_error(what: str = "PLINK 2 .pgen files"):
    """The ``pgenlib`` module, or InputError saying how to install it."""
    try:
        import pgenlib
    except ImportError:
        raise InputError(f"{what} need the pgenlib package, which is not installed",
                         hint="pip install pgenlib (or pip install 'snpgen-studio[formats]')") from None
    return pgenlib


def _pgen_path(prefix: str | os.PathLike, ext: str) -> Path:
    p = Path(prefix)
    if p.suffix in PGEN_SUFFIXES:
        p = p.with_suffix("")
    return p.with_name(p.name + ext)


def is_pgen(prefix: str | os.PathLike) -> bool:
    """True when ``prefix`` names a PLINK 2 set (its ``.pgen`` exists and no PLINK 1 ``.bed`` does)."""
    p = Path(prefix)
    if p.suffix in PGEN_SUFFIXES:
        return True
    return _pgen_path(p, ".pgen").is_file() and not p.with_name(p.name + ".bed").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _allele(values: pd.Series) -> list[str]:
    return values.astype(str).replace("0", ".").tolist()


def write_pvar(path: Path, variants: pd.DataFrame) -> None:
    """``#CHROM POS ID REF ALT`` (+ ``CM`` when any is set), tab-separated."""
    cols = [variants["chrom"].astype(str), variants["pos"].astype(str), variants["snp"].astype(str),
            _allele(variants["a2"]), _allele(variants["a1"])]
    header = ["#CHROM", "POS", "ID", "REF", "ALT"]
    if (variants["cm"].astype(float) != 0).any():
        cols.append(variants["cm"].map(lambda x: f"{x:g}"))
        header.append("CM")
    with open(path, "w") as fh:
        fh.write("\t".join(header) + "\n")
        fh.writelines("\t".join(f) + "\n" for f in zip(*cols))


def write_psam(path: Path, samples: pd.DataFrame) -> None:
    """``#FID IID PAT MAT SEX PHENO1``, tab-separated; sex 0 -> NA; PHENO1 is the ``.fam`` trait text."""
    sex = samples["sex"].astype(int).map({1: "1", 2: "2"}).fillna("NA")
    cols = [samples[c].astype(str) for c in ("fid", "iid", "father", "mother")] + [sex, samples["pheno"].astype(str)]
    with open(path, "w") as fh:
        fh.write("#FID\tIID\tPAT\tMAT\tSEX\tPHENO1\n")
        fh.writelines("\t".join(f) + "\n" for f in zip(*cols))


def write_pgen(prefix: str | os.PathLike, variants: pd.DataFrame, samples: pd.DataFrame,
               blocks: Iterable[np.ndarray]) -> list[Path]:
    """Write ``prefix.pgen/.pvar/.psam`` from ``blocks``: consecutive (n_samples, k) int8 dosage blocks
    (counting ``a1``, -1 missing) covering the variants in order. All three appear together or none; returns
    their paths."""
    pgenlib = pgenlib_or_error()
    paths = [_pgen_path(prefix, s) for s in PGEN_SUFFIXES]
    n, m = len(samples), len(variants)
    if n == 0 or m == 0:
        raise InputError("a .pgen needs at least one sample and one variant", path=str(paths[0]))
    with atomic_paths(*paths) as (pgen, pvar, psam):
        done = 0
        writer = pgenlib.PgenWriter(str(pgen).encode(), n, variant_ct=m, nonref_flags=True)
        try:
            for block in blocks:
                if block.shape[0] != n:
                    raise ValueError(f"a block has {block.shape[0]} samples, expected {n}")
                columns = np.array(block.T, dtype=np.int8, order="C")  # (k, n), a copy: the caller's block stays
                columns[columns == MISSING] = _PGEN_MISSING
                writer.append_biallelic_batch(columns)
                done += columns.shape[0]
            if done != m:
                raise ValueError(f"{done} variants written, {m} declared")
        finally:
            writer.close()
        write_pvar(pvar, variants)
        write_psam(psam, samples)
    return paths


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _header_table(path: Path, kind: str, required: list[str]) -> pd.DataFrame:
    """A ``.pvar``/``.psam`` as text columns, ``##`` lines skipped, the ``#`` header line naming them."""
    if not path.is_file():
        raise InputError(f"{kind} file not found", path=str(path), hint="give the prefix of a .pgen/.pvar/.psam set")
    header, skip = None, 0
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("##"):
                    skip += 1
                    continue
                header = line.lstrip("#").split() if line.startswith("#") else None
                break
    except UnicodeDecodeError:
        from ..errors import not_utf8

        raise not_utf8(path) from None
    if header is None or not set(required) <= set(header):
        raise InputError(f"{kind} needs a header line with columns {' '.join(required)}", path=str(path),
                         line=skip + 1, hint="write it with plink2 --make-pgen")
    table = pd.read_csv(path, sep=r"\s+", skiprows=skip + 1, header=None, names=header, dtype=str,
                        na_filter=False, engine="c")
    if table.isna().any().any():
        raise InputError(f"a {kind} line has fewer fields than the header", path=str(path),
                         hint="every line needs one field per header column")
    return table


def read_pvar(path: str | os.PathLike) -> pd.DataFrame:
    """The canonical variant table of a ``.pvar`` (a1 = ALT, a2 = REF; ``.`` allele -> ``0``)."""
    path = Path(path)
    t = _header_table(path, ".pvar", ["CHROM", "POS", "ID", "REF", "ALT"])
    multi = t["ALT"].str.contains(",")
    if multi.any():
        i = int(np.flatnonzero(multi.to_numpy())[0])
        raise InputError(f"variant {t['ID'][i]} has {t['ALT'][i].count(',') + 2} alleles: only biallelic variants "
                         "are modelled", path=str(path), hint="split them: plink2 --pfile P --max-alleles 2 "
                         "--make-pgen --out NEW")
    try:
        pos = t["POS"].astype(np.int64)
        cm = t["CM"].astype(np.float64) if "CM" in t else np.zeros(len(t))
    except ValueError:
        raise InputError("column POS (or CM) is not numeric", path=str(path)) from None
    v = pd.DataFrame({"chrom": t["CHROM"], "snp": t["ID"], "cm": cm, "pos": pos,
                      "a1": t["ALT"].replace(".", "0"), "a2": t["REF"].replace(".", "0")})
    return v[VARIANT_COLUMNS]


def read_psam(path: str | os.PathLike) -> pd.DataFrame:
    """The canonical sample table of a ``.psam`` (no FID column: FID = IID; SEX NA -> 0; the first phenotype
    column after the standard ones -> ``pheno``, else -9)."""
    path = Path(path)
    t = _header_table(path, ".psam", ["IID"])
    n = len(t)
    sex_text = t.get("SEX", pd.Series(["NA"] * n))
    sex = sex_text.map({"1": 1, "2": 2, "M": 1, "F": 2, "m": 1, "f": 2}).fillna(0).astype(np.int64)
    standard = {"FID", "IID", "SID", "PAT", "MAT", "SEX"}
    trait = next((c for c in t.columns if c not in standard), None)
    s = pd.DataFrame({"fid": t["FID"] if "FID" in t else t["IID"], "iid": t["IID"],
                      "father": t.get("PAT", pd.Series(["0"] * n)), "mother": t.get("MAT", pd.Series(["0"] * n)),
                      "sex": sex, "pheno": t[trait] if trait else pd.Series(["-9"] * n)})
    return s[SAMPLE_COLUMNS]


def read_pvar_psam(prefix: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The variant and sample tables of a PLINK 2 set, checked against the ``.pgen`` header's counts."""
    pgenlib = pgenlib_or_error()
    variants = read_pvar(_pgen_path(prefix, ".pvar"))
    samples = read_psam(_pgen_path(prefix, ".psam"))
    path = _pgen_path(prefix, ".pgen")
    if not path.is_file():
        raise InputError(".pgen file not found", path=str(path), hint="give the prefix of a .pgen/.pvar/.psam set")
    try:
        with pgenlib.PgenReader(str(path).encode()) as reader:
            n, m = reader.get_raw_sample_ct(), reader.get_variant_ct()
    except RuntimeError as err:
        raise InputError(f"not a readable .pgen ({' '.join(str(err).split())})", path=str(path),
                         hint="rewrite it with plink2 --make-pgen") from None
    if (n, m) != (len(samples), len(variants)):
        raise InputError(f"the .pgen holds {n} samples x {m} variants but the .psam/.pvar list {len(samples)} x "
                         f"{len(variants)}", path=str(path), hint="the three files belong to different sets")
    return variants, samples


def read_pgen(prefix: str | os.PathLike, samples=None, variants=None, *,
              tables: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Genotypes:
    """Read a PLINK 2 set, or only the given samples / variants (integer indices, any order; None = all).
    Only the selected variants are decoded, a block at a time. Missing calls become ``MISSING`` (-1).
    ``tables``: its (variants, samples) from :func:`read_pvar_psam` when the caller has them already."""
    pgenlib = pgenlib_or_error()
    var_table, sam_table = tables if tables is not None else read_pvar_psam(prefix)
    s_idx = np.arange(len(sam_table)) if samples is None else np.asarray(samples, dtype=np.int64)
    v_idx = np.arange(len(var_table)) if variants is None else np.asarray(variants, dtype=np.int64)
    if s_idx.dtype == bool or v_idx.dtype == bool:
        raise TypeError("read_pgen takes integer indices")
    # pgenlib reads an increasing sample subset: read the distinct ones sorted, then put them in the asked order
    wanted, order = np.unique(s_idx, return_inverse=True)
    dos = np.empty((s_idx.size, v_idx.size), dtype=np.int8)
    step = max(1, (1 << 26) // max(wanted.size, 1))  # ~64 MB of variant-major buffer at a time
    subset = None if wanted.size == len(sam_table) else wanted.astype(np.uint32)
    with pgenlib.PgenReader(str(_pgen_path(prefix, ".pgen")).encode(), sample_subset=subset) as reader:
        for start in range(0, v_idx.size, step):
            chunk = v_idx[start:start + step].astype(np.uint32)
            buf = np.empty((chunk.size, wanted.size), dtype=np.int8)
            reader.read_list(chunk, buf)
            buf[buf == _PGEN_MISSING] = MISSING
            dos[:, start:start + chunk.size] = buf.T[order]
    return Genotypes(dos, var_table.iloc[v_idx].reset_index(drop=True), sam_table.iloc[s_idx].reset_index(drop=True))
