"""genotypes: the one chromosome naming and order shared by clumping, panels, GWAS alignment and the Manhattan plot."""
from snpgen_core.genotypes import canonical_chromosome, chromosome_rank


def test_canonical_chromosome__prefix_case_leading_zeros_and_plink_codes():
    names = ["chr1", " 01", "X", "chrx", "MT", "chrM", "XY", "Y", "Un_gl000220", "22"]
    assert canonical_chromosome(names).tolist() == ["1", "1", "23", "23", "26", "26", "25", "24", "UN_GL000220", "22"]


def test_chromosome_rank__natural_order_then_contigs_alphabetically():
    names = ["10", "2", "chr1", "X", "MT", "XY", "Y", "Un", "01", "alt"]
    rank = chromosome_rank(names)
    ordered = [n for _, n in sorted(zip(rank, names), key=lambda t: t[0])]
    assert ordered[:2] == ["chr1", "01"] or ordered[:2] == ["01", "chr1"]
    assert rank[2] == rank[8]  # chr1 and 01 are one chromosome
    assert ordered[2:] == ["2", "10", "X", "Y", "XY", "MT", "alt", "Un"]
