# zsattr: every target installs .venv first if it is missing or requirements changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The venv's bin first on PATH so papermill/nbval kernels ("python3") are the venv's Python.
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH" MPLBACKEND=Agg

.DEFAULT_GOAL := help
.PHONY: help venv test unit-tests notebook-tests determinism mutation reproduce smoke lab bench clean

help:  ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv from requirements.txt (about 3 min, 6 GB)

# Two parts run side by side, one core and one torch thread each (OMP_NUM_THREADS=1: two
# two-thread jobs on two cores spin-wait and are slower than one after the other); --output-sync
# prints each part's output whole when it ends. `make test JOBS=1` runs them in turn.
JOBS ?= 2
test: $(STAMP)  ## unit tests; nbval over every notebook (smoke, empty cache) and the determinism check
	OMP_NUM_THREADS=1 $(MAKE) --no-print-directory -j$(JOBS) --output-sync=target unit-tests notebook-tests

unit-tests: $(STAMP)
	$(RUN) $(BIN)/python -m pytest tests

# nbval in a temporary root (notebooks linked in, so reports land there and never over the
# committed ones) from an empty cache, so it runs the code on disk, never artefacts of older code.
# That run is the determinism check's first run: notebooks 01 and 02 then run once more from
# another empty cache and their report metrics must be identical.
notebook-tests: $(STAMP)
	tmp=$$(mktemp -d -t zsattr-nbval-XXXXXX); ln -s "$(CURDIR)/notebooks" $$tmp/notebooks; \
	ZSATTR_ROOT=$$tmp ZSATTR_DATA_DIR=$$tmp/data $(RUN) $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		-p no:cacheprovider --rootdir=$(CURDIR) $$tmp/notebooks \
	&& $(RUN) $(BIN)/python -m zsattr.report.determinism --preset smoke --only 01 02 --against $$tmp/reports/smoke; \
	status=$$?; rm -rf $$tmp; exit $$status

# Notebooks 01 (GAN training) and 02 (the synthetic bank) at smoke, twice, each from an empty cache
# in a temporary root: their report metrics must be identical (zsattr/report/determinism.py).
determinism: $(STAMP)  ## run notebooks 01 and 02 twice from empty caches; metrics must be identical
	$(RUN) $(BIN)/python -m zsattr.report.determinism --preset smoke --only 01 02

# Mutation testing ([tool.mutmut] in pyproject.toml names the modules and tests), outside CI: 1-2 h
# on 2 cores. Starts from a clean mutants/ (mutmut keeps old results and its copy of tests/
# otherwise); `make mutation RESUME=1` continues an interrupted run. Then the score per module;
# fails below 90 % killed.
RESUME ?=
mutation: $(STAMP)  ## mutation testing of metrics, protocols, gallery, samplers, cache keys (1-2 h)
	$(if $(RESUME),,rm -rf mutants)
	OMP_NUM_THREADS=1 $(RUN) $(BIN)/mutmut run --max-children 2
	$(RUN) $(BIN)/python -m zsattr.report.mutation --mutants mutants --require 90

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
