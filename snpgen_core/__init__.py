"""SNPgen Studio core: synthetic, phenotype-conditioned genotype cohorts, and the evidence that they are useful
and private.

Public API (samples x variants; dosage counts the .bim column-5 allele; missing = -1):

    Genotypes, read_plink, write_plink, PlinkWriter      genotype data and PLINK 1 binary I/O
    InputError                                            bad user input, with a message fit to show
"""
__version__ = "0.1.0"

from .errors import InputError
from .genotypes import MISSING, Genotypes
from .io.plink import PlinkWriter, read_plink, write_plink

__all__ = ["__version__", "InputError", "MISSING", "Genotypes", "PlinkWriter", "read_plink", "write_plink"]
