# The two entry points of the README. Both create the environment first (idempotent).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup system-packages demo test
system-packages:
	@if ! command -v plink1.9 >/dev/null || ! command -v chromium >/dev/null || ! command -v plink2 >/dev/null \
	    || ! command -v bcftools >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq plink1.9 plink2 bcftools chromium >/dev/null \
	  || echo "warning: could not install plink1.9/plink2/bcftools/chromium; the tests that need them will be skipped"; fi

$(BIN)/snpgen: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PY) >/dev/null || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	@touch $(BIN)/snpgen

setup: system-packages $(BIN)/snpgen

data/demo/demo.bed: | setup
	$(BIN)/snpgen simulate --out data/demo/demo --n 2000 --snps 1000 --seed 0

demo: setup data/demo/demo.bed
	$(BIN)/streamlit run app.py

# two workers, each test file on one (its module fixtures built once): 7.5 minutes on 2 cores against 9-10 in
# one process (BENCHMARKS.md, forty-fifth pass)
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
