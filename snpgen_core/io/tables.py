"""Text tables: the one missing-value vocabulary of every text file we read, and tab-separated tables with a
header (split files, panels) read as text with their required columns checked."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError

# a field holding one of these (compared upper-case, stripped) is missing, in every text file we read; PLINK's
# numeric missing code (-9 for traits) is decoded by phenotypes
MISSING_TOKENS = frozenset({"", "NA", "NAN", "-NAN", "N/A", ".", "NULL", "NONE"})


def is_missing_text(text) -> bool:
    """True for None and for the text of a missing value (:data:`MISSING_TOKENS`)."""
    return text is None or str(text).strip().upper() in MISSING_TOKENS


def missing_mask(texts: pd.Series) -> pd.Series:
    """Boolean mask of the missing values in a column of text (None, NaN or :data:`MISSING_TOKENS`)."""
    return texts.isna() | texts.astype(str).str.strip().str.upper().isin(MISSING_TOKENS)


def read_text_table(path: str | os.PathLike, columns: list[str], what: str, origin: str) -> pd.DataFrame:
    """A tab-separated table with a header holding at least ``columns``, every cell as text (nothing turned into
    NaN). InputError for a missing, unreadable or incomplete file; ``what`` names it, ``origin`` says where a good
    one comes from."""
    where = str(path)
    header = "a tab-separated header " + " ".join(columns)
    if not Path(path).is_file():
        raise InputError(f"{what} not found", path=where, hint=origin)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"cannot be read as a tab-separated table ({str(err).splitlines()[0]})", path=where,
                         hint=f"expected {header}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks column(s) {missing}", path=where, hint=f"expected {header}")
    return frame
