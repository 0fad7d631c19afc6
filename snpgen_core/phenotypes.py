"""Traits and covariates: PLINK phenotype coding decoded from a ``.fam`` column 6 or a named-column file.

PLINK 1.9 coding, checked against ``plink1.9`` itself: a trait whose non-missing values all lie in {0, 1, 2} is
case/control (1 = control, 2 = case, 0 = missing); any other numbers make it quantitative, where 0 is an ordinary
value. ``-9``, ``NA``, ``nan``, ``.`` and empty fields are missing in every trait. A column of non-numeric labels
(e.g. a population) is categorical. Sample IDs are always strings (``HG00096``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, not_utf8
from .io.tables import is_missing_text

KINDS = ("binary", "categorical", "quantitative")
PLINK_MISSING = -9.0
BINARY_LABELS = ["control", "case"]


@dataclass
class Phenotype:
    """One trait for the samples of a cohort, in sample-table order.

    values: float64 (n,), NaN = missing. binary: 0 = control, 1 = case (PLINK 1 / 2). categorical: integer codes
            0..k-1 indexing ``labels``. quantitative: the value itself.
    labels: binary ``["control", "case"]``; categorical the label names in code order (sorted); quantitative ``[]``.
    """

    name: str
    kind: str
    values: np.ndarray
    labels: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} unknown; choose from {KINDS}")
        self.values = np.asarray(self.values, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_missing(self) -> int:
        return int(np.isnan(self.values).sum())

    @property
    def missing(self) -> np.ndarray:
        """Boolean mask (n,) of missing values."""
        return np.isnan(self.values)

    def classes(self) -> dict[str, int]:
        """Counts of non-missing samples per label (binary, categorical); ``{}`` for a quantitative trait."""
        if self.kind == "quantitative":
            return {}
        codes = self.values[~np.isnan(self.values)].astype(np.int64)
        counts = np.bincount(codes, minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts)}

    def subset(self, idx) -> "Phenotype":
        """The trait for a subset of samples (integer indices or boolean mask), same labels."""
        return Phenotype(self.name, self.kind, self.values[np.asarray(idx)].copy(), list(self.labels))

    def describe(self) -> str:
        """One line for logs and the CLI, e.g. ``CASE: binary, 700 case / 1804 control, 0 missing``."""
        if self.kind == "quantitative":
            ok = self.values[~np.isnan(self.values)]
            body = f"quantitative, mean {ok.mean():.4g}, sd {ok.std():.4g}"
        else:
            body = f"{self.kind}, " + " / ".join(f"{c} {label}" for label, c in self.classes().items())
        return f"{self.name}: {body}, {self.n_missing} missing"


# ---------------------------------------------------------------------------------------------------------------
# Encoding PLINK text: the one encoder


def trait_text(value) -> str:
    """One trait value as PLINK text: "-9" when missing (None or NaN), whole numbers without a decimal point, other
    numbers in their shortest exact form (``repr``); text is kept as given."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-9"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def encode_trait(values, kind: str, labels=()) -> tuple[list[str], list[str]]:
    """(``.fam`` column 6, phenotype-file column) texts of trait ``values`` in :class:`Phenotype` coding.

    binary: 1 (control) / 2 (case) in both; quantitative: the number in both; categorical: "-9" in the ``.fam``
    (PLINK has no labels there) and the label in the file; kind "none": missing everywhere. A missing value is
    "-9" in the ``.fam`` and "NA" in the file.
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    if kind == "binary":
        fam = [trait_text(v + 1) for v in values]
    elif kind == "quantitative":
        fam = [trait_text(v) for v in values]
    else:
        fam = ["-9"] * len(values)
    if kind == "categorical":
        column = ["NA" if m else labels[int(v)] for v, m in zip(values, missing)]
    else:
        column = ["NA" if m else t for t, m in zip(fam, missing)]
    return fam, column


# ---------------------------------------------------------------------------------------------------------------
# Decoding PLINK text: the one decoder


def is_missing_trait_text(text) -> bool:
    """True when ``text`` is a missing trait value in any trait: a missing token or PLINK's -9."""
    return is_missing_text(text) or _to_float(str(text).strip()) == PLINK_MISSING


def fam_trait_is_empty(samples: pd.DataFrame) -> bool:
    """True when ``.fam`` column 6 is missing for everyone (-9, 0 or a missing token): no trait to decode."""
    return all(is_missing_trait_text(t) or _to_float(str(t).strip()) == 0.0 for t in samples["pheno"])


def decode_trait_as(texts, name: str, kind: str, labels=(), where: str = "phenotype") -> Phenotype:
    """Decode texts written in a known coding (e.g. a run's trait, from :func:`encode_trait`): missing tokens and
    -9 are missing; binary "2" is a case, other numbers controls; quantitative the number; categorical the index
    of the label in ``labels`` (InputError for a label outside them). Unlike :func:`decode_trait`, nothing is
    inferred and a single class is allowed."""
    values = np.full(len(texts), np.nan)
    code = {label: k for k, label in enumerate(labels)}
    for i, t in enumerate(texts):
        if kind not in ("binary", "quantitative", "categorical") or is_missing_trait_text(t):
            continue
        t = str(t).strip()
        if kind == "categorical":
            if t not in code:
                raise InputError(f"label {t!r} is not one of the trait's labels {list(labels)}", path=where)
            values[i] = code[t]
        elif kind == "binary":
            values[i] = 1.0 if t == "2" else 0.0
        else:
            x = _to_float(t)
            if x is None:
                raise InputError(f"value {t!r} of {name} is not a number", path=where)
            values[i] = x
    return Phenotype(name, kind, values, list(labels))


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def decode_trait(texts, name: str, where: str, places=None) -> Phenotype:
    """Decode raw phenotype strings (one per sample, ``None`` = sample absent) with PLINK coding.

    ``where`` names the file (or ``.fam`` column 6) in error messages; ``places`` says where each value is
    (e.g. "line 12" or "sample HG00096"), default its 1-based position.
    Raises InputError for mixed numbers and labels, all-missing traits and traits with a single class or value.
    """
    n = len(texts)
    numbers = np.full(n, np.nan)
    labels_at: dict[int, str] = {}
    first_label_at = None
    for i, t in enumerate(texts):
        if is_missing_text(t):
            continue
        t = t.strip()
        x = _to_float(t)
        if x is not None and np.isinf(x):
            raise InputError(f"column {name} holds an infinite value {t!r} at "
                             f"{places[i] if places is not None else f'sample {i + 1}'}", path=where,
                             hint="give a finite number, or NA for a missing value")
        if x is None or np.isnan(x):
            labels_at[i] = t
            first_label_at = i if first_label_at is None else first_label_at
        elif x != PLINK_MISSING:
            numbers[i] = x

    if labels_at:
        # "0" next to labels is PLINK's alternate missing code, not a category
        stray = [i for i in np.flatnonzero(~np.isnan(numbers)) if numbers[i] != 0]
        if stray:
            i, j = stray[0], first_label_at
            li = places[i] if places is not None else f"sample {i + 1}"
            lj = places[j] if places is not None else f"sample {j + 1}"
            raise InputError(
                f"column {name} mixes numbers ({texts[i].strip()!r}, {li}) and labels ({texts[j].strip()!r}, {lj})",
                path=where, hint="use numbers only (a trait) or labels only (categories); write NA for missing",
            )
        names = sorted(set(labels_at.values()))
        code = {label: k for k, label in enumerate(names)}
        values = np.full(n, np.nan)
        for i, label in labels_at.items():
            values[i] = code[label]
        pheno = Phenotype(name, "categorical", values, names)
    else:
        present = numbers[~np.isnan(numbers)]
        if present.size and np.isin(present, (0.0, 1.0, 2.0)).all():
            values = np.where(numbers == 0, np.nan, numbers - 1)  # 0 is missing in case/control coding
            pheno = Phenotype(name, "binary", values, list(BINARY_LABELS))
        else:
            pheno = Phenotype(name, "quantitative", numbers, [])

    _check_informative(pheno, where, texts)
    return pheno


def _check_informative(pheno: Phenotype, where: str, texts) -> None:
    ok = pheno.values[~np.isnan(pheno.values)]
    if ok.size == 0:
        raise InputError(
            f"trait {pheno.name} is missing for all {len(pheno.values)} samples",
            path=where, hint="PLINK coding: -9, NA (and 0 for case/control) are missing; check the column and IDs",
        )
    if pheno.kind == "quantitative":
        if np.unique(ok).size == 1:
            raise InputError(
                f"trait {pheno.name} has a single value ({ok[0]:g}) in all {ok.size} non-missing samples",
                path=where, hint="choose a column that varies",
            )
        return
    present = np.unique(ok)
    if present.size < 2:
        label = pheno.labels[int(present[0])]
        hint = "give a column with at least two classes"
        if pheno.kind == "binary":
            zeros = sum(1 for t in texts if t is not None and _to_float(t.strip()) == 0.0)
            hint = "case/control traits are coded 1 = control, 2 = case"
            if zeros:
                hint = (f"{zeros} values are 0, and 0 is missing in PLINK coding; recode to 1/2 "
                        "(1 = control, 2 = case)")
        raise InputError(
            f"trait {pheno.name} has a single class after removing missing values: all {ok.size} are {label!r}",
            path=where, hint=hint,
        )


# ---------------------------------------------------------------------------------------------------------------
# Sample tables with a header (FID IID NAME ...)


@dataclass
class _SampleTable:
    path: str
    header: list[str]  # names as written, without FID/IID
    values: dict[str, list[str | None]]  # column -> raw text per cohort sample (None: sample absent)
    lines: list[int | None]  # file line per cohort sample (None: absent)


def _split(line: str, sep: str | None) -> list[str]:
    if sep is None:
        return line.split()
    return [f.strip() for f in line.rstrip("\r\n").split(sep)]


def _read_sample_table(samples: pd.DataFrame, path: str | os.PathLike, what: str) -> _SampleTable:
    """Read a header + rows file and line its rows up with ``samples`` (by FID+IID, else IID)."""
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise InputError(f"{what} file not found", path=where, hint="check the path")
    try:
        with open(p, "r", encoding="utf-8") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError:
        raise not_utf8(p) from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("##")]
    if not numbered:
        raise InputError(f"{what} file is empty", path=where)
    head_no, head_line = numbered[0]
    sep = "\t" if "\t" in head_line else ("," if "," in head_line and " " not in head_line.strip() else None)
    header = _split(head_line, sep)
    upper = [h.lstrip("#").upper() for h in header]
    if "IID" not in upper:
        known = set(samples["iid"].astype(str))
        headerless = any(h in known for h in header[:2])
        raise InputError(
            ("the file has no header line (its first line is a sample)" if headerless
             else f"no IID column in the header {header}"),
            path=where, line=head_no,
            hint="the first line must name the columns, e.g. 'FID IID TRAIT' or 'IID TRAIT'",
        )
    iid_col = upper.index("IID")
    fid_col = upper.index("FID") if "FID" in upper else None
    trait_cols = [k for k in range(len(header)) if k not in (iid_col, fid_col)]
    if not trait_cols:
        raise InputError(f"the header {header} has no column besides the sample IDs", path=where, line=head_no)

    rows: list[list[str]] = []
    row_lines: list[int] = []
    for no, ln in numbered[1:]:
        fields = _split(ln, sep)
        if len(fields) != len(header):
            raise InputError(
                f"expected {len(header)} fields like the header, found {len(fields)}", path=where, line=no,
                hint="write NA for a missing value" + ("" if sep else "; use tabs if values contain spaces"),
            )
        rows.append(fields)
        row_lines.append(no)

    iids = [r[iid_col] for r in rows]
    fids = [r[fid_col] for r in rows] if fid_col is not None else None
    cohort = list(zip(samples["fid"].astype(str), samples["iid"].astype(str)))

    def duplicates(keys) -> tuple | None:
        seen: dict = {}
        for k, no in zip(keys, row_lines):
            if k in seen:
                return k, seen[k], no
            seen[k] = no
        return None

    def refuse_duplicate(dup) -> None:
        k, a, b = dup
        shown = " ".join(k) if isinstance(k, tuple) else k
        raise InputError(f"sample {shown} appears twice (lines {a} and {b})", path=where,
                         hint="keep one row per sample")

    matched: list[int | None] = []
    if fids is not None:
        pairs = list(zip(fids, iids))
        if (dup := duplicates(pairs)) is not None:
            refuse_duplicate(dup)
        row_of = {k: r for r, k in enumerate(pairs)}
        matched = [row_of.get(k) for k in cohort]
    if not any(m is not None for m in matched):
        # no FID column, or FIDs that differ from the .fam (e.g. FID = population there): match on IID alone,
        # which is safe only when IIDs are unique on both sides
        dup = duplicates(iids)
        cohort_iids = [i for _, i in cohort]
        if dup is not None and fids is None:
            refuse_duplicate(dup)
        if dup is None and len(set(cohort_iids)) == len(cohort_iids):
            row_of = {k: r for r, k in enumerate(iids)}
            matched = [row_of.get(k) for k in cohort_iids]
    if not any(m is not None for m in matched):
        file_ex = ", ".join((f"{f} {i}" if fids else i) for f, i in list(zip(fids or iids, iids))[:3])
        fam_ex = ", ".join((f"{f} {i}" if fids else i) for f, i in cohort[:3])
        raise InputError(
            f"none of the {len(rows)} samples in the {what} file is in the cohort "
            f"(file: {file_ex}; .fam: {fam_ex})", path=where,
            hint="IDs must match the .fam " + ("FID and IID" if fids else "IID"),
        )
    values = {
        header[k]: [rows[m][k] if m is not None else None for m in matched] for k in trait_cols
    }
    return _SampleTable(where, [header[k] for k in trait_cols], values,
                        [row_lines[m] if m is not None else None for m in matched])


def _pick(table: _SampleTable, column: str) -> str:
    for name in table.header:
        if name.upper() == column.upper():
            return name
    raise InputError(
        f"column {column!r} not found; available columns: {', '.join(table.header)}", path=table.path,
        hint="choose one of them (case does not matter)",
    )


def read_phenotype(samples: pd.DataFrame, path: str | os.PathLike | None = None,
                   column: str | None = None) -> Phenotype:
    """The trait of each sample in ``samples`` (a Genotypes sample table), in its row order.

    Without ``path``: decode the raw ``.fam`` column 6 (``samples["pheno"]``). With ``path``: a whitespace-, tab- or
    comma-separated file whose header holds IID (and FID, optional) and named trait columns (``##`` lines are
    skipped); ``column`` chooses one (case-insensitive) and is required when there are several. Rows are matched
    by FID+IID when the file has FID (by IID when no pair matches, provided IIDs are unique), else by IID;
    samples absent from the file are missing. See the module docstring for the coding.
    """
    if path is None:
        if column is not None:
            raise InputError(f"a phenotype column ({column}) was given without a phenotype file",
                             hint="add --pheno FILE, or omit --pheno-col to use .fam column 6")
        texts = samples["pheno"].astype(str).tolist()
        places = [f"sample {fid} {iid}" for fid, iid in zip(samples["fid"], samples["iid"])]
        return decode_trait(texts, "PHENO", ".fam column 6", places=places)
    table = _read_sample_table(samples, path, "phenotype")
    if column is None:
        if len(table.header) > 1:
            raise InputError(
                f"{len(table.header)} trait columns ({', '.join(table.header)}): choose one", path=table.path,
                hint="pass column=NAME (CLI --pheno-col NAME)",
            )
        name = table.header[0]
    else:
        name = _pick(table, column)
    places = [f"line {no}" for no in table.lines]
    return decode_trait(table.values[name], name, table.path, places=places)


def read_labels(samples: pd.DataFrame, path: str | os.PathLike, column: str) -> np.ndarray:
    """Each sample's label in ``column`` (e.g. its population: 1000 Genomes' ``populations.tsv`` has IID, POP and
    SUPERPOP) as an object array in ``samples`` row order; None where the sample is absent from the file or its
    label is missing (NA, empty). Same file conventions and sample matching as :func:`read_phenotype`; InputError
    when no sample has a label."""
    table = _read_sample_table(samples, path, "population")
    name = _pick(table, column)
    labels = np.array([None if v is None or is_missing_text(v) else v for v in table.values[name]], dtype=object)
    if all(x is None for x in labels):
        raise InputError(f"no individual of the cohort has a {name} label", path=table.path,
                         hint="the file's IIDs must be the .fam's, with a label (not NA) in that column")
    return labels


def read_covariates(samples: pd.DataFrame, path: str | os.PathLike,
                    columns: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Covariates for each sample in ``samples``: (float64 array (n, c), column names).

    Same file conventions and sample matching as :func:`read_phenotype`; ``columns`` picks some
    (case-insensitive), default all. Numeric columns are kept as numbers (``-9``, NA, empty = NaN; 0 is a value).
    A column of non-numeric labels is one-hot encoded against its first label in sorted order (k - 1 indicator
    columns named ``COLUMN=label``, so the design stays full-rank beside an intercept); a missing label gives NaN
    in every indicator. Samples absent from the file get NaN rows.
    """
    table = _read_sample_table(samples, path, "covariate")
    names = table.header if columns is None else [_pick(table, c) for c in columns]
    out: list[np.ndarray] = []
    out_names: list[str] = []
    for name in names:
        texts = table.values[name]
        given = [i for i, t in enumerate(texts) if not is_missing_text(t)
                 and _to_float(t) != PLINK_MISSING]
        if not given:
            raise InputError(f"covariate {name} is missing for every sample", path=table.path,
                             hint="drop the column or fill it in")
        numbers = [_to_float(texts[i]) for i in given]
        inf = next((i for i, x in zip(given, numbers) if x is not None and np.isinf(x)), None)
        if inf is not None:
            raise InputError(f"covariate {name} holds an infinite value {texts[inf]!r} on line {table.lines[inf]}",
                             path=table.path, hint="give a finite number, or NA for a missing value")
        if all(x is not None for x in numbers):
            col = np.full(len(texts), np.nan)
            col[given] = numbers
            out.append(col)
            out_names.append(name)
            continue
        stray = next((i for i, x in zip(given, numbers) if x is not None), None)
        if stray is not None:
            raise InputError(
                f"covariate {name} mixes numbers and labels (e.g. {texts[stray].strip()!r})", path=table.path,
                line=table.lines[stray], hint="use numbers only or labels only; write NA for missing",
            )
        labels = sorted({texts[i].strip() for i in given})
        if len(labels) < 2:
            raise InputError(f"covariate {name} has a single label ({labels[0]!r})", path=table.path,
                             hint="drop the column: a constant adds nothing")
        for label in labels[1:]:
            col = np.full(len(texts), np.nan)
            col[given] = [float(texts[i].strip() == label) for i in given]
            out.append(col)
            out_names.append(f"{name}={label}")
    matrix = np.column_stack(out) if out else np.empty((len(samples), 0))
    return matrix.astype(np.float64), out_names
