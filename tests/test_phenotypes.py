"""Phenotypes and covariates: PLINK coding (checked against plink1.9), file matching, bad inputs."""
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snpgen_core.errors import InputError
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.plink import write_plink
from snpgen_core.phenotypes import (Phenotype, decode_trait, decode_trait_as, encode_trait, fam_trait_is_empty,
                                   read_covariates, read_labels, read_phenotype, trait_text)

NAN = np.nan


def _samples(pheno=None, n=6, fid=None):
    return make_samples([f"HG{i:05d}" for i in range(n)], fid=fid, pheno=pheno)


def _equal(a, b):
    np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def _fam(p: Phenotype) -> list[str]:
    """.fam column 6 text of a trait (the one encoder)."""
    return encode_trait(p.values, p.kind, p.labels)[0]


# ---- .fam column 6 ------------------------------------------------------------------------------------------


def test_read_phenotype__fam_binary_with_plink_missing_codes():
    p = read_phenotype(_samples(["1", "2", "-9", "0", "2", "NA"]))
    assert (p.name, p.kind, p.labels) == ("PHENO", "binary", ["control", "case"])
    _equal(p.values, [0, 1, NAN, NAN, 1, NAN])
    assert p.n_missing == 3 and p.classes() == {"control": 1, "case": 2}
    assert _fam(p) == ["1", "2", "-9", "-9", "2", "-9"]


def test_read_phenotype__fam_quantitative_keeps_zero_as_a_value():
    p = read_phenotype(_samples(["1.5", "0", "-9", "2", "-0.25", "NA"]))
    assert p.kind == "quantitative" and p.labels == []
    _equal(p.values, [1.5, 0, NAN, 2, -0.25, NAN])
    assert p.classes() == {}
    again = read_phenotype(_samples(_fam(p)))
    _equal(again.values, p.values)


@pytest.mark.skipif(shutil.which("plink1.9") is None, reason="plink1.9 is not installed (Debian package plink1.9)")
@pytest.mark.parametrize("codes", [
    ["0", "1", "2", "-9"] * 10,                       # case/control: 0 and -9 missing
    ["0", "1.5", "2", "-9", "3.25"] * 8,              # quantitative: 0 is a value, -9 missing
])
def test_read_phenotype__missing_count_matches_plink19(tmp_path, codes):
    n = len(codes)
    rng = np.random.default_rng(1)
    geno = Genotypes(rng.integers(0, 3, (n, 1)).astype(np.int8), make_variants("1", ["s"], [1], ["A"], ["G"]),
                     _samples(codes, n=n))
    write_plink(tmp_path / "c", geno)
    pheno = read_phenotype(geno.samples)
    test = "--logistic" if pheno.kind == "binary" else "--linear"
    subprocess.run(["plink1.9", "--bfile", str(tmp_path / "c"), test, "--allow-no-sex", "--silent",
                    "--out", str(tmp_path / "o")], check=True, capture_output=True)
    out = (tmp_path / ("o.assoc" + test.replace("--", "."))).read_text().split("\n")
    header, row = out[0].split(), out[1].split()
    assert n - pheno.n_missing == int(row[header.index("NMISS")])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0.0, 1.0])), min_size=2, max_size=30).filter(
    lambda v: {0.0, 1.0} <= set(v)))
def test_encode_trait__binary_round_trip(values):
    p = Phenotype("T", "binary", [NAN if v is None else v for v in values], ["control", "case"])
    again = decode_trait(_fam(p), "T", "x")
    assert again.kind == "binary"
    _equal(again.values, p.values)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x != -9)),
                min_size=2, max_size=30).filter(lambda v: len({x for x in v if x is not None}) >= 2
                                                and not {x for x in v if x is not None} <= {0.0, 1.0, 2.0}))
def test_encode_trait__quantitative_round_trip_is_exact(values):
    p = Phenotype("T", "quantitative", [NAN if v is None else v for v in values])
    again = decode_trait(_fam(p), "T", "x")
    assert again.kind == "quantitative"
    _equal(again.values, p.values)


@pytest.mark.parametrize("kind,values,labels,fam,column", [
    ("binary", [0, 1, NAN], ["control", "case"], ["1", "2", "-9"], ["1", "2", "NA"]),
    ("quantitative", [0.1, -3.0, NAN], [], ["0.1", "-3", "-9"], ["0.1", "-3", "NA"]),
    ("categorical", [2, 0, NAN], ["AFR", "EAS", "EUR"], ["-9", "-9", "-9"], ["EUR", "AFR", "NA"]),
    ("none", [NAN, NAN, NAN], [], ["-9", "-9", "-9"], ["NA", "NA", "NA"]),
])
def test_encode_trait__fam_and_file_texts_and_decode_trait_as_reads_them_back(kind, values, labels, fam, column):
    assert encode_trait(values, kind, labels) == (fam, column)
    if kind != "none":
        _equal(decode_trait_as(column, "T", kind, labels).values, values)
        # a single class is a legitimate generated cohort: decoded, not refused
        single = decode_trait_as(column[:1], "T", kind, labels)
        _equal(single.values, values[:1])


def test_decode_trait_as__unknown_label_and_non_number_raise():
    with pytest.raises(InputError, match="not one of the trait's labels"):
        decode_trait_as(["AFR", "XYZ"], "POP", "categorical", ["AFR", "EUR"])
    with pytest.raises(InputError, match="not a number"):
        decode_trait_as(["1.5", "tall"], "QT", "quantitative")


def test_trait_text__missing_whole_and_exact_numbers():
    assert [trait_text(v) for v in (None, NAN, 2.0, 7, 0.1, 1 / 3, "case")] == [
        "-9", "-9", "2", "7", "0.1", repr(1 / 3), "case"]
    assert float(trait_text(1 / 3)) == 1 / 3


def test_fam_trait_is_empty__every_plink_missing_code():
    assert fam_trait_is_empty(_samples(["-9", "0", "NA", "nan", "-9.0", "."]))
    assert not fam_trait_is_empty(_samples(["-9", "0", "NA", "nan", "-9.0", "2"]))


def test_phenotype_subset_keeps_labels():
    p = Phenotype("POP", "categorical", [0, 2, 1, NAN], ["AFR", "EAS", "EUR"])
    s = p.subset([1, 3])
    _equal(s.values, [2, NAN])
    assert s.labels == ["AFR", "EAS", "EUR"] and _fam(s) == ["-9", "-9"]
    assert p.subset(np.array([True, False, True, False])).classes() == {"AFR": 1, "EAS": 1, "EUR": 0}  # codes 0, 1


# ---- phenotype files --------------------------------------------------------------------------------------------


def _write(tmp_path, text, name="pheno.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_phenotype__file_matched_by_fid_iid_in_cohort_order(tmp_path):
    samples = _samples(n=4)
    path = _write(tmp_path, "FID\tIID\tCase\tQT\n"
                            "HG00003\tHG00003\t2\t\n"          # empty QT field: missing
                            "HG00001\tHG00001\t1\t0.5\n"
                            "OTHER\tHG00000\t2\t1.0\n"         # FID differs: not this sample
                            "HG00009\tHG00009\t1\t3.0\n"       # not in the cohort
                            "HG00000\tHG00000\t1\t2.0\n")
    case = read_phenotype(samples, path, "case")
    assert case.name == "Case" and case.kind == "binary"
    _equal(case.values, [0, 0, NAN, 1])  # HG00002 absent from the file
    qt = read_phenotype(samples, path, "QT")
    _equal(qt.values, [2.0, 0.5, NAN, NAN])


def test_read_phenotype__iid_only_file_gives_sorted_categories(tmp_path):
    samples = _samples(n=5, fid=["EUR"] * 5)
    path = _write(tmp_path, "IID POP SUPERPOP\nHG00000 GBR EUR\nHG00001 YRI AFR\nHG00002 CHB EAS\n"
                            "HG00003 GBR EUR\nHG00004 NA NA\n")
    pop = read_phenotype(samples, path, "pop")
    assert pop.kind == "categorical" and pop.labels == ["CHB", "GBR", "YRI"]
    _equal(pop.values, [1, 2, 0, 1, NAN])
    assert pop.classes() == {"CHB": 1, "GBR": 2, "YRI": 1}


def test_read_phenotype__fid_that_differs_from_fam_falls_back_to_iid(tmp_path):
    samples = _samples(n=3, fid=["EUR", "AFR", "EUR"])
    path = _write(tmp_path, "FID,IID,T\nHG00000,HG00000,1\nHG00001,HG00001,2\nHG00002,HG00002,2\n")
    _equal(read_phenotype(samples, path).values, [0, 1, 1])


def test_read_covariates__numeric_and_one_hot(tmp_path):
    samples = _samples(n=4)
    path = _write(tmp_path, "FID IID AGE SITE PC1\n"
                            "HG00000 HG00000 40 b 0\n"
                            "HG00001 HG00001 -9 a 0.1\n"
                            "HG00002 HG00002 51 c NA\n")
    x, names = read_covariates(samples, path)
    assert names == ["AGE", "SITE=b", "SITE=c", "PC1"]
    _equal(x, [[40, 1, 0, 0], [NAN, 0, 0, 0.1], [51, 0, 1, NAN], [NAN, NAN, NAN, NAN]])
    x, names = read_covariates(samples, path, ["pc1", "age"])
    assert names == ["PC1", "AGE"] and x.shape == (4, 2) and x.dtype == np.float64


# ---- bad input: the message names the file and the column or line and says how to fix it -------------------


def test_read_phenotype__missing_file_raises(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt: phenotype file not found"):
        read_phenotype(_samples(), tmp_path / "nope.txt")


def test_read_phenotype__no_iid_column_raises(tmp_path):
    with pytest.raises(InputError, match=r"pheno\.txt, line 1: no IID column .*'ID'.*'FID IID TRAIT'"):
        read_phenotype(_samples(), _write(tmp_path, "ID T\nHG00000 1\n"))
    with pytest.raises(InputError, match=r"pheno\.txt, line 1: the file has no header line .*'FID IID TRAIT'"):
        read_phenotype(_samples(), _write(tmp_path, "HG00000 HG00000 1\nHG00001 HG00001 2\n"))


def test_read_phenotype__absent_column_lists_the_available_ones(tmp_path):
    path = _write(tmp_path, "FID IID CASE QT\nHG00000 HG00000 1 0.3\n")
    with pytest.raises(InputError, match=r"pheno\.txt: column 'BMI' not found; available columns: CASE, QT"):
        read_phenotype(_samples(), path, "BMI")
    with pytest.raises(InputError, match=r"pheno\.txt: 2 trait columns \(CASE, QT\): choose one.*--pheno-col"):
        read_phenotype(_samples(), path)


def test_read_phenotype__zero_one_column_explains_plink_coding(tmp_path):
    path = _write(tmp_path, "IID T\n" + "".join(f"HG{i:05d} {i % 2}\n" for i in range(6)))
    with pytest.raises(InputError, match=r"pheno\.txt: trait T has a single class .*'control'.*3 values are 0, and 0 "
                                         r"is missing in PLINK coding; recode to 1/2"):
        read_phenotype(_samples(), path)


def test_read_phenotype__single_class_and_constant_raise():
    with pytest.raises(InputError, match=r"\.fam column 6: trait PHENO has a single class .*'case'"):
        read_phenotype(_samples(["2"] * 6))
    with pytest.raises(InputError, match=r"trait PHENO has a single value \(3\.5\)"):
        read_phenotype(_samples(["3.5"] * 5 + ["-9"]))


def test_read_phenotype__all_missing_raises(tmp_path):
    with pytest.raises(InputError, match=r"\.fam column 6: trait PHENO is missing for all 6 samples"):
        read_phenotype(_samples())
    path = _write(tmp_path, "IID T\n" + "".join(f"HG{i:05d} NA\n" for i in range(6)))
    with pytest.raises(InputError, match=r"pheno\.txt: trait T is missing for all 6 samples"):
        read_phenotype(_samples(), path)


def test_read_phenotype__no_sample_overlap_shows_both_sides(tmp_path):
    path = _write(tmp_path, "FID IID T\nfam1 NA12878 1\nfam1 NA12891 2\n")
    with pytest.raises(InputError, match=r"pheno\.txt: none of the 2 samples .*file: fam1 NA12878.*\.fam: "
                                         r"HG00000 HG00000"):
        read_phenotype(_samples(), path)


def test_read_phenotype__duplicated_sample_names_both_lines(tmp_path):
    path = _write(tmp_path, "FID IID T\nHG00000 HG00000 1\nHG00001 HG00001 2\nHG00000 HG00000 2\n")
    with pytest.raises(InputError, match=r"pheno\.txt: sample HG00000 HG00000 appears twice \(lines 2 and 4\)"):
        read_phenotype(_samples(), path)
    path = _write(tmp_path, "IID T\nHG00001 1\n\nHG00001 2\n")
    with pytest.raises(InputError, match=r"sample HG00001 appears twice \(lines 2 and 4\)"):
        read_phenotype(_samples(), path)


def test_read_phenotype__numbers_mixed_with_labels_name_the_lines(tmp_path):
    path = _write(tmp_path, "IID T\nHG00000 1.5\nHG00001 2.5\nHG00002 high\n")
    with pytest.raises(InputError, match=r"pheno\.txt: column T mixes numbers \('1\.5', line 2\) and labels "
                                         r"\('high', line 4\)"):
        read_phenotype(_samples(), path)


def test_read_phenotype__fam_numbers_mixed_with_labels_name_the_samples():
    with pytest.raises(InputError, match=r"\.fam column 6: column PHENO mixes numbers \('2', sample HG00001 HG00001\) "
                                         r"and labels \('x', sample HG00003 HG00003\)"):
        read_phenotype(_samples(["0", "2", "1", "x", "-9", "1"]))


def test_read_phenotype__short_row_names_the_line(tmp_path):
    with pytest.raises(InputError, match=r"pheno\.txt, line 3: expected 3 fields like the header, found 2"):
        read_phenotype(_samples(), _write(tmp_path, "FID IID T\nHG00000 HG00000 1\nHG00001 2\n"))


def test_read_phenotype__column_without_file_raises():
    with pytest.raises(InputError, match="without a phenotype file"):
        read_phenotype(_samples(["1", "2"] * 3), column="CASE")


def test_read_covariates__bad_columns_raise(tmp_path):
    path = _write(tmp_path, "IID AGE SITE NONE MIX\nHG00000 40 a -9 1\nHG00001 50 a NA x\n")
    with pytest.raises(InputError, match=r"pheno\.txt: covariate NONE is missing for every sample"):
        read_covariates(_samples(), path, ["none"])
    with pytest.raises(InputError, match=r"covariate SITE has a single label \('a'\)"):
        read_covariates(_samples(), path, ["site"])
    with pytest.raises(InputError, match=r"pheno\.txt, line 2: covariate MIX mixes numbers and labels \(e\.g\. '1'\)"):
        read_covariates(_samples(), path, ["mix"])
    with pytest.raises(InputError, match=r"column 'BMI' not found; available columns: AGE, SITE, NONE, MIX"):
        read_covariates(_samples(), path, ["BMI"])


def test_read_labels__populations_by_iid_missing_and_absent_are_none(tmp_path):
    f = tmp_path / "populations.tsv"  # 1000 Genomes' layout: no FID; rows in another order; one sample absent
    f.write_text("IID\tPOP\tSUPERPOP\nHG00003\tYRI\tAFR\nHG00000\tGBR\tEUR\nHG00001\tNA\tEUR\n"
                 "HG00002\tGBR,TSI\tEUR\nHG09999\tCHB\tEAS\n")
    labels = read_labels(_samples(n=5), f, "pop")
    assert labels.tolist() == ["GBR", None, "GBR,TSI", "YRI", None]
    assert read_labels(_samples(n=5), f, "SUPERPOP").tolist() == ["EUR", "EUR", "EUR", "AFR", None]
    with pytest.raises(InputError, match="no individual of the cohort has a POP label"):
        read_labels(make_samples(["HG00001"]), f, "POP")
    with pytest.raises(InputError, match="column 'ANCESTRY' not found"):
        read_labels(_samples(n=5), f, "ANCESTRY")
