"""Bgzipped VCF writing (VCF 4.2, unphased GT only), streamed variant block by variant block.

Alleles: REF = the ``.bim`` column-6 allele (``a2``), ALT = the counted column-5 allele (``a1``), so the genotype
is the dosage: 0 -> ``0/0``, 1 -> ``0/1``, 2 -> ``1/1``, missing -> ``./.`` (what ``plink2 --export vcf`` does
with a ``.bim``). A PLINK missing allele code ``0`` becomes ``.`` as ALT and ``N`` as REF (VCF needs a base).
Sample IDs: the IIDs when they are unique, else ``FID_IID`` (plink2's ``id-paste=fid,iid``).

The file is BGZF (blocked gzip, what ``bgzip`` writes and ``bcftools``/``tabix`` need): a gzip member per block
of at most 64 KiB and the 28-byte end-of-file marker, so ``bcftools index`` can index it. It is written under a
temporary name and renamed (``io.atomic``).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from .atomic import atomic_path

_BLOCK = 0xFF00  # uncompressed bytes per BGZF block, as htslib (the compressed block must stay under 64 KiB)
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_GT = np.frombuffer(b"./.\t0/0\t0/1\t1/1\t", dtype=np.uint8).reshape(4, 4)  # row = dosage + 1


class BgzfWriter:
    """Write BGZF blocks to a binary file object; ``close()`` adds the end-of-file marker (not the file's close)."""

    def __init__(self, fh):
        self._fh = fh
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _BLOCK:
            self._block(bytes(self._buffer[:_BLOCK]))
            del self._buffer[:_BLOCK]

    def _block(self, data: bytes) -> None:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = deflate.compress(data) + deflate.flush()
        if len(body) > 65536 - 26:  # incompressible: stored blocks always fit
            deflate = zlib.compressobj(0, zlib.DEFLATED, -15)
            body = deflate.compress(data) + deflate.flush()
        # gzip header with the BC extra field holding the block size - 1, then deflate data, CRC32 and length
        header = struct.pack("<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(body) + 25)
        self._fh.write(header + body + struct.pack("<II", zlib.crc32(data), len(data)))

    def close(self) -> None:
        if self._buffer:
            self._block(bytes(self._buffer))
            self._buffer.clear()
        self._fh.write(BGZF_EOF)


def vcf_sample_ids(samples: pd.DataFrame) -> list[str]:
    """The VCF column names of ``samples``: IIDs when unique, else ``FID_IID``."""
    iid = samples["iid"].astype(str)
    if not iid.duplicated().any():
        return iid.tolist()
    return (samples["fid"].astype(str) + "_" + iid).tolist()


def _check_variants(variants: pd.DataFrame, where: str) -> None:
    bad = np.flatnonzero(variants["pos"].to_numpy() < 1)
    if bad.size:
        snp = variants["snp"].iloc[bad[0]]
        raise InputError(f"variant {snp} has position {variants['pos'].iloc[bad[0]]}: VCF positions start at 1",
                         path=where, hint="drop unplaced variants (BP 0) from the panel, or export as bed or pgen")


def vcf_header(variants: pd.DataFrame, samples: pd.DataFrame, source: str) -> bytes:
    """``##`` meta lines (fileformat, date, source, one contig line per chromosome in file order, GT) and the
    ``#CHROM`` line."""
    import datetime

    contigs = pd.unique(variants["chrom"].astype(str))
    lines = ["##fileformat=VCFv4.2", f"##fileDate={datetime.date.today():%Y%m%d}", f"##source={source}"]
    lines += [f"##contig=<ID={c}>" for c in contigs]
    lines += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
              "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                         *vcf_sample_ids(samples)])]
    return ("\n".join(lines) + "\n").encode()


def write_vcf(path: str | os.PathLike, variants: pd.DataFrame, samples: pd.DataFrame,
              blocks: Iterable[np.ndarray], *, source: str = "SNPgen Studio") -> Path:
    """Write a bgzipped VCF at ``path`` (``.vcf.gz``) from ``blocks``: consecutive (n_samples, k) int8 dosage
    blocks (counting ``a1``, -1 missing) covering the variants in order. Atomic; returns ``path``."""
    path = Path(path)
    _check_variants(variants, str(path))
    ref = variants["a2"].astype(str).replace("0", "N").to_numpy()
    alt = variants["a1"].astype(str).replace("0", ".").to_numpy()
    fixed = [f"{c}\t{p}\t{s}\t{r}\t{a}\t.\t.\t.\tGT\t".encode() for c, p, s, r, a in zip(
        variants["chrom"].astype(str), variants["pos"], variants["snp"].astype(str), ref, alt)]
    n_samples, done = len(samples), 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        out = BgzfWriter(fh)
        out.write(vcf_header(variants, samples, source))
        for block in blocks:
            if block.shape[0] != n_samples:
                raise ValueError(f"a block has {block.shape[0]} samples, expected {n_samples}")
            codes = _GT[np.clip(block.T, -1, 2).astype(np.intp) + 1]  # (k, n, 4): "0/1\t" ...
            for j in range(codes.shape[0]):
                out.write(fixed[done + j] + codes[j].tobytes()[:-1] + b"\n")
            done += codes.shape[0]
        if done != len(variants):
            raise ValueError(f"{done} variants written, {len(variants)} declared")
        out.close()
    return path
