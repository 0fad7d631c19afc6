"""Shared fixtures: small simulated cohorts, made once per test session (msprime, seeded)."""
import os

os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".numba_cache"))
