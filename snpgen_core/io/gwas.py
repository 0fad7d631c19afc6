"""GWAS summary statistics: format detection, one canonical table, and effects aligned to the genotypes' a1.

``read_gwas`` recognises PLINK 1.9 ``--assoc``/``--logistic``/``--linear``, PLINK 2 ``--glm``, REGENIE, BOLT-LMM,
GWAS-SSF and generic tables (case-insensitive column synonyms), separated by whitespace, tabs or commas, plain or
gzip-compressed. ``align_gwas`` matches its rows to a genotype variant table by ID, else by chromosome:position,
and expresses every effect per copy of the ``.bim`` column-5 allele (``a1``), the allele our dosages count.
PLINK 1.9 names the minor allele A1, which is often the ``.bim`` column-6 allele: alignment is by allele names,
never by column position.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.errors import ParserError

from ..errors import InputError, not_utf8
from ..genotypes import canonical_chromosome
from .tables import MISSING_TOKENS

CANONICAL = ["snp", "chrom", "pos", "a1", "a2", "beta", "se", "p"]
# names accepted in an explicit ``columns`` mapping: the canonical ones plus an odds-ratio and a -log10(p) column
MAPPABLE = CANONICAL + ["or", "log10p"]
STRING_FIELDS = ("snp", "chrom", "a1", "a2", "ref", "alt", "test")  # read as text, never as numbers

# Generic tables: header synonyms (upper-case), most specific first.
SYNONYMS = {
    "snp": ["SNP", "ID", "RSID", "MARKERNAME", "VARIANT_ID", "SNPID", "MARKER", "RS"],
    "chrom": ["CHR", "CHROM", "#CHROM", "CHROMOSOME"],
    "pos": ["BP", "POS", "POSITION", "BASE_PAIR_LOCATION"],
    "a1": ["A1", "EFFECT_ALLELE", "ALLELE1", "EA", "ALT"],
    "a2": ["A2", "OTHER_ALLELE", "NEA", "ALLELE0", "ALLELE2", "OA", "REF"],
    "beta": ["BETA", "B", "EFFECT", "LOG_OR", "LOGOR"],
    "or": ["OR", "ODDS_RATIO"],
    "se": ["SE", "STDERR", "STANDARD_ERROR", "LOG(OR)_SE"],
    "p": ["P", "PVAL", "P_VALUE", "PVALUE", "P-VALUE", "P.VALUE"],
    "log10p": ["LOG10P", "LOG10_P", "NEG_LOG_10_P_VALUE", "MLOG10P"],
    "stat": ["STAT", "Z", "ZSCORE", "Z_STAT", "T_STAT"],
    "chisq": ["CHISQ"],
    "test": ["TEST"],
}

_COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


@dataclass
class GwasTable:
    """Summary statistics in canonical form, one row per tested variant with a p-value.

    table: columns ``snp`` (str, NA if the file has no IDs), ``chrom`` (str, no "chr" prefix), ``pos`` (Int64,
           nullable), ``a1`` (the effect allele, upper case), ``a2`` (the other allele, NA when the format has none,
           e.g. PLINK 1.9 --logistic/--linear), ``beta`` (effect per copy of a1; ln(OR) when the file gives odds
           ratios), ``se`` (standard error of beta; derived as beta / STAT or |beta| / sqrt(CHISQ) when the file has
           none, NaN if neither), ``p`` (float in [0, 1]; 10**-LOG10P when the file gives -log10 p).
    format: the detected format, e.g. "PLINK 1.9 --logistic".
    source: the file read.
    columns: which file column fed each canonical (or auxiliary: or, log10p, stat, chisq, test, ref, alt) field.
    n_missing_p: rows dropped because their p-value was NA/nan (PLINK writes NA for untestable variants).
    notes: how fields were derived, in words.
    n_samples_max: the largest per-variant sample count in the file (column ``n_samples_column``: N, NMISS,
           OBS_CT, ...), i.e. how many individuals the association was computed on; None when the file states none.
    """

    table: pd.DataFrame
    format: str
    source: str
    columns: dict = field(default_factory=dict)
    n_missing_p: int = 0
    notes: list = field(default_factory=list)
    n_samples_max: int | None = None
    n_samples_column: str | None = None

    def describe(self) -> str:
        """One line: source, format, rows, and how the columns were used."""
        cols = ", ".join(f"{k}={v}" for k, v in self.columns.items())
        dropped = f" ({self.n_missing_p} with missing p dropped)" if self.n_missing_p else ""
        return f"{self.source}: {self.format}, {len(self.table)} variants{dropped}; columns {cols}"


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path, gz: bool):
    if gz:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def _header_line(path: Path, gz: bool) -> tuple[int, str]:
    """(1-based line number, text) of the header: the first line that is neither blank nor a ``##`` comment."""
    with _open_text(path, gz) as fh:
        for no, line in enumerate(fh, start=1):
            if line.strip() and not line.startswith("##"):
                return no, line
    raise InputError("the GWAS file is empty", path=str(path), hint="give a summary-statistics table with a header")


def _separator(header: str) -> str:
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    return r"\s+"


def _data_line(path: Path, gz: bool, header_no: int, ordinal: int) -> int:
    """File line number of data row ``ordinal`` (0-based, blank lines skipped as pandas does)."""
    seen = -1
    with _open_text(path, gz) as fh:
        for no, line in enumerate(fh, start=1):
            if no > header_no and line.strip():
                seen += 1
                if seen == ordinal:
                    return no
    return header_no + ordinal + 1


def _by_upper(header: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in header:
        out.setdefault(h.strip().upper(), h)
    return out


def _detect(header: list[str], path: Path) -> tuple[str, dict]:
    """Name the format from the header and map canonical/auxiliary fields to file columns."""
    cols = _by_upper(header)
    has = lambda *names: all(n in cols for n in names)  # noqa: E731
    first = lambda *names: next((cols[n] for n in names if n in cols), None)  # noqa: E731

    if header[0].strip().upper() == "#CHROM" and has("POS", "ID", "REF", "ALT", "A1") and (has("P") or has("LOG10_P")):
        return "PLINK 2 --glm", dict(
            chrom=header[0], pos=cols["POS"], snp=cols["ID"], a1=cols["A1"], a2=first("OMITTED", "AX"),
            ref=cols["REF"], alt=cols["ALT"], beta=first("BETA"), **{"or": first("OR")},
            se=first("SE", "LOG(OR)_SE"), p=first("P"), log10p=first("LOG10_P"), stat=first("Z_STAT", "T_STAT"),
            test=first("TEST"),
        )
    if has("CHROM", "GENPOS", "ID", "ALLELE0", "ALLELE1", "LOG10P"):
        return "REGENIE", dict(
            chrom=cols["CHROM"], pos=cols["GENPOS"], snp=cols["ID"], a1=cols["ALLELE1"], a2=cols["ALLELE0"],
            beta=first("BETA"), se=first("SE"), log10p=cols["LOG10P"], test=first("TEST"),
        )
    if has("SNP", "CHR", "BP", "ALLELE1", "ALLELE0") and (has("P_BOLT_LMM") or has("P_BOLT_LMM_INF")):
        return "BOLT-LMM", dict(
            snp=cols["SNP"], chrom=cols["CHR"], pos=cols["BP"], a1=cols["ALLELE1"], a2=cols["ALLELE0"],
            beta=first("BETA"), se=first("SE"), p=first("P_BOLT_LMM", "P_BOLT_LMM_INF"),
        )
    if has("CHROMOSOME", "BASE_PAIR_LOCATION", "EFFECT_ALLELE", "OTHER_ALLELE") and (
            has("P_VALUE") or has("NEG_LOG_10_P_VALUE")):
        return "GWAS-SSF", dict(
            snp=first("RSID", "VARIANT_ID"), chrom=cols["CHROMOSOME"], pos=cols["BASE_PAIR_LOCATION"],
            a1=cols["EFFECT_ALLELE"], a2=cols["OTHER_ALLELE"], beta=first("BETA"), **{"or": first("ODDS_RATIO")},
            se=first("STANDARD_ERROR"), p=first("P_VALUE"), log10p=first("NEG_LOG_10_P_VALUE"),
        )
    if has("CHR", "SNP", "BP", "A1", "A2", "P", "OR") and (has("F_A", "F_U") or has("C_A", "C_U")):
        name = "PLINK 1.9 --assoc" + ("" if has("CHISQ") else " fisher")
        return name, dict(
            chrom=cols["CHR"], snp=cols["SNP"], pos=cols["BP"], a1=cols["A1"], a2=cols["A2"],
            **{"or": cols["OR"]}, se=first("SE"), p=cols["P"], chisq=first("CHISQ"),
        )
    if has("CHR", "SNP", "BP", "A1", "TEST", "NMISS", "P") and (has("OR") or has("BETA")):
        logistic = has("OR") or re.search(r"\.logistic(\.gz)?$", path.name, re.IGNORECASE) is not None
        name = ("PLINK 1.9 --logistic" + ("" if has("OR") else " --beta")) if logistic else "PLINK 1.9 --linear"
        return name, dict(
            chrom=cols["CHR"], snp=cols["SNP"], pos=cols["BP"], a1=cols["A1"], a2=first("A2"),
            beta=first("BETA"), **{"or": first("OR")}, se=first("SE"), p=cols["P"], stat=first("STAT"),
            test=cols["TEST"],
        )
    mapping = {key: first(*names) for key, names in SYNONYMS.items()}
    a1, a2 = mapping["a1"], mapping["a2"]
    if (a1 is not None and a1.upper() not in ("REF", "ALT") and has("REF", "ALT")
            and (a2 is None or a2.upper() in ("REF", "ALT"))):
        # an A1 column beside REF/ALT (PLINK 2 style): the other allele is whichever of REF/ALT A1 is not
        mapping.update(a2=None, ref=cols["REF"], alt=cols["ALT"])
    return "generic table", mapping


def _apply_explicit(mapping: dict, columns: dict, header: list[str], where: str) -> dict:
    cols = _by_upper(header)
    mapping = dict(mapping)
    for key, name in columns.items():
        k = str(key).lower()
        if k not in MAPPABLE:
            raise InputError(f"unknown field {key!r} in the column mapping", path=where,
                             hint=f"map any of {', '.join(MAPPABLE)} to a column name")
        actual = cols.get(str(name).strip().upper())
        if actual is None:
            raise InputError(f"column {name!r} (given for {k}) is not in the header; columns are {header}",
                             path=where, hint="use one of the header names")
        mapping[k] = actual
        # an explicit choice replaces the alternatives detection may have found for the same field
        if k == "beta":
            mapping["or"] = None
        elif k == "or":
            mapping["beta"] = None
        elif k == "p":
            mapping["log10p"] = None
        elif k == "log10p":
            mapping["p"] = None
        elif k == "a2":
            mapping["ref"] = mapping["alt"] = None
    return mapping


class _Frame:
    """The table as read, and how to point at its lines in error messages.

    Text fields are pandas strings; numeric fields were parsed by the C reader when clean, else are text that
    :meth:`numeric` converts, reporting the first value that is neither a number nor an NA token.
    """

    def __init__(self, df: pd.DataFrame, path: Path, gz: bool, header_no: int):
        self.df, self.path, self.gz, self.header_no = df, path, gz, header_no

    def text(self, col: str) -> pd.Series:
        return self.df[col].fillna("").astype(str).str.strip()

    def fail(self, row_label, message: str, hint: str | None = None):
        # row labels are read_csv's data-row ordinals, kept through filtering
        line = _data_line(self.path, self.gz, self.header_no, int(row_label))
        raise InputError(message, path=str(self.path), line=line, hint=hint)

    def strings(self, col: str, upper: bool = False) -> pd.Series:
        """Column as stripped strings (upper-cased if asked), NA tokens as missing."""
        t = self.df[col].astype("str").str.strip()
        if upper:
            t = t.str.upper()
        return t.mask(t.str.upper().isin(MISSING_TOKENS) | t.isna())

    def numeric(self, col: str) -> np.ndarray:
        """Column as float64; NA tokens become NaN; anything else non-numeric is an error naming the line."""
        raw = self.df[col]
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            return self.finite(col, raw.to_numpy(dtype=np.float64))
        text = self.text(col)
        x = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(x) & ~text.str.upper().isin(MISSING_TOKENS).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            self.fail(text.index[i], f"non-numeric value {text.iloc[i]!r} in column {col}",
                      hint="numbers only; write NA for a missing value")
        return self.finite(col, x)

    def finite(self, col: str, x: np.ndarray) -> np.ndarray:
        """``x`` itself, after refusing infinite values (naming the first line)."""
        inf = np.isinf(x)
        if inf.any():
            i = int(np.flatnonzero(inf)[0])
            self.fail(self.df.index[i], f"infinite value {x[i]} in column {col}",
                      hint="give a finite number, or NA for a missing value")
        return x


def _csv_options(path: Path, gz: bool, header_no: int, header_line: str) -> dict:
    return dict(sep=_separator(header_line), skiprows=header_no - 1, header=0, keep_default_na=False,
                compression="gzip" if gz else None, engine="c")


def _read_header(path: Path, options: dict) -> list[str]:
    return [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]


_SEPARATOR_NAMES = {"\t": "tabs", ",": "commas", r"\s+": "spaces or tabs"}


def _read_frame(path: Path, gz: bool, header_no: int, options: dict, text_columns: list[str]) -> _Frame:
    """Read every row; ``text_columns`` stay strings, the rest are parsed as numbers where they are clean."""
    try:
        df = pd.read_csv(path, dtype={c: str for c in text_columns}, **options)
    except ParserError as err:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if m is None:
            raise InputError(f"cannot be parsed as a table: {' '.join(str(err).split())}", path=str(path)) from None
        raise InputError(f"a row has {m.group(3)} fields but the header has {m.group(1)}", path=str(path),
                         line=header_no - 1 + int(m.group(2)),
                         hint="every row needs one value per header column; write NA for missing") from None
    frame = _Frame(df, path, gz, header_no)
    last = df.columns[-1]
    # whitespace-separated rows cannot hold empty fields: an empty last field is a short row; in tab- or
    # comma-separated files a short row (often one written with another separator) leaves the last field absent
    short = df[last].isna() | (df[last] == "")
    if options["sep"] != r"\s+" and short.any() and len(df.columns) > 1:
        # an empty last field is allowed there; a row whose fields after the first are all empty is not
        rest = df.loc[short.to_numpy(), df.columns[1:]]
        short = pd.Series(False, index=df.index)
        short[rest.index] = (rest.isna() | (rest.astype(str) == "")).all(axis=1).to_numpy()
    if len(df) and short.any():
        frame.fail(df.index[int(np.flatnonzero(short.to_numpy())[0])],
                   f"a row has fewer fields than the header ({len(df.columns)})",
                   hint=f"every row needs one value per header column, separated like the header "
                        f"({_SEPARATOR_NAMES[options['sep']]}); write NA for missing")
    return frame


def _filter_test(frame: _Frame, col: str, notes: list) -> None:
    tests = frame.text(col).str.upper()
    kinds = list(dict.fromkeys(tests))
    if "ADD" in kinds:
        if len(kinds) > 1:
            notes.append(f"kept {col} == ADD rows, dropped {', '.join(k for k in kinds if k != 'ADD')}")
        frame.df = frame.df[(tests == "ADD").to_numpy()]
    elif len(kinds) > 1:
        raise InputError(f"column {col} holds several tests ({', '.join(kinds[:5])}) and none is ADD",
                         path=str(frame.path), hint="keep one test per variant in the file")


def _strip_chr(chrom: pd.Series) -> pd.Series:
    return chrom.str.replace(r"^[Cc][Hh][Rr]", "", regex=True)  # spelled out: case=False leaves pyarrow's fast path


def read_gwas(path: str | os.PathLike, columns: dict | None = None) -> GwasTable:
    """Read summary statistics in any supported format (see the module docstring) into a :class:`GwasTable`.

    ``columns`` maps field names (snp, chrom, pos, a1, a2, beta, se, p, and also ``or`` for an odds-ratio column
    and ``log10p`` for a -log10(p) column) to header names, overriding detection (CLI ``--gwas-columns p=NAME``).
    Rows whose p-value is NA are dropped and counted in ``n_missing_p``; PLINK 1.9 --logistic/--linear, PLINK 2
    and REGENIE rows other than TEST == ADD are dropped. Raises InputError for a missing or empty file, no p-value
    or allele column, rows with too many or (whitespace-separated) too few fields, and non-numeric numbers
    (naming the line and column).
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError("GWAS file not found", path=where, hint="check the path")
    try:
        return _read_gwas(path, columns)
    except UnicodeDecodeError:
        raise not_utf8(path, gz=_is_gzip(path)) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(f"the gzip file is truncated or damaged ({err})", path=where,
                         hint="download or compress it again; gzip -t FILE checks it") from None


def _read_gwas(path: Path, columns: dict | None) -> GwasTable:
    where = str(path)
    if path.stat().st_size == 0:
        raise InputError("the GWAS file is empty", path=where, hint="give a summary-statistics table with a header")
    gz = _is_gzip(path)
    header_no, header_line = _header_line(path, gz)
    options = _csv_options(path, gz, header_no, header_line)
    header = _read_header(path, options)

    fmt, mapping = _detect(header, path)
    if columns:
        mapping = _apply_explicit(mapping, columns, header, where)
        fmt += " (columns given)"
    if mapping.get("p") is None and mapping.get("log10p") is None:
        raise InputError(
            f"no p-value column found among {header}", path=where,
            hint="pass columns={'p': NAME} (CLI --gwas-columns p=NAME), or log10p=NAME for -log10(p)",
        )
    if mapping.get("a1") is None:
        qassoc = "R2" in _by_upper(header) and "T" in _by_upper(header)
        raise InputError(
            f"no allele column (effect allele, e.g. A1 or EFFECT_ALLELE) found among {header}", path=where,
            hint=("PLINK --assoc on a quantitative trait writes no alleles; run plink --linear instead"
                  if qassoc else "pass columns={'a1': NAME} (CLI --gwas-columns a1=NAME)"),
        )
    if mapping.get("snp") is None and (mapping.get("chrom") is None or mapping.get("pos") is None):
        raise InputError(f"neither a variant ID column nor chromosome and position columns found among {header}",
                         path=where, hint="pass columns={'snp': NAME} or {'chrom': NAME, 'pos': NAME}")

    text_columns = sorted({mapping[k] for k in STRING_FIELDS if mapping.get(k)} | {header[-1]})
    frame = _read_frame(path, gz, header_no, options, text_columns)
    if frame.df.empty:
        raise InputError("the GWAS file has a header but no rows", path=where)
    notes: list[str] = []
    if mapping.get("test"):
        _filter_test(frame, mapping["test"], notes)
    n = len(frame.df)
    out = pd.DataFrame(index=frame.df.index)
    none = pd.Series(pd.NA, index=frame.df.index, dtype="str")

    out["snp"] = frame.strings(mapping["snp"]) if mapping.get("snp") else none
    out["chrom"] = _strip_chr(frame.strings(mapping["chrom"])) if mapping.get("chrom") else none
    if mapping.get("pos") is not None:
        pos = frame.numeric(mapping["pos"])
        frac = ~np.isnan(pos) & (pos != np.round(pos))
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            frame.fail(frame.df.index[i], f"position {pos[i]} in column {mapping['pos']} is not a whole number")
        out["pos"] = pd.array(pos, dtype="Float64").astype("Int64")
    else:
        out["pos"] = pd.array([pd.NA] * n, dtype="Int64")
    out["a1"] = frame.strings(mapping["a1"], upper=True)
    if mapping.get("a2") is not None:
        out["a2"] = frame.strings(mapping["a2"], upper=True)
    elif mapping.get("ref") is not None and mapping.get("alt") is not None:
        ref, alt = frame.strings(mapping["ref"], upper=True), frame.strings(mapping["alt"], upper=True)
        out["a2"] = ref.where(out["a1"] != ref, alt)
        notes.append(f"a2 is whichever of {mapping['ref']}/{mapping['alt']} is not {mapping['a1']}")
    else:
        out["a2"] = none

    if mapping.get("beta") is not None:
        beta = frame.numeric(mapping["beta"])
    elif mapping.get("or") is not None:
        odds = frame.numeric(mapping["or"])
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(odds > 0, np.log(np.where(odds > 0, odds, 1.0)), np.nan)
        notes.append(f"beta = ln({mapping['or']})")
    else:
        beta = np.full(n, np.nan)
        notes.append("no effect column: beta is NaN")
    out["beta"] = beta

    if mapping.get("se") is not None:
        se = frame.numeric(mapping["se"])
    elif mapping.get("stat") is not None:
        stat = frame.numeric(mapping["stat"])
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.where(stat != 0, np.abs(beta / stat), np.nan)
        notes.append(f"se = |beta / {mapping['stat']}| (rounded inputs: approximate)")
    elif mapping.get("chisq") is not None:
        chisq = frame.numeric(mapping["chisq"])
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.where(chisq > 0, np.abs(beta) / np.sqrt(np.where(chisq > 0, chisq, 1.0)), np.nan)
        notes.append(f"se = |beta| / sqrt({mapping['chisq']}) (rounded inputs: approximate)")
    else:
        se = np.full(n, np.nan)
    out["se"] = se

    if mapping.get("p") is not None:
        pcol = mapping["p"]
        p = frame.numeric(pcol)
        out_of_range = ~np.isnan(p) & ((p < 0) | (p > 1))
        if out_of_range.any():
            i = int(np.flatnonzero(out_of_range)[0])
            frame.fail(frame.df.index[i], f"p-value {p[i]:g} in column {pcol} is outside [0, 1]",
                       hint="if the column holds -log10(p), pass columns={'log10p': NAME}")
    else:
        pcol = mapping["log10p"]
        p = 10.0 ** -frame.numeric(pcol)
        notes.append(f"p = 10^-{pcol}")
    out["p"] = p

    keep = ~np.isnan(p)
    table = out[keep].reset_index(drop=True)[CANONICAL]
    used = {k: v for k, v in mapping.items() if v is not None}
    n_col, n_max = _sample_count(frame, header, keep)
    return GwasTable(table, fmt, where, used, int((~keep).sum()), notes, n_max, n_col)


SAMPLE_COUNT_COLUMNS = ("N", "OBS_CT", "NMISS", "N_TOTAL", "TOTALSAMPLESIZE", "SAMPLESIZE", "N_SAMPLES")


def _sample_count(frame: _Frame, header: list[str], keep: np.ndarray) -> tuple[str | None, int | None]:
    """(column, largest value) of the per-variant sample count, over the rows kept; (None, None) if the file has
    no such column or no number in it. Auxiliary: an unreadable value is left out, never an error."""
    cols = _by_upper(header)
    name = next((cols[c] for c in SAMPLE_COUNT_COLUMNS if c in cols), None)
    if name is None:
        return None, None
    n = pd.to_numeric(frame.text(name), errors="coerce").to_numpy(dtype=np.float64)[keep]
    n = n[np.isfinite(n)]
    return (name, int(n.max())) if len(n) else (None, None)


def panel_provenance(n_gwas: int | None, n_training: int, *, computed_on_training: bool = False,
                     kept: bool = False) -> dict:
    """Which individuals chose the SNPs, stated only as far as it is known: the GWAS ranks the SNPs, the training
    individuals do QC and clumping.

    ``n_gwas``: how many individuals the association was computed on (``GwasTable.n_samples_max`` or a count the
    user gives), None if unknown; ``n_training``: the individuals of the cohort outside the evaluation holdout
    (training, and validation where there is one); ``computed_on_training``: the GWAS was computed here on the
    training individuals; ``kept``: the user chose this GWAS over one recomputed on the training individuals
    (said when it used more individuals). Returns ``training_only`` (True / False / None =
    unknown), ``panel`` and ``holdout`` (sentences for a model card or report) and ``warning`` (one line, "" when
    there is nothing to warn about)."""
    if computed_on_training:
        return {"training_only": True, "warning": "",
                "panel": f"chosen on the {n_training} training individuals only (the GWAS was computed on them here)",
                "holdout": "never trained the model or chose a SNP"}
    if n_gwas is None:
        return {"training_only": None, "warning": "",
                "panel": ("ranked by uploaded summary statistics that do not state their sample size, then QC'd and "
                          f"clumped on the {n_training} training individuals: whether holdout individuals took part "
                          "in that GWAS is not known"),
                "holdout": "never trained the model; whether they took part in the uploaded GWAS is not known"}
    if n_gwas > n_training:
        return {"training_only": False,
                "warning": (f"the GWAS was computed on up to {n_gwas} individuals, more than the {n_training} that "
                            "train here: holdout individuals may have chosen SNPs, which flatters the evaluation; "
                            "recompute the GWAS on the training individuals only"),
                "panel": (f"ranked by a GWAS computed on up to {n_gwas} individuals, more than the {n_training} "
                          "training ones, then QC'd and clumped on the training individuals: the holdout may have "
                          "helped choose the SNPs" + ("; this GWAS was kept by choice instead of one recomputed on "
                                                     "the training individuals" if kept else "")),
                "holdout": ("never trained the model, but may have been among the GWAS individuals that ranked the "
                            "SNPs (see above)")}
    return {"training_only": None, "warning": "",
            "panel": (f"ranked by a GWAS computed on at most {n_gwas} individuals (no more than the {n_training} "
                      "training ones), then QC'd and clumped on the training individuals"),
            "holdout": "never trained the model; the GWAS used no more individuals than the training part"}


def parse_column_mapping(text: str | list[str] | None) -> dict:
    """``"p=PVAL,a1=EA"`` (or a list of ``k=v`` items, as the CLI collects them) -> ``{"p": "PVAL", "a1": "EA"}``."""
    if not text:
        return {}
    items = text.split(",") if isinstance(text, str) else [i for t in text for i in t.split(",")]
    out = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"column mapping item {item!r} is not FIELD=COLUMN",
                             hint=f"e.g. --gwas-columns p=PVAL,a1=EA; fields: {', '.join(MAPPABLE)}")
        if key.strip().lower() not in MAPPABLE:
            raise InputError(f"unknown field {key.strip()!r} in the column mapping",
                             hint=f"fields: {', '.join(MAPPABLE)}")
        out[key.strip().lower()] = value.strip()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Alignment to the genotypes


@dataclass
class AlignedGwas:
    """Summary statistics matched to a genotype variant table, effects per copy of the ``.bim`` a1 allele.

    table: columns ``variant_index`` (int64, row in the variant table), ``snp``, ``chrom``, ``pos``, ``a1``, ``a2``
           (the genotypes' own values), ``beta`` (per copy of a1: the GWAS sign flipped when its effect allele is the
           genotypes' a2), ``se``, ``p``, ``flipped`` (bool), ``ambiguous`` (bool: an A/T or C/G SNP, whose strand
           the allele names cannot settle); sorted by ``variant_index``, one row per variant.
    report: counts n_input, n_matched, n_matched_by_id, n_matched_by_position, n_flipped, n_ambiguous,
            n_strand_complemented, n_dropped, and ``dropped``: reason -> count ("missing p", "not in genotypes",
            "allele mismatch", "duplicate").
    format: the GWAS format.
    """

    table: pd.DataFrame
    report: dict
    format: str

    def summary(self) -> str:
        """One line for logs, the CLI and the app."""
        return summarize_alignment(self.report, self.format)


def summarize_alignment(report: dict, fmt: str = "") -> str:
    """The alignment report as one line of text."""
    r = report
    dropped = ", ".join(f"{c} {reason}" for reason, c in r["dropped"].items() if c)
    head = f"{fmt}: " if fmt else ""
    return (f"{head}{r['n_matched']} of {r['n_input']} GWAS rows aligned ({r['n_matched_by_id']} by ID, "
            f"{r['n_matched_by_position']} by position), {r['n_flipped']} flipped to the .bim A1, "
            f"{r['n_ambiguous']} strand-ambiguous (A/T, C/G); dropped {r['n_dropped']}"
            + (f" ({dropped})" if dropped else ""))


def _chrom_keys(*chroms: pd.Series) -> list[np.ndarray]:
    """Integer chromosome codes shared by all inputs (-1 = missing), comparable across files: no "chr" prefix,
    no leading zeros, X/Y/XY/MT as PLINK's 23/24/25/26."""
    joined = pd.concat([pd.Series(c).astype("str").reset_index(drop=True) for c in chroms], ignore_index=True)
    codes, uniques = pd.factorize(joined, use_na_sentinel=True)
    names = canonical_chromosome(pd.Series(uniques, dtype=str)).tolist()
    canon, _ = pd.factorize(np.array(names + [""], dtype=object))
    canon[-1] = -1  # factorize's missing sentinel indexes the last element
    keys = canon[codes]
    out, start = [], 0
    for c in chroms:
        out.append(keys[start:start + len(c)])
        start += len(c)
    return out


def _position_keys(gwas: pd.DataFrame, variants: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One int64 per row encoding chromosome and position (-1 when either is missing)."""
    gchrom, vchrom = _chrom_keys(gwas["chrom"], variants["chrom"])
    keys = []
    for chrom, pos in ((gchrom, gwas["pos"]), (vchrom, variants["pos"])):
        p = pd.array(pos, dtype="Int64")
        ok = (chrom >= 0) & ~np.asarray(p.isna()) & (p.fillna(-1).to_numpy(dtype=np.int64) >= 0)
        keys.append(np.where(ok, chrom.astype(np.int64) * (1 << 40) + p.fillna(0).to_numpy(dtype=np.int64), -1))
    return keys[0], keys[1]


class _Alleles:
    """Allele names of both tables as shared integer codes, with each code's strand complement."""

    def __init__(self, *series: pd.Series):
        joined = pd.concat([pd.Series(s).astype("str").reset_index(drop=True) for s in series], ignore_index=True)
        codes, self.names = pd.factorize(joined.str.strip().str.upper().fillna(""))
        self.names = [str(x) for x in self.names]
        lookup = {name: k for k, name in enumerate(self.names)}
        self.empty = lookup.get("", -3)
        self.wild = np.array([lookup.get("0", -3), lookup.get(".", -3)])  # PLINK's "no second allele"
        # -2 never equals a code: alleles without a complement (indels, N) cannot be strand-flipped
        self.complement = np.array([lookup.get(_COMPLEMENT[nm], -2) if nm in _COMPLEMENT else -2
                                    for nm in self.names], dtype=np.int64)
        self.codes, start = [], 0
        for s in series:
            self.codes.append(codes[start:start + len(s)].astype(np.int64))
            start += len(s)

    def ambiguous(self, g1: np.ndarray, g2: np.ndarray) -> np.ndarray:
        """A/T and C/G pairs: the two alleles are each other's complement."""
        return self.complement[g1] == g2


def _orientation(al: _Alleles, e1, e2, g1, g2) -> tuple[np.ndarray, np.ndarray]:
    """+1 when the GWAS effect allele is the genotypes' a1, -1 when it is a2, 0 when the alleles disagree.

    Also returns which matches needed the opposite strand (complemented alleles; only for SNPs that are not A/T or
    C/G and only when the GWAS gives both alleles). A ``.bim`` a2 of "0" (monomorphic) matches any other allele.
    """
    has2 = e2 != al.empty
    wild = np.isin(g2, al.wild)
    same = (e1 == g1) & (~has2 | (e2 == g2) | wild)
    swap = ((e1 == g2) & (~has2 | (e2 == g1)) & ~wild) | (wild & has2 & (e2 == g1) & (e1 != g1))
    c1, c2 = al.complement[e1], al.complement[e2]
    strand = has2 & ~al.ambiguous(g1, g2) & ~same & ~swap
    same_c = strand & (c1 == g1) & (c2 == g2)
    swap_c = strand & (c1 == g2) & (c2 == g1)
    orient = np.where(same | same_c, 1, np.where(swap | swap_c, -1, 0)).astype(np.int8)
    return orient, same_c | swap_c


def align_gwas(gwas: GwasTable, variants: pd.DataFrame) -> AlignedGwas:
    """Match ``gwas`` rows to ``variants`` (a canonical variant table) and orient effects to its ``a1``.

    Matching: by variant ID first; rows whose ID is absent (or duplicated) in ``variants`` by chromosome:position,
    taking the variant there whose alleles agree. Orientation: effect allele == a1 keeps beta; == a2 flips its sign
    (when the GWAS has no second allele it is inferred from the ``.bim``); otherwise the opposite-strand complement
    is tried for SNPs that are not A/T or C/G. Rows whose alleles agree in neither orientation, later rows for an
    already matched variant, and (counted from the reader) rows with NA p are dropped and counted by reason.
    Raises InputError when no row matches, showing example IDs and positions from both sides.
    """
    t = gwas.table.reset_index(drop=True)
    v = variants.reset_index(drop=True)
    n = len(t)
    al = _Alleles(t["a1"], t["a2"], v["a1"], v["a2"])
    e1_all, e2_all, g1_all, g2_all = al.codes

    # 1. by ID (IDs that are missing, "." or repeated in the genotypes are left to position matching)
    vid = v["snp"].astype(str)
    unique_id = (~vid.duplicated(keep=False) & (vid != ".")).to_numpy()
    id_index = pd.Index(vid.to_numpy()[unique_id])
    id_pos = np.flatnonzero(unique_id)
    hit = id_index.get_indexer(t["snp"].astype(object).where(t["snp"].notna(), "\0").to_numpy())
    by_id = hit >= 0
    vidx = np.full(n, -1, dtype=np.int64)
    vidx[by_id] = id_pos[hit[by_id]]
    orient = np.zeros(n, dtype=np.int8)
    strand = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(by_id)
    orient[rows], strand[rows] = _orientation(al, e1_all[rows], e2_all[rows], g1_all[vidx[rows]],
                                              g2_all[vidx[rows]])

    # 2. by chromosome:position for rows whose ID was not found
    gkey, vkey = _position_keys(t, v)
    todo = np.flatnonzero(~by_id & (gkey >= 0))
    pos_candidates = np.zeros(n, dtype=bool)
    by_pos = np.zeros(n, dtype=bool)
    if todo.size:
        pairs = pd.DataFrame({"row": todo, "key": gkey[todo]}).merge(
            pd.DataFrame({"vi": np.flatnonzero(vkey >= 0), "key": vkey[vkey >= 0]}), on="key", how="inner")
        if len(pairs):
            r, vi = pairs["row"].to_numpy(), pairs["vi"].to_numpy()
            pos_candidates[r] = True
            o, s = _orientation(al, e1_all[r], e2_all[r], g1_all[vi], g2_all[vi])
            good = pd.DataFrame({"row": r[o != 0], "vi": vi[o != 0], "o": o[o != 0], "s": s[o != 0]})
            good = good.drop_duplicates("row", keep="first")  # several variants at one position: the first that fits
            gr = good["row"].to_numpy()
            vidx[gr], orient[gr], strand[gr] = good["vi"].to_numpy(), good["o"].to_numpy(), good["s"].to_numpy()
            by_pos[gr] = True

    found = by_id | pos_candidates
    if not found.any():
        _refuse_no_overlap(gwas, t, v, gkey, vkey)
    matched = orient != 0
    if not matched.any():
        i = int(np.flatnonzero(found)[0])
        j = int(vidx[i]) if vidx[i] >= 0 else None
        names = al.names
        ex = (f"e.g. {t['snp'][i]}: GWAS {names[e1_all[i]]}/{names[e2_all[i]] or '?'}"
              + (f", genotypes {names[g1_all[j]]}/{names[g2_all[j]]}" if j is not None else ""))
        raise InputError(f"{int(found.sum())} GWAS rows were found in the genotypes but no alleles agree ({ex})",
                         path=gwas.source, hint="check that both files use the same genome build and allele coding")

    # 3. one row per variant: the first matching row wins (ID matches before position matches)
    order = np.flatnonzero(matched)
    order = order[np.lexsort((order, ~by_id[order], vidx[order]))]
    dup = np.zeros(order.size, dtype=bool)
    dup[1:] = vidx[order][1:] == vidx[order][:-1]
    keep = order[~dup]  # sorted by variant index

    vi = vidx[keep]
    sign = orient[keep].astype(np.float64)
    ambiguous = al.ambiguous(g1_all[vi], g2_all[vi])
    table = pd.DataFrame({
        "variant_index": vi.astype(np.int64),
        "snp": v["snp"].to_numpy()[vi],
        "chrom": v["chrom"].to_numpy()[vi],
        "pos": v["pos"].to_numpy()[vi],
        "a1": v["a1"].to_numpy()[vi],
        "a2": v["a2"].to_numpy()[vi],
        "beta": t["beta"].to_numpy(dtype=np.float64)[keep] * sign,
        "se": t["se"].to_numpy(dtype=np.float64)[keep],
        "p": t["p"].to_numpy(dtype=np.float64)[keep],
        "flipped": sign < 0,
        "ambiguous": ambiguous,
    })
    dropped = {
        "missing p": int(gwas.n_missing_p),
        "not in genotypes": int((~found).sum()),
        "allele mismatch": int((found & ~matched).sum()),
        "duplicate": int(dup.sum()),
    }
    report = {
        "n_input": n + int(gwas.n_missing_p),
        "n_matched": len(table),
        "n_matched_by_id": int((by_id[keep]).sum()),
        "n_matched_by_position": int((by_pos[keep]).sum()),
        "n_flipped": int(table["flipped"].sum()),
        "n_ambiguous": int(ambiguous.sum()),
        "n_strand_complemented": int(strand[keep].sum()),
        "n_dropped": sum(dropped.values()),
        "dropped": dropped,
    }
    return AlignedGwas(table, report, gwas.format)


def _refuse_no_overlap(gwas: GwasTable, t: pd.DataFrame, v: pd.DataFrame, gkey: np.ndarray, vkey: np.ndarray):
    def where(df, keys):
        ok = np.flatnonzero(keys >= 0)[:3]
        return [f"{df['chrom'][i]}:{df['pos'][i]}" for i in ok]

    gids = [str(x) for x in t["snp"].dropna().head(3)]
    vids = [str(x) for x in v["snp"].head(3)]
    raise InputError(
        f"no SNP overlap with the genotypes: tried {int(t['snp'].notna().sum())} IDs (GWAS "
        f"{', '.join(gids) or 'none'}; genotypes {', '.join(vids)}) and {int((gkey >= 0).sum())} "
        f"chromosome:positions (GWAS {', '.join(where(t, gkey)) or 'none'}; genotypes {', '.join(where(v, vkey))})",
        path=gwas.source, hint="check that the GWAS is for these genotypes: same ID scheme or same genome build",
    )
