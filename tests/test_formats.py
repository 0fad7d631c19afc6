"""Genotype formats: bgzipped VCF (read back by bcftools), PLINK 2 .pgen (read back by plink2, and plink2's own
.pgen read by us), and training from a .pgen set."""
import gzip
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpgen_core.errors import InputError
from snpgen_core.export import check_format, write_genotypes
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.pgen import read_pgen, write_pgen
from snpgen_core.io.plink import read_bim_fam, read_plink, variant_blocks, write_plink
from snpgen_core.io.vcf import BGZF_EOF, write_vcf

BCFTOOLS, PLINK2 = shutil.which("bcftools"), shutil.which("plink2")
needs_bcftools = pytest.mark.skipif(BCFTOOLS is None, reason="bcftools not installed (make system-packages)")
needs_plink2 = pytest.mark.skipif(PLINK2 is None, reason="plink2 not installed (make system-packages)")
pgenlib = pytest.importorskip("pgenlib")


def _tiny() -> Genotypes:
    """3 individuals x 4 SNPs on two chromosomes, every genotype class and a missing call."""
    dos = np.array([[0, 1, 2, -1],
                    [2, 2, 0, 1],
                    [1, 0, -1, 2]], dtype=np.int8)
    variants = make_variants(chrom=["1", "1", "2", "2"], pos=[100, 250, 7, 9000], snp=["rs1", "rs2", "rs3", "rs4"],
                             a1=["A", "G", "T", "C"], a2=["C", "T", "G", "A"])
    samples = make_samples(["HG00096", "NA12878", "s 3".replace(" ", "_")], fid=["F1", "F2", "F3"], sex=[1, 2, 0],
                           pheno=[2, 1, None])
    return Genotypes(dos, variants, samples)


def _run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


@needs_bcftools
def test_write_vcf__bcftools_reads_genotypes_header_contigs_and_sample_ids(tmp_path):
    g = _tiny()
    write_plink(tmp_path / "c", g)
    (path,) = write_genotypes(tmp_path / "c", tmp_path / "out", "vcf")
    assert path.name == "out.vcf.gz" and path.read_bytes().endswith(BGZF_EOF)
    assert _run(BCFTOOLS, "query", "-l", str(path)).split() == ["HG00096", "NA12878", "s_3"]
    header = _run(BCFTOOLS, "view", "-h", str(path))
    assert "##contig=<ID=1>" in header and "##contig=<ID=2>" in header and "##fileformat=VCFv4.2" in header
    rows = _run(BCFTOOLS, "query", "-f", "%CHROM %POS %ID %REF %ALT [%GT ]\n", str(path)).splitlines()
    assert rows == ["1 100 rs1 C A 0/0 1/1 0/1 ", "1 250 rs2 T G 0/1 1/1 0/0 ",
                    "2 7 rs3 G T 1/1 0/0 ./. ", "2 9000 rs4 A C ./. 0/1 1/1 "]  # GT counts ALT = the .bim A1
    _run(BCFTOOLS, "index", str(path))  # only valid BGZF can be indexed
    assert _run(BCFTOOLS, "view", "-H", "-r", "2:9000", str(path)).startswith("2\t9000\trs4")


@needs_plink2
def test_write_vcf__plink2_imports_the_same_dosages(tmp_path):
    g = _tiny()
    write_plink(tmp_path / "c", g)
    write_genotypes(tmp_path / "c", tmp_path / "out", "vcf")
    _run(PLINK2, "--vcf", str(tmp_path / "out.vcf.gz"), "--make-bed", "--out", str(tmp_path / "back"))
    back = read_plink(tmp_path / "back")
    # plink2 makes ALT the .bim A1, so the dosages come back unchanged
    assert back.variants["a1"].tolist() == g.variants["a1"].tolist()
    assert np.array_equal(back.dosages, g.dosages)


def test_write_vcf__unplaced_variant_is_one_clear_error_and_no_file(tmp_path):
    g = _tiny()
    g.variants.loc[2, "pos"] = 0
    with pytest.raises(InputError, match="rs3 has position 0: VCF positions start at 1"):
        write_vcf(tmp_path / "x.vcf.gz", g.variants, g.samples, [g.dosages])
    assert list(tmp_path.iterdir()) == []


@needs_plink2
def test_write_pgen__plink2_reads_it_back(tmp_path):
    g = _tiny()
    write_plink(tmp_path / "c", g)
    paths = write_genotypes(tmp_path / "c", tmp_path / "p", "pgen")
    assert [p.name for p in paths] == ["p.pgen", "p.pvar", "p.psam"]
    _run(PLINK2, "--pfile", str(tmp_path / "p"), "--make-bed", "--out", str(tmp_path / "back"))
    back = read_plink(tmp_path / "back")
    assert np.array_equal(back.dosages, g.dosages)
    assert back.variants[["chrom", "snp", "pos", "a1", "a2"]].equals(g.variants[["chrom", "snp", "pos", "a1", "a2"]])
    assert back.samples[["fid", "iid"]].equals(g.samples[["fid", "iid"]])
    assert back.samples["sex"].tolist() == [1, 2, 0] and back.samples["pheno"].tolist() == ["2", "1", "-9"]
    # plink2's own counts agree with ours (0/1/2 copies of ALT = A1, missing excluded)
    _run(PLINK2, "--pfile", str(tmp_path / "p"), "--freq", "--out", str(tmp_path / "f"))
    freq = pd.read_csv(tmp_path / "f.afreq", sep="\t")
    assert np.allclose(freq["ALT_FREQS"], g.a1_frequency())


@needs_plink2
def test_read_pgen__plink2_written_set_reads_like_the_bed(sim_prefix, tmp_path):
    _run(PLINK2, "--bfile", str(sim_prefix), "--make-pgen", "--out", str(tmp_path / "p"))
    bed = read_plink(sim_prefix)
    pgen = read_plink(tmp_path / "p")  # dispatches on the .pgen
    assert np.array_equal(pgen.dosages, bed.dosages)
    assert pgen.variants[["chrom", "snp", "pos", "a1", "a2"]].equals(bed.variants[["chrom", "snp", "pos", "a1", "a2"]])
    assert pgen.samples["iid"].tolist() == bed.samples["iid"].tolist()
    rows, cols = np.array([7, 3, 3, 400, 0]), np.array([150, 2, 9])  # any order, repeats: as read_plink
    assert np.array_equal(read_plink(tmp_path / "p.pgen", samples=rows, variants=cols).dosages,
                          bed.dosages[rows][:, cols])
    blocks = list(variant_blocks(tmp_path / "p", max_bytes=500 * 64))  # 64 variants a block
    assert len(blocks) == 4 and np.array_equal(np.hstack(blocks), bed.dosages)


@needs_plink2
def test_train_run__from_a_pgen_set_uses_the_same_genotypes(sim_prefix, tmp_path):
    from snpgen_core.pipeline import train_run

    _run(PLINK2, "--bfile", str(sim_prefix), "--make-pgen", "--out", str(tmp_path / "p"))
    tiny = {"vae": {"hidden": 16, "latent_dim": 2}, "denoiser": {"hidden": 16, "depth": 1},
            "vae_fit": {"epochs": 1}, "diffusion_fit": {"epochs": 1}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_run(tmp_path / "p", tmp_path / "run", gwas_path=f"{sim_prefix}.gwas.tsv", top=20, config=tiny,
                        device="cpu")
    import json

    prov = json.loads((run / "provenance.json").read_text())
    assert prov["inputs"]["bed"]["path"].endswith("p.pgen") and prov["inputs"]["fam"]["path"].endswith("p.psam")
    bed_run = train_run(sim_prefix, tmp_path / "run_bed", gwas_path=f"{sim_prefix}.gwas.tsv", top=20, config=tiny,
                        device="cpu")
    # the same genotypes in, the same seed: the same panel and the same first-epoch losses
    assert (run / "panel.bim").read_text() == (bed_run / "panel.bim").read_text()
    h, hb = (json.loads((r / "history.json").read_text()) for r in (run, bed_run))
    assert h["vae"][0]["train"] == pytest.approx(hb["vae"][0]["train"], rel=1e-6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 9), m=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_write_pgen__round_trips_any_dosages(tmp_path, n, m, seed):
    rng = np.random.default_rng(seed)
    dos = rng.integers(-1, 3, size=(n, m), dtype=np.int8)
    variants = make_variants(chrom=["1"] * m, pos=np.arange(1, m + 1) * 10, snp=[f"v{j}" for j in range(m)],
                             a1=["A"] * m, a2=["G"] * m)
    samples = make_samples([f"s{i}" for i in range(n)])
    prefix = tmp_path / f"h{n}_{m}_{seed}"
    write_pgen(prefix, variants, samples, [dos[:, :1], dos[:, 1:]] if m > 1 else [dos])
    assert np.array_equal(read_pgen(prefix).dosages, dos)
    with gzip.open(write_vcf(tmp_path / f"{prefix.name}.vcf.gz", variants, samples, [dos]), "rt") as fh:
        body = [line.split("\t")[9:] for line in fh if not line.startswith("#")]
    codes = {"0/0": 0, "0/1": 1, "1/1": 2, "./.": -1}
    assert np.array_equal(np.array([[codes[c.strip()] for c in row] for row in body], dtype=np.int8).T, dos)


def test_formats__unknown_format_and_missing_pgenlib_are_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="format 'bcf' unknown .choose from bed, vcf, pgen"):
        check_format("bcf")
    g = _tiny()
    write_plink(tmp_path / "c", g)
    monkeypatch.setitem(sys.modules, "pgenlib", None)  # as if it were not installed
    with pytest.raises(InputError, match="need the pgenlib package.*pip install pgenlib"):
        write_genotypes(tmp_path / "c", tmp_path / "p", "pgen")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.bed", "c.bim", "c.fam"]


def test_read_bim_fam__pgen_with_mismatched_psam_is_refused(tmp_path):
    g = _tiny()
    write_pgen(tmp_path / "p", g.variants, g.samples, [g.dosages])
    lines = (tmp_path / "p.psam").read_text().splitlines()
    (tmp_path / "p.psam").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="holds 3 samples x 4 variants but the .psam/.pvar list 2 x 4"):
        read_bim_fam(tmp_path / "p")
