"""PLINK 1 binary files (.bed/.bim/.fam): validated reading, subsetting, atomic and streamed writing.

Reading and writing of the genotype bits goes through ``bed_reader`` (count_A1=True: the dosage counts the
``.bim`` column-5 allele). The ``.bim``/``.fam`` text files are parsed here so that every malformed line is
reported with its file and line number, and the ``.bed`` header and size are checked before any genotype array is
allocated.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
from bed_reader import create_bed, open_bed

from ..errors import InputError, not_utf8
from ..genotypes import MISSING, SAMPLE_COLUMNS, VARIANT_COLUMNS, Genotypes
from .atomic import atomic_paths, sweep_stale

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])  # PLINK 1 magic + SNP-major mode
_BED_READER_MISSING = -127  # bed_reader's int8 code for a missing call


def plink_prefix(path: str | os.PathLike) -> Path:
    """Strip a trailing .bed/.bim/.fam (or PLINK 2 .pgen/.pvar/.psam) so that either a prefix or a file name may
    be given."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".bed", ".bim", ".fam", ".pgen", ".pvar", ".psam") else p


def cohort_files(prefix: str | os.PathLike) -> dict[str, Path]:
    """The genotype, variant and sample files of a cohort, by role: {"bed", "bim", "fam"} -> the PLINK 1 trio,
    or the ``.pgen/.pvar/.psam`` of a PLINK 2 set (``io.pgen.is_pgen``) in the same roles."""
    from .pgen import is_pgen

    suffixes = (".pgen", ".pvar", ".psam") if is_pgen(plink_prefix(prefix)) else (".bed", ".bim", ".fam")
    return {role: plink_path(prefix, s) for role, s in zip(("bed", "bim", "fam"), suffixes)}


def plink_path(prefix: str | os.PathLike, ext: str) -> Path:
    """``prefix`` + ``ext`` (".bed", ".bim", ".fam", ...). Never ``Path.with_suffix``: a prefix such as
    ``cohort.train`` has a dot of its own that must stay."""
    p = plink_prefix(prefix)
    return p.with_name(p.name + ext)


def _read_fields(path: Path, n_fields: int, kind: str) -> pd.DataFrame:
    """All fields as text, one column per field. A fast C parse first; on anything unusual, a line-by-line
    parse that names the first bad line."""
    if not path.exists():
        raise InputError(f"{kind} file not found", path=str(path), hint="give the PLINK prefix of an existing .bed/.bim/.fam trio")
    try:
        df = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, engine="c", na_filter=False)
        if df.shape[1] == n_fields and len(df) and not (df == "").any().any():
            return df
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        pass
    return pd.DataFrame(_read_fields_slowly(path, n_fields, kind))


def _read_fields_slowly(path: Path, n_fields: int, kind: str) -> list[list[str]]:
    rows = []
    try:
        with open(path, "r", encoding="utf-8") as fh:
            for i, line in enumerate(fh, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != n_fields:
                    raise InputError(
                        f"expected {n_fields} whitespace-separated fields in a {kind} line, found {len(fields)}",
                        path=str(path), line=i, hint=f"a {kind} line is: " + " ".join(_HEADERS[kind]),
                    )
                rows.append(fields)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if not rows:
        raise InputError(f"{kind} file is empty", path=str(path))
    return rows


_HEADERS = {
    ".bim": ["CHR", "SNP", "CM", "BP", "A1", "A2"],
    ".fam": ["FID", "IID", "FATHER", "MOTHER", "SEX", "PHENO"],
}


def read_bim(path: str | os.PathLike) -> pd.DataFrame:
    """Parse a ``.bim`` file into the canonical variant table (see :class:`Genotypes`)."""
    path = Path(path)
    df = _read_fields(path, 6, ".bim")
    df.columns = VARIANT_COLUMNS
    for col, conv in (("cm", float), ("pos", int)):
        try:
            df[col] = df[col].astype(np.float64 if conv is float else np.int64)
        except (ValueError, OverflowError):
            bad = next(i for i, v in enumerate(df[col]) if not _parses(v, conv))
            raise InputError(
                f"column {_HEADERS['.bim'][VARIANT_COLUMNS.index(col)]} must be numeric, found {df[col][bad]!r}",
                path=str(path), line=bad + 1, hint="a .bim line is: CHR SNP CM BP A1 A2",
            ) from None
    df["pos"] = df["pos"].astype(np.int64)
    _refuse_first(path, df["pos"] < 0, lambda i: f"column BP holds a negative position {df['pos'][i]}",
                  "positions are >= 0 (0 = unplaced)")
    _refuse_first(path, (df["a1"] == df["a2"]) & (df["a1"] != "0"),
                  lambda i: f"A1 and A2 are the same allele {df['a1'][i]!r}",
                  "a .bim line names two different alleles (0 = missing)")
    dup = df["snp"].duplicated(keep=False) & (df["snp"] != ".")
    if dup.any():
        first = df["snp"][dup].iloc[0]
        lines = [str(i + 1) for i in np.flatnonzero(df["snp"] == first)[:3]]
        raise InputError(
            f"{int(dup.sum())} variant IDs are duplicated, e.g. {first!r} on lines {', '.join(lines)}",
            path=str(path), hint="make IDs unique, e.g. plink --set-missing-var-ids @:#:$1:$2",
        )
    return df


def read_fam(path: str | os.PathLike) -> pd.DataFrame:
    """Parse a ``.fam`` file into the canonical sample table; phenotype kept as its raw text."""
    path = Path(path)
    df = _read_fields(path, 6, ".fam")
    df.columns = SAMPLE_COLUMNS
    try:
        df["sex"] = df["sex"].astype(np.int64)
    except ValueError:
        bad = next(i for i, v in enumerate(df["sex"]) if not _parses(v, int))
        raise InputError(f"column SEX must be 0, 1 or 2, found {df['sex'][bad]!r}", path=str(path), line=bad + 1) from None
    _refuse_first(path, ~df["sex"].isin([0, 1, 2]), lambda i: f"column SEX must be 0, 1 or 2, found {df['sex'][i]}",
                  "1 = male, 2 = female, 0 = unknown")
    key = df["fid"] + "\t" + df["iid"]
    dup = key.duplicated(keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        j = int(np.flatnonzero(key == key[i])[1])
        raise InputError(
            f"sample ID {df['fid'][i]} {df['iid'][i]} appears twice (lines {i + 1} and {j + 1})",
            path=str(path), hint="each FID/IID pair must be unique",
        )
    return df


def _refuse_first(path: Path, bad: pd.Series, message, hint: str) -> None:
    """InputError at the first line where ``bad`` holds (one row per line; blank lines are rare in PLINK text)."""
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(message(i), path=str(path), line=i + 1, hint=hint)


def _parses(value: str, conv) -> bool:
    try:
        conv(value)
        return True
    except ValueError:
        return False


def check_bed(path: Path, n_samples: int, n_variants: int) -> None:
    """Check magic bytes and the exact size ``3 + M * ceil(N / 4)`` before anything is allocated."""
    if not path.exists():
        raise InputError(".bed file not found", path=str(path))
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] != BED_MAGIC[:2]:
        raise InputError(
            f"not a PLINK 1 .bed file (first bytes {magic.hex(' ')}, expected 6c 1b 01)",
            path=str(path), hint="PLINK 0.99 files and other formats must be converted with plink --make-bed",
        )
    if magic[2:3] != BED_MAGIC[2:]:
        raise InputError(
            "individual-major .bed (mode byte 00) is not supported", path=str(path),
            hint="convert it with plink --bfile PREFIX --make-bed --out NEW",
        )
    expected = 3 + n_variants * ((n_samples + 3) // 4)
    size = path.stat().st_size
    if size != expected:
        raise InputError(
            f"size is {size} bytes but {n_variants} variants x {n_samples} samples need {expected}",
            path=str(path),
            hint="the file is truncated or the .bim/.fam belong to another .bed; re-export the trio together",
        )


def _count_records(path: Path, stop_after: int) -> int:
    """Non-blank lines of a text file, streamed; stops counting once past ``stop_after``."""
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
                if n > stop_after:
                    break
    return n


def read_bim_fam(prefix: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``.bim`` and ``.fam`` tables of a trio whose ``.bed`` is checked against them.

    The lines of the ``.fam`` and then of the ``.bim`` are counted (streamed) against the ``.bed`` size before
    either is parsed, so a huge ``.bim`` or ``.fam`` beside a small ``.bed`` is refused without loading it.
    A PLINK 2 set (``.pgen`` and no ``.bed``) gives its ``.pvar``/``.psam`` as the same tables (``io.pgen``).
    """
    from .pgen import is_pgen, read_pvar_psam

    prefix = plink_prefix(prefix)
    if is_pgen(prefix):
        return read_pvar_psam(prefix)
    bed_path, bim_path, fam_path = (plink_path(prefix, s) for s in (".bed", ".bim", ".fam"))
    for p, kind in ((bim_path, ".bim"), (fam_path, ".fam"), (bed_path, ".bed")):
        if not p.is_file():
            raise InputError(f"{kind} file not found", path=str(p),
                             hint="give the PLINK prefix of an existing .bed/.bim/.fam trio")
    # far more lines than the .bed can hold is refused here; a near miss is parsed, for check_bed's exact sizes
    payload = max(bed_path.stat().st_size - 3, 0)
    most_samples = 4 * payload
    n_fam = _count_records(fam_path, 2 * most_samples + 100_000)
    if n_fam > 2 * most_samples + 100_000:
        raise InputError(f"the .fam has more than {n_fam - 1} lines, far more individuals than the .bed "
                         f"({payload + 3} bytes) can hold", path=str(fam_path),
                         hint="the .bed/.bim/.fam belong to different cohorts; re-export the trio together")
    most_variants = payload // max((n_fam + 3) // 4, 1)
    n_bim = _count_records(bim_path, 2 * most_variants + 100_000)
    if n_bim > 2 * most_variants + 100_000:
        raise InputError(f"the .bim has more than {n_bim - 1} lines but the .bed ({payload + 3} bytes) holds at "
                         f"most {most_variants} variants of {n_fam} individuals", path=str(bim_path),
                         hint="the .bed/.bim/.fam belong to different cohorts; re-export the trio together")
    bim, fam = read_bim(bim_path), read_fam(fam_path)
    check_bed(bed_path, len(fam), len(bim))
    return bim, fam


def _index(selector, n: int, what: str) -> np.ndarray:
    if selector is None:
        return np.arange(n)
    sel = np.asarray(selector)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise ValueError(f"{what} mask has length {sel.shape[0]}, expected {n}")
        return np.flatnonzero(sel)
    sel = sel.astype(np.int64)
    if sel.size and (sel.min() < -n or sel.max() >= n):
        raise IndexError(f"{what} index out of range for {n} {what}")
    return sel


def read_plink(prefix: str | os.PathLike, samples=None, variants=None) -> Genotypes:
    """Read a PLINK 1 trio, or only the given samples/variants (integer indices or boolean masks).

    Only the selected genotypes are decoded: the rest of the ``.bed`` is never loaded. Missing calls become
    ``MISSING`` (-1). A PLINK 2 ``.pgen`` set at ``prefix`` is read the same way (``io.pgen``, needs pgenlib).
    """
    from .pgen import is_pgen, read_pgen

    prefix = plink_prefix(prefix)
    bim, fam = read_bim_fam(prefix)
    bed_path = plink_path(prefix, ".bed")
    s_idx = _index(samples, len(fam), "samples")
    v_idx = _index(variants, len(bim), "variants")
    if is_pgen(prefix):
        return read_pgen(prefix, s_idx, v_idx, tables=(bim, fam))
    with open_bed(bed_path, iid_count=len(fam), sid_count=len(bim), count_A1=True, skip_format_check=True,
                  properties={"iid": fam["iid"].to_numpy(), "sid": bim["snp"].to_numpy()}) as bed:
        dos = bed.read(index=np.s_[s_idx, v_idx], dtype="int8", order="C")
    np.maximum(dos, MISSING, out=dos)  # bed_reader's -127 -> -1; nothing else is below -1
    return Genotypes(dos, bim.iloc[v_idx].reset_index(drop=True), fam.iloc[s_idx].reset_index(drop=True))


def read_plink_snps(prefix: str | os.PathLike, snp_ids, samples=None) -> Genotypes:
    """Read only the variants whose IDs are in ``snp_ids`` (in the file's order), e.g. a model's panel out of a
    whole-genome ``.bed``: memory is bounded by the panel, never the file. IDs absent from the file are skipped
    (callers align cohorts by ID afterwards)."""
    bim, _ = read_bim_fam(prefix)
    wanted = np.flatnonzero(bim["snp"].isin(pd.Index(snp_ids)).to_numpy())
    return read_plink(prefix, samples=samples, variants=wanted)


def variant_blocks(prefix: str | os.PathLike, *, max_bytes: int = 1 << 26):
    """The cohort's dosages as consecutive (n_samples, k) int8 blocks of variants (-1 missing), about
    ``max_bytes`` each: for writers that stream a cohort variant by variant with bounded memory."""
    from .pgen import is_pgen, read_pgen

    prefix = plink_prefix(prefix)
    bim, fam = read_bim_fam(prefix)
    n, m = len(fam), len(bim)
    step = max(1, max_bytes // max(n, 1))
    if is_pgen(prefix):
        for start in range(0, m, step):
            yield read_pgen(prefix, variants=np.arange(start, min(start + step, m)), tables=(bim, fam)).dosages
        return
    with open_bed(plink_path(prefix, ".bed"), iid_count=n, sid_count=m, count_A1=True, skip_format_check=True,
                  properties={"iid": fam["iid"].to_numpy(), "sid": bim["snp"].to_numpy()}) as bed:
        for start in range(0, m, step):
            block = bed.read(index=np.s_[:, start:min(start + step, m)], dtype="int8", order="C")
            np.maximum(block, MISSING, out=block)
            yield block


def _properties(variants: pd.DataFrame, samples: pd.DataFrame | None) -> dict:
    props = {
        "chromosome": variants["chrom"].astype(str).tolist(),
        "sid": variants["snp"].astype(str).tolist(),
        "cm_position": variants["cm"].astype(float).tolist(),
        "bp_position": variants["pos"].astype(np.int64).tolist(),
        "allele_1": variants["a1"].astype(str).tolist(),
        "allele_2": variants["a2"].astype(str).tolist(),
    }
    if samples is not None:
        props.update({
            "fid": samples["fid"].astype(str).tolist(),
            "iid": samples["iid"].astype(str).tolist(),
            "father": samples["father"].astype(str).tolist(),
            "mother": samples["mother"].astype(str).tolist(),
            "sex": samples["sex"].astype(np.int64).tolist(),
        })
    return props


def _write_fam(path: Path, samples: pd.DataFrame) -> None:
    cols = [samples[c].astype(str) for c in SAMPLE_COLUMNS]
    with open(path, "w") as fh:
        fh.writelines(" ".join(f) + "\n" for f in zip(*cols))


def write_bim(path: str | os.PathLike, variants: pd.DataFrame) -> None:
    """The variant table as ``.bim`` text (tab-separated, cM as ``%g``): the one ``.bim`` writer (not atomic by
    itself: callers write into a temporary path, see ``io.atomic``)."""
    cm = variants["cm"].map(lambda x: f"{x:g}")
    cols = [variants["chrom"].astype(str), variants["snp"].astype(str), cm,
            variants["pos"].astype(str), variants["a1"].astype(str), variants["a2"].astype(str)]
    with open(path, "w") as fh:
        fh.writelines("\t".join(f) + "\n" for f in zip(*cols))


def _reserve(path: Path) -> None:
    """Allocate a file's blocks now: a memory map over a sparse file on a full disk dies of SIGBUS on write,
    where this raises OSError (ENOSPC). File systems without fallocate are left sparse."""
    with open(path, "r+b") as fh:
        try:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise


class PlinkWriter:
    """Stream samples into a PLINK 1 trio with bounded memory.

    Blocks of samples (rows) are appended to a disk-backed scratch matrix; ``close()`` writes the SNP-major
    ``.bed`` through ``bed_reader`` one variant at a time, writes the ``.bim``/``.fam``, and renames all three into
    place. If anything fails, no file appears at ``prefix``.
    """

    def __init__(self, prefix: str | os.PathLike, variants: pd.DataFrame, n_samples: int):
        self.prefix = plink_prefix(prefix)
        self.variants = variants.reset_index(drop=True)
        self.n_samples = int(n_samples)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._scratch_path = self.prefix.with_name(f".{self.prefix.name}.scratch-{os.getpid()}")
        sweep_stale(self.prefix)
        self._scratch = None
        try:
            self._scratch = np.lib.format.open_memmap(
                self._scratch_path, mode="w+", dtype=np.int8, shape=(self.n_samples, len(self.variants))
            )
            _reserve(self._scratch_path)
        except BaseException:
            self.abort()
            raise
        self._samples: list[pd.DataFrame] = []
        self._filled = 0

    def write(self, dosages: np.ndarray, samples: pd.DataFrame) -> None:
        """Append a block of samples: ``dosages`` (b, n_variants) int8 with -1 for missing, and their table."""
        b = dosages.shape[0]
        if len(samples) != b or dosages.shape[1] != len(self.variants):
            raise ValueError("block shape does not match its sample table or the variant table")
        if self._filled + b > self.n_samples:
            raise ValueError(f"more than the declared {self.n_samples} samples written")
        self._scratch[self._filled:self._filled + b] = dosages
        self._samples.append(samples)
        self._filled += b

    def close(self) -> None:
        try:
            if self._filled != self.n_samples:
                raise ValueError(f"{self._filled} samples written, {self.n_samples} declared")
            samples = pd.concat(self._samples, ignore_index=True)
            paths = [plink_path(self.prefix, s) for s in (".bed", ".bim", ".fam")]
            with atomic_paths(*paths) as (bed, bim, fam):
                m = len(self.variants)
                # bed_reader writes to its location with the suffix replaced by ".bed_temp": give it a name whose
                # last suffix follows our process-unique one, so two writers of one prefix never share that file
                own = bed.with_name(bed.name + ".bed")
                try:
                    with create_bed(own, iid_count=self.n_samples, sid_count=m, count_A1=True,
                                    properties=_properties(self.variants, samples),
                                    fam_location=fam, bim_location=bim) as writer:
                        step = max(1, (1 << 26) // max(self.n_samples, 1))  # ~64 MB of columns at a time
                        for start in range(0, m, step):
                            block = np.array(self._scratch[:, start:start + step], order="F")
                            block[block == MISSING] = _BED_READER_MISSING
                            for j in range(block.shape[1]):
                                writer.write(block[:, j])
                    os.replace(own, bed)
                finally:
                    own.unlink(missing_ok=True)
                    own.with_suffix(".bed_temp").unlink(missing_ok=True)
                # bed_reader wrote .bim/.fam from the properties (in create_bed): put our exact text in their place
                write_bim(bim, self.variants)
                _write_fam(fam, samples)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the scratch matrix; nothing is written at ``prefix`` unless ``close()`` succeeded."""
        if self._scratch is not None:
            del self._scratch
            self._scratch = None
        self._scratch_path.unlink(missing_ok=True)

    def __enter__(self) -> "PlinkWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_plink(prefix: str | os.PathLike, genotypes: Genotypes) -> None:
    """Write ``genotypes`` as a PLINK 1 trio, every ``.bim``/``.fam`` field set, atomically."""
    with PlinkWriter(prefix, genotypes.variants, genotypes.n_samples) as w:
        w.write(genotypes.dosages, genotypes.samples)
