"""SNPgen Studio core: synthetic, phenotype-conditioned genotype cohorts, and the evidence that they are useful
and private.

Conventions: samples x variants; a dosage (int8) counts the .bim column-5 allele (a1); missing calls are -1.

Public API, in workflow order (heavy modules load on first use):

    Genotypes, MISSING, InputError                      data model, bad-input error
    read_plink, write_plink, PlinkWriter                PLINK 1 binary I/O (bed-reader underneath; reads .pgen too)
    read_pgen, write_pgen, write_vcf                    PLINK 2 (pgenlib) and bgzipped VCF writers / reader
    read_gwas, align_gwas                               GWAS summary statistics: formats, allele alignment
    read_phenotype, read_covariates, Phenotype          PLINK-coded traits: binary, categorical, quantitative
    simulate_cohort, write_cohort                       msprime demo/test cohorts with known causal SNPs
    per_snp_association, gwas_table                     per-SNP linear / logistic regression, a GWAS table
    split_samples, read_split, write_split              the recorded train/validation/holdout split
    ld_r2, clump                                        LD r^2 (dosage or haplotype) and PLINK --clump
    qc_mask, select_panel, read_panel, write_panel      QC and the SNP panel
    TrainConfig, train_run                              VAE + conditional latent diffusion, one training loop
    generate, load_run                                  conditioned generation streamed to PLINK
    evaluate, write_report                              fidelity / association / utility / privacy report card
    export_cohort, write_genotypes                      synthetic files + report + model card (bed, vcf or pgen)
    read_jobs, run_batch                                a grid of train -> generate -> evaluate jobs on Ray
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import InputError
from .genotypes import MISSING, Genotypes
from .io.plink import PlinkWriter, read_plink, write_plink

_LAZY = {
    "read_gwas": "io.gwas", "align_gwas": "io.gwas",
    "read_phenotype": "phenotypes", "read_covariates": "phenotypes", "Phenotype": "phenotypes",
    "simulate_cohort": "simulate", "write_cohort": "simulate",
    "per_snp_association": "association", "gwas_table": "association",
    "split_samples": "splits", "read_split": "splits", "write_split": "splits",
    "ld_r2": "ld", "clump": "clumping",
    "qc_mask": "panel", "select_panel": "panel", "read_panel": "panel", "write_panel": "panel",
    "TrainConfig": "runs", "train_run": "pipeline",
    "generate": "generation", "load_run": "generation",
    "evaluate": "evaluation", "write_report": "evaluation",
    "export_cohort": "export", "write_genotypes": "export",
    "read_pgen": "io.pgen", "write_pgen": "io.pgen", "write_vcf": "io.vcf",
    "read_jobs": "batch", "run_batch": "batch",
}

__all__ = ["__version__", "InputError", "MISSING", "Genotypes", "PlinkWriter", "read_plink", "write_plink", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'snpgen_core' has no attribute {name!r}")
