"""PLINK 1 binary I/O: round trips, subsets, validation of bad files, and plink1.9 as an independent reader."""
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from snpgen_core.errors import InputError
from snpgen_core.genotypes import MISSING, Genotypes, make_samples, make_variants
from snpgen_core.io.plink import PlinkWriter, read_bim, read_fam, read_plink, write_plink

PLINK = shutil.which("plink1.9")


def _cohort(dosages: np.ndarray, pheno=None) -> Genotypes:
    n, m = dosages.shape
    variants = make_variants(
        ["1"] * (m // 2) + ["22"] * (m - m // 2), [f"rs{i}" for i in range(m)], np.arange(1, m + 1) * 100,
        ["A", "C", "G", "T"] * (m // 4) + ["A"] * (m % 4), ["G", "T", "A", "C"] * (m // 4) + ["T"] * (m % 4),
        cm=np.linspace(0, 1.5, m),
    )
    samples = make_samples([f"HG{i:05d}" for i in range(n)], fid=[f"F{i % 3}" for i in range(n)],
                           sex=np.arange(n) % 3, pheno=pheno if pheno is not None else [1 + i % 2 for i in range(n)])
    return Genotypes(dosages.astype(np.int8), variants, samples)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 13), st.integers(1, 9)), elements=st.integers(-1, 2)))
def test_write_read__round_trip_is_exact_including_missing(tmp_path_factory, dosages):
    g = _cohort(dosages)
    prefix = tmp_path_factory.mktemp("rt") / "x"
    write_plink(prefix, g)
    back = read_plink(prefix)
    np.testing.assert_array_equal(back.dosages, dosages)
    pd.testing.assert_frame_equal(back.variants, g.variants)
    pd.testing.assert_frame_equal(back.samples, g.samples)
    size = (prefix.with_suffix(".bed")).stat().st_size
    assert size == 3 + dosages.shape[1] * ((dosages.shape[0] + 3) // 4)


def test_read_bed__known_bytes_decode_to_a1_counts(tmp_path):
    # One SNP, 4 samples; PLINK codes 00=hom A1, 01=missing, 10=het, 11=hom A2, low bits first.
    prefix = tmp_path / "k"
    prefix.with_suffix(".bim").write_text("1 rs1 0 100 A G\n")
    prefix.with_suffix(".fam").write_text("".join(f"f s{i} 0 0 1 -9\n" for i in range(4)))
    prefix.with_suffix(".bed").write_bytes(bytes([0x6C, 0x1B, 0x01, 0b11_10_01_00]))
    g = read_plink(prefix)
    np.testing.assert_array_equal(g.dosages[:, 0], [2, MISSING, 1, 0])


def test_read_plink__subset_matches_full_read(tmp_path):
    rng = np.random.default_rng(3)
    d = rng.integers(-1, 3, size=(37, 23)).astype(np.int8)
    write_plink(tmp_path / "s", _cohort(d))
    rows, cols = np.array([36, 0, 5, 17]), np.array([22, 3, 4])
    sub = read_plink(tmp_path / "s", samples=rows, variants=cols)
    np.testing.assert_array_equal(sub.dosages, d[np.ix_(rows, cols)])
    assert list(sub.samples.iid) == [f"HG{i:05d}" for i in rows]
    assert list(sub.variants.snp) == [f"rs{i}" for i in cols]
    mask = np.zeros(23, bool)
    mask[[1, 2]] = True
    np.testing.assert_array_equal(read_plink(tmp_path / "s", variants=mask).dosages, d[:, mask])


def test_plink_writer__streamed_blocks_equal_one_shot_write(tmp_path):
    rng = np.random.default_rng(4)
    d = rng.integers(0, 3, size=(50, 11)).astype(np.int8)
    g = _cohort(d)
    with PlinkWriter(tmp_path / "stream", g.variants, 50) as w:
        for start in range(0, 50, 16):
            w.write(d[start:start + 16], g.samples.iloc[start:start + 16])
    write_plink(tmp_path / "once", g)
    for ext in (".bed", ".bim", ".fam"):
        assert (tmp_path / f"stream{ext}").read_bytes() == (tmp_path / f"once{ext}").read_bytes()


def test_plink_writer__failure_leaves_no_files(tmp_path):
    g = _cohort(np.zeros((4, 3), np.int8))
    with pytest.raises(RuntimeError):
        with PlinkWriter(tmp_path / "half", g.variants, 4) as w:
            w.write(g.dosages[:2], g.samples.iloc[:2])
            raise RuntimeError("generation failed")
    assert list(tmp_path.iterdir()) == []


def _write_valid(tmp_path, n=5, m=3):
    g = _cohort(np.ones((n, m), np.int8))
    write_plink(tmp_path / "v", g)
    return tmp_path / "v"


def test_read_plink__truncated_bed_names_file_and_sizes(tmp_path):
    p = _write_valid(tmp_path)
    bed = p.with_suffix(".bed")
    bed.write_bytes(bed.read_bytes()[:-1])
    with pytest.raises(InputError, match=r"v\.bed: size is 8 bytes but 3 variants x 5 samples need 9"):
        read_plink(p)


def test_read_plink__wrong_magic_is_reported(tmp_path):
    p = _write_valid(tmp_path)
    bed = p.with_suffix(".bed")
    bed.write_bytes(b"\x00\x00\x00" + bed.read_bytes()[3:])
    with pytest.raises(InputError, match="not a PLINK 1 .bed file"):
        read_plink(p)


def test_read_plink__bed_not_matching_fam_is_reported(tmp_path):
    p = _write_valid(tmp_path, n=5)
    with open(p.with_suffix(".fam"), "a") as fh:
        fh.writelines(f"F9 extra{i} 0 0 1 -9\n" for i in range(4))  # 9 samples need 3 bytes per SNP, the .bed has 2
    with pytest.raises(InputError, match="3 variants x 9 samples need 12"):
        read_plink(p)


@pytest.mark.parametrize("ext,line,match", [
    (".bim", "1 rs9 0 100 A\n", r"v\.bim, line 4: expected 6 .* found 5"),
    (".fam", "F1 X 0 0 1 -9 extra\n", r"v\.fam, line 6: expected 6 .* found 7"),
    (".bim", "1 rs9 0 12x A G\n", r"v\.bim, line 4: column BP must be numeric, found '12x'"),
    (".bim", "1 rs0 0 400 A G\n", r"v\.bim: 2 variant IDs are duplicated, e.g. 'rs0' on lines 1, 4"),
    (".fam", "F0 HG00000 0 0 1 -9\n", r"v\.fam: sample ID F0 HG00000 appears twice \(lines 1 and 6\)"),
])
def test_read_plink__malformed_text_files_name_the_line(tmp_path, ext, line, match):
    p = _write_valid(tmp_path)
    with open(p.with_suffix(ext), "a") as fh:
        fh.write(line)
    with pytest.raises(InputError, match=match):
        read_plink(p)


def test_read_plink__missing_file_is_clear(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.bim: \.bim file not found"):
        read_plink(tmp_path / "nothing")


def test_read_fam__string_ids_and_raw_pheno_kept(tmp_path):
    f = tmp_path / "x.fam"
    f.write_text("EUR HG00096 0 0 1 2\nEUR NA12878 HG1 HG2 2 -9\n")
    fam = read_fam(f)
    assert list(fam.iid) == ["HG00096", "NA12878"] and list(fam.pheno) == ["2", "-9"]
    assert fam.sex.tolist() == [1, 2] and fam.father[1] == "HG1"
    b = tmp_path / "x.bim"
    b.write_text("chr1\trs1\t0.5\t12345\tA\tG\n")
    assert read_bim(b).iloc[0].tolist() == ["chr1", "rs1", 0.5, 12345, "A", "G"]


@pytest.mark.skipif(PLINK is None, reason="plink1.9 not installed (Debian package plink1.9)")
def test_write_plink__plink19_reads_the_same_a1_counts(tmp_path):
    rng = np.random.default_rng(7)
    d = rng.integers(-1, 3, size=(41, 8)).astype(np.int8)
    write_plink(tmp_path / "w", _cohort(d))
    out = tmp_path / "r"
    subprocess.run([PLINK, "--bfile", str(tmp_path / "w"), "--keep-allele-order", "--allow-no-sex",
                    "--recode", "A", "--out", str(out)], check=True, capture_output=True)
    raw = pd.read_csv(out.with_suffix(".raw"), sep=" ")
    # --recode A counts the A1 allele with --keep-allele-order; missing is NA
    got = raw.iloc[:, 6:].to_numpy(dtype=float)
    expected = np.where(d == MISSING, np.nan, d).astype(float)
    np.testing.assert_array_equal(got, expected)
    assert [c.split("_")[0] for c in raw.columns[6:]] == [f"rs{i}" for i in range(8)]


@pytest.mark.skipif(PLINK is None, reason="plink1.9 not installed (Debian package plink1.9)")
def test_read_plink__reads_a_bed_written_by_plink19(tmp_path):
    rng = np.random.default_rng(8)
    d = rng.integers(-1, 3, size=(13, 6)).astype(np.int8)
    write_plink(tmp_path / "w", _cohort(d))
    subprocess.run([PLINK, "--bfile", str(tmp_path / "w"), "--keep-allele-order", "--allow-no-sex",
                    "--make-bed", "--out", str(tmp_path / "p")], check=True, capture_output=True)
    back = read_plink(tmp_path / "p")
    np.testing.assert_array_equal(back.dosages, d)


def test_write_read__dotted_prefix_keeps_its_dots(tmp_path):
    g = _cohort(np.ones((3, 2), np.int8))
    write_plink(tmp_path / "cohort.v1.train", g)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.v1.train.bed", "cohort.v1.train.bim", "cohort.v1.train.fam"]
    np.testing.assert_array_equal(read_plink(tmp_path / "cohort.v1.train").dosages, g.dosages)
    np.testing.assert_array_equal(read_plink(tmp_path / "cohort.v1.train.bed").dosages, g.dosages)
