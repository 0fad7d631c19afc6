"""splits, panel (QC and choice), ld and clumping: split files, QC, LD r^2, PLINK 1.9 --clump rules (hand-built cases, a brute-force greedy
reference, plink1.9 itself), panels and the select / split commands."""
import shutil
import subprocess

import msprime
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snpgen_core import cli
from snpgen_core.errors import InputError
from snpgen_core.genotypes import Genotypes, make_samples, make_variants
from snpgen_core.io.gwas import align_gwas, read_gwas
from snpgen_core.io.plink import read_fam, read_plink, write_plink
from snpgen_core.clumping import clump
from snpgen_core.ld import ld_r2, pack_genotype_classes, r2_dosage, r2_haplotype, two_locus_counts
from snpgen_core.panel import (PANEL_COLUMNS, PanelWarning, qc_mask, qc_report, read_panel, read_snp_list, select_panel,
                               write_panel)
from snpgen_core.splits import Split, read_split, split_samples, trait_strata, write_split

PLINK = shutil.which("plink1.9")
needs_plink = pytest.mark.skipif(PLINK is None, reason="plink1.9 is not installed (Debian package plink1.9)")


def cohort(columns, chrom="1", pos=None, snp=None) -> Genotypes:
    """Genotypes from dosage columns (one per SNP); positions 1000 bp apart unless given."""
    dos = np.column_stack([np.asarray(c, dtype=np.int8) for c in columns])
    m = dos.shape[1]
    pos = np.arange(1, m + 1) * 1000 if pos is None else pos
    snp = [f"s{j}" for j in range(m)] if snp is None else snp
    return Genotypes(dos, make_variants(chrom if np.ndim(chrom) else [chrom] * m, snp, pos, ["A"] * m, ["G"] * m),
                     make_samples([f"i{i}" for i in range(dos.shape[0])]))


def gwas(p, beta=None) -> pd.DataFrame:
    """An aligned-GWAS-like table for variants 0..m-1."""
    p = np.asarray(p, dtype=float)
    beta = np.linspace(-1, 1, p.size) if beta is None else beta
    return pd.DataFrame({"variant_index": np.arange(p.size), "p": p, "beta": beta})


def ld_cohort(n: int, m: int, rng: np.random.Generator, n_founders: int = 6, switch: float = 0.15,
              missing: float = 0.0) -> np.ndarray:
    """(n, m) dosages with a spread of LD: haplotypes copy founders, switching founder with prob ``switch``."""
    founders = (rng.random((n_founders, m)) < rng.uniform(0.1, 0.6, m)).astype(np.int8)
    haps = np.empty((2 * n, m), dtype=np.int8)
    who = rng.integers(0, n_founders, 2 * n)
    for j in range(m):
        flip = rng.random(2 * n) < switch
        who = np.where(flip, rng.integers(0, n_founders, 2 * n), who)
        haps[:, j] = founders[who, j] ^ (rng.random(2 * n) < 0.02)
    dos = haps[0::2] + haps[1::2]
    dos[rng.random(dos.shape) < missing] = -1
    return dos


def msprime_cohort(n: int, length: float, seed: int, missing: float = 0.0) -> Genotypes:
    """A small msprime cohort on one chromosome (biallelic SNPs, MAF >= 5%), optionally with missing calls."""
    ts = msprime.sim_ancestry(samples=n, sequence_length=length, recombination_rate=1e-8, population_size=10_000,
                              random_seed=seed)
    ts = msprime.sim_mutations(ts, rate=1e-8, random_seed=seed, model=msprime.BinaryMutationModel())
    g = ts.genotype_matrix()
    dos = (g[:, 0::2] + g[:, 1::2]).T.astype(np.int8)
    pos = ts.tables.sites.position.astype(np.int64) + 1
    f = dos.mean(axis=0) / 2
    keep = (np.minimum(f, 1 - f) >= 0.05) & np.r_[True, np.diff(pos) > 0]
    dos, pos = dos[:, keep], pos[keep]
    dos[np.random.default_rng(seed).random(dos.shape) < missing] = -1
    return cohort(dos.T, pos=pos, snp=[f"rs{j}" for j in range(pos.size)])


def greedy_reference(g: Genotypes, p, p1, r2, kb, estimator="haplotype"):
    """PLINK's greedy clumping written as plainly as possible: [(index, sorted member indices)]."""
    R = ld_r2(g.dosages, estimator=estimator)
    chrom, pos = g.variants["chrom"].to_numpy(), g.variants["pos"].to_numpy()
    clumped, out = set(), []
    for i in sorted((j for j in range(len(p)) if p[j] <= p1), key=lambda j: (p[j], j)):
        if i in clumped:
            continue
        members = [j for j in range(len(p)) if j != i and j not in clumped and chrom[j] == chrom[i]
                   and abs(pos[j] - pos[i]) < kb * 1000 and R[i, j] > r2]
        clumped.update(members)
        out.append((i, members))
    return out


# --- split files ----------------------------------------------------------------------------------------------


def test_split_samples__stratified_seeded_and_disjoint():
    strata = np.r_[np.zeros(700), np.ones(300)]
    a = split_samples(1000, strata=strata, holdout=0.2, validation=0.1, seed=3)
    b = split_samples(1000, strata=strata, holdout=0.2, validation=0.1, seed=3)
    c = split_samples(1000, strata=strata, holdout=0.2, validation=0.1, seed=4)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("train", "validation", "holdout"))
    assert not np.array_equal(a.holdout, c.holdout)
    assert np.array_equal(np.sort(np.concatenate([a.train, a.validation, a.holdout])), np.arange(1000))
    assert (strata[a.holdout] == 1).sum() == 60 and a.holdout.size == 200 and a.validation.size == 100


def test_trait_strata__quantitative_traits_fall_into_equal_count_bins():
    values = np.r_[np.arange(100.0), np.nan]
    bins = trait_strata(values, "quantitative", n_bins=4)
    assert np.isnan(bins[-1])
    assert np.bincount(bins[:-1].astype(int)).tolist() == [25, 25, 25, 25]
    assert np.array_equal(trait_strata(np.array([0.0, 1.0, np.nan]), "binary"), [0.0, 1.0, np.nan], equal_nan=True)


def test_read_split__round_trip(tmp_path):
    samples = make_samples([f"i{i}" for i in range(10)])
    split = Split(np.array([0, 2, 3, 5, 6, 8, 9]), np.array([1]), np.array([4, 7]))
    write_split(split, samples, tmp_path / "s.tsv")
    back = read_split(tmp_path / "s.tsv", samples)
    assert all(np.array_equal(getattr(back, k), getattr(split, k)) for k in ("train", "validation", "holdout"))


@pytest.mark.parametrize("text, message", [
    ("", "cannot be read"),
    ("FID\tIID\n0\ti0\n", "lacks column"),
    ("FID\tIID\tSPLIT\ni0\ti0\ttrain\ni1\ti1\ttest\n", "unknown SPLIT value 'test'"),
    ("FID\tIID\tSPLIT\ni0\ti0\ttrain\ni0\ti0\tholdout\ni1\ti1\ttrain\n", "appears twice"),
    ("FID\tIID\tSPLIT\ni0\ti0\ttrain\n", "sample i1 i1 is not in the split file"),
    ("FID\tIID\tSPLIT\ni0\ti0\tholdout\ni1\ti1\tholdout\n", "no sample of this cohort is labelled train"),
])
def test_read_split__bad_file_raises_input_error(tmp_path, text, message):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_split(path, make_samples(["i0", "i1"]))
    assert str(path) in str(err.value)


# --- QC -------------------------------------------------------------------------------------------------------


def test_qc_report__maf_call_rate_and_monomorphic_known_counts():
    n = 50
    base = np.zeros(n, dtype=int)
    one_allele = base.copy()
    one_allele[0] = 1  # MAF 1/100 = 0.01: kept at maf=0.01 (PLINK keeps MAF >= threshold)
    all_hom_a1 = np.full(n, 2)  # monomorphic for the other allele
    miss3, miss2 = np.r_[[-1] * 3, [0, 1, 2] * 15, [1, 1]], np.r_[[-1] * 2, [0, 1, 2] * 16]  # 6% / 4% missing
    all_missing = np.full(n, -1)
    rare2 = np.r_[[1], np.zeros(n - 1)]
    rare2[1] = -1  # MAF 1/98: above 0.01, below 0.011
    g = cohort([base, one_allele, all_hom_a1, miss3, miss2, all_missing, rare2])
    report = qc_report(g, maf=0.011, max_missing=0.05)
    assert report.mask.tolist() == [False, False, False, False, True, False, False]
    assert (report.n_monomorphic, report.n_low_maf, report.n_high_missing) == (3, 2, 2)
    assert qc_mask(g, maf=0.01, max_missing=0.05).tolist() == [False, True, False, False, True, False, True]
    assert report.describe() == ("QC on 50 individuals: 1 of 7 SNPs pass (3 monomorphic, 2 with MAF < 0.011, "
                                 "2 with missing calls > 5%)")


def test_qc_report__thresholds_outside_range_raise():
    g = cohort([[0, 1, 2]])
    with pytest.raises(InputError, match="MAF threshold"):
        qc_report(g, maf=0.6)
    with pytest.raises(InputError, match="missing-call share"):
        qc_report(g, max_missing=-0.1)


# --- LD r^2 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["dosage", "haplotype"])
def test_ld_r2__perfect_opposite_and_monomorphic_known_answers(estimator):
    x = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 0])
    r = ld_r2(np.column_stack([x, x, 2 - x, np.zeros(10)]), estimator=estimator)
    assert r[0, 1] == pytest.approx(1) and r[0, 2] == pytest.approx(1)  # r = 1 and r = -1
    assert np.isnan(r[0, 3]) and np.isnan(r[3, 3])
    assert np.allclose(r[:3, :3], r[:3, :3].T)


def test_ld_r2__exact_quarter_for_both_estimators():
    # 16 homozygous individuals: haplotype counts 12/4/4/12 of 32, r = 1/2 for haplotypes and dosages alike
    x = np.r_[[2] * 6, [2] * 2, [0] * 2, [0] * 6]
    y = np.r_[[2] * 6, [0] * 2, [2] * 2, [0] * 6]
    for estimator in ("dosage", "haplotype"):
        assert ld_r2(np.column_stack([x, y]), estimator=estimator)[0, 1] == 0.25


def test_ld_r2_dosage__equals_pairwise_complete_pearson():
    rng = np.random.default_rng(1)
    dos = ld_cohort(137, 12, rng, missing=0.1)  # 137: not a multiple of 64
    got = ld_r2(dos)
    for i in range(12):
        for j in range(12):
            ok = (dos[:, i] >= 0) & (dos[:, j] >= 0)
            assert got[i, j] == pytest.approx(np.corrcoef(dos[ok, i], dos[ok, j])[0, 1] ** 2, rel=1e-9)


def test_two_locus_counts__bit_masks_count_the_genotype_table_and_fast_path_agrees():
    rng = np.random.default_rng(2)
    dos = ld_cohort(131, 6, rng)
    bits = pack_genotype_classes(dos)
    table = two_locus_counts(bits[0], bits[1:])
    brute = np.array([[[np.sum((dos[:, 0] == g) & (dos[:, j] == h)) for h in range(3)] for g in range(3)]
                      for j in range(1, 6)])
    assert np.array_equal(table, brute)
    margins = np.bitwise_count(bits).sum(axis=-1)
    assert np.array_equal(two_locus_counts(bits[0], bits[1:], complete=(margins[0], margins[1:])), brute)
    dos[5, 3] = -1  # missing calls drop out of the table
    bits = pack_genotype_classes(dos, columns=[0, 3])
    assert two_locus_counts(bits[0], bits[1:])[0].sum() == 130


def _haplotype_r2_grid(table: np.ndarray) -> float:
    """r^2 at the maximum-likelihood phase of the double heterozygotes, found by a dense grid (independent of
    PLINK's cubic): table[g, h] counts dosage g at SNP a and h at SNP b."""
    c = table[::-1, ::-1].astype(float)  # allele 1 = a1, as in PLINK
    k11 = 2 * c[0, 0] + c[0, 1] + c[1, 0]
    k12 = 2 * c[0, 2] + c[0, 1] + c[1, 2]
    k21 = 2 * c[2, 0] + c[1, 0] + c[2, 1]
    k22 = 2 * c[2, 2] + c[1, 2] + c[2, 1]
    dh = c[1, 1]
    tot = k11 + k12 + k21 + k22 + 2 * dh
    x = np.linspace(0, dh, 200_001)  # double heterozygotes that are 11/22 (the rest 12/21)
    f11, f22, f12, f21 = (k11 + x) / tot, (k22 + x) / tot, (k12 + dh - x) / tot, (k21 + dh - x) / tot
    with np.errstate(divide="ignore"):
        ll = dh * np.log(f11 * f22 + f12 * f21) + sum(k * np.log(f) for k, f in
                                                        ((k11, f11), (k12, f12), (k21, f21), (k22, f22)) if k)
    best = np.argmax(ll)
    pa, pb = f11[best] + f12[best], f11[best] + f21[best]
    return float((f11[best] - pa * pb) ** 2 / (pa * (1 - pa) * pb * (1 - pb)))


def test_r2_haplotype__double_heterozygote_phase_is_the_likelihood_maximum():
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(40):
        h = rng.dirichlet(np.ones(4))  # haplotype frequencies 11, 12, 21, 22
        haps = rng.choice(4, size=(60, 2), p=h)
        a = (haps < 2).sum(axis=1)  # copies of allele 1 at SNP a
        b = np.isin(haps, (0, 2)).sum(axis=1)
        table = np.array([[np.sum((a == g) & (b == k)) for k in range(3)] for g in range(3)])
        if table[1, 1] == 0 or len(set(a)) < 2 or len(set(b)) < 2:
            continue
        assert r2_haplotype(table[None])[0] == pytest.approx(_haplotype_r2_grid(table), abs=2e-4)
        checked += 1
    assert checked > 20


def test_r2_haplotype__without_double_heterozygotes_is_the_haplotype_count_formula():
    # homozygous individuals only: each carries two copies of one haplotype
    counts = {"11": 5, "12": 2, "21": 3, "22": 7}
    a = np.r_[[2] * 5, [2] * 2, [0] * 3, [0] * 7]
    b = np.r_[[2] * 5, [0] * 2, [2] * 3, [0] * 7]
    table = np.array([[np.sum((a == g) & (b == h)) for h in range(3)] for g in range(3)])
    n11, n12, n21, n22 = (counts[k] for k in ("11", "12", "21", "22"))
    expected = (n11 * n22 - n12 * n21) ** 2 / ((n11 + n12) * (n21 + n22) * (n11 + n21) * (n12 + n22))
    assert r2_haplotype(table[None])[0] == pytest.approx(expected, rel=1e-12)
    assert r2_dosage(table[None])[0] == pytest.approx(expected, rel=1e-12)


def _write_trio(tmp_path, g: Genotypes, p=None, name="c"):
    prefix = tmp_path / name
    write_plink(prefix, g)
    if p is not None:
        pd.DataFrame({"SNP": g.variants["snp"], "P": p}).to_csv(tmp_path / f"{name}.assoc", sep=" ", index=False,
                                                                 na_rep="NA")
    return prefix


@needs_plink
def test_ld_r2__matches_plink_r2_and_r2_dprime_with_missing_calls(tmp_path):
    g = msprime_cohort(200, 4e5, seed=11, missing=0.03)
    g = g.subset(variants=np.arange(min(40, g.n_variants)))
    prefix = _write_trio(tmp_path, g)
    for estimator, extra in (("dosage", []), ("haplotype", ["dprime"])):
        subprocess.run([PLINK, "--bfile", str(prefix), "--r2", *extra, "--ld-window", "99999", "--ld-window-kb",
                        "99999", "--ld-window-r2", "0", "--out", str(tmp_path / estimator)], check=True,
                       capture_output=True)
        ref = pd.read_csv(tmp_path / f"{estimator}.ld", sep=r"\s+")
        idx = {s: k for k, s in enumerate(g.variants["snp"])}
        mine = ld_r2(g.dosages, estimator=estimator)[ref["SNP_A"].map(idx), ref["SNP_B"].map(idx)]
        assert len(ref) == 40 * 39 // 2
        assert np.abs(mine - ref["R2"].to_numpy()).max() < 1e-5  # plink prints 6 significant digits


# --- clumping: hand-built cases ----------------------------------------------------------------------------------


def test_clump__perfect_ld_pair_gives_one_index_with_one_member():
    x = np.array([0, 1, 2, 1, 0, 2, 1, 1, 0, 2])
    out = clump(cohort([x, x]), gwas([1e-5, 1e-6]))
    assert out["SNP"].tolist() == ["s1"] and out["TOTAL"].tolist() == [1] and out["SP2"].tolist() == ["s0"]
    assert out["S0001"].tolist() == [1] and out["P"].tolist() == [1e-6] and out["variant_index"].tolist() == [1]


@pytest.mark.parametrize("estimator", ["haplotype", "dosage"])
def test_clump__r2_threshold_is_strict_like_plink(estimator):
    x = np.r_[[2] * 6, [2] * 2, [0] * 2, [0] * 6]
    y = np.r_[[2] * 6, [0] * 2, [2] * 2, [0] * 6]  # r^2 exactly 0.25
    g, p = cohort([x, y]), gwas([1e-6, 1e-5])
    assert clump(g, p, r2=0.25, estimator=estimator)["SNP"].tolist() == ["s0", "s1"]
    assert clump(g, p, r2=0.2499, estimator=estimator)["SNP"].tolist() == ["s0"]


@pytest.mark.parametrize("kb, inside, outside", [(250, 249_999, 250_000), (2.5, 2_499, 2_500)])
def test_clump__window_is_strictly_less_than_kb(kb, inside, outside):
    x = np.random.default_rng(0).integers(0, 3, 40)
    g = cohort([x] * 4, chrom=["1", "1", "2", "2"], pos=[1_000_000, 1_000_000 + inside, 1_000_000, 1_000_000 + outside])
    out = clump(g, gwas([1e-6, 1e-5, 1e-6, 1e-5]), kb=kb)
    assert out["SNP"].tolist() == ["s0", "s2", "s3"]
    assert out.set_index("SNP")["TOTAL"].to_dict() == {"s0": 1, "s2": 0, "s3": 0}


def test_clump__p1_inclusive_p2_only_chooses_the_sp2_listing():
    x = np.random.default_rng(1).integers(0, 3, 40)
    g = cohort([x] * 4, pos=[1000, 2000, 3000, 500_000])
    out = clump(g, gwas([1e-6, 0.01, 0.2, 1e-4]), p1=1e-4, p2=0.01)
    # s1 (p == p2) and s2 (p > p2) are clumped and counted but not listed; s3 with p == p1 is an index
    assert out["SNP"].tolist() == ["s0", "s3"]
    first = out.iloc[0]
    assert (first["TOTAL"], first["NSIG"], first["S05"], first["S01"], first["SP2"]) == (2, 1, 1, 0, "NONE")


def test_clump__chromosomes_never_clump_each_other():
    x = np.random.default_rng(2).integers(0, 3, 30)
    g = cohort([x, x], chrom=["1", "2"], pos=[5000, 5000])
    assert clump(g, gwas([1e-6, 1e-5]))["SNP"].tolist() == ["s0", "s1"]


def test_clump__equal_p_values_resolved_in_variant_order():
    x = np.random.default_rng(3).integers(0, 3, 30)
    out = clump(cohort([x, x, x], pos=[3000, 2000, 1000]), gwas([1e-5, 1e-5, 1e-5]))
    assert out["SNP"].tolist() == ["s0"] and out["SP2"].tolist() == ["s2,s1"]  # members in position order


def test_clump__clumped_snps_cannot_clump_others():
    # a chain: s0 ~ s1 and s1 ~ s2 but not s0 ~ s2; s1 is absorbed by s0, so s2 starts its own clump
    rng = np.random.default_rng(4)
    a = rng.integers(0, 3, 400)
    b = np.where(rng.random(400) < 0.8, a, rng.integers(0, 3, 400))  # r(a, b) ~ 0.8, r(a, c) ~ 0.64
    c = np.where(rng.random(400) < 0.8, b, rng.integers(0, 3, 400))
    g = cohort([a, b, c])
    r = ld_r2(g.dosages, estimator="haplotype")
    assert r[0, 1] > 0.5 and r[1, 2] > 0.5 and r[0, 2] < 0.5
    assert clump(g, gwas([1e-8, 1e-7, 1e-6]))["SNP"].tolist() == ["s0", "s2"]


def test_clump__variants_without_p_take_no_part():
    x = np.random.default_rng(5).integers(0, 3, 30)
    out = clump(cohort([x, x, x]), gwas([1e-6, np.nan, 1e-5]))
    assert out["SNP"].tolist() == ["s0"] and out["SP2"].tolist() == ["s2"]


@pytest.mark.parametrize("kwargs, message", [
    ({"r2": 0}, "r2 = 0 must be in"), ({"r2": 1.5}, "r2 = 1.5"), ({"kb": 0}, "kb = 0 must be a positive"),
    ({"kb": -5}, "kb = -5"), ({"p1": 0.1, "p2": 0.01}, "p2 must be at least p1"), ({"p1": 2}, "p1 = 2"),
])
def test_clump__parameters_outside_their_range_raise(kwargs, message):
    with pytest.raises(InputError, match=message):
        clump(cohort([[0, 1, 2]]), gwas([0.5]), **kwargs)


def test_clump__p_values_outside_unit_interval_raise():
    with pytest.raises(InputError, match="outside"):
        clump(cohort([[0, 1, 2]]), gwas([1.5]))


# --- clumping: properties against a plain greedy reference ---------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), missing=st.sampled_from([0.0, 0.05]),
       r2=st.sampled_from([0.1, 0.3, 0.5, 0.8]), estimator=st.sampled_from(["haplotype", "dosage"]))
def test_clump__matches_plain_greedy_reference_and_its_invariants(seed, missing, r2, estimator):
    rng = np.random.default_rng(seed)
    m = 40
    dos = ld_cohort(int(rng.integers(30, 200)), m, rng, missing=missing)
    chrom = np.where(np.arange(m) < 25, "1", "2")
    pos = np.concatenate([np.sort(rng.choice(60_000, 25, replace=False)), np.sort(rng.choice(60_000, 15, replace=False))]) + 1
    p = np.round(rng.random(m), 2)  # ties happen
    p1 = float(rng.choice([0.3, 1.0]))
    g = cohort(dos.T, chrom=chrom, pos=pos)
    out = clump(g, gwas(p), p1=p1, p2=1.0, r2=r2, kb=10, estimator=estimator)
    ref = greedy_reference(g, p, p1, r2, 10, estimator)
    assert out["variant_index"].tolist() == [i for i, _ in ref]
    assert out["TOTAL"].tolist() == [len(mm) for _, mm in ref]
    listed = [sorted((j for j in mm if p[j] < 1.0), key=lambda j: (chrom[j], pos[j])) for _, mm in ref]
    assert out["SP2"].tolist() == [",".join(f"s{j}" for j in js) or "NONE" for js in listed]
    # invariants: index SNPs never exceed r2 with each other within the window; every other candidate was
    # clumped by a stronger index SNP nearby; no SNP is counted twice
    R = ld_r2(g.dosages, estimator=estimator)
    idx = out["variant_index"].to_numpy()
    near = (chrom[:, None] == chrom[None, :]) & (np.abs(pos[:, None] - pos[None, :]) < 10_000)
    pairs = near[np.ix_(idx, idx)] & ~np.eye(idx.size, dtype=bool)
    assert not np.any((R[np.ix_(idx, idx)] > r2) & pairs)
    for j in set(np.flatnonzero(p <= p1)) - set(idx):
        assert any(near[i, j] and R[i, j] > r2 and (p[i], i) < (p[j], j) for i in idx)
    assert out["TOTAL"].sum() + idx.size <= m


# --- clumping: plink1.9 itself ------------------------------------------------------------------------------------


def _plink_clump(prefix, assoc, p1, p2, r2, kb, out):
    subprocess.run([PLINK, "--bfile", str(prefix), "--clump", str(assoc), "--clump-p1", str(p1), "--clump-p2",
                    str(p2), "--clump-r2", str(r2), "--clump-kb", str(kb), "--allow-no-sex", "--out", str(out)],
                   check=True, capture_output=True)
    return pd.read_csv(f"{out}.clumped", sep=r"\s+")


def _assert_same_clumps(mine: pd.DataFrame, ref: pd.DataFrame):
    assert mine["SNP"].tolist() == ref["SNP"].tolist()  # same index SNPs, same order
    for col in ("TOTAL", "NSIG", "S05", "S01", "S001", "S0001"):
        assert mine[col].tolist() == ref[col].tolist(), col
    assert mine["SP2"].tolist() == [s.replace("(1)", "") for s in ref["SP2"]]


@needs_plink
@pytest.mark.parametrize("p1, p2, r2, kb", [(1e-4, 1e-2, 0.5, 250), (1, 1, 0.5, 250), (0.05, 0.5, 0.2, 30),
                                            (1, 1, 0.8, 10)])
def test_clump__matches_plink_on_the_simulated_cohort(sim_prefix, sim_cohort, tmp_path, p1, p2, r2, kb):
    g = sim_cohort.genotypes.subset(samples=sim_cohort.split.train)
    p = sim_cohort.gwas.set_index("SNP")["P"].reindex(g.variants["snp"]).to_numpy()
    table = gwas(p)
    prefix = _write_trio(tmp_path, g, p)
    ref = _plink_clump(prefix, tmp_path / "c.assoc", p1, p2, r2, kb, tmp_path / "out")
    mine = clump(g, table, p1=p1, p2=p2, r2=r2, kb=kb)
    assert len(mine) > 1
    _assert_same_clumps(mine, ref)


@needs_plink
def test_clump__matches_plink_with_missing_calls_and_dense_ld(tmp_path):
    g = msprime_cohort(150, 6e5, seed=3, missing=0.02)
    p = np.random.default_rng(3).random(g.n_variants) ** 3
    prefix = _write_trio(tmp_path, g, p)
    for r2 in (0.2, 0.6):
        ref = _plink_clump(prefix, tmp_path / "c.assoc", 1, 1, r2, 100, tmp_path / "out")
        mine = clump(g, gwas(p), p1=1, p2=1, r2=r2, kb=100)
        assert len(mine) > 20
        _assert_same_clumps(mine, ref)


# --- panels -------------------------------------------------------------------------------------------------------


def _panel_cohort():
    rng = np.random.default_rng(6)
    dos = ld_cohort(300, 30, rng, switch=0.03)
    chrom = np.r_[["2"] * 10, ["1"] * 10, ["10"] * 10]
    pos = np.tile(np.arange(10) * 30_000 + 1, 3)
    g = cohort(dos.T, chrom=chrom, pos=pos)
    return g, gwas(rng.random(30), beta=rng.normal(size=30))


def test_select_panel__top_k_index_snps_sorted_by_chromosome_and_position():
    g, table = _panel_cohort()
    panel = select_panel(g, table, top=5, r2=0.3, kb=50)
    clumps = clump(g, table, p1=1, p2=1, r2=0.3, kb=50)
    chosen = clumps["variant_index"].to_numpy()[:5]
    assert sorted(panel.variant_index) == sorted(chosen)
    chrom_order = {"1": 0, "2": 1, "10": 2}  # natural order, not text order
    keys = [(chrom_order[c], b) for c, b in zip(panel.table["CHR"], panel.table["BP"])]
    assert keys == sorted(keys) and list(panel.table.columns) == PANEL_COLUMNS
    assert np.allclose(panel.table["BETA"], table["beta"].to_numpy()[panel.variant_index])
    assert panel.table["SNP"].tolist() == g.variants["snp"].to_numpy()[panel.variant_index].tolist()
    assert panel.n_candidates == 30 and not panel.notes


def test_select_panel__qc_failures_never_enter_the_panel():
    g, table = _panel_cohort()
    dos = g.dosages.copy()
    dos[:, 0] = 0  # monomorphic
    dos[:40, 1] = -1  # 13% missing
    g = Genotypes(dos, g.variants, g.samples)
    table.loc[[0, 1], "p"] = 1e-12
    panel = select_panel(g, table, top=10, r2=0.99, kb=1)
    assert 0 not in panel.variant_index and 1 not in panel.variant_index
    assert panel.qc.n_monomorphic == 1 and panel.qc.n_high_missing == 1


def test_select_panel__top_larger_than_available_warns_and_uses_all():
    g, table = _panel_cohort()
    with pytest.warns(PanelWarning, match="--top 500 asked for more SNPs"):
        panel = select_panel(g, table, top=500, r2=0.5)
    assert len(panel) == len(panel.clumps) < 30 and len(panel.notes) == 1  # some SNPs were clumped away


def test_select_panel__snp_list_reports_ids_absent_from_genotypes():
    g, table = _panel_cohort()
    with pytest.warns(PanelWarning, match="2 of 4 listed SNPs are not in the genotypes"):
        panel = select_panel(g, table, snps=["s25", "nope", "s3", "gone"])
    assert panel.table["SNP"].tolist() == ["s3", "s25"]  # chromosome 2 before chromosome 10
    assert panel.missing_ids == ["nope", "gone"]
    with pytest.raises(InputError, match="none of the 1 listed SNPs"):
        select_panel(g, table, snps=["nope"])
    # genotypes read for the listed SNPs only: the GWAS rows are found by ID, not by a row number that moved
    named = table.assign(snp=g.variants["snp"])
    sub = g.subset(variants=[3, 25])
    panel = select_panel(sub, named, snps=["s25", "s3"])
    assert np.allclose(panel.table["BETA"], table["beta"].to_numpy()[[3, 25]])


def test_select_panel__bad_top_and_no_candidate_raise():
    g, table = _panel_cohort()
    with pytest.raises(InputError, match="top = 0"):
        select_panel(g, table, top=0)
    with pytest.raises(InputError, match="no GWAS SNP passing QC has p <= p1 = 1e-09"):
        select_panel(g, table, p1=1e-9)
    assert clump(g, table, p1=1e-9).empty


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text("ACGTrs_:0123456789", min_size=1, max_size=12), st.integers(1, 2**31 - 1),
                          st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), st.floats(0, 1)), min_size=1, max_size=20,
                unique_by=lambda t: t[0]))
def test_write_panel__read_panel_round_trip(tmp_path_factory, rows):
    table = pd.DataFrame({"SNP": [r[0] for r in rows], "CHR": "1", "BP": [r[1] for r in rows], "A1": "A",
                          "A2": "G", "BETA": [r[2] for r in rows], "P": [r[3] for r in rows]})
    path = tmp_path_factory.mktemp("panel") / "panel.tsv"
    write_panel(table, path)
    back = read_panel(path)
    assert back["SNP"].tolist() == table["SNP"].tolist() and back["BP"].tolist() == table["BP"].tolist()
    assert np.allclose(back["BETA"], table["BETA"], rtol=1e-9, equal_nan=True)
    assert np.allclose(back["P"], table["P"], rtol=1e-9)


@pytest.mark.parametrize("text, message", [
    ("SNP\tCHR\tBP\tA1\tA2\tBETA\n", "lacks column"),
    ("SNP\tCHR\tBP\tA1\tA2\tBETA\tP\nrs1\t1\tten\tA\tG\t0.1\t0.5\n", "column BP must be an integer"),
    ("SNP\tCHR\tBP\tA1\tA2\tBETA\tP\nrs1\t1\t10\tA\tG\t0.1\t0.5\nrs1\t1\t11\tA\tG\t0.1\t0.5\n", "appears twice"),
    ("SNP\tCHR\tBP\tA1\tA2\tBETA\tP\n", "no SNPs"),
])
def test_read_panel__bad_file_raises(tmp_path, text, message):
    path = tmp_path / "panel.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_panel(path)


@pytest.mark.parametrize("text, ids", [
    ("rs1\nrs2\n\n# comment\nrs1\n", ["rs1", "rs2"]),
    ("SNP\nrs1\nrs2\n", ["rs1", "rs2"]),
    ("CHR\tSNP\tP\n1\trs7\t0.1\n1\trs8\t0.2\n", ["rs7", "rs8"]),
    ("chr,snp\n1,rs9\n", ["rs9"]),
])
def test_read_snp_list__plain_lists_and_tables(tmp_path, text, ids):
    path = tmp_path / "snps.txt"
    path.write_text(text)
    assert read_snp_list(path) == ids


def test_read_snp_list__table_without_snp_column_raises(tmp_path):
    path = tmp_path / "snps.txt"
    path.write_text("ID\tP\nrs1\t0.1\n")
    with pytest.raises(InputError, match="none named SNP"):
        read_snp_list(path)


# --- the select and split commands --------------------------------------------------------------------------------


def _select(prefix, out, *extra):
    return cli.main(["select", "--bfile", str(prefix), "--gwas", f"{prefix}.gwas.tsv", "--out", str(out), *extra])


def test_cli_select__on_the_simulated_cohort_uses_the_training_part(sim_prefix, sim_cohort, tmp_path, capsys):
    out = tmp_path / "panel.tsv"
    assert _select(sim_prefix, out, "--top", "40", "--pheno", f"{sim_prefix}.pheno.tsv", "--pheno-col", "CASE") == 0
    printed = capsys.readouterr().out
    n_train = sim_cohort.split.train.size
    assert "(found next to the .bed)" in printed
    assert f"only the {n_train} train individuals enter QC and clumping" in printed
    assert "GWAS " in printed and "alignment:" in printed and f"QC on {n_train} individuals" in printed
    assert "selected 40 SNPs" in printed
    panel = read_panel(out)
    train = sim_cohort.genotypes.subset(samples=sim_cohort.split.train)
    expected = select_panel(train, align_gwas(read_gwas(f"{sim_prefix}.gwas.tsv"), train.variants), top=40)
    assert panel["SNP"].tolist() == expected.table["SNP"].tolist() and panel["BP"].is_monotonic_increasing


def test_cli_select__holdout_genotypes_cannot_change_the_panel(sim_prefix, sim_cohort, tmp_path):
    g = sim_cohort.genotypes
    dos = g.dosages.copy()
    hold = sim_cohort.split.holdout
    dos[hold] = np.random.default_rng(0).permuted(dos[hold], axis=0)[:, ::-1]  # scramble the holdout
    scrambled = tmp_path / "scrambled"
    write_plink(scrambled, Genotypes(dos, g.variants, g.samples))
    for suffix in (".gwas.tsv", ".split.tsv"):
        shutil.copy(f"{sim_prefix}{suffix}", f"{scrambled}{suffix}")
    assert _select(sim_prefix, tmp_path / "a.tsv", "--top", "60") == 0
    assert _select(scrambled, tmp_path / "b.tsv", "--top", "60") == 0
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert _select(scrambled, tmp_path / "c.tsv", "--top", "60", "--split", str(tmp_path / "none.tsv")) == 2


def test_cli_select__top_larger_than_available_warns_and_writes(sim_prefix, tmp_path, capsys):
    out = tmp_path / "panel.tsv"
    assert _select(sim_prefix, out, "--top", "100000") == 0
    err = capsys.readouterr().err
    assert "warning: --top 100000 asked for more SNPs" in err
    assert 0 < len(read_panel(out)) < 200


def test_cli_select__snp_list(sim_prefix, sim_cohort, tmp_path, capsys):
    ids = sim_cohort.genotypes.variants["snp"].tolist()[:5] + ["not_a_snp"]
    (tmp_path / "list.txt").write_text("\n".join(ids) + "\n")
    assert _select(sim_prefix, tmp_path / "p.tsv", "--snps", str(tmp_path / "list.txt")) == 0
    assert read_panel(tmp_path / "p.tsv")["SNP"].tolist() == ids[:5]
    assert "1 of 6 listed SNPs are not in the genotypes" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--clump-r2", "1.5"], "r2 = 1.5 must be in (0, 1]"),
    (["--clump-r2", "0"], "r2 = 0 must be in (0, 1]"),
    (["--clump-kb", "0"], "kb = 0 must be a positive distance"),
    (["--clump-p1", "0.5", "--clump-p2", "0.1"], "p2 must be at least p1"),
    (["--top", "0"], "--top"),
    (["--pheno-col", "NOPE", "--pheno", "{prefix}.pheno.tsv"], "column 'NOPE' not found"),
    (["--split", "{tmp}/bad_split.tsv"], "unknown SPLIT value"),
    (["--gwas", "{tmp}/other.gwas.tsv"], "no SNP overlap"),
    (["--pheno", "{tmp}/one_class.tsv", "--pheno-col", "CASE"], "single class"),
])
def test_cli_select__bad_input_is_one_line_exit_2_and_no_file(sim_prefix, tmp_path, capsys, extra, message):
    fam = read_fam(f"{sim_prefix}.fam")
    pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"], "SPLIT": "exam"}).to_csv(tmp_path / "bad_split.tsv",
                                                                               sep="\t", index=False)
    pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"], "CASE": 2}).to_csv(tmp_path / "one_class.tsv", sep="\t",
                                                                         index=False)
    pd.DataFrame({"SNP": ["x1", "x2"], "CHR": "9", "BP": [5, 6], "A1": "A", "A2": "G", "P": 0.1}).to_csv(
        tmp_path / "other.gwas.tsv", sep="\t", index=False)
    extra = [e.format(prefix=sim_prefix, tmp=tmp_path) for e in extra]
    out = tmp_path / "panel.tsv"
    args = ["select", "--bfile", str(sim_prefix), "--gwas", f"{sim_prefix}.gwas.tsv", "--out", str(out)]
    assert cli.main(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_split__writes_train_and_holdout_and_reuses_a_split(sim_prefix, sim_cohort, tmp_path, capsys):
    out = tmp_path / "cohort.v1"  # a dot in the prefix must survive
    assert cli.main(["split", "--bfile", str(sim_prefix), "--holdout", "0.25", "--seed", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stratified on PHENO (binary)" in printed
    split = read_split(f"{out}.split.tsv", sim_cohort.genotypes.samples)
    assert abs(split.holdout.size - 125) <= 1 and split.validation.size == 0
    case = sim_cohort.genotypes.samples["pheno"].to_numpy() == "2"
    assert abs(case[split.holdout].mean() - case.mean()) < 0.01  # stratified
    for part in ("train", "holdout"):
        fam = read_fam(f"{out}.{part}.fam")
        assert fam["iid"].tolist() == sim_cohort.genotypes.samples["iid"].to_numpy()[getattr(split, part)].tolist()
    # the parts hold the right genotypes (a dotted prefix such as cohort.v1.train reads as it is)
    assert np.array_equal(read_plink(f"{out}.train").dosages, sim_cohort.genotypes.dosages[split.train])
    again = tmp_path / "again"
    assert cli.main(["split", "--bfile", str(sim_prefix), "--split-file", f"{out}.split.tsv", "--out", str(again)]) == 0
    assert (tmp_path / "again.split.tsv").read_bytes() == (tmp_path / "cohort.v1.split.tsv").read_bytes()


def test_cli_split__bad_holdout_and_bad_split_file_exit_2(sim_prefix, tmp_path, capsys):
    assert cli.main(["split", "--bfile", str(sim_prefix), "--holdout", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--holdout 0.0 must be a fraction in (0, 1)" in capsys.readouterr().err
    (tmp_path / "s.tsv").write_text("FID\tIID\n")
    assert cli.main(["split", "--bfile", str(sim_prefix), "--split-file", str(tmp_path / "s.tsv"),
                     "--out", str(tmp_path / "x")]) == 2
    assert "lacks column(s) ['SPLIT']" in capsys.readouterr().err
    assert not list(tmp_path.glob("x*"))
