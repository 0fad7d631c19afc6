"""GWAS summary statistics: every format read and aligned to known effects, bad inputs, and PLINK 1.9 itself."""
import gzip
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpgen_core.errors import InputError
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.gwas import align_gwas, parse_column_mapping, read_gwas
from snpgen_core.io.plink import write_plink

DATA = Path(__file__).parent / "data" / "gwas"

# The genotypes every example file in tests/data/gwas describes, and the true effect per copy of the .bim a1.
VARIANTS = make_variants(
    chrom=["1", "1", "1", "2", "2"], snp=["rs1", "rs2", "rs3", "rs4", "rs5"], pos=[100, 200, 300, 400, 500],
    a1=["A", "C", "A", "G", "T"], a2=["G", "T", "T", "C", "C"],
)
TRUE_BETA = {"rs1": 0.5, "rs2": -0.3, "rs3": 0.2, "rs4": -0.1, "rs5": 0.4}
TRUE_P = {"rs1": 1e-8, "rs2": 0.01, "rs3": 0.2, "rs4": 0.5, "rs5": 3e-4}
AMBIGUOUS = {"rs3", "rs4"}  # A/T and G/C

# file, detected format, SNPs whose effect allele is the .bim a2, rows matched by position, rows with NA p
FORMATS = [
    ("plink19.assoc.logistic", "PLINK 1.9 --logistic", {"rs1", "rs3", "rs5"}, 0, 1),
    ("plink19.assoc.linear", "PLINK 1.9 --linear", {"rs2", "rs4"}, 0, 0),
    ("plink19.assoc", "PLINK 1.9 --assoc", {"rs1", "rs5"}, 0, 0),
    ("plink2.PHENO1.glm.logistic.hybrid", "PLINK 2 --glm", {"rs3"}, 0, 0),
    ("plink2.QT.glm.linear", "PLINK 2 --glm", {"rs2", "rs3"}, 0, 0),
    ("regenie_step2_Y1.regenie", "REGENIE", {"rs1", "rs3"}, 0, 1),
    ("bolt.stats", "BOLT-LMM", {"rs2", "rs4"}, 0, 0),
    ("gwas_ssf.tsv", "GWAS-SSF", {"rs1", "rs3"}, 5, 0),
    ("generic.csv", "generic table", {"rs2", "rs4", "rs5"}, 0, 0),
]


def _check_aligned(aligned, flipped, by_position):
    t = aligned.table.set_index("snp")
    assert list(aligned.table["variant_index"]) == [0, 1, 2, 3, 4]
    for snp, beta in TRUE_BETA.items():
        assert t.loc[snp, "beta"] == pytest.approx(beta, abs=1e-5), snp
        assert t.loc[snp, "p"] == pytest.approx(TRUE_P[snp], rel=1e-5), snp
    assert set(t.index[t["flipped"]]) == flipped
    assert set(t.index[t["ambiguous"]]) == AMBIGUOUS
    # the output alleles are the genotypes' own, whatever the file said
    assert list(aligned.table["a1"]) == list(VARIANTS["a1"]) and list(aligned.table["a2"]) == list(VARIANTS["a2"])
    r = aligned.report
    assert (r["n_matched"], r["n_matched_by_position"], r["n_matched_by_id"]) == (5, by_position, 5 - by_position)
    assert r["n_flipped"] == len(flipped) and r["n_ambiguous"] == 2


@pytest.mark.parametrize("name, fmt, flipped, by_position, n_missing_p", FORMATS, ids=[f[0] for f in FORMATS])
def test_read_gwas_and_align__every_format_recovers_known_effects(name, fmt, flipped, by_position, n_missing_p):
    gwas = read_gwas(DATA / name)
    assert gwas.format == fmt
    assert gwas.n_missing_p == n_missing_p
    assert list(gwas.table.columns) == ["snp", "chrom", "pos", "a1", "a2", "beta", "se", "p"]
    assert len(gwas.table) == 5  # non-ADD test rows and NA p-values are gone
    assert (gwas.table["se"].to_numpy() == pytest.approx(0.1, abs=1e-5))  # given, or derived from STAT / CHISQ
    aligned = align_gwas(gwas, VARIANTS)
    _check_aligned(aligned, flipped, by_position)
    assert aligned.report["dropped"]["missing p"] == n_missing_p
    assert aligned.report["n_input"] == 5 + n_missing_p
    assert fmt in aligned.summary() and "5 of" in aligned.summary()


def test_read_gwas__plink19_logistic_has_no_a2_and_infers_it_from_the_bim():
    gwas = read_gwas(DATA / "plink19.assoc.logistic")
    assert gwas.table["a2"].isna().all()
    assert gwas.table["beta"][0] == pytest.approx(math.log(0.606531))


def test_read_gwas__plink19_assoc_opposite_strand_is_complemented():
    aligned = align_gwas(read_gwas(DATA / "plink19.assoc"), VARIANTS)
    assert aligned.report["n_strand_complemented"] == 1  # rs5 written as G/A for a T/C SNP


def test_read_gwas__plink2_a2_is_the_non_a1_of_ref_alt():
    t = read_gwas(DATA / "plink2.QT.glm.linear").table.set_index("snp")
    assert (t.loc["rs4", "a1"], t.loc["rs4", "a2"]) == ("G", "C")  # A1 == REF
    assert (t.loc["rs1", "a1"], t.loc["rs1", "a2"]) == ("A", "G")  # A1 == ALT


def test_read_gwas__bolt_prefers_p_bolt_lmm_and_chr_prefix_is_dropped():
    assert read_gwas(DATA / "bolt.stats").table["p"].max() == pytest.approx(0.5)  # P_BOLT_LMM_INF holds 0.9
    assert list(read_gwas(DATA / "generic.csv").table["chrom"]) == ["1", "1", "1", "2", "2"]


@pytest.mark.parametrize("name", ["generic.csv", "plink19.assoc.logistic", "plink2.PHENO1.glm.logistic.hybrid"])
def test_read_gwas__gzip_reads_the_same_table(tmp_path, name):
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress((DATA / name).read_bytes()))
    plain, packed = read_gwas(DATA / name), read_gwas(gz)
    pd.testing.assert_frame_equal(plain.table, packed.table)
    assert packed.format == plain.format


@pytest.mark.parametrize("sep", ["\t", " ", ",", "   "])
def test_read_gwas__separators_are_sniffed(tmp_path, sep):
    rows = [l.rstrip("\n").split(",") for l in (DATA / "generic.csv").read_text().splitlines(True)]
    path = tmp_path / "gwas.txt"
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    pd.testing.assert_frame_equal(read_gwas(path).table, read_gwas(DATA / "generic.csv").table)


def test_read_gwas__explicit_mapping_reads_unknown_headers():
    with pytest.raises(InputError, match=r"custom\.txt.*no p-value column found.*SIGNIFICANCE.*columns=\{'p'"):
        read_gwas(DATA / "custom.txt")
    gwas = read_gwas(DATA / "custom.txt", columns={"snp": "VARIANT", "a1": "eff_allele", "a2": "OTHER",
                                                    "beta": "ESTIMATE", "p": "SIGNIFICANCE"})
    assert "columns given" in gwas.format
    aligned = align_gwas(gwas, VARIANTS)
    t = aligned.table.set_index("snp")
    assert t["beta"].to_dict() == pytest.approx(TRUE_BETA)
    assert set(t.index[t["flipped"]]) == {"rs3", "rs5"}


def test_read_gwas__explicit_mapping_overrides_detection():
    gwas = read_gwas(DATA / "bolt.stats", columns={"p": "P_BOLT_LMM_INF"})
    assert (gwas.table["p"] == 0.9).all()
    odds = read_gwas(DATA / "plink19.assoc.linear", columns={"or": "BETA"})  # nonsense on purpose: beta = ln(BETA)
    assert odds.table["beta"][0] == pytest.approx(math.log(0.5))


def test_read_gwas__explicit_mapping_errors_name_the_column():
    with pytest.raises(InputError, match=r"'PVAL' \(given for p\) is not in the header"):
        read_gwas(DATA / "custom.txt", columns={"p": "PVAL"})
    with pytest.raises(InputError, match=r"unknown field 'pvalue'"):
        read_gwas(DATA / "custom.txt", columns={"pvalue": "SIGNIFICANCE"})


def test_parse_column_mapping__cli_text():
    assert parse_column_mapping("p=PVAL, a1=EA") == {"p": "PVAL", "a1": "EA"}
    assert parse_column_mapping(["p=PVAL", "beta=B,se=S"]) == {"p": "PVAL", "beta": "B", "se": "S"}
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_column_mapping("PVAL")


def _write(tmp_path, text, name="gwas.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_align_gwas__position_matching_for_ids_that_differ(tmp_path):
    # rs1/rs2 by ID; the others under other IDs, found by chromosome:position with chr prefixes and X = 23
    variants = pd.concat([VARIANTS, make_variants("23", ["rsX"], [700], ["A"], ["C"])], ignore_index=True)
    path = _write(tmp_path, "SNP CHR BP A1 A2 BETA P\n"
                            "rs1 1 100 A G 0.5 0.01\n"
                            "rs2 1 200 T C 0.3 0.01\n"
                            "1:300 chr1 300 A T 0.2 0.01\n"
                            "var4 chr02 400 C G 0.1 0.01\n"
                            "x1 chrX 700 C A 0.7 0.01\n"
                            "rs99 3 999 A C 0.1 0.01\n")
    aligned = align_gwas(read_gwas(path), variants)
    r = aligned.report
    assert (r["n_matched_by_id"], r["n_matched_by_position"], r["dropped"]["not in genotypes"]) == (2, 3, 1)
    t = aligned.table.set_index("snp")
    assert list(t.index) == ["rs1", "rs2", "rs3", "rs4", "rsX"]  # the genotypes' IDs
    assert t.loc["rsX", "beta"] == pytest.approx(-0.7) and t.loc["rs4", "beta"] == pytest.approx(-0.1)


def test_align_gwas__multiallelic_position_picks_the_variant_whose_alleles_agree(tmp_path):
    variants = make_variants("1", ["a", "b"], [100, 100], ["A", "A"], ["G", "T"])
    path = _write(tmp_path, "CHR BP A1 A2 BETA P\n1 100 T A 0.3 0.01\n")
    t = align_gwas(read_gwas(path), variants).table
    assert list(t["snp"]) == ["b"] and t["beta"][0] == pytest.approx(-0.3)


def test_align_gwas__drops_mismatch_and_duplicates_and_counts_them(tmp_path):
    path = _write(tmp_path, "SNP A1 A2 BETA P\n"
                            "rs1 A G 0.5 0.01\n"
                            "rs1 A G 0.9 0.02\n"   # duplicate: the first row wins
                            "rs2 A C 0.3 0.01\n"   # C/T SNP: A/C agrees in no orientation, nor does its complement T/G
                            "rs3 A T 0.2 NA\n"     # missing p
                            "rs5 C T -0.4 0.01\n")
    aligned = align_gwas(read_gwas(path), VARIANTS)
    assert aligned.report["dropped"] == {"missing p": 1, "not in genotypes": 0, "allele mismatch": 1, "duplicate": 1}
    assert aligned.report["n_dropped"] == 3 and aligned.report["n_input"] == 5
    assert aligned.table.set_index("snp")["beta"].to_dict() == pytest.approx({"rs1": 0.5, "rs5": 0.4})
    assert "1 duplicate" in aligned.summary() and "1 allele mismatch" in aligned.summary()


def test_align_gwas__ambiguous_snps_are_kept_and_flagged_never_complemented(tmp_path):
    # an A/T SNP given as T/A is a swap by name (its strand cannot be told apart): flip and flag it
    path = _write(tmp_path, "SNP A1 A2 BETA P\nrs3 T A 0.2 0.01\nrs4 G C -0.1 0.01\n")
    aligned = align_gwas(read_gwas(path), VARIANTS)
    assert aligned.table["ambiguous"].all() and list(aligned.table["flipped"]) == [True, False]
    assert aligned.report["n_strand_complemented"] == 0 and aligned.report["n_ambiguous"] == 2


# ---- bad input: the message names the file and the column or line --------------------------------------------


def test_read_gwas__missing_file_raises(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt: GWAS file not found"):
        read_gwas(tmp_path / "nope.txt")


@pytest.mark.parametrize("text", ["", "\n\n", "## comment only\n"])
def test_read_gwas__empty_file_raises(tmp_path, text):
    with pytest.raises(InputError, match=r"gwas\.txt: the GWAS file is empty"):
        read_gwas(_write(tmp_path, text))


def test_read_gwas__header_without_rows_raises(tmp_path):
    with pytest.raises(InputError, match=r"gwas\.txt: the GWAS file has a header but no rows"):
        read_gwas(_write(tmp_path, "SNP A1 A2 BETA P\n"))


def test_read_gwas__no_allele_column_raises(tmp_path):
    with pytest.raises(InputError, match=r"gwas\.txt: no allele column .*'SNP'.*columns=\{'a1'"):
        read_gwas(_write(tmp_path, "SNP BETA P\nrs1 0.1 0.5\n"))
    qassoc = "CHR SNP BP NMISS BETA SE R2 T P\n1 rs1 100 500 0.1 0.1 0.01 1 0.3\n"
    with pytest.raises(InputError, match=r"no allele column.*plink --linear"):
        read_gwas(_write(tmp_path, qassoc, "x.qassoc"))


def test_read_gwas__non_numeric_p_names_the_line_and_column(tmp_path):
    text = "## produced by hand\nSNP A1 A2 BETA PVAL\nrs1 A G 0.5 0.01\n\nrs2 C T 0.3 NA\nrs3 A T 0.2 0.0x1\n"
    with pytest.raises(InputError, match=r"gwas\.txt, line 6: non-numeric value '0\.0x1' in column PVAL"):
        read_gwas(_write(tmp_path, text))


def test_read_gwas__non_numeric_p_line_is_right_in_gzip_too(tmp_path):
    text = "SNP A1 A2 BETA P\nrs1 A G 0.5 0.01\nrs2 C T 0.3 oops\n"
    path = tmp_path / "g.tsv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    with pytest.raises(InputError, match=r"g\.tsv\.gz, line 3: non-numeric value 'oops' in column P"):
        read_gwas(path)


def test_read_gwas__p_outside_unit_interval_suggests_log10p(tmp_path):
    with pytest.raises(InputError, match=r"line 3: p-value 7\.3 in column P is outside \[0, 1\].*log10p"):
        read_gwas(_write(tmp_path, "SNP A1 A2 BETA P\nrs1 A G 0.5 0.01\nrs2 C T 0.3 7.3\n"))


def test_read_gwas__ragged_rows_raise(tmp_path):
    with pytest.raises(InputError, match=r"gwas\.txt, line 3: a row has 7 fields but the header has 5 \("):
        read_gwas(_write(tmp_path, "SNP A1 A2 BETA P\nrs1 A G 0.5 0.01\nrs2 C T 0.3 0.2 9 9\n"))
    # a short whitespace-separated row would shift values into the wrong columns
    with pytest.raises(InputError, match=r"gwas\.txt, line 4: a row has fewer fields than the header \(5\)"):
        read_gwas(_write(tmp_path, "SNP A1 A2 BETA P\nrs1 A G 0.5 0.01\n\nrs2 C 0.3 0.2\n"))


def test_align_gwas__no_overlap_shows_examples_from_both_sides(tmp_path):
    path = _write(tmp_path, "SNP CHR BP A1 A2 BETA P\nchr9_1 9 1 A G 0.5 0.01\nchr9_2 9 2 C T 0.5 0.01\n")
    with pytest.raises(InputError) as err:
        align_gwas(read_gwas(path), VARIANTS)
    msg = str(err.value)
    assert "gwas.txt" in msg and "no SNP overlap" in msg and "tried 2 IDs" in msg
    assert "chr9_1" in msg and "rs1" in msg and "9:1" in msg and "1:100" in msg


def test_align_gwas__alleles_never_agree_raises(tmp_path):
    path = _write(tmp_path, "SNP A1 A2 BETA P\nrs1 A C 0.5 0.01\n")  # an A/G SNP
    with pytest.raises(InputError, match=r"gwas\.txt: 1 GWAS rows were found .* no alleles agree .*rs1: GWAS A/C, "
                                         r"genotypes A/G"):
        align_gwas(read_gwas(path), VARIANTS)


# ---- property: any orientation, any separator, any synonym set ---------------------------------------------------

_BASES = ["A", "C", "G", "T"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_and_align__random_tables_recover_the_effect_per_bim_a1(tmp_path, data):
    m = data.draw(st.integers(1, 12))
    pairs = [data.draw(st.sampled_from([(a, b) for a in _BASES for b in _BASES if a != b])) for _ in range(m)]
    beta = data.draw(st.lists(st.floats(-2, 2, allow_nan=False).filter(lambda x: abs(x) > 1e-3), min_size=m,
                              max_size=m))
    swap = data.draw(st.lists(st.booleans(), min_size=m, max_size=m))
    sep = data.draw(st.sampled_from(["\t", ",", " "]))
    names = data.draw(st.sampled_from([("SNP", "A1", "A2", "BETA", "P"), ("rsid", "effect_allele", "other_allele",
                                                                          "b", "pval"),
                                       ("MarkerName", "ALLELE1", "ALLELE0", "Effect", "P_VALUE")]))
    use_or = data.draw(st.booleans())
    variants = make_variants("1", [f"v{i}" for i in range(m)], np.arange(m) * 10 + 1, [a for a, _ in pairs],
                             [b for _, b in pairs])
    lines = [sep.join(names[:4] if not use_or else names[:3] + ("OR",)) + sep + names[4]]
    for i, ((a, b), eff, s) in enumerate(zip(pairs, beta, swap)):
        e1, e2, e = (b, a, -eff) if s else (a, b, eff)
        effect = repr(math.exp(e)) if use_or else repr(e)
        lines.append(sep.join([f"v{i}", e1, e2, effect, "0.5"]))
    path = tmp_path / "random.txt"
    path.write_text("\n".join(lines) + "\n")
    aligned = align_gwas(read_gwas(path), variants)
    assert list(aligned.table["variant_index"]) == list(range(m))
    assert aligned.table["beta"].to_numpy() == pytest.approx(np.array(beta), rel=1e-9, abs=1e-12)
    assert list(aligned.table["flipped"]) == swap


# ---- PLINK 1.9 itself: its minor-allele A1 must orient like the correlation with the trait ------------------------


def _cohort(seed=5, n=400, m=40):
    """Independent SNPs with a1 frequencies on both sides of 0.5 (so PLINK reports some .bim a2 alleles as A1),
    a quantitative trait with planted effects, and a binary trait cut from it."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.9, m)
    dos = rng.binomial(2, freq, size=(n, m)).astype(np.int8)
    effects = np.zeros(m)
    effects[rng.choice(m, 8, replace=False)] = rng.choice([-0.6, 0.6], 8)
    qt = dos @ effects + rng.normal(size=n)
    case = (qt > np.quantile(qt, 0.6)).astype(int) + 1
    alleles = [tuple(rng.choice(_BASES, 2, replace=False)) for _ in range(m)]
    variants = make_variants("1", [f"snp{j}" for j in range(m)], np.arange(m) * 1000 + 1000,
                             [a for a, _ in alleles], [b for _, b in alleles])
    samples = make_samples([f"ID{i:03d}" for i in range(n)], pheno=case)
    return Genotypes(dos, variants, samples), qt, case


@pytest.mark.skipif(shutil.which("plink1.9") is None, reason="plink1.9 is not installed (Debian package plink1.9)")
def test_align_gwas__plink19_logistic_and_linear_orient_like_the_trait_correlation(tmp_path):
    geno, qt, case = _cohort()
    write_plink(tmp_path / "cohort", geno)
    pheno = tmp_path / "qt.tsv"
    pd.DataFrame({"FID": geno.samples["fid"], "IID": geno.samples["iid"], "QT": qt}).to_csv(pheno, sep="\t",
                                                                                          index=False)
    common = ["plink1.9", "--bfile", str(tmp_path / "cohort"), "--allow-no-sex", "--silent"]
    subprocess.run(common + ["--logistic", "--out", str(tmp_path / "b")], check=True, capture_output=True)
    subprocess.run(common + ["--linear", "--pheno", str(pheno), "--pheno-name", "QT", "--out", str(tmp_path / "q")],
                   check=True, capture_output=True)

    x = geno.dosages.astype(float)
    for out, trait, fmt in [("b.assoc.logistic", case, "PLINK 1.9 --logistic"),
                            ("q.assoc.linear", qt, "PLINK 1.9 --linear")]:
        gwas = read_gwas(tmp_path / out)
        assert gwas.format == fmt and gwas.n_missing_p == 0
        aligned = align_gwas(gwas, geno.variants)
        t = aligned.table
        assert len(t) == geno.n_variants
        a1_is_bim_a2 = gwas.table.set_index("snp").loc[t["snp"], "a1"].to_numpy() == t["a2"].to_numpy()
        assert a1_is_bim_a2.sum() > 5  # PLINK chose the minor allele, often .bim column 6
        assert list(t["flipped"]) == list(a1_is_bim_a2)
        xi = x[:, t["variant_index"]]
        cov = ((xi - xi.mean(0)) * (trait - trait.mean())[:, None]).mean(0)
        assert (np.sign(t["beta"]) == np.sign(cov)).all()
        if fmt.endswith("--linear"):
            # simple regression slope per copy of the .bim a1 (PLINK prints 4 significant digits)
            slope = cov / xi.var(0)
            assert t["beta"].to_numpy() == pytest.approx(slope, rel=2e-3, abs=2e-4)
