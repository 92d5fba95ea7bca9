# karyoflow — the two commands a new user needs:
#   make run    install into .venv and run the default workflow (synthetic data)
#   make test   install into .venv and run the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
CONFIG ?= config/config.yaml
# GPUs present (0 without an NVIDIA driver): the cap on the `gpu` resource of the rules.
GPUS ?= $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
STAMP := $(VENV)/.installed
# two workers (the CI machine has 2 cores); whole test files stay on one worker
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: run test install install-gpu lint format bench clean dry-run help

help:
	@echo "make run      install (.venv) and run the default workflow on synthetic data"
	@echo "make test     install (.venv) and run the tests"
	@echo "make lint     ruff, snakefmt --check, snakemake --lint"
	@echo "make bench    benchmarks as JSON lines"
	@echo "make dry-run  show the jobs the workflow would run"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# GPU machines: replace the CPU build of TensorFlow with the CUDA one.
install-gpu: $(STAMP)
	$(BIN)/python -m pip uninstall --yes tensorflow-cpu
	$(BIN)/python -m pip install --quiet -e '.[gpu,dev]'

REPORT ?= results/report.html

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$(GPUS) --configfile $(CONFIG)
	$(BIN)/snakemake --cores 1 --configfile $(CONFIG) --report $(REPORT)
	@echo "report: $(REPORT)   karyograms: results/predict/*/cells/*/karyogram.png"

dry-run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$(GPUS) --configfile $(CONFIG) --dry-run

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint --cores 1

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile workflow/rules

bench: $(STAMP)
	$(BIN)/python -m karyoflow.bench

clean:
	rm -rf results .snakemake
