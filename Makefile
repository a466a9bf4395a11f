# zhbench: `make run` sets everything up and runs the default profile; `make test` sets up and tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# All of this machine's cores (Snakemake's default profile says the same); the stages that time
# latency ask for all of them, so they run alone.
CORES ?= $(shell nproc 2>/dev/null || echo 1)
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Stage commands run workflow/python: point it at this venv, wherever VENV is.
export ZHBENCH_PYTHON := $(abspath $(PY))
# No phoning home: DVC analytics/update checks and the HF hub would wait on a closed network.
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run setup system-deps test test-slurm reproduce-check lint clean help serve serve-load dvc.yaml

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(VENV)/.installed: pyproject.toml
	# A venv cut short by an interrupted setup has a python but no pip: build it again.
	$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	# torch first and exactly pinned: the CPU wheel; an unpinned resolve would pull a CUDA build.
	$(PY) -m pip install -q --no-compile torch==2.13.0
	$(PY) -m pip install -q --no-compile -e '.[test]'
	# Byte-compiled on every core rather than by pip on one, the packages' own test suites left out
	# (4,000 of 18,700 files; nothing imports them). As pip does, a file that does not compile is left
	# to the interpreter (torch ships one written for Python 3.12).
	$(PY) -m compileall -q -j 0 -x 'site-packages/.+/tests?/' $(VENV)/lib >/dev/null || true
	$(VENV)/bin/dvc config --global core.analytics false >/dev/null 2>&1 || true
	touch $@

setup: $(VENV)/.installed  ## create .venv and install the pinned dependencies

# Headless Chromium renders reports/report.html in the tests. Debian's package, installed when we
# may (root + apt-get); elsewhere the HTML test says it skipped and why.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "chromium not installed and no root/apt-get: the HTML report test will be skipped"; fi; }

run: setup  ## run the whole pipeline on the current params.yaml; after a crash, the same command resumes
	$(VENV)/bin/snakemake --cores $(CORES) all

# The SLURM tests run where the machine allows (root + apt-get on Debian: they build a one-node
# cluster); elsewhere pytest lists them as skipped with the reason.
test: setup system-deps  ## unit tests + end-to-end smoke runs through Snakemake, DVC and (root on Debian) SLURM
	status=0; $(PY) -m pytest -q $(PYTEST_ARGS) || status=$$?; \
	bash tests/slurm/cluster.sh down >/dev/null 2>&1; exit $$status

test-slurm: setup  ## the smoke pipeline through a throw-away one-node SLURM (root + apt, Debian 12)
	status=0; $(PY) -m pytest -m slurm tests/slurm -q $(PYTEST_ARGS) || status=$$?; \
	bash tests/slurm/cluster.sh down; exit $$status

reproduce-check: setup  ## rerun the smoke profile twice from clean; fail on any byte difference in quality metrics or report tables
	$(PY) workflow/reproduce_check.py --cores $(CORES)

dvc.yaml: setup  ## regenerate dvc.yaml from the Snakemake workflow (after changing rules or params.yaml's lists)
	$(VENV)/bin/zhbench dag export-dvc

lint: setup  ## snakemake --lint and snakefmt
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check workflow/Snakefile workflow/rules

MODEL ?= fasttext_char
PORT ?= 8000
serve: setup  ## serve a trained model on 127.0.0.1:$(PORT): make serve MODEL=fasttext_char | MODEL=char/bert
	$(VENV)/bin/zhbench serve --model $(MODEL) --port $(PORT)

serve-load: setup  ## load-test the prediction service for MODEL (400 requests at 1 and 8 clients, loopback)
	$(PY) benchmarks/serve_load.py --model $(MODEL)

clean:  ## remove generated data, models and logs (keeps committed metrics)
	rm -rf data/raw data/processed models logs .snakemake
