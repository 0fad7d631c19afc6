"""Readers and writers for genotype and summary-statistics files."""
