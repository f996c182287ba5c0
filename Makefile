# zsattr: every target installs .venv first if it is missing or requirements changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The venv's bin first on PATH so papermill/nbval kernels ("python3") are the venv's Python.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH" MPLBACKEND=Agg

.DEFAULT_GOAL := help
.PHONY: help venv test determinism reproduce smoke lab bench clean

help:  ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv from requirements.txt (about 3 min, 6 GB)

test: $(STAMP)  ## unit tests, nbval over every notebook (smoke, empty cache), the determinism check
	$(RUN) $(BIN)/python -m pytest tests
	@# nbval from an empty temporary cache, so it runs the code on disk, never artefacts of older code
	tmp=$$(mktemp -d -t zsattr-nbval-XXXXXX); \
	ZSATTR_DATA_DIR=$$tmp $(RUN) $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks; \
	status=$$?; rm -rf $$tmp; exit $$status
	$(MAKE) --no-print-directory determinism

# Notebooks 01 (GAN training) and 02 (the synthetic bank) at smoke, twice, each from an empty cache
# in a temporary root: their report metrics must be identical (zsattr/report/determinism.py).
determinism: $(STAMP)  ## run notebooks 01 and 02 twice from empty caches; metrics must be identical
	$(RUN) $(BIN)/python -m zsattr.report.determinism --preset smoke --only 01 02

reproduce: $(STAMP)  ## run every notebook in order at the cpu preset (the main job)
	$(RUN) $(BIN)/zsattr reproduce --preset cpu

smoke: $(STAMP)  ## run every notebook in order at the smoke preset (minutes)
	$(RUN) $(BIN)/zsattr reproduce --preset smoke

lab: $(STAMP)  ## open JupyterLab on the project's kernel
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab notebooks

bench: $(STAMP)  ## run the speed benchmarks in benchmarks/
	@for b in $$(ls benchmarks/*.py 2>/dev/null); do echo "== $$b"; $(RUN) $(BIN)/python $$b || exit 1; done

clean:  ## remove executed reports and the cache (keeps .venv and figures/)
	rm -rf reports/smoke reports/paper data/cache
