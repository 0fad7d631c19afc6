"""Tab-separated text tables with a header (split files, panels): read as text, required columns checked."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import InputError


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
